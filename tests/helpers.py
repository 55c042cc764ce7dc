"""What the tests share: the seeds' payloads, sending webhooks and Slack interactions, reading what Slack shows.

Slack bodies come from `bot.sandbox.payloads` (the same builders the demo and the bench use); forms
are submitted as the app itself builds them, so their inputs have the element types Slack would send.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from bot.domain.routing import set_route
from bot.sandbox import payloads
from bot.sandbox.avanser import SEED_CALL
from bot.sandbox.stack import Stack

TRACKING = "+61290081596"  # AVANSER_CALL's bnum


def wait_for(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.02) -> object:
    """Poll until `condition()` is truthy; fail the test with a clear message otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


# Payloads as the seeds show them.
AVANSER_CALL = dict(SEED_CALL)  # seed 001, Call-URI functionality
AVANSER_SMS = {  # seed 001, SMS-Forward functionality
    "clientId": "6999",
    "to": "+61-0401020304",
    "from": "+61-0401020305",
    "txt": "this is a test message",
    "date": "2016-04-12 10:10:10",
}
AVANSER_REQUEST = {  # seed 001, Callback-URI "Request completed"
    "account_id": 6999,
    "request_id": "c9220015e2f48bc7cf4b38186a7b2025",
    "custom_id": "client desired unique id",
    "status": "completed",
    "message": "Request completed successfully",
    "service_number": "611300123123",
    "answer_point": "614201010100",
}
EXOTEL_CALL = {  # seed 002, Call Event
    "start_time": "2021-01-19T19:17:03+50:30",
    "direction": "incoming",
    "source": "exotel",
    "dial_call_duration": "32",
    "connection_id": "YOUR_CONNECTION_ID",
    "dial_call_status": "completed",
    "greenvn": "+91804XXXX513",
    "recording_url": "https://s3-ap-southeast-1.amazonaws.com/x/CALL_SID.mp3",
    "on_call_duration": "27",
    "greenvn_id": "d12638b6-28b8-488d-8cf3-c60619ac2280",
    "call_type": "completed",
    "call_sid": "53fa8e40bb1XXXXXXXXXX257c439151k",
    "to": "+91776XXXX969",
    "current_time": "2021-01-19T19:17:44+50:30",
    "from": "+91959XXXX342",
}
EXOTEL_DEALLOCATION = {  # seed 002, Deallocation Callback Event
    "connection_id": "YOUR_CONNECTION_ID",
    "aparty_numbers": ["+917317678172"],
    "bparty_numbers": ["+918400047000"],
    "aparty_pins": [None],
    "bparty_pins": [None],
    "usage": "twoway",
    "state": "vault",
    "greenvn": "+91983XXXX195",
    "greenvn_id": "fffe1797-b738-483f-a5a6-757ddfb15e78",
}
EXOTEL_VERIFIED = {
    "connection_id": "c1",
    "greenvn": "+918012345678",
    "greenvn_id": "123456",
    "caller": "+919876543210",
    "pin": "1234",
}
EXOTEL_VERIFY_FAILED = {
    "call_sid": "8a4d92198hy678",
    "greenvn": "+918012345678",
    "start_time": "2021-09-24 07:05:28",
    "caller": "+919876543210",
    "pin": "9999",
}

HOOKS_UNDER_TEST = [
    ("GET", "/hooks/avanser/call"),
    ("GET", "/hooks/avanser/sms"),
    ("POST", "/hooks/avanser/request"),
    ("POST", "/hooks/exotel/call"),
    ("POST", "/hooks/exotel/deallocation"),
    ("POST", "/hooks/exotel/verification"),
]

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/hooks/avanser/call", AVANSER_CALL),
    ("GET", "/hooks/avanser/sms", AVANSER_SMS),
    ("POST", "/hooks/avanser/request", AVANSER_REQUEST),
    ("POST", "/hooks/exotel/call", EXOTEL_CALL),
    ("POST", "/hooks/exotel/deallocation", EXOTEL_DEALLOCATION),
    ("POST", "/hooks/exotel/verification", EXOTEL_VERIFIED),
    ("POST", "/hooks/exotel/verification", EXOTEL_VERIFY_FAILED),
]


# -- the app's database -------------------------------------------------------------------------------


