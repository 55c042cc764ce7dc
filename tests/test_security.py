"""Attacks on what Switchboard spends and rings, as an insider or an outsider would make them.

Toll fraud (dialling rules, the exact velocity limit), authority (Claim and Call back from another
channel, masked numbers, someone else's virtual number), idempotent actions (a form submitted twice,
a button double-clicked, two people releasing at once), and nothing acknowledged lost (retries,
the plain fallback message). Each test goes through the running app on loopback.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.domain import alerts as alerts_domain
from bot.sandbox import payloads
from bot.sandbox.stack import ADMIN, Stack
from tests.helpers import AVANSER_SMS, call, click, messages, on_app, route, send, wait_for

REP = "U0REP"
CALLER_ID = "+61290081500"


@pytest.fixture
def stack(tmp_path) -> Iterator[Stack]:
    with Stack(
        tmp_path,
        outbox_channel_interval=0,
        SWITCHBOARD_CALLER_ID=CALLER_ID,
        SWITCHBOARD_CALL_LIMIT="3/10m",
        SWITCHBOARD_CALL_COUNTRIES="AU,GB",
    ) as running:
        yield running


def slash(stack: Stack, command: str, text: str, user: str = REP, channel: str = "C0SALES") -> tuple[dict, str]:
    answer, url = stack.slack.command(stack.url, command, text, user_id=user, channel_id=channel)
    assert answer.status_code == 200
    return (answer.json() if answer.content else {}), url


def told(stack: Stack, url: str) -> str:
    return str(wait_for(lambda: stack.slack.responses_to(url))[-1]["text"])


def outcome(stack: Stack, answer: dict, url: str) -> str:
    """What the person learnt: a refusal in the ack, or the result told later."""
    return str(answer["text"]) if answer["text"].startswith(("You've", "Your team")) else told(stack, url)


# -- toll fraud -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("+44 909 123 4567", "premium-rate"),
        ("1900 123 456", "premium-rate"),
        ("1300 123 456", "shared-cost"),
        ("13 12 34", "shared-cost"),
        ("+44 70 1234 5678", "personal"),
        ("+881 6 1234 5678", "satellite or international network"),
        ("000", "emergency"),
        ("112", "emergency"),
        ("1223", "short code"),
    ],
)
def test_costly_and_special_numbers_are_never_dialled(stack: Stack, number: str, why: str) -> None:
    slash(stack, "/call", "phone 0412 999 888")
    as_customer, _ = slash(stack, "/call", number)
    assert why in as_customer["text"], as_customer
    as_my_phone, _ = slash(stack, "/call", f"phone {number}")
    assert why in as_my_phone["text"] and as_my_phone["text"].startswith(("That can't be your phone", number))
    assert stack.dtl.calls == []


def test_a_phone_that_became_premium_is_refused_at_dial_time(stack: Stack) -> None:
    on_app(
        stack,
        lambda s: s.store.execute(
            "INSERT INTO user_phones (user_id, phone, updated_at) VALUES (?, ?, 0)", (REP, "+441234567890")
        ),
    )
    on_app(stack, lambda s: s.store.execute("UPDATE user_phones SET phone = ?", ("+449091234567",)))
    _, url = slash(stack, "/call", "0410 203 045")
    assert told(stack, url).startswith("The phone registered for calls can't be rung: 0909 123 4567 is a premium-rate")
    stack.slack.users["U0ONCALL"]["profile"]["phone"] = "1900 123 456"  # and a premium phone on a Slack profile
    _, url = slash(stack, "/call", "0410 203 045", user="U0ONCALL")
    assert told(stack, url).startswith("The phone on the Slack profile can't be rung: 1900 123 456 is a premium-rate")
    assert stack.dtl.calls == []


def test_call_back_on_a_text_from_a_premium_number_dials_nothing(stack: Stack, http: httpx.Client) -> None:
    route(stack, "+61401020304")
    send(http, stack, "GET", "/hooks/avanser/sms", {**AVANSER_SMS, "from": "+61-1900123456"})
    [alert] = messages(stack, "C0SALES")
    slash(stack, "/call", "phone 0412 999 888")
    clicked = click(stack, "alert_call_back", alert["blocks"][-1]["elements"][0]["value"], REP, alert)
    assert "premium-rate" in told(stack, clicked["response_url"])
    assert stack.dtl.calls == []


def test_twenty_parallel_calls_with_a_limit_of_three_place_three(stack: Stack) -> None:
    slash(stack, "/call", "phone 0412 999 888")
    stack.dtl.latency = 0.3  # DataTechLabs is slow: every request is in flight at once
    answers: list[tuple[dict, str]] = []
    parallel(*(lambda n=n: answers.append(slash(stack, "/call", f"0410 203 {n:03d}")) for n in range(20)))
    said = [outcome(stack, answer, url) for answer, url in answers]
    assert len(stack.dtl.calls) == 3
    assert sum("the most Switchboard allows" in s for s in said) == 17
    assert sum(s.startswith("📞 Ringing your phone") for s in said) == 3


def test_sequential_calls_while_datatechlabs_is_slow_stop_at_the_limit(stack: Stack) -> None:
    slash(stack, "/call", "phone 0412 999 888")
    stack.dtl.latency = 1.0
    said = [outcome(stack, *slash(stack, "/call", f"0410 203 {n:03d}")) for n in range(8)]
    assert len(stack.dtl.calls) == 3
    assert sum("the most Switchboard allows" in s for s in said) == 5


def test_the_workspace_ceiling_holds_across_people(tmp_path) -> None:
    with Stack(
        tmp_path, outbox_channel_interval=0, SWITCHBOARD_CALLER_ID=CALLER_ID, SWITCHBOARD_CALL_LIMIT_TEAM="4/1h"
    ) as stack:
        urls = []
        for user in (REP, ADMIN, "U0ONCALL"):
            slash(stack, "/call", "phone 0412 999 888", user=user)
            urls += [slash(stack, "/call", f"0410 203 {n:03d}", user=user)[1] for n in range(2)]
        wait_for(lambda: all(stack.slack.responses_to(url) for url in urls[:4]), timeout=20)
        last, _ = slash(stack, "/call", "0410 203 999", user="U0ONCALL")
        assert last["text"].startswith("Your team has placed 4 calls in the last 60 minutes")
        assert len(stack.dtl.calls) == 4


def test_a_refusal_before_datatechlabs_gives_the_slot_back(stack: Stack) -> None:
    for n in range(4):  # U0ONCALL has no phone: each attempt is refused before DataTechLabs
        _, url = slash(stack, "/call", f"0410 203 {n:03d}", user="U0ONCALL")
        assert told(stack, url).startswith("I don't have a phone number for you")
    slash(stack, "/call", "phone 0412 999 888", user="U0ONCALL")
    _, url = slash(stack, "/call", "0410 203 045", user="U0ONCALL")
    assert told(stack, url).startswith("📞 Ringing your phone")


# -- authority --------------------------------------------------------------------------------------


def test_claim_and_call_back_only_from_the_alerts_own_channel(stack: Stack, http: httpx.Client) -> None:
    route(stack)
    send(http, stack, "GET", "/hooks/avanser/call", call())
    [alert] = messages(stack, "C0SALES")
    alert_id = alert["blocks"][-1]["elements"][0]["value"]
    slash(stack, "/call", "phone 0412 999 888")
    elsewhere = click(stack, "alert_claim", alert_id, REP, {"ts": "1.1", "blocks": []}, channel="C0ELSEWHERE")
    assert told(stack, elsewhere["response_url"]) == "I can't find that alert in this conversation."
    guessed = click(stack, "alert_call_back", str(int(alert_id) + 1), REP, alert)
    assert told(stack, guessed["response_url"]) == "I can't find that alert in this conversation."
    assert stack.dtl.calls == []
    assert stack.slack.channel_messages("C0SALES")[0]["edits"] == 0


def test_call_back_on_a_masked_alert_keeps_the_caller_masked(stack: Stack, http: httpx.Client) -> None:
    route(stack, mask_callers=True)
    send(http, stack, "GET", "/hooks/avanser/call", call())
    [alert] = messages(stack, "C0SALES")
    slash(stack, "/call", "phone 0412 999 888")
    clicked = click(stack, "alert_call_back", alert["blocks"][-1]["elements"][0]["value"], REP, alert)
    said = told(stack, clicked["response_url"])
    assert "•••• ••• 045" in said and "203" not in said
    assert stack.dtl.calls[0]["leg_B"]["to"] == "61410203045"  # the call itself reaches the full number


def test_a_masked_allocations_thread_masks_its_callers(stack: Stack) -> None:
    _, url = slash(stack, "/vn", "+919176226528 to +918136966620 for 2h masked", channel="C0FIELD")
    told(stack, url)
    [allocation] = stack.exotel.allocations.values()
    stack.exotel.fire_call(allocation["greenvn_id"], caller="+919176226528")
    reply = wait_for(lambda: [m for m in stack.slack.channel_messages("C0FIELD") if m.get("thread_ts")])[0]
    assert "26528" not in json.dumps(reply) and "•" in reply["text"]


def test_vn_show_is_for_the_owner_and_admins(stack: Stack) -> None:
    _, url = slash(stack, "/vn", "+919176226528 to +918136966620 for 2h", channel="C0FIELD")
    told(stack, url)
    answer, _ = slash(stack, "/vn", "show 1", user="U0ONCALL")
    assert answer["text"] == "Only <@U0REP> (who set it up) or an admin can see that virtual number."
    assert "9176" not in json.dumps(answer)
    assert slash(stack, "/vn", "show 1", user=ADMIN)[0]["text"].startswith("Checking #1")


# -- idempotent actions -----------------------------------------------------------------------------


def parallel(*requests: Any) -> None:
    threads = [threading.Thread(target=r) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_the_same_form_submitted_twice_buys_one_number(stack: Stack) -> None:
    from commands.numbers import new_number_form

    values = {"name": "Twice", "type": "transfer", "answer_point": "02 9008 1500", "report": "missed"}
    payload = payloads.view_submission(new_number_form("C0SALES"), values, user=ADMIN, view_id="V0TWICE")
    parallel(*(lambda: stack.slack.interact(stack.url, payload) for _ in range(2)))
    wait_for(lambda: stack.avanser.requests_to("POST", "/v1/requests"))
    stack.drain(10)
    assert len(stack.avanser.requests_to("POST", "/v1/requests")) == 1


def test_the_same_vn_form_twice_allocates_once(stack: Stack) -> None:
    from commands.vn_views import new_form

    values = {"aparty": "+919176226528", "bparty": "+918136966620", "usage": "twoway", "duration": "2h"}
    payload = payloads.view_submission(new_form("C0FIELD"), values, user=REP, view_id="V0VN")
    parallel(*(lambda: stack.slack.interact(stack.url, payload) for _ in range(2)))
    wait_for(lambda: stack.exotel.requests_to("POST", "/v1/tenants/"))
    stack.drain(10)
    assert len(stack.exotel.requests_to("POST", "/v1/tenants/")) == 1


def test_release_now_by_two_people_at_once_deletes_once(stack: Stack) -> None:
    _, url = slash(stack, "/vn", "+919176226528 to +918136966620 for 2h", channel="C0FIELD")
    told(stack, url)
    stack.exotel.latency = 0.3
    clicks = [
        payloads.block_actions("vn_release", "1", user=user, response_url=stack.slack.new_response_url())
        for user in (REP, ADMIN)
    ]
    parallel(*(lambda c=c: stack.slack.interact(stack.url, c) for c in clicks))
    wait_for(lambda: all(stack.slack.responses_to(c["response_url"]) for c in clicks), timeout=10)
    assert len(stack.exotel.requests_to("DELETE", "/v1/tenants/")) == 1


def test_call_back_double_clicked_rings_once(stack: Stack, http: httpx.Client) -> None:
    route(stack)
    send(http, stack, "GET", "/hooks/avanser/call", call())
    [alert] = messages(stack, "C0SALES")
    slash(stack, "/call", "phone 0412 999 888")
    value = alert["blocks"][-1]["elements"][0]["value"]
    clicks = [
        payloads.block_actions(
            "alert_call_back", value, user=REP, response_url=stack.slack.new_response_url(), message=alert
        )
        for _ in range(2)
    ]
    parallel(*(lambda c=c: stack.slack.interact(stack.url, c) for c in clicks))
    wait_for(lambda: stack.dtl.calls)
    stack.drain(10)
    assert len(stack.dtl.calls) == 1


# -- nothing acknowledged is lost -----------------------------------------------------------------------


def test_a_message_that_cant_be_built_is_posted_in_short(
    stack: Stack, http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("a notifier bug")

    monkeypatch.setattr(alerts_domain, "render_call", broken)
    route(stack)
    assert send(http, stack, "GET", "/hooks/avanser/call", call()).status_code == 200
    [message] = messages(stack, "C0SALES")
    assert message["text"].startswith("📞 Call (avanser_missed_call) from +61-0410203045 to +61-0290081596 at")
    assert [b["action_id"] for b in message["blocks"][-1]["elements"]] == ["alert_call_back", "alert_claim"]


def test_an_event_whose_handling_fails_is_tried_again(stack: Stack, http: httpx.Client) -> None:
    assert stack.services is not None
    real = stack.services.inbox.handlers
    failures = {"left": 2}

    def flaky(inbox_id: int, event: Any) -> str:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("database is locked")
        return real[type(event)](inbox_id, event)

    route(stack)
    stack.services.inbox.handlers = {kind: flaky for kind in real}
    assert send(http, stack, "GET", "/hooks/avanser/call", call()).status_code == 200
    [message] = messages(stack, "C0SALES", timeout=15)
    assert message["text"].startswith("Missed call from")
    row = on_app(stack, lambda s: s.store.execute("SELECT status, attempts FROM inbox").fetchone())
    assert tuple(row) == ("done", 2)
