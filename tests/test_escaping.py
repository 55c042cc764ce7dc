"""Outside text in Slack, as an attacker sends it: escaped everywhere, never markup, never too big to post.

Anyone can text or call a tracking number printed in an ad, and a requester types a number's name:
each field below carries every piece of Slack markup (`<!channel>`, `<!here>`, `<@U…>`, `<#C…>`, a
disguised link) and `&`. What the Slack sandbox received must show it as text (`&lt;!channel&gt;`)
and `bot.sandbox.markup.injections` must find no markup that isn't Switchboard's own.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from bot.sandbox.markup import injections
from bot.sandbox.stack import ADMIN, Stack
from tests.helpers import (
    AVANSER_SMS,
    EXOTEL_CALL,
    EXOTEL_DEALLOCATION,
    EXOTEL_VERIFIED,
    EXOTEL_VERIFY_FAILED,
    call,
    click,
    messages,
    route,
    send,
    submit_view,
    wait_for,
)

ATTACK = (
    "<!channel> <!here> <!everyone> <@U0ADMIN> <#C0OTHER> <!subteam^S0TEAM> "
    "<https://evil.example|https://slack.com/verify> Tom & Jerry"
)
RAW = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U0ADMIN>",
    "<#C0OTHER>",
    "<!subteam^",
    "|https://slack.com/verify>",  # the disguised link's label
]
SMS_TRACKING = "+61-0401020304"


def strings(message: dict[str, Any]) -> list[str]:
    """The message's `text` and every text in its blocks (mrkdwn or plain)."""
    found = [str(message.get("text", ""))]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.get("blocks") or [])
    return found


def mrkdwn_strings(message: dict[str, Any]) -> list[str]:
    from bot.sandbox.markup import mrkdwn_texts

    return [text for _, text in mrkdwn_texts(message)]


def assert_shown_as_text(found: list[dict[str, Any]], *, ours: frozenset[str] = frozenset()) -> None:
    """No raw attack markup in any mrkdwn or fallback text; the escaped form is there instead."""
    assert found, "nothing was posted"
    for message in found:
        for text in mrkdwn_strings(message):
            for raw in RAW:
                if raw in ours:
                    continue
                assert raw not in text, f"{raw!r} rendered raw in {text!r}"
    assert any("&lt;!channel&gt;" in text for m in found for text in strings(m))


def all_posted(stack: Stack) -> list[dict[str, Any]]:
    assert stack.drain(10)
    return stack.slack.all_messages()


# -- telco fields --------------------------------------------------------------------------------------


def test_call_uri_with_markup_in_every_field(stack: Stack, http: httpx.Client) -> None:
    route(stack, name=ATTACK)
    fields = {k: ATTACK for k in ("adname", "targetname", "ani", "clocation", "cstate", "tzdate", "ccountry")}
    send(http, stack, "GET", "/hooks/avanser/call", call(1, **fields, target="", uniqueid=f"u1 {ATTACK}"))
    voicemail = call(2, **fields, recording_url="https://evil.example/vm.mp3|https://slack.com/verify>x<!channel>")
    send(http, stack, "GET", "/hooks/avanser/call", voicemail)
    send(http, stack, "GET", "/hooks/avanser/call", call(3, **fields, bnum=ATTACK))  # no route: the alerts channel
    messages(stack, "C0SALES", 2)
    messages(stack, "C0ALERTS", 1)
    found = all_posted(stack)
    assert_shown_as_text(found)
    assert injections(found) == []
    assert "&lt;@U0ADMIN&gt;" in found[0]["text"]


def test_sms_with_markup_in_every_field(stack: Stack, http: httpx.Client) -> None:
    route(stack, "+61401020304", "C0SMS", name=ATTACK)
    send(http, stack, "GET", "/hooks/avanser/sms", {**AVANSER_SMS, "from": ATTACK, "txt": ATTACK, "date": ATTACK})
    send(http, stack, "GET", "/hooks/avanser/sms", {**AVANSER_SMS, "from": ATTACK, "txt": f"again {ATTACK}"})
    send(http, stack, "GET", "/hooks/avanser/sms", {**AVANSER_SMS, "to": ATTACK, "txt": ATTACK})
    messages(stack, "C0SMS", 2)
    messages(stack, "C0ALERTS", 1)
    found = all_posted(stack)
    assert_shown_as_text(found)
    assert injections(found) == []


