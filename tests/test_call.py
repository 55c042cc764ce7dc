"""/call, Call back and the message shortcut: the exact legs DataTechLabs receives, and every refusal."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bot.sandbox import payloads
from bot.sandbox.stack import Stack
from tests.helpers import call, click, messages, route, send, wait_for

CALLER_ID = "+61290081500"


@pytest.fixture
def calls(tmp_path):
    with Stack(
        tmp_path, outbox_channel_interval=0, SWITCHBOARD_CALLER_ID=CALLER_ID, SWITCHBOARD_CALL_LIMIT="3/10m"
    ) as running:
        yield running


def legs(stack: Stack) -> list[dict[str, Any]]:
    return [{"leg_A": c["leg_A"], "leg_B": c["leg_B"]} for c in stack.dtl.calls]


def slash(stack: Stack, text: str, user: str = "U0REP") -> tuple[dict[str, Any], str]:
    answer, response_url = stack.slack.command(stack.url, "/call", text, user_id=user)
    assert answer.status_code == 200
    return answer.json(), response_url


def later(stack: Stack, response_url: str) -> str:
    return wait_for(lambda: stack.slack.responses_to(response_url))[-1]["text"]


def test_register_show_and_clear_my_phone(calls: Stack) -> None:
    assert (
        slash(calls, "phone +61 412 999 888")[0]["text"] == "Saved: Switchboard will ring 0412 999 888 for your calls."
    )
    assert slash(calls, "phone")[0]["text"].startswith("Switchboard rings 0412 999 888 for your calls.")
    assert slash(calls, "phone clear")[0]["text"] == "Removed your phone number."
    assert slash(calls, "phone clear")[0]["text"] == "You had no phone number registered."
    assert slash(calls, "phone banana")[0]["text"] == "“banana” isn't a phone number I can read."


def test_profile_phone_is_used_when_none_is_registered(calls: Stack) -> None:
    answer, url = slash(calls, "phone")
    assert answer["text"] == "Looking at your Slack profile…"
    assert later(calls, url).startswith(
        "No phone is registered, so Switchboard uses the one on your Slack profile: 0412 345 678."
    )


def test_call_a_number(calls: Stack) -> None:
    slash(calls, "phone 0412 999 888")
    answer, url = slash(calls, "0410 203 045")
    assert answer == {"response_type": "ephemeral", "text": "Calling you now, then 0410 203 045…"}
    assert later(calls, url) == (
        "📞 Ringing your phone (0412 999 888) now. When it's answered, I'll call "
        "0410 203 045, who will see (02) 9008 1500."
    )
    # Leg A rings the rep, showing the customer; leg B rings the customer, showing the business number.
    assert legs(calls) == [
        {"leg_A": {"to": "61412999888", "from": "61410203045"}, "leg_B": {"to": "61410203045", "from": "61290081500"}}
    ]


def test_a_known_caller_sees_the_number_they_called(calls: Stack) -> None:
    http = httpx.Client()
    route(calls)
    send(http, calls, "GET", "/hooks/avanser/call", call(1))  # 0410 203 045 called 02 9008 1596
    messages(calls, "C0SALES")
    slash(calls, "phone 0412 999 888")
    _, url = slash(calls, "+61410203045")
    later(calls, url)
    assert legs(calls) == [
        {"leg_A": {"to": "61412999888", "from": "61290081596"}, "leg_B": {"to": "61410203045", "from": "61290081596"}}
    ]


def test_no_phone_anywhere_is_told_how_to_register(calls: Stack) -> None:
    _, url = slash(calls, "0410 203 045", user="U0ONCALL")  # no phone registered, none on the profile
    assert later(calls, url) == (
        "I don't have a phone number for you. Register the phone Switchboard should ring "
        "with `/call phone +61 412 345 678` (or add a phone number to your Slack profile)."
    )
    assert calls.dtl.calls == []


def test_bridging_someone_else(calls: Stack) -> None:
    refused, _ = slash(calls, "0410 203 045 <@U0ONCALL|casey> -- outage", user="U0REP")
    assert refused["text"].startswith("Only Switchboard admins can connect someone else to a call.")
    slash(calls, "phone +61 400 111 222", user="U0ONCALL")
    answer, url = slash(calls, "0410 203 045 <@U0ONCALL|casey> -- caller says the site is down", user="U0ADMIN")
    assert answer["text"] == "Calling <@U0ONCALL> now, then 0410 203 045…"
    assert later(calls, url).startswith("📞 Ringing <@U0ONCALL>'s phone (0400 111 222) now.")
    assert legs(calls) == [
        {"leg_A": {"to": "61400111222", "from": "61410203045"}, "leg_B": {"to": "61410203045", "from": "61290081500"}}
    ]
    [dm] = messages(calls, "D0ONCALL")
    assert dm["text"] == (
        "📞 <@U0ADMIN> asked you to take a call with 0410 203 045 — “caller says the site is "
        "down”. Your phone (0400 111 222) is ringing now."
    )


def test_rate_limit(calls: Stack) -> None:
    slash(calls, "phone 0412 999 888")
    for _ in range(3):
        _, url = slash(calls, "0410 203 045")
        later(calls, url)
    refused, _ = slash(calls, "0410 203 045")
    assert refused["text"] == (
        "You've placed 3 calls in the last 10 minutes, the most Switchboard allows. Try again in about 10 minutes."
    )
    assert len(calls.dtl.calls) == 3


def test_other_countries_are_refused(calls: Stack) -> None:
    refused, _ = slash(calls, "+1 212 555 0123")
    assert refused["text"] == "Switchboard isn't allowed to call (212) 555-0123 (US). Allowed countries: AU."
    bad, _ = slash(calls, "12345678")
    assert "isn't a valid phone number" in bad["text"]
    assert calls.dtl.calls == []


def test_provider_refusal_is_a_sentence(calls: Stack) -> None:
    slash(calls, "phone 0412 999 888")
    calls.dtl.inject("status", status=400, body='{"error": "destination barred"}')
    _, url = slash(calls, "0410 203 045")
    assert later(calls, url) == "The call couldn't be placed: destination barred."


def test_call_back_from_an_alert(calls: Stack) -> None:
    http = httpx.Client()
    route(calls)
    send(http, calls, "GET", "/hooks/avanser/call", call(1))
    [alert] = messages(calls, "C0SALES")
    slash(calls, "phone 0412 999 888")
    clicked = click(calls, "alert_call_back", alert["blocks"][-1]["elements"][0]["value"], "U0REP", alert)
    assert later(calls, clicked["response_url"]).startswith("📞 Ringing your phone (0412 999 888) now.")
    assert legs(calls) == [
        {"leg_A": {"to": "61412999888", "from": "61290081596"}, "leg_B": {"to": "61410203045", "from": "61290081596"}}
    ]
    wait_for(lambda: calls.slack.channel_messages("C0SALES")[0]["edits"] == 1)
    assert "📲 Called back by <@U0REP> at" in str(calls.slack.channel_messages("C0SALES")[0]["blocks"])


def test_message_shortcut_offers_the_numbers_it_finds(calls: Stack) -> None:
    slash(calls, "phone 0412 999 888")
    message = {
        "type": "message",
        "text": "Jo asked for a call on 0410 203 045, or the office (02) 9008 1555",
        "ts": "1.1",
    }
    payload = payloads.message_action(
        "call_number_in_message", message, user="U0REP", response_url=calls.slack.new_response_url()
    )
    calls.slack.interact(calls.url, payload)
    [offer] = wait_for(lambda: calls.slack.responses_to(payload["response_url"]))
    buttons = offer["blocks"][1]["elements"]
    assert [(b["text"]["text"], b["value"]) for b in buttons] == [
        ("Call 0410 203 045", "+61410203045"),
        ("Call (02) 9008 1555", "+61290081555"),
    ]
    picked = payloads.block_actions(
        "call_number-1", "+61290081555", user="U0REP", response_url=payload["response_url"], block_id="call-numbers"
    )
    calls.slack.interact(calls.url, picked)
    wait_for(lambda: len(calls.slack.responses_to(payload["response_url"])) == 2)
    assert legs(calls) == [
        {"leg_A": {"to": "61412999888", "from": "61290081555"}, "leg_B": {"to": "61290081555", "from": "61290081500"}}
    ]
    none = {
        **payload,
        "message": {"type": "message", "text": "no numbers here", "ts": "1.2"},
        "response_url": calls.slack.new_response_url(),
    }
    calls.slack.interact(calls.url, none)
    assert wait_for(lambda: calls.slack.responses_to(none["response_url"]))[0]["text"] == (
        "I couldn't find a phone number in that message."
    )


def test_every_call_is_audited(calls: Stack) -> None:
    slash(calls, "phone 0412 999 888")
    _, url = slash(calls, "0410 203 045")
    later(calls, url)

    async def audit() -> list[tuple[Any, ...]]:
        assert calls.services is not None
        return calls.services.store.execute(
            "SELECT actor, action, subject, provider_ref FROM audit WHERE action LIKE 'call.%'"
        ).fetchall()

    assert calls.on_app(audit()) == [("U0REP", "call.placed", "+61410203045", calls.dtl.calls[0]["call_id"])]


def test_without_datatechlabs_settings_it_says_so(tmp_path) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, DTL_USERNAME=None, SWITCHBOARD_CALLER_ID=CALLER_ID) as stack:
        _, url = slash(stack, "0410 203 045")
        assert later(stack, url) == "Click-to-call isn't set up: an admin needs to add the DataTechLabs settings."
