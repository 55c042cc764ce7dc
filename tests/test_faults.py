"""The short fault suite that runs in `make test`: Slack's retries, replays, and fuzzed inputs.

`make faults` runs the long versions (bench/faults.py); the SIGKILL test is tests/test_crash.py.
"""

from __future__ import annotations

import json
import os
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.numbers import parse_search
from bot.domain.vn import parse_quick
from bot.errors import UserError
from bot.sandbox.signing import signature_headers
from bot.sandbox.stack import Stack
from commands.call import parse_call
from tests.helpers import HOOKS_UNDER_TEST, call, inbox, messages, route, send, wait_for


def test_slack_event_retries_are_handled_once(stack: Stack, http: httpx.Client) -> None:
    event = {
        "token": "t",
        "team_id": "T0SANDBOX",
        "api_app_id": "A0SWITCHBOARD",
        "type": "event_callback",
        "event_id": "Ev0RETRY",
        "event_time": int(time.time()),
        "event": {"type": "app_home_opened", "user": "U0REP", "channel": "D0REP", "tab": "home"},
    }
    body = json.dumps(event)
    for retry in range(4):  # the first delivery, then Slack's retries 1-3
        headers = {**signature_headers(stack.slack.signing_secret, body), "Content-Type": "application/json"}
        if retry:
            headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"})
        assert http.post(f"{stack.url}/slack/events", content=body, headers=headers).status_code == 200
    wait_for(lambda: stack.slack.home.get("U0REP"))
    time.sleep(0.3)
    assert len(stack.slack.calls_to("views.publish")) == 1


def test_every_event_replayed_ten_times_posts_once(stack: Stack, http: httpx.Client) -> None:
    route(stack)
    for _ in range(10):
        for n in range(5):
            assert send(http, stack, "GET", "/hooks/avanser/call", call(n, ani=f"+61-041020300{n}")).status_code == 200
    posted = messages(stack, "C0SALES", 5)
    time.sleep(0.3)
    assert len(stack.slack.channel_messages("C0SALES")) == len(posted) == 5


# `make faults` raises this to 1,000 and more; `make test` runs a short version.
FUZZ_EXAMPLES = int(os.environ.get("SWITCHBOARD_FUZZ_EXAMPLES", "150"))
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
VALUE = st.one_of(
    TEXT,
    st.integers(),
    st.none(),
    st.lists(TEXT, max_size=3),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), HOOKS_UNDER_TEST)
def test_fuzzed_webhooks_never_500_and_never_write_without_the_token(tmp_path, method: str, path: str) -> None:
    with Stack(tmp_path, outbox_channel_interval=0) as stack, httpx.Client(timeout=10) as http:
        errors: list[tuple[int, str]] = []

        @settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(
            payload=st.dictionaries(
                st.sampled_from(
                    [
                        "uniqueid",
                        "callid",
                        "bnum",
                        "ani",
                        "callstatus",
                        "duration",
                        "tzdate",
                        "to",
                        "from",
                        "txt",
                        "date",
                        "clientId",
                        "request_id",
                        "status",
                        "call_sid",
                        "greenvn_id",
                        "connection_id",
                        "caller",
                        "pin",
                        "aparty_numbers",
                        "insights",
                        "dial_call_duration",
                        "x",
                    ]
                )
                | TEXT,
                VALUE,
                max_size=8,
            ),
            with_token=st.booleans(),
            raw=st.one_of(st.none(), st.binary(max_size=40)),
        )
        def one(payload: dict, with_token: bool, raw: bytes | None) -> None:
            params = {"token": stack.webhook_token} if with_token else {}
            stored_before = len(inbox(stack))
            if method == "GET":
                query = {k: v if isinstance(v, str) else json.dumps(v) for k, v in payload.items()}
                answer = http.get(stack.hook_url(path), params={**query, **params})
            elif raw is not None:
                answer = http.post(
                    stack.hook_url(path), params=params, content=raw, headers={"Content-Type": "application/json"}
                )
            else:
                answer = http.post(stack.hook_url(path), params=params, json=payload)
            if answer.status_code >= 500 or (not with_token and answer.status_code != 401):
                errors.append((answer.status_code, answer.text[:200]))
            if not with_token and len(inbox(stack)) != stored_before:
                errors.append((answer.status_code, "stored without the token"))

        one()
        assert errors == []
        rows = inbox(stack)
        assert all(row[0] == path.removeprefix("/hooks/").replace("/", ".") for row in rows)
        # Everything stored was either dropped as malformed later or handled; the processor never crashed.
        assert stack.drain(20)


@settings(max_examples=max(400, FUZZ_EXAMPLES), deadline=None, database=None)
@given(text=TEXT)
def test_fuzzed_command_parsers_raise_only_sentences(text: str) -> None:
    for parse in (lambda t: parse_search(t, "AU"), parse_quick, parse_call):
        try:
            parse(text)
        except UserError as exc:
            assert str(exc) and "Traceback" not in str(exc)
