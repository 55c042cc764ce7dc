"""Issue 12's attacks as figures for `make faults`: calls placed / attempted, injections rendered,
provider effects of repeated actions, internal fetches and stuck messages.

Each runs against a `Stack` on loopback (the app and its stand-ins), as the attacker would: signed
Slack requests, real webhooks, parallel clicks.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from typing import Any

import httpx

from bot.domain.routing import set_route
from bot.sandbox import payloads
from bot.sandbox.avanser import SEED_CALL
from bot.sandbox.markup import injections
from bot.sandbox.stack import ADMIN, Stack

REP = "U0REP"
ATTACK = (
    "<!channel> <!here> <!everyone> <@U0ADMIN> <#C0OTHER> <!subteam^S0TEAM> "
    "<https://evil.example|https://slack.com/verify> Tom & Jerry"
)
COSTLY = ["+44 909 123 4567", "1900 123 456", "1300 123 456", "13 12 34", "+881 6 1234 5678", "000", "112", "1223"]


def parallel(calls: list[Callable[[], Any]]) -> None:
    threads = [threading.Thread(target=c) for c in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _settle(stack: Stack, seconds: float = 15) -> None:
    stack.drain(seconds)


def toll_fraud() -> dict[str, Any]:
    """20 parallel /call with a limit of 3, and every costly or special number as customer and as my phone."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        Stack(
            tmp,
            outbox_channel_interval=0,
            SWITCHBOARD_CALLER_ID="+61290081500",
            SWITCHBOARD_CALL_LIMIT="3/10m",
            SWITCHBOARD_CALL_COUNTRIES="AU,GB",
        ) as stack,
    ):
        stack.slack.command(stack.url, "/call", "phone 0412 999 888", user_id=REP)
        stack.dtl.latency = 0.3
        parallel([lambda n=n: stack.slack.command(stack.url, "/call", f"0410 203 {n:03d}") for n in range(20)])
        _settle(stack)
        placed_parallel = len(stack.dtl.calls)
        for number in COSTLY:
            stack.slack.command(stack.url, "/call", number, user_id=ADMIN)
            stack.slack.command(stack.url, "/call", f"phone {number}", user_id=ADMIN)
        _settle(stack)
        dialled_costly = len(stack.dtl.calls) - placed_parallel
    return {
        "name": "toll fraud: 20 parallel /call with a limit of 3; costly and special numbers",
        "calls_placed": placed_parallel,
        "calls_attempted": 20,
        "costly_numbers_attempted": len(COSTLY) * 2,
        "costly_numbers_dialled": dialled_costly,
        "pass": placed_parallel == 3 and dialled_costly == 0,
    }


def markup_injection() -> dict[str, Any]:
    """Slack markup in every field of a call, a text and an Exotel call: how much of it Slack renders."""
    with tempfile.TemporaryDirectory() as tmp, Stack(tmp, outbox_channel_interval=0) as stack, httpx.Client() as http:

        async def routes() -> None:
            assert stack.services is not None
            set_route(stack.services.store, "+61290081596", "C0SALES", by=ADMIN, name=ATTACK)
            set_route(stack.services.store, "+61401020304", "C0SALES", by=ADMIN)

        stack.on_app(routes())
        token = {"token": stack.webhook_token}
        fields = ("adname", "targetname", "clocation", "cstate", "custom_group")
        http.get(stack.hook_url("/hooks/avanser/call"), params={**SEED_CALL, **dict.fromkeys(fields, ATTACK), **token})
        sms = {"clientId": "6999", "to": "+61-0401020304", "from": ATTACK, "txt": ATTACK, "date": ATTACK}
        http.get(stack.hook_url("/hooks/avanser/sms"), params={**sms, **token})
        _settle(stack)
        found = injections(stack.slack.all_messages(), users={ADMIN, REP}, channels={"C0SALES"})
        shown = sum("&lt;!channel&gt;" in str(m) for m in stack.slack.all_messages())
    return {
        "name": "markup injection through telco fields",
        "messages_with_the_attack_escaped": shown,
        "injections_rendered": len(found),
        "pass": not found and shown >= 2,
    }


def repeated_actions() -> dict[str, Any]:
    """The same form twice at once, Release now by two people at once: provider effects."""
    from commands.numbers import new_number_form

    with tempfile.TemporaryDirectory() as tmp, Stack(tmp, outbox_channel_interval=0) as stack:
        values = {"name": "Twice", "type": "transfer", "answer_point": "02 9008 1500", "report": "missed"}
        form = payloads.view_submission(new_number_form("C0SALES"), values, user=ADMIN, view_id="V0TWICE")
        parallel([lambda: stack.slack.interact(stack.url, form) for _ in range(3)])
        stack.slack.command(stack.url, "/vn", "+919176226528 to +918136966620 for 2h", user_id=REP)
        _settle(stack)
        stack.exotel.latency = 0.3
        clicks = [
            payloads.block_actions("vn_release", "1", user=user, response_url=stack.slack.new_response_url())
            for user in (REP, ADMIN, REP)
        ]
        parallel([lambda c=c: stack.slack.interact(stack.url, c) for c in clicks])
        _settle(stack)
        purchases = len(stack.avanser.requests_to("POST", "/v1/requests"))
        deletes = len(stack.exotel.requests_to("DELETE", "/v1/tenants/"))
    return {
        "name": "repeated actions: one form submitted 3× at once; Release now clicked 3× at once",
        "purchases": purchases,
        "deletes": deletes,
        "pass": purchases == 1 and deletes == 1,
    }


def hostile_recordings() -> dict[str, Any]:
    from tests.recording_attacks import recording_attacks

    return recording_attacks()


def security(quick: bool = False) -> list[dict[str, Any]]:
    return [toll_fraud(), markup_injection(), repeated_actions(), hostile_recordings()]


if __name__ == "__main__":
    for result in security():
        print(result)
