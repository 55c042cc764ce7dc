"""Telco webhooks → the right Slack message, once: routing, rendering, threads, claims, storms."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from bot.domain.routing import remember_thread, set_group_route
from bot.sandbox.stack import Stack
from tests.helpers import (
    AVANSER_REQUEST,
    AVANSER_SMS,
    EXOTEL_CALL,
    call,
    click,
    flat,
    messages,
    on_app,
    route,
    send,
    wait_for,
)
from tests.recording_attacks import trust_loopback

pytestmark = pytest.mark.both_backends  # SQLite and PostgreSQL (tests/conftest.py)


def test_missed_call_alert(stack: Stack, http: httpx.Client) -> None:
    route(stack, name="Spring sale ad")
    assert send(http, stack, "GET", "/hooks/avanser/call", call()).status_code == 200
    [message] = messages(stack, "C0SALES")
    assert message["text"] == "Missed call from 0410 203 045 to Tracking Service 1 ((02) 9008 1596)"
    section = message["blocks"][0]["text"]["text"]
    assert section == (
        "📞 *Missed call* from *0410 203 045* (Sydney, mobile)\n"
        "to *Tracking Service 1* · (02) 9008 1596 → Sydney Office (0401 020 304)"
    )
    # The call's time is a Slack date token: each reader sees it in their own zone; AVANSER's own time is its fallback.
    assert message["blocks"][1]["elements"][0]["text"] == (
        "<!date^1573697481^{date_short_pretty} at {time}|12:11 pm, Thu 14 Nov> · rang 30 s · ref ECS1-0"
    )
    buttons = message["blocks"][-1]["elements"]
    assert [(b["text"]["text"], b["action_id"]) for b in buttons] == [
        ("Call back", "alert_call_back"),
        ("Claim", "alert_claim"),
    ]
    assert buttons[0]["value"] == buttons[1]["value"]  # the alert id, not the caller's number


@pytest.mark.parametrize(
    ("status", "headline"),
    [
        ("avanser_abandoned_call", "Abandoned call"),
        ("avanser_busy_call", "Busy — call not taken"),
        ("avanser_unanswered_call", "Unanswered call"),
    ],
)
def test_other_missed_kinds(stack: Stack, http: httpx.Client, status: str, headline: str) -> None:
    route(stack)
    send(http, stack, "GET", "/hooks/avanser/call", call(callstatus=status))
    assert messages(stack, "C0SALES")[0]["text"].startswith(f"{headline} from 0410 203 045")


def test_voicemail_has_the_recording(stack: Stack, http: httpx.Client) -> None:
    route(stack)
    send(http, stack, "GET", "/hooks/avanser/call", call(recording="https://recordings.example/vm1.mp3"))
    [message] = messages(stack, "C0SALES")
    assert message["text"].startswith("Voicemail from 0410 203 045")
    assert "<https://recordings.example/vm1.mp3|▶ Play the voicemail>" in flat(message)


def test_answered_calls_only_where_the_route_asks(stack: Stack, http: httpx.Client) -> None:
    route(stack)
    route(stack, "+61290081597", "C0ALL", report="all")
    send(http, stack, "GET", "/hooks/avanser/call", call(1, callstatus="avanser_answered_call"))
    send(
        http,
        stack,
        "GET",
        "/hooks/avanser/call",
        call(2, callstatus="avanser_answered_call", bnum="+61-0290081597"),
    )
    [message] = messages(stack, "C0ALL")
    assert message["text"].startswith("Answered call from 0410 203 045")
    assert "talked 30 s" in flat(message)
    assert stack.slack.channel_messages("C0SALES") == []


def test_routing_order_number_then_group_then_default(stack: Stack, http: httpx.Client) -> None:
    on_app(stack, lambda s: set_group_route(s.store, "spring", "C0SPRING", by="U0ADMIN"))
    send(http, stack, "GET", "/hooks/avanser/call", call(1, custom_group="spring"))
    send(http, stack, "GET", "/hooks/avanser/call", call(2, custom_group="other"))
    messages(stack, "C0SPRING")
    messages(stack, "C0ALERTS")
    route(stack, channel="C0NUMBER")
    send(http, stack, "GET", "/hooks/avanser/call", call(3, custom_group="spring"))
    assert "ref ECS1-1" in flat(messages(stack, "C0SPRING")[0])
    assert "ref ECS1-2" in flat(messages(stack, "C0ALERTS")[0])
    assert "ref ECS1-3" in flat(messages(stack, "C0NUMBER")[0])


def test_no_route_and_no_default_is_kept_and_counted(tmp_path, http: httpx.Client) -> None:
    with Stack(tmp_path, SWITCHBOARD_ALERTS_CHANNEL=None, outbox_channel_interval=0) as stack:
        assert send(http, stack, "GET", "/hooks/avanser/call", call()).status_code == 200
        metrics = wait_for(
            lambda: "switchboard_inbox_unrouted 1.0" in (t := http.get(f"{stack.url}/metrics").text) and t
        )
        assert metrics
        assert stack.slack.all_messages() == []


def test_replayed_ten_times_posts_once(stack: Stack, http: httpx.Client) -> None:
    route(stack)
    for _ in range(10):
        send(http, stack, "GET", "/hooks/avanser/call", call(7))
    messages(stack, "C0SALES")
    time.sleep(0.3)
    assert len(stack.slack.channel_messages("C0SALES")) == 1


def test_texts_thread_per_sender(stack: Stack, http: httpx.Client) -> None:
    route(stack, "+61401020304", "C0SMS", name="Sale mobile")
    for n, (sender, text) in enumerate(
        [
            ("+61-0401020305", "Hi, is the sale on?"),
            ("+61-0401020305", "Hello?"),
            ("+61-0411111111", "Different person"),
            ("+61-0401020305", "Found it, thanks"),
        ]
    ):
        send(
            http,
            stack,
            "GET",
            "/hooks/avanser/sms",
            {**AVANSER_SMS, "from": sender, "txt": text, "date": f"2016-04-12 10:10:1{n}"},
        )
    all_messages = messages(stack, "C0SMS", 4)
    roots = [m for m in all_messages if not m["thread_ts"]]
    assert [r["text"] for r in roots] == [
        "Text from 0401 020 305 to Sale mobile: Hi, is the sale on?",
        "Text from 0411 111 111 to Sale mobile: Different person",
    ]
    replies = [m for m in all_messages if m["thread_ts"] == roots[0]["ts"]]
    # the text itself is plain_text, exactly as sent (tests/test_escaping.py: never read as markup)
    assert [r["blocks"][0]["text"] for r in replies] == [
        {"type": "plain_text", "text": "Hello?", "emoji": False},
        {"type": "plain_text", "text": "Found it, thanks", "emoji": False},
    ]
    assert "alert_call_back" in flat(roots[0]) and "alert_call_back" not in flat(replies[0])


def test_request_callback_updates_the_request_message(stack: Stack, http: httpx.Client) -> None:
    request_message = on_app(stack, lambda s: s.outbox.post("C0SALES", "Requesting a number…"))
    on_app(stack, lambda s: remember_thread(s.store, f"request:{AVANSER_REQUEST['request_id']}", request_message))
    messages(stack, "C0SALES")
    send(http, stack, "POST", "/hooks/avanser/request", AVANSER_REQUEST)
    wait_for(lambda: stack.slack.channel_messages("C0SALES")[0]["edits"] == 1)
    [message] = stack.slack.channel_messages("C0SALES")
    assert message["text"] == "✅ 1300 123 123 is live. Calls and texts to it will be posted here."
    failed = {
        **AVANSER_REQUEST,
        "request_id": "other",
        "status": "failed",
        "message": "Selected service number is not available",
    }
    send(http, stack, "POST", "/hooks/avanser/request", failed)
    [posted] = messages(stack, "C0ALERTS")
    assert posted["text"] == (
        "❌ The request for 1300 123 123 failed: Selected service number is not available. Nothing was bought."
    )


def test_allocation_events_thread_under_the_allocation(stack: Stack, http: httpx.Client) -> None:
    from tests.helpers import EXOTEL_DEALLOCATION

    root = on_app(stack, lambda s: s.outbox.post("C0FIELD", "Virtual number 080 4XXX 513 for the Acme visit"))
    on_app(stack, lambda s: remember_thread(s.store, f"allocation:{EXOTEL_CALL['greenvn_id']}", root))
    messages(stack, "C0FIELD")
    send(
        http,
        stack,
        "POST",
        "/hooks/exotel/call",
        {**EXOTEL_CALL, "greenvn": "+918041234513", "from": "+919590012342", "to": "+917760012969"},
    )
    send(http, stack, "POST", "/hooks/exotel/deallocation", EXOTEL_DEALLOCATION)  # another allocation
    thread = messages(stack, "C0FIELD", 2)
    assert thread[1]["thread_ts"] == thread[0]["ts"]
    assert thread[1]["text"] == "Call on 080 4123 4513: 095900 12342 → 077600 12969 (completed)"
    assert "alert_claim" in flat(thread[1])
    [unthreaded] = messages(stack, "C0ALERTS")
    assert unthreaded["text"].startswith("🔚 +91983XXXX195 was released")


def test_claim_updates_the_alert_and_second_claim_is_told(stack: Stack, http: httpx.Client) -> None:
    route(stack)
    send(http, stack, "GET", "/hooks/avanser/call", call())
    [message] = messages(stack, "C0SALES")
    alert_id = message["blocks"][-1]["elements"][1]["value"]
    click(stack, "alert_claim", alert_id, "U0REP", message)
    wait_for(lambda: stack.slack.channel_messages("C0SALES")[0]["edits"] == 1)
    claimed = stack.slack.channel_messages("C0SALES")[0]
    assert "🙋 Claimed by <@U0REP> at" in flat(claimed)
    assert [b["action_id"] for b in claimed["blocks"][-1]["elements"]] == ["alert_call_back"]
    late = click(stack, "alert_claim", alert_id, "U0ADMIN", message)
    responses = wait_for(lambda: stack.slack.responses_to(late["response_url"]))
    assert responses[0]["text"] == "<@U0REP> already claimed this one."


def test_masked_route_hides_the_caller(stack: Stack, http: httpx.Client) -> None:
    route(stack, mask_callers=True)
    send(http, stack, "GET", "/hooks/avanser/call", call())
    [message] = messages(stack, "C0SALES")
    assert "•••• ••• 045" in message["text"]
    assert "203" not in json.dumps(message)


@pytest.mark.slow
def test_storm_of_300_to_one_channel(tmp_path, http: httpx.Client) -> None:
    with Stack(tmp_path, slack_channel_interval=1.0) as stack:
        route(stack)
        callers = [f"+61-04102{n:05d}" for n in range(300)]
        start = time.monotonic()
        for n, caller in enumerate(callers):
            assert send(http, stack, "GET", "/hooks/avanser/call", call(n, ani=caller)).status_code == 200
        last_webhook = time.monotonic()

        def all_visible() -> bool:
            text = json.dumps(stack.slack.channel_messages("C0SALES"), ensure_ascii=False)
            return all(f"0410 2{n:05d}"[:4] + " " + f"2{n:05d}"[:3] + " " + f"{n:05d}"[2:] in text for n in range(300))

        wait_for(all_visible, timeout=30)
        visible_after = time.monotonic() - last_webhook
        assert stack.drain(10)
        shown = [json.dumps(m, ensure_ascii=False) for m in stack.slack.channel_messages("C0SALES")]
        for n in range(300):
            national = f"0410 2{n:05d}"[:4] + " " + f"2{n:05d}"[:3] + " " + f"{n:05d}"[2:]
            assert sum(national in m for m in shown) == 1, national  # in exactly one message
        assert stack.slack.peak_posts_per_second("C0SALES") <= 1
        assert len(stack.slack.channel_messages("C0SALES")) < 10
        print(f"storm: 300 webhooks in {last_webhook - start:.2f} s; all visible {visible_after:.2f} s later")


def test_voicemail_is_uploaded_when_its_host_is_allowed(tmp_path, http: httpx.Client) -> None:
    with Stack(tmp_path, SWITCHBOARD_RECORDING_HOSTS="127.0.0.1", outbox_channel_interval=0) as stack:
        route(stack)
        trust_loopback(stack)  # the sandbox is on loopback, which production never fetches from
        recording = stack.avanser.recording_url("ECS1-vm")
        send(http, stack, "GET", "/hooks/avanser/call", call(1, recording=recording))
        send(http, stack, "GET", "/hooks/avanser/call", call(2, recording=recording.replace("ECS1", "missing")))
        posted = messages(stack, "C0SALES", 4)
        alerts = [m for m in posted if not m["thread_ts"]]
        files = [m for m in posted if m.get("files")]
        assert len(alerts) == 2 and len(files) == 1
        assert files[0]["thread_ts"] == alerts[0]["ts"]
        [shared] = files[0]["files"]
        assert shared["name"] == "voicemail-ECS1-1.mp3" and shared["size"] == 2058
        assert shared["title"].startswith("Voicemail — Voicemail from 0410 203 045")
        upload = next(iter(stack.slack.uploads.values()))
        assert upload["content"].startswith(b"ID3")
        # The missing one: its alert keeps the link and its thread says the file couldn't be attached.
        [notice] = [m for m in posted if m["thread_ts"] and not m.get("files")]
        assert notice["thread_ts"] == alerts[1]["ts"] and "▶ Play the voicemail" in flat(alerts[1])
        assert "couldn't attach the voicemail recording here (the recording host answered HTTP 404)" in notice["text"]


def test_voicemail_from_other_hosts_stays_a_link(stack: Stack, http: httpx.Client) -> None:
    route(stack)
    send(http, stack, "GET", "/hooks/avanser/call", call(1, recording=stack.avanser.recording_url("ECS1-vm")))
    [message] = messages(stack, "C0SALES")
    time.sleep(0.3)
    assert stack.slack.uploads == {} and len(stack.slack.channel_messages("C0SALES")) == 1
    assert "▶ Play the voicemail" in flat(message)