def on_app(stack: Stack, action: Callable[[Any], Any]) -> Any:
    """Run `action(services)` on the app's event loop (where its store lives)."""

    async def run() -> Any:
        return action(stack.services)

    return stack.on_app(run())


def inbox(stack: Stack) -> list[tuple[str, str, dict[str, Any]]]:
    rows = on_app(
        stack, lambda s: s.store.execute("SELECT source, dedup_key, payload FROM inbox ORDER BY id").fetchall()
    )
    return [(r[0], r[1], json.loads(r[2])) for r in rows]


def route(stack: Stack, number: str = TRACKING, channel: str = "C0SALES", **options: Any) -> None:
    on_app(stack, lambda s: set_route(s.store, number, channel, by="U0ADMIN", **options))


# -- webhooks and what Slack shows ------------------------------------------------------------------------


def send(
    http: httpx.Client,
    stack: Stack,
    method: str,
    path: str,
    payload: dict[str, Any],
    token: str | None = "right",
    auth: tuple[str, str] | None = None,
) -> httpx.Response:
    """A telco webhook, with the right token (`token="right"`), another one, or none."""
    params = {}
    if token == "right":
        params["token"] = stack.webhook_token
    elif token is not None:
        params["token"] = token
    if method == "GET":
        return http.get(stack.hook_url(path), params={**payload, **params}, auth=auth)
    return http.post(stack.hook_url(path), params=params, json=payload, auth=auth)


def call(n: int = 0, **changes: str) -> dict[str, str]:
    """The seed's call-URI parameters as call number `n`."""
    return {**AVANSER_CALL, "uniqueid": f"ECS1-{n}", "callid": str(1000 + n), **changes}


def messages(stack: Stack, channel: str, count: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
    wait_for(lambda: len(stack.slack.channel_messages(channel)) >= count, timeout=timeout)
    assert stack.drain(10)
    return stack.slack.channel_messages(channel)


def flat(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


# -- Slack interactions ---------------------------------------------------------------------------------


def click(
    stack: Stack,
    action_id: str,
    value: str,
    user: str,
    message: dict[str, Any] | None = None,
    channel: str = "C0SALES",
) -> dict[str, Any]:
    """Click a button on a message; returns the payload sent (its response_url shows the answers)."""
    payload = payloads.block_actions(
        action_id, value, user=user, response_url=stack.slack.new_response_url(), channel=channel, message=message
    )
    assert stack.slack.interact(stack.url, payload).status_code == 200
    return payload


def form_view(callback_id: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The modal the app opens for `callback_id`, as the app builds it (for the service type in `values`)."""
    from commands.numbers import new_number_form
    from commands.numbers_views import EDIT_VIEW, RELEASE_VIEW, TEMPLATE_VIEW, number_form, template_form
    from commands.vn_views import EXTEND_VIEW, NEW_VIEW, PARTIES_VIEW, extend_form, new_form

    if callback_id == "numbers_new":
        return new_number_form("C0SALES")
    if callback_id == EDIT_VIEW:
        return number_form(
            callback_id=EDIT_VIEW,
            title="Change",
            submit="Save",
            metadata={},
            channel=None,
            values={},
            with_number=False,
        )
    if callback_id == TEMPLATE_VIEW:
        return template_form("AU")
    if callback_id == NEW_VIEW:
        return new_form("C0FIELD")
    if callback_id == EXTEND_VIEW:
        return extend_form(1)
    if callback_id in (PARTIES_VIEW, RELEASE_VIEW):
        raise ValueError(f"submit {callback_id} with the view the app opened (it depends on the number)")
    raise ValueError(f"no form {callback_id}")


def submit_view(
    stack: Stack,
    callback_id: str | dict[str, Any],
    values: dict[str, Any],
    user: str = "U0REP",
    metadata: dict[str, Any] | None = None,
    view_id: str | None = None,
) -> httpx.Response:
    """Submit a modal (the view the app opened, or the app's form for a callback id) with `values`."""
    view = form_view(callback_id, values) if isinstance(callback_id, str) else callback_id
    if metadata is None and "private_metadata" not in view:
        metadata = {"channel": "C0SALES"}
    payload = payloads.view_submission(view, values, user=user, metadata=metadata, view_id=view_id)
    return stack.slack.interact(stack.url, payload)