def test_exotel_events_with_markup_in_every_field(stack: Stack, http: httpx.Client) -> None:
    exotel = {
        **EXOTEL_CALL,
        **{k: ATTACK for k in ("greenvn", "from", "to", "dial_call_status", "call_type", "start_time")},
        "recording_url": "https://evil.example/r.mp3?a=1&b=2|https://slack.com/verify",
        "insights": {"DisconnectedBy": ATTACK},
    }
    send(http, stack, "POST", "/hooks/exotel/call", exotel)
    send(http, stack, "POST", "/hooks/exotel/verification", {**EXOTEL_VERIFIED, "caller": ATTACK, "greenvn": ATTACK})
    send(http, stack, "POST", "/hooks/exotel/verification", {**EXOTEL_VERIFY_FAILED, "caller": ATTACK})
    dealloc = {**EXOTEL_DEALLOCATION, "connection_id": ATTACK, "greenvn": ATTACK}
    send(http, stack, "POST", "/hooks/exotel/deallocation", dealloc)
    messages(stack, "C0ALERTS", 4)
    found = all_posted(stack)
    assert_shown_as_text(found)
    assert injections(found) == []


def test_avanser_callback_with_markup_in_every_field(stack: Stack, http: httpx.Client) -> None:
    body = {"request_id": f"r1 {ATTACK}", "status": "failed", "message": ATTACK, "custom_id": ATTACK}
    send(http, stack, "POST", "/hooks/avanser/request", body)
    found = messages(stack, "C0ALERTS", 1)
    assert_shown_as_text(found)
    assert injections(found) == []


# -- what people type ------------------------------------------------------------------------------------


def test_a_requesters_number_name_in_the_approvals_channel(stack: Stack) -> None:
    form = {
        "name": ATTACK,
        "type": "transfer",
        "number": f"near {ATTACK}",
        "answer_point": "02 9008 1500",
        "answer_point_name": ATTACK,
        "report": "missed",
        "channel": "C0SALES",
    }
    assert submit_view(stack, "numbers_new", form, user="U0REP").status_code == 200
    [approval] = messages(stack, "C0APPROVALS", 1)
    click(stack, "numbers_approve", approval["blocks"][-1]["elements"][0]["value"], ADMIN, approval, "C0APPROVALS")
    wait_for(lambda: stack.slack.channel_messages("C0SALES")[0]["edits"] >= 2, timeout=15)
    found = all_posted(stack)
    ours = frozenset({"<@U0ADMIN>"})  # the approver, mentioned by Switchboard itself
    assert_shown_as_text(found, ours=ours)
    users, channels = {"U0REP", ADMIN}, {"C0SALES", "C0APPROVALS"}
    assert injections(found, users=users, channels=channels) == []
    assert "“&lt;!channel&gt; &lt;!here&gt;" in approval["text"]


def test_a_call_note_in_the_dm_to_the_bridged_person(tmp_path) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, SWITCHBOARD_CALLER_ID="+61290081500") as stack:
        stack.slack.command(stack.url, "/call", "phone +61 400 111 222", user_id="U0ONCALL")
        text = f"0410 203 045 <@U0ONCALL|casey> -- {ATTACK}"
        answer, _ = stack.slack.command(stack.url, "/call", text, user_id=ADMIN)
        assert answer.status_code == 200
        [dm] = messages(stack, "D0ONCALL")
        assert dm["text"].startswith("📞 <@U0ADMIN> asked you to take a call with 0410 203 045 — “&lt;!channel&gt;")
        assert_shown_as_text([dm], ours=frozenset({"<@U0ADMIN>"}))
        assert injections([dm], users={ADMIN}) == []
        assert dm["text"].count("<@U0ADMIN>") == 1


# -- the figure -------------------------------------------------------------------------------------------


