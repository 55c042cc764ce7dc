"""`switchboard demo`: the story, played against loopback stand-ins, printed as Slack would show it.

Each chapter is a function taking the running `Stack`; later capabilities add theirs to CHAPTERS.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import httpx

from bot.routing import set_route
from bot.sandbox.render import boxed, render_message
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
    params = {
        "clientid": "6999",
        "callid": "324213111",
        "uniqueid": "ECS1-1923211.11",
        "bnum": "+61-0290081596",
        "adname": "Tracking Service 1",
        "target": "+61-0401020304",
        "targetname": "Sydney Office",
        "ani": "+61-0410203045",
        "tzdate": "2019-11-14T12:11:21+10:00",
        "duration": "30",
        "callstatus": "avanser_missed_call",
        "callcode": "1",
        "clocation": "Sydney",
        "cstate": "MOB",
        "ccountry": "AU",
    }
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


def chapter_missed_call(stack: Stack) -> None:
    _say("\n## A call is missed → the alert lands in #sales → Riley claims it\n")
    assert stack.services is not None
    services = stack.services
    number = "+61290081590"

    async def set_up() -> None:
        # What `/numbers route` will do: send this number's calls to #sales (C0SALES).
        set_route(services.store, number, "C0SALES", by="U0ADMIN", name="Spring sale ad")

    stack.on_app(set_up())
    stack.avanser.services[number] = {
        "name": "Spring sale ad",
        "service_number": number[1:],
        "service": {"type": "transfer", "answer_point": "61401020304", "answer_point_name": "Sydney Office"},
        "call_uri": f"{stack.url}/hooks/avanser/call?token={stack.webhook_token}",
        "sms_forward_uri": None,
        "custom_id": "ad-1",
        "custom_group": "spring",
    }
    answer = stack.avanser.place_call(number, "+61410203045", status="avanser_missed_call", duration=25)
    _say(f"AVANSER reports a missed call to 02 9008 1590 → Switchboard answers HTTP {answer.status_code}.")
    stack.drain(10)
    [message] = stack.slack.channel_messages("C0SALES")
    _say(boxed("#sales", render_message(message, width=76)))
    click: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": "U0REP", "name": "riley", "team_id": "T0SANDBOX"},
        "api_app_id": "A0SWITCHBOARD",
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": "C0SALES"},
        "channel": {"id": "C0SALES"},
        "message": message,
        "response_url": stack.slack.new_response_url(),
        "trigger_id": "1.demo",
        "team": {"id": "T0SANDBOX"},
        "actions": [
            {
                "action_id": "alert_claim",
                "block_id": message["blocks"][-1]["block_id"],
                "type": "button",
                "value": message["blocks"][-1]["elements"][1]["value"],
                "action_ts": "1",
            }
        ],
    }
    stack.slack.interact(stack.url, click)
    stack.drain(10)
    _say("Riley clicks Claim; the alert is edited in place:")
    _say(boxed("#sales", render_message(stack.slack.channel_messages("C0SALES")[0], width=76)))

    _say("\n## Riley clicks Call back → DataTechLabs rings Riley, then the caller\n")
    callback: dict[str, Any] = dict(click, response_url=stack.slack.new_response_url())
    callback["actions"] = [dict(click["actions"][0], action_id="alert_call_back")]
    stack.slack.interact(stack.url, callback)
    stack.drain(10)
    for reply in stack.slack.responses_to(callback["response_url"]):
        _say(boxed("only Riley sees", reply["text"]))
    for placed in stack.dtl.calls:
        _say(f"DataTechLabs received: leg_A {placed['leg_A']} (Riley's phone, showing the ad's number)")
        _say(f"                       leg_B {placed['leg_B']} (the caller, showing the ad's number)")
    _say(boxed("#sales", render_message(stack.slack.channel_messages("C0SALES")[0], width=76)))


CHAPTERS: list[Callable[[Stack], None]] = [chapter_help, chapter_webhooks, chapter_missed_call]


def run_demo() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _say("Switchboard demo — everything runs on this machine: a stand-in for Slack and the app, on loopback.")
    with Stack() as stack:
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
