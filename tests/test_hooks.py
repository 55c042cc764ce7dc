"""/hooks/*: token authentication, commit before 2xx, dedup on the provider's own id."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, quote, urlencode

import httpx
import pytest

from bot.domain.numbers import CALL_URI_TAGS
from bot.sandbox.stack import Stack
from tests.helpers import (
    AVANSER_CALL,
    AVANSER_REQUEST,
    CASES,
    EXOTEL_CALL,
    inbox,
    messages,
    route,
    send,
)


@pytest.mark.parametrize(("method", "path", "payload"), CASES, ids=[c[1] + str(i) for i, c in enumerate(CASES)])
def test_event_is_stored_once_with_its_payload(stack: Stack, http: httpx.Client, method, path, payload) -> None:
    first = send(http, stack, method, path, payload)
    assert first.status_code == 200, first.text
    assert first.json()["duplicate"] is False
    for _ in range(9):
        again = send(http, stack, method, path, payload)
        assert again.status_code == 200
        assert again.json() == {"ok": True, "id": first.json()["id"], "duplicate": True}
    rows = inbox(stack)
    assert len(rows) == 1
    source, _, stored = rows[0]
    assert source == path.removeprefix("/hooks/").replace("/", ".")
    assert stored == payload  # everything kept, the token not among it


@pytest.mark.parametrize(("method", "path", "payload"), CASES, ids=[c[1] + str(i) for i, c in enumerate(CASES)])
@pytest.mark.parametrize("token", [None, "wrong-token", ""])
def test_without_the_right_token_401_and_nothing_stored(
    stack: Stack, http: httpx.Client, method, path, payload, token
) -> None:
    answer = send(http, stack, method, path, payload, token=token)
    assert answer.status_code == 401
    assert inbox(stack) == []


def test_token_as_basic_auth_password(stack: Stack, http: httpx.Client) -> None:
    ok = send(
        http,
        stack,
        "POST",
        "/hooks/exotel/call",
        EXOTEL_CALL,
        token=None,
        auth=("exotel", stack.webhook_token),
    )
    assert ok.status_code == 200
    bad = send(http, stack, "POST", "/hooks/exotel/call", EXOTEL_CALL, token=None, auth=("exotel", "nope"))
    assert bad.status_code == 401
    garbage = http.post(
        stack.hook_url("/hooks/exotel/call"),
        json=EXOTEL_CALL,
        headers={"Authorization": "Basic !!!not-base64"},
    )
    assert garbage.status_code == 401
    assert len(inbox(stack)) == 1


def test_unknown_fields_are_kept(stack: Stack, http: httpx.Client) -> None:
    payload = {**AVANSER_CALL, "uniqueid": "ECS1-new", "recording": "https://example.invalid/r.mp3"}
    assert send(http, stack, "GET", "/hooks/avanser/call", payload).status_code == 200
    assert inbox(stack)[0][2]["recording"] == "https://example.invalid/r.mp3"


@pytest.mark.parametrize(
    ("method", "path", "body", "reason"),
    [
        ("POST", "/hooks/exotel/call", b"{not json", "body is not JSON"),
        ("POST", "/hooks/exotel/call", b"[1, 2]", "body must be a JSON object"),
        ("POST", "/hooks/exotel/call", json.dumps({"from": "+91"}).encode(), "call_sid: Field required"),
        (
            "POST",
            "/hooks/avanser/request",
            json.dumps({"request_id": "r1"}).encode(),
            "status: Field required",
        ),
        (
            "POST",
            "/hooks/exotel/deallocation",
            json.dumps({"greenvn_id": "g", "connection_id": "c", "aparty_numbers": "+91"}).encode(),
            "aparty_numbers: Input should be a valid list",
        ),
        ("GET", "/hooks/avanser/call", None, "bnum: Field required"),
    ],
)
def test_malformed_payload_is_400_with_a_reason(stack: Stack, http: httpx.Client, method, path, body, reason) -> None:
    if method == "GET":
        answer = http.get(stack.hook_url(path), params={"token": stack.webhook_token, "uniqueid": "ECS1-1"})
    else:
        answer = http.post(
            stack.hook_url(path),
            params={"token": stack.webhook_token},
            content=body,
            headers={"Content-Type": "application/json"},
        )
    assert answer.status_code == 400
    assert reason in answer.json()["error"]
    assert inbox(stack) == []


def test_an_unknown_call_status_is_kept_and_shown_never_refused(stack: Stack, http: httpx.Client) -> None:
    route(stack)
    answer = send(http, stack, "GET", "/hooks/avanser/call", {**AVANSER_CALL, "callstatus": "avanser_party_call"})
    assert answer.status_code == 200
    assert [row[2]["callstatus"] for row in inbox(stack)] == ["avanser_party_call"]
    [message] = messages(stack, "C0SALES")
    assert message["text"].startswith("Call (party) from 0410 203 045")


def test_the_call_uri_template_substituted_or_appended(stack: Stack, http: httpx.Client) -> None:
    route(stack)
    template = f"{stack.url}/hooks/avanser/call?token={stack.webhook_token}&{CALL_URI_TAGS}"
    substituted = template
    for key, value in {**AVANSER_CALL, "tag": "ad-1", "curl": "radio"}.items():
        substituted = substituted.replace(f"[[{key}]]", quote(str(value), safe=""))
    assert http.get(substituted).status_code == 200
    appended = template + "&" + urlencode({**AVANSER_CALL, "uniqueid": "ECS1-appended"})
    assert http.get(appended).status_code == 200
    stored = [row[2] for row in inbox(stack)]
    assert [s["uniqueid"] for s in stored] == ["ECS1-1923211.11", "ECS1-appended"]
    assert stored[0]["custom_id"] == "ad-1" and stored[0]["recording_url"] == "__URL__"  # kept as received
    assert len(messages(stack, "C0SALES", count=2)) == 2


def test_tags_left_literal_count_as_absent_never_as_a_dedup_key(stack: Stack, http: httpx.Client) -> None:
    route(stack)
    template = f"{stack.url}/hooks/avanser/call?token={stack.webhook_token}&{CALL_URI_TAGS}"
    literal = {k: v for k, v in parse_qsl(template.split("?", 1)[1]) if k != "token"}
    for n in range(3):  # AVANSER filled only some fields: uniqueid and callid stayed literal
        fields = {**literal, "bnum": AVANSER_CALL["bnum"], "ani": f"+61-041020304{n}", "tzdate": AVANSER_CALL["tzdate"]}
        assert send(http, stack, "GET", "/hooks/avanser/call", fields).json()["duplicate"] is False
    keys = [row[1] for row in inbox(stack)]
    assert len(set(keys)) == 3 and not any("[[" in k for k in keys)
    assert len(messages(stack, "C0SALES", count=3)) == 3


def test_request_callback_statuses_are_distinct_events(stack: Stack, http: httpx.Client) -> None:
    failed = {**AVANSER_REQUEST, "status": "failed", "message": "Selected service number is not available"}
    send(http, stack, "POST", "/hooks/avanser/request", failed)
    send(http, stack, "POST", "/hooks/avanser/request", AVANSER_REQUEST)
    assert [row[2]["status"] for row in inbox(stack)] == ["failed", "completed"]


def test_no_token_configured_refuses_everything(tmp_path, http: httpx.Client) -> None:
    with Stack(tmp_path, SWITCHBOARD_WEBHOOK_TOKEN=None) as stack:
        answer = http.get(stack.hook_url("/hooks/avanser/call"), params={**AVANSER_CALL, "token": "anything"})
        assert answer.status_code == 401
        assert inbox(stack) == []


def test_metrics_count_hooks(stack: Stack, http: httpx.Client) -> None:
    send(http, stack, "GET", "/hooks/avanser/call", AVANSER_CALL)
    send(http, stack, "GET", "/hooks/avanser/call", AVANSER_CALL)
    send(http, stack, "GET", "/hooks/avanser/call", AVANSER_CALL, token=None)
    text = http.get(f"{stack.url}/metrics").text
    assert 'switchboard_hook_requests_total{outcome="stored",route="avanser.call"} 1.0' in text
    assert 'switchboard_hook_requests_total{outcome="duplicate",route="avanser.call"} 1.0' in text
    assert 'switchboard_hook_requests_total{outcome="unauthorized",route="avanser.call"} 1.0' in text
