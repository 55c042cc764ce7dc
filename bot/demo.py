"""`switchboard demo`: the story, played against loopback stand-ins, printed as Slack would show it.

Each chapter is a function taking the running `Stack`; later capabilities add theirs to CHAPTERS.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from bot.domain.feed import pull_feed
from bot.phone import national
from bot.sandbox import payloads
from bot.sandbox.avanser import SEED_CALL
from bot.sandbox.render import boxed, render_blocks, render_message
from bot.sandbox.signing import signature_headers
from bot.sandbox.stack import Stack


def _say(text: str) -> None:
    print(text, flush=True)


def chapter_help(stack: Stack) -> None:
    _say("\n## A rep asks Switchboard what it can do\n")
    for command in ("/numbers", "/vn", "/call"):
        answer, _ = stack.slack.command(stack.url, command, "help", user_id="U0REP")
        _say(
            f"Riley types `{command} help` — Slack shows (only to Riley), answered in "
            f"{answer.elapsed.total_seconds() * 1000:.1f} ms:"
        )
        _say(boxed(f"{command} help", render_message(answer.json(), width=76)))
    answer, _ = stack.slack.command(stack.url, "/numbers", "serch mobile", user_id="U0REP")
    _say("\nA typo (`/numbers serch mobile`) is answered with the help, not silence:")
    _say(boxed("/numbers serch mobile", render_message(answer.json()).split("\n")[0]))


def chapter_webhooks(stack: Stack) -> None:
    _say("\n## AVANSER reports a call to Switchboard\n")
    params = dict(SEED_CALL)
    with httpx.Client(timeout=10) as client:
        refused = client.get(stack.hook_url("/hooks/avanser/call"), params=params)
        _say(f"Without the webhook token:  HTTP {refused.status_code} — nothing stored.")
        first = client.get(stack.hook_url("/hooks/avanser/call"), params={**params, "token": stack.webhook_token})
        _say(f"With the token:             HTTP {first.status_code} — stored as inbox event {first.json()['id']}.")
        again = client.get(stack.hook_url("/hooks/avanser/call"), params={**params, "token": stack.webhook_token})
        _say(
            f"The same call sent again:   HTTP {again.status_code} — duplicate={again.json()['duplicate']}, "
            "stored once."
        )


def _latest(stack: Stack, ts: str, channel: str = "C0SALES") -> dict[str, Any]:
    return next(m for m in stack.slack.channel_messages(channel) if m["ts"] == ts)


def chapter_new_number(stack: Stack) -> None:
    _say("\n## Riley searches, requests a number, Avery approves, AVANSER makes it live\n")
    answer, url = stack.slack.command(stack.url, "/numbers", "search mobile", user_id="U0REP")
    _say(
        f"Riley types `/numbers search mobile` — acked in {answer.elapsed.total_seconds() * 1000:.1f} ms: "
        f"“{answer.json()['text']}”"
    )
    stack.drain(10)
    results = stack.slack.responses_to(url)[-1]
    _say(boxed("only Riley sees", render_blocks(results["blocks"][:4], width=76) + "\n   …"))
    picked = results["blocks"][1]["accessory"]
    stack.slack.interact(stack.url, _click("U0REP", picked["action_id"], picked["value"], stack))
    stack.drain(10)

    def opened_form() -> dict[str, Any] | None:  # the form opens at once, then is filled in (views.update)
        views = [c.args["view"] for c in stack.slack.calls if c.method in ("views.open", "views.update")]
        return next((v for v in reversed(views) if v.get("callback_id") == "numbers_new"), None)

    _wait(opened_form)
    form = opened_form() or {}
    _say(
        f"Riley clicks Request this number → Slack opens the form “{form['title']['text']}” with "
        f"{sum(b['type'] == 'input' for b in form['blocks'])} fields; Riley fills in the name and answer point."
    )
    values = {
        "name": "Spring sale ad",
        "type": "transfer",
        "answer_point": "0401 020 304",
        "answer_point_name": "Sydney Office",
        "record_call": True,
        "report": "missed",
        "channel": "C0SALES",
    }
    number_field = next(b for b in form["blocks"] if b["block_id"] == "number")
    values["number"] = number_field["element"]["initial_value"]
    stack.slack.interact(stack.url, payloads.view_submission(form, values, user="U0REP"))
    stack.drain(10)
    _say(boxed("#sales", render_message(stack.slack.channel_messages("C0SALES")[0], width=76)))
    approval = stack.slack.channel_messages("C0APPROVALS")[0]
    _say(boxed("#approvals", render_message(approval, width=76)))
    approve = approval["blocks"][-1]["elements"][0]
    stack.slack.interact(stack.url, _click("U0ADMIN", approve["action_id"], approve["value"], stack))
    deadline = time.monotonic() + 10
    while "is live" not in stack.slack.channel_messages("C0SALES")[0]["text"] and time.monotonic() < deadline:
        time.sleep(0.05)
    stack.drain(10)
    _say(
        "Avery clicks Approve; AVANSER reserves the number, configures it and calls back; the same message in "
        "#sales now reads:"
    )
    _say(boxed("#sales", render_message(stack.slack.channel_messages("C0SALES")[0], width=76)))


def _click(
    user: str, action_id: str, value: str, stack: Stack, message: dict[str, Any] | None = None
) -> dict[str, Any]:
    url = stack.slack.new_response_url()
    return payloads.block_actions(action_id, value, user=user, response_url=url, message=message)


def chapter_missed_call(stack: Stack) -> None:
    _say("\n## A call is missed → the alert lands in #sales → Riley claims it\n")
    number = next(iter(stack.avanser.services))  # the number Riley got in the previous chapter
    answer = stack.avanser.place_call(number, "+61410203045", status="avanser_missed_call", duration=25)
    assert answer is not None
    _say(f"AVANSER reports a missed call to {national(number)} → Switchboard answers HTTP {answer.status_code}.")
    stack.drain(10)
    message = next(m for m in stack.slack.channel_messages("C0SALES") if m["text"].startswith("Missed call"))
    _say(boxed("#sales", render_message(message, width=76)))
    alert_id = message["blocks"][-1]["elements"][1]["value"]
    click = _click("U0REP", "alert_claim", alert_id, stack, message)
    stack.slack.interact(stack.url, click)
    stack.drain(10)
    _say("Riley clicks Claim; the alert is edited in place:")
    _say(boxed("#sales", render_message(_latest(stack, message["ts"]), width=76)))

    _say("\n## Riley clicks Call back → DataTechLabs rings Riley, then the caller\n")
    callback = _click("U0REP", "alert_call_back", alert_id, stack, message)
    stack.slack.interact(stack.url, callback)
    stack.drain(10)
    for reply in stack.slack.responses_to(callback["response_url"]):
        _say(boxed("only Riley sees", reply["text"]))
    for placed in stack.dtl.calls:
        _say(f"DataTechLabs received: leg_A {placed['leg_A']} (Riley's phone, showing the ad's number)")
        _say(f"                       leg_B {placed['leg_B']} (the caller, showing the ad's number)")
    _say(boxed("#sales", render_message(_latest(stack, message["ts"]), width=76)))


def chapter_home(stack: Stack) -> None:
    _say("\n## Another call is missed; Riley opens Switchboard's Home tab — a dashboard\n")
    number = next(iter(stack.avanser.services))
    stack.avanser.place_call(number, "+61498765432", status="avanser_missed_call", duration=12)
    stack.drain(10)
    event = payloads.event_callback({"type": "app_home_opened", "user": "U0REP", "channel": "D0REP", "tab": "home"})
    body = json.dumps(event)
    headers = {**signature_headers(stack.slack.signing_secret, body), "Content-Type": "application/json"}
    httpx.post(f"{stack.url}/slack/events", content=body, headers=headers, timeout=10)
    _wait(lambda: stack.slack.home.get("U0REP"))
    _say(
        "Slack sends app_home_opened; Switchboard publishes Riley's own dashboard (every time is a Slack date "
        "token: Riley reads it in Sydney time, a colleague in Perth in theirs). It is published again, at most "
        "every few seconds, whenever something on it changes:"
    )
    _say(boxed("Switchboard › Home (Riley)", render_blocks(stack.slack.home["U0REP"]["blocks"], width=76)))


def chapter_data_feed(stack: Stack) -> None:
    _say("\n## A webhook is lost on its way; AVANSER's data feed brings the call back; `/numbers report`\n")
    number = next(iter(stack.avanser.services))
    for n, status in enumerate(["avanser_answered_call", "avanser_answered_call", "avanser_busy_call"]):
        stack.avanser.place_call(number, f"+6141030{n:04d}", status=status, duration=40)
    stack.avanser.place_call(
        number, "+61410555123", duration=18, uniqueid="ECS1-lost-in-transit", has_audio=True, send=False
    )
    _say(
        f"Three more calls reach {national(number)} and are reported as usual; a fourth caller leaves a voicemail, "
        "but AVANSER's call-URI webhook for it never arrives (dropped in transit). Nothing shows in #sales."
    )
    assert stack.services is not None
    result = stack.on_app(pull_feed(stack.services))
    stack.drain(10)
    _say(
        f"At its next interval (SWITCHBOARD_FEED_INTERVAL, 5 minutes by default) Switchboard reads AVANSER's data "
        f"feed: {result.records} records, {result.known} already seen (nothing posted twice), {result.recovered} "
        "never seen — posted now, with the recording the feed carries (`call_has_audio`, `call_audio_url`):"
    )
    recovered = next(m for m in stack.slack.channel_messages("C0SALES") if "never came" in str(m["blocks"]))
    _say(boxed("#sales", render_message(recovered, width=76)))
    answer, url = stack.slack.command(stack.url, "/numbers", "report", user_id="U0REP", channel_id="C0SALES")
    _say(f"Riley asks whether the ad is working: `/numbers report` → “{answer.json()['text']}”")
    _wait(lambda: stack.slack.responses_to(url))
    stack.drain(10)
    _say(boxed("only Riley sees", render_message(stack.slack.responses_to(url)[-1], width=76)))
    chart = next(m for m in reversed(stack.slack.channel_messages("C0SALES")) if m.get("files"))
    shared = chart["files"][0]
    _say(
        f"…and the chart is uploaded to #sales: {shared['name']} ({shared['size'] / 1024:.0f} KB, calls per day, "
        f"answered vs missed) — “{chart['text']}”"
    )


def chapter_virtual_number(stack: Stack) -> None:
    _say(
        "\n## A virtual number between a customer and a field agent: allocate → a call → reminder → extend → release\n"
    )
    text = "+919176226528 to +918136966620 twoway for 6s pin 1234"
    answer, url = stack.slack.command(stack.url, "/vn", text, user_id="U0REP", channel_id="C0FIELD")
    _say(f"Riley types `/vn {text}` → “{answer.json()['text']}”")
    _wait(lambda: stack.slack.responses_to(url))
    _say(boxed("only Riley sees", render_message({"text": stack.slack.responses_to(url)[-1]["text"]})))
    stack.drain(10)
    root = stack.slack.channel_messages("C0FIELD")[0]
    greenvn_id = next(iter(stack.exotel.allocations))
    stack.exotel.fire_call(greenvn_id, "+919176226528", duration=47)
    _wait(lambda: len(stack.slack.channel_messages("C0FIELD")) > 1)
    stack.drain(10)
    _say("The customer calls the virtual number; the call lands in the allocation's thread:")
    for message in stack.slack.channel_messages("C0FIELD"):
        _say(boxed("#field" + (" › thread" if message["thread_ts"] else ""), render_message(message, width=76)))
    _say("(In the demo the reminder comes 3 s before the end; SWITCHBOARD_VN_REMINDER, 15 minutes by default.)")

    def reminders() -> list[dict[str, Any]]:
        return [m for m in stack.slack.channel_messages("D0REP") if m["text"].startswith("⏰")]

    _wait(reminders, timeout=10)
    reminder = reminders()[-1]
    _say(boxed("DM to Riley", render_message(reminder, width=76)))
    extend = reminder["blocks"][1]["elements"][0]
    stack.slack.interact(stack.url, _click("U0REP", extend["action_id"], extend["value"], stack))
    stack.drain(10)
    _say("Riley clicks Extend 1 hour; the allocation's message now reads:")
    _say(boxed("#field", render_message(_latest(stack, root["ts"], "C0FIELD"), width=76)))
    release = reminder["blocks"][1]["elements"][3]
    stack.slack.interact(stack.url, _click("U0REP", release["action_id"], release["value"], stack))
    _wait(lambda: stack.exotel.requests_to("DELETE", "/v1/tenants/"))
    stack.drain(10)
    _say(
        f"Riley clicks Release now → Exotel received DELETE {stack.exotel.requests_to('DELETE', '/v1/')[0].path}; "
        "the thread ends with:"
    )
    _say(boxed("#field › thread", render_message(stack.slack.channel_messages("C0FIELD")[-1], width=76)))


def _wait(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


CHAPTERS: list[Callable[[Stack], None]] = [
    chapter_help,
    chapter_webhooks,
    chapter_new_number,
    chapter_missed_call,
    chapter_data_feed,
    chapter_home,
    chapter_virtual_number,
]


def run_demo() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _say("Switchboard demo — everything runs on this machine: a stand-in for Slack and the app, on loopback.")
    with Stack(SWITCHBOARD_VN_REMINDER="3s", feed="json") as stack:
        _say(f"Slack stand-in: {stack.slack.base_url}   Switchboard: {stack.url}")
        for chapter in CHAPTERS:
            chapter(stack)
        if not stack.drain(15):
            _say("\nSome messages were still waiting to be delivered when the demo ended.")
            return 1
    _say("\nThe demo finished.")
    return 0


if __name__ == "__main__":
    sys.exit(run_demo())
