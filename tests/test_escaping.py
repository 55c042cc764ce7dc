"""Outside text in Slack, as an attacker sends it: escaped everywhere, never markup, never too big to post.

Anyone can text or call a tracking number printed in an ad, and a requester types a number's name:
each field below carries every piece of Slack markup (`<!channel>`, `<!here>`, `<@U…>`, `<#C…>`, a
disguised link) and `&`. What the Slack sandbox received must show it as text (`&lt;!channel&gt;`)
and `bot.sandbox.markup.injections` must find no markup that isn't Switchboard's own.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.numbers import AccountOverview, SearchQuery
from bot.domain.vn import Allocation
from bot.sandbox.blockkit import MESSAGE_TEXT_MAX, check_blocks, check_view
from bot.sandbox.markup import injections
from bot.sandbox.stack import ADMIN, Stack
from bot.telco.avanser import (
    Account,
    AddressCandidate,
    NumberCandidate,
    NumberRate,
    RequestRecord,
    SearchResult,
    ServiceConfig,
    ServiceDetail,
    Template,
)
from commands import numbers_views, vn_views
from notifiers import text as safe
from notifiers.allocations import (
    render_allocation,
    render_allocation_call,
    render_deallocation,
    render_reminder,
    render_verification,
)
from notifiers.calls import render_call
from notifiers.digest import render_digest
from notifiers.events import (
    CALL_STATUSES,
    AvanserCall,
    AvanserRequestUpdate,
    AvanserSms,
    ExotelCall,
    ExotelDeallocation,
    ExotelVerification,
)
from notifiers.message import AlertState, Message, Route
from notifiers.provisioning import (
    approval_message,
    decided_message,
    render_request,
    render_request_update,
)
from notifiers.sms import render_sms
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


# -- the one escaping place: notifiers/text.py ----------------------------------------------------------------


ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def test_escape_is_slacks_rule() -> None:
    assert safe.escape("<!channel> Tom & Jerry <@U1>") == "&lt;!channel&gt; Tom &amp; Jerry &lt;@U1&gt;"
    assert safe.escape("&lt;") == "&amp;lt;"  # what was typed as an entity is shown as typed


def test_mrkdwn_cuts_whole_characters_with_an_ellipsis() -> None:
    assert safe.mrkdwn("&" * 100, 12) == "&amp;&amp;…"
    assert safe.mrkdwn("x" * 300) == "x" * 199 + "…"
    assert safe.mrkdwn("line one\n> fake quote\n*Claimed by*") == "line one &gt; fake quote *Claimed by*"
    assert safe.mrkdwn("a\nb", lines=True) == "a\nb"
    assert safe.mrkdwn(None) == ""


def test_truncate_never_splits_an_escape_or_our_markup() -> None:
    assert safe.truncate("abc &amp; def", 8) == "abc…"
    assert safe.truncate("hello <@U0ADMIN> there", 12) == "hello…"
    assert safe.truncate("short", 10) == "short"


def test_plain_is_never_empty_and_fits() -> None:
    assert safe.plain("", 75) == "—"
    assert safe.plain("x" * 100, 75) == "x" * 74 + "…"
    assert safe.plain("<!channel>", 75) == "<!channel>"  # plain_text is never read as markup


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://rec.example/a.mp3", "<https://rec.example/a.mp3|▶ Play>"),
        ("https://rec.example/a.mp3?x=1&y=2", "<https://rec.example/a.mp3?x=1&amp;y=2|▶ Play>"),
        ("https://evil.example/|https://slack.com/verify", "<https://evil.example/%7Chttps://slack.com/verify|▶ Play>"),
        ("https://e.example/a>b<!channel>", "<https://e.example/a%3Eb%3C!channel%3E|▶ Play>"),
        ("https://e.example/a b\n", "<https://e.example/a%20b|▶ Play>"),
        ("javascript:alert(1)", None),
        ("slack://channel?id=C1", None),
        ("https://", None),
        ("https://x.example/" + "a" * 2000, None),
        ("", None),
    ],
)
def test_a_link_from_outside_cannot_break_out(url: str, expected: str | None) -> None:
    assert safe.link(url, "▶ Play") == expected


def test_a_url_that_cant_be_a_link_is_shown_as_text() -> None:
    shown = safe.shown_url("javascript:<!channel>", "▶ Play")
    assert shown == "▶ Play: javascript:&lt;!channel&gt; (not linked: only short http(s) addresses are)"


def test_chunks_keep_every_line_within_the_limits() -> None:
    lines = [f"line {i} " + "x" * 90 for i in range(400)]
    parts = safe.chunks(lines, 3000, 10)
    assert len(parts) == 10 and all(len(p) <= 3000 for p in parts)
    assert safe.chunks(["a", "b"], 3000, 5) == ["a\nb"]


OUTSIDE = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="<>&|!@#^*_~`:/.\n aUC0", max_size=400),
    st.text(max_size=4000),
    st.sampled_from([ATTACK, "Spring sale radio ad " * 148, "a\n" * 800, "&" * 3100, "<>" * 1600, ""]),
)
CHECKED = settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@CHECKED
@given(text=OUTSIDE, limit=st.integers(min_value=2, max_value=5000))
def test_mrkdwn_property(text: str, limit: int) -> None:
    shown = safe.mrkdwn(text, limit, lines=True)
    assert len(shown) <= limit
    assert "<" not in shown and ">" not in shown
    assert not ENTITY.search(shown)  # every & starts a whole escape
    if len(safe.escape(text)) <= limit:
        assert unescape(shown) == text


@CHECKED
@given(parts=st.lists(OUTSIDE, max_size=6), limit=st.integers(min_value=2, max_value=3000))
def test_truncate_property(parts: list[str], limit: int) -> None:
    assembled = " <@U0REP> ".join(safe.mrkdwn(p, 1000) for p in parts) + " <#C0SALES>"
    cut = safe.truncate(assembled, limit)
    assert len(cut) <= limit
    assert not ENTITY.search(cut)
    assert cut.count("<") == cut.count(">")  # our own markup is whole or gone
    assert injections([{"text": cut}], users={"U0REP"}, channels={"C0SALES"}) == []


# -- every message builder, fed random telco fields ----------------------------------------------------


OURS = {"U0CLAIM", "U0BACK", "U0OWNER", "U0REP", ADMIN}


def fits(text: str, blocks: list[dict[str, Any]]) -> None:
    """What Slack would check, and what an attacker would hope for."""
    assert check_blocks(blocks) == [], check_blocks(blocks)[:3]
    assert 0 < len(text) <= MESSAGE_TEXT_MAX
    found = injections([{"text": text, "blocks": blocks}], users=OURS, channels={"C0SALES", "C0APPROVALS"})
    assert found == [], found[:3]


def fits_message(message: Message) -> None:
    fits(message.text, message.blocks)
    fits(message.summary, render_digest([message.summary] * 3)[1])


STATES = st.sampled_from(
    [AlertState(id=1), AlertState(id=2, claimed_by="U0CLAIM", claimed_at=1.0e9, called_back_by="U0BACK")]
)
ROUTES = st.builds(Route, channel=st.just("C0SALES"), name=st.one_of(st.none(), OUTSIDE), mask_callers=st.booleans())


@CHECKED
@given(
    fields=st.fixed_dictionaries(
        {k: OUTSIDE for k in ("adname", "targetname", "ani", "clocation", "cstate", "tzdate", "uniqueid", "bnum")},
        optional={"recording_url": OUTSIDE, "target": OUTSIDE},
    ),
    status=st.sampled_from(sorted(CALL_STATUSES)),
    route=ROUTES,
    state=STATES,
)
def test_any_call_uri_makes_a_message_slack_takes(
    fields: dict[str, str], status: str, route: Route, state: AlertState
) -> None:
    call_event = AvanserCall.model_validate({**fields, "callstatus": status, "duration": 42})
    fits_message(render_call(call_event, route, state))


@CHECKED
@given(
    fields=st.fixed_dictionaries({"to": OUTSIDE, "from": OUTSIDE, "txt": OUTSIDE, "date": OUTSIDE}),
    route=ROUTES,
    state=STATES,
    first=st.booleans(),
)
def test_any_sms_makes_a_message_slack_takes(
    fields: dict[str, str], route: Route, state: AlertState, first: bool
) -> None:
    fits_message(render_sms(AvanserSms.model_validate(fields), route, state, first=first))


@CHECKED
@given(
    fields=st.fixed_dictionaries(
        {k: OUTSIDE for k in ("greenvn", "from", "to", "dial_call_status", "call_type", "start_time")},
        optional={"recording_url": OUTSIDE, "greenvn_id": OUTSIDE},
    ),
    hung_up=OUTSIDE,
    route=ROUTES,
    state=STATES,
    success=st.booleans(),
)
def test_any_exotel_event_makes_a_message_slack_takes(
    fields: dict[str, str], hung_up: str, route: Route, state: AlertState, success: bool
) -> None:
    event = ExotelCall.model_validate({**fields, "call_sid": "CA1", "insights": {"DisconnectedBy": hung_up}})
    fits_message(render_allocation_call(event, route, state))
    verification = {"caller": fields["from"], "greenvn": fields["greenvn"], "connection_id": "c1", "pin": "1"}
    if not success:
        verification["call_sid"] = fields["to"] or "CA2"
    fits_message(render_verification(ExotelVerification.model_validate(verification), route))
    dealloc = {"greenvn_id": fields["to"] or "g", "connection_id": hung_up or "c", "greenvn": fields["greenvn"]}
    fits_message(render_deallocation(ExotelDeallocation.model_validate(dealloc)))


@CHECKED
@given(request_id=OUTSIDE, message=OUTSIDE, custom_id=OUTSIDE, status=st.sampled_from(["completed", "failed"]))
def test_any_avanser_callback_makes_a_message_slack_takes(
    request_id: str, message: str, custom_id: str, status: str
) -> None:
    event = AvanserRequestUpdate(request_id=request_id or "r", status=status, message=message, custom_id=custom_id)
    fits(*render_request_update(event))


@CHECKED
@given(
    name=OUTSIDE,
    error=OUTSIDE,
    request_id=OUTSIDE,
    kind=st.sampled_from(["create", "update", "delete"]),
    status=st.sampled_from(
        ["awaiting_approval", "rejected", "submitting", "unclear", "pending", "completed", "failed"]
    ),
    cost=OUTSIDE,
)
def test_any_typed_name_or_provider_error_makes_a_request_message_slack_takes(
    name: str, error: str, request_id: str, kind: str, status: str, cost: str
) -> None:
    common = {"number": "+61290081596", "channel": "C0SALES", "requester": "U0REP", "decided_by": ADMIN}
    fits(
        *render_request(kind, status, name=name, request_id=request_id, error=error, approvals="C0APPROVALS", **common)
    )
    what, details = f"a tracking number “{safe.mrkdwn(name)}”", [f"Number: a number near {safe.mrkdwn(error)}"]
    fits(*approval_message(7, "U0REP", what, details, cost))
    fits("decided", decided_message("U0REP", what, details, ADMIN, True))


@CHECKED
@given(parties=st.lists(OUTSIDE, min_size=1, max_size=60), usage=OUTSIDE, green_vn=OUTSIDE, masked=st.booleans())
def test_any_allocation_makes_a_message_slack_takes(
    parties: list[str], usage: str, green_vn: str, masked: bool
) -> None:
    numbers = {"aparty_numbers": parties, "bparty_numbers": parties[::-1], "aparty_pins": [1234]}
    for state in ("active", "expired", "released"):
        fits(*render_allocation(3, green_vn, numbers, usage, "U0OWNER", 1.9e9, state, masked))
    fits(*render_reminder(3, green_vn, 1.9e9))


def test_the_digest_fits_however_long_its_lines() -> None:
    lines = ["&amp;" * 1000, "x" * 2999, safe.mrkdwn(ATTACK)] * 40  # summaries: escaped by their notifier
    title, blocks = render_digest(lines)
    fits(title, blocks)


# -- the views: what AVANSER and the requester wrote, in lists, forms and answers --------------------------------


LONG = ATTACK * 30  # 3,000+ characters of markup


def service(n: int) -> ServiceDetail:
    config = ServiceConfig(
        type="transfer",
        answer_point="+61290081500",
        answer_point_name=LONG,
        call_greeting=f"https://evil.example/{n}|https://slack.com/verify",
        voicemail="javascript:alert(1)",
    )
    return ServiceDetail(name=f"{n} {LONG}", service_number=f"6129008{1000 + n}", service=config)


def test_a_search_with_100_numbers_and_markup_in_every_field() -> None:
    numbers = [NumberCandidate(e164=f"+6141220{i:04d}", region=LONG, type=ATTACK) for i in range(100)]
    query = SearchQuery("near", "AU", address=LONG)
    fits(*numbers_views.search_results(query, SearchResult(numbers=numbers)))
    places = [AddressCandidate(name=f"{i} {LONG}", lat_lng=[-33.8, 151.2]) for i in range(30)]
    fits(*numbers_views.search_results(query, SearchResult(addresses=places)))
    fits(*numbers_views.search_results(query, SearchResult()))


def test_lists_and_details_of_what_avanser_holds() -> None:
    services = [service(n) for n in range(300)]
    text, blocks = numbers_views.services_list(services, {s.e164 or "": "C0SALES" for s in services})
    fits(text, blocks)
    assert "more not shown" in json.dumps(blocks[-1])
    fits(*numbers_views.service_detail(services[0], "C0SALES"))
    detail = json.dumps(numbers_views.service_detail(services[0], None)[1])
    assert "<https://evil.example/0%7Chttps://slack.com/verify|audio>" in detail
    assert "javascript:alert(1) (not linked" in detail
    records = [
        RequestRecord(id=str(i), request_status="failed", message=LONG, service_number="61290081596", request_date=LONG)
        for i in range(100)
    ]
    fits(*numbers_views.requests_list(records))
    templates = [Template(name=f"{i} {ATTACK}", type="email", country="AU") for i in range(60)]
    templates.append(Template(name="n" * 2100, type="sms"))
    text, blocks = numbers_views.templates_list(templates)
    fits(text, blocks)
    assert blocks[-1]["elements"][0]["action_id"] == numbers_views.TEMPLATE_NEW_ACTION  # never cut off
    fits(*numbers_views.templates_list(templates[-1:]))
    accounts = [Account(account_id=i, account=f"{i} {LONG}") for i in range(200)]
    rates = [NumberRate(rate_code=LONG, description=LONG, setup_charge="1.00", rental_charge="2.00")] * 60
    overview = AccountOverview(accounts, 3, None, [], rates, None, [], None)
    fits(*numbers_views.account_overview(overview))
    template = {"name": LONG, "type": "email", "country": "AU"}
    fits(*numbers_views.template_preview(template, {"content": LONG + "```" + LONG}))
    fits(*numbers_views.template_preview(template, {"message": LONG}))


def test_forms_prefilled_with_long_values_open() -> None:
    fields = ("name", "answer_point", "answer_point_name", "email_subject", "email_template", "sms_template", "sms_id")
    values = {key: LONG for key in fields}
    for with_number in (True, False):
        view = numbers_views.number_form(
            callback_id=numbers_views.EDIT_VIEW,
            title="Change a number",
            submit="Save",
            metadata={"number": "+61290081596"},
            channel=None,
            values=values,
            with_number=with_number,
        )
        assert check_view(view) == []
    confirm = numbers_views.release_confirm("+61290081596", LONG, "C0SALES", "C0SALES")
    assert check_view(confirm) == []
    assert injections([{"blocks": confirm["blocks"]}], channels={"C0SALES"}) == []


def test_virtual_number_answers() -> None:
    parties = {"aparty_numbers": [ATTACK] * 40, "bparty_numbers": ["+918136966620"], "aparty_pins": []}
    mine = Allocation(
        1, "c", "g", ATTACK, parties, "twoway", "U0OWNER", "C0SALES", False, 1, 1.9e9, None, None, None, "active"
    )
    fits(*vn_views.allocations_list([mine] * 80, True))
    fits(*vn_views.release_question(mine))
    assert "&lt;!channel&gt;" in vn_views.allocated_text(mine)
    assert injections([{"text": vn_views.allocated_text(mine)}], channels={"C0SALES"}) == []