def test_injections_rendered_across_every_attack_is_zero(stack: Stack, http: httpx.Client) -> None:
    """The figure the fault report prints: markup an attacker formed, over every webhook at once."""
    route(stack, name=ATTACK)
    route(stack, "+61401020304", "C0SMS", name=ATTACK)
    fields = {k: ATTACK for k in ("adname", "targetname", "ani", "clocation", "cstate", "tzdate")}
    send(http, stack, "GET", "/hooks/avanser/call", call(1, **fields, recording_url=f"https://x.example/|{ATTACK}"))
    send(http, stack, "GET", "/hooks/avanser/sms", {**AVANSER_SMS, "from": ATTACK, "txt": ATTACK, "date": ATTACK})
    send(http, stack, "POST", "/hooks/exotel/call", {**EXOTEL_CALL, "from": ATTACK, "greenvn": ATTACK})
    send(http, stack, "POST", "/hooks/avanser/request", {"request_id": "r2", "status": "failed", "message": ATTACK})
    messages(stack, "C0SALES")
    messages(stack, "C0SMS")
    messages(stack, "C0ALERTS", 2)
    found = all_posted(stack)
    rendered = injections(found)
    print(f"injections rendered: {len(rendered)}")
    assert rendered == [], json.dumps([r.__dict__ for r in rendered], ensure_ascii=False)[:2000]


@pytest.mark.parametrize("token", RAW)
def test_the_scanner_finds_each_attack_token_when_rendered_raw(token: str) -> None:
    raw = {"channel": "C0X", "text": f"hello {ATTACK}", "blocks": []}
    assert any(token in i.markup for i in injections([raw]))
    escaped = {"channel": "C0X", "text": "hello &lt;!channel&gt;", "blocks": []}
    assert injections([escaped]) == []


# -- size: nothing lost for it ------------------------------------------------------------------------------

LONG_AD = "Spring sale radio ad " * 148  # 3,108 characters
SHORT_LINES = "a\n" * 800  # a 1,600-character SMS of one-letter lines
LONG_CALLER = "Private caller " * 14  # 210 characters


def oversized(stack: Stack, http: httpx.Client) -> int:
    """Send every oversized event the findings name; how many alerts should be posted."""
    route(stack, name=LONG_AD)
    route(stack, "+61401020304", "C0SMS", name="Sale mobile")
    sent = [
        ("GET", "/hooks/avanser/call", call(1, adname=LONG_AD)),
        ("GET", "/hooks/avanser/call", call(2, ani=LONG_CALLER, clocation=LONG_AD, targetname=LONG_AD)),
        ("GET", "/hooks/avanser/call", call(3, adname="&" * 3100, recording_url="https://x.example/" + "a" * 3000)),
        ("GET", "/hooks/avanser/sms", {**AVANSER_SMS, "txt": SHORT_LINES}),
        ("GET", "/hooks/avanser/sms", {**AVANSER_SMS, "from": LONG_CALLER, "txt": "<>" * 1600}),
        ("GET", "/hooks/avanser/sms", {**AVANSER_SMS, "from": LONG_CALLER, "txt": "x" * 1600, "date": LONG_AD}),
        ("POST", "/hooks/exotel/call", {**EXOTEL_CALL, "from": LONG_CALLER, "greenvn": LONG_AD, "to": LONG_AD}),
        ("POST", "/hooks/avanser/request", {"request_id": "r" * 300, "status": "failed", "message": LONG_AD * 20}),
    ]
    for method, path, payload in sent:
        assert send(http, stack, method, path, payload).status_code == 200
    return len(sent)


def test_oversized_fields_are_cut_and_every_alert_is_posted(stack: Stack, http: httpx.Client) -> None:
    from bot.sandbox.blockkit import MESSAGE_TEXT_MAX, check_blocks

    expected = oversized(stack, http)
    wait_for(lambda: len(stack.slack.all_messages()) >= expected, timeout=15)
    found = all_posted(stack)
    refused = [c for c in stack.slack.calls if c.method == "chat.postMessage" and not c.response.get("ok")]
    print(f"alerts posted: {len(found)} of {expected}; refused for size: {expected - len(found)}")
    assert len(found) == expected and refused == []
    for message in found:
        assert check_blocks(message["blocks"]) == []
        assert len(message["text"]) <= MESSAGE_TEXT_MAX
    texts = [t for m in found for t in strings(m)]
    assert any(t.endswith("…") for t in texts)  # cut, and the cut is shown
    assert any("Spring sale radio ad Spring sale" in t for t in texts)  # what fits is kept
