"""Signed Slack requests into the running app, answered as Slack would show them."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from bot.errors import UserError
from bot.sandbox.signing import signature_headers, slash_command_body
from bot.sandbox.stack import Stack
from commands import FAMILIES
from tests.helpers import wait_for


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.command)
def test_help_lists_every_subcommand(stack: Stack, http: httpx.Client, family) -> None:
    answer, _ = stack.slack.command(stack.url, family.command, "help", client=http)
    assert answer.status_code == 200
    body = answer.json()
    assert body["response_type"] == "ephemeral"
    text = json.dumps(body["blocks"])
    for sub in family.subcommands.values():
        assert f"{family.command} {sub.name}" in text
        assert sub.summary.split()[0] in text
    assert body["text"].startswith(family.command)


def test_empty_command_shows_help(stack: Stack, http: httpx.Client) -> None:
    answer, _ = stack.slack.command(stack.url, "/vn", "", client=http)
    assert answer.json()["text"].startswith("/vn — ")


def test_unknown_subcommand_answers_with_help(stack: Stack, http: httpx.Client) -> None:
    answer, _ = stack.slack.command(stack.url, "/numbers", "serch mobile", client=http)
    body = answer.json()
    assert body["text"] == "I don't know `/numbers serch`. Here is what `/numbers` can do:"
    assert "/numbers search" in json.dumps(body["blocks"])


def test_planned_subcommand_says_it_is_not_switched_on(stack: Stack, http: httpx.Client) -> None:
    from commands.base import CommandFamily

    family = CommandFamily("/later", "things to come", "")
    family.planned("report", "[week]", "a weekly call report.")
    family.register(stack.app_server.app.state.bolt, stack.services)  # type: ignore[union-attr]
    answer, _ = stack.slack.command(stack.url, "/later", "report week", client=http)
    body = answer.json()
    assert body["response_type"] == "ephemeral"
    assert body["text"] == (
        "`/later report [week]` isn't switched on in this version of Switchboard yet. It will: a weekly call report."
    )
    help_answer, _ = stack.slack.command(stack.url, "/later", "help", client=http)
    assert "_(coming soon)_" in help_answer.json()["text"]


def test_call_with_a_number_routes_to_the_default(stack: Stack, http: httpx.Client) -> None:
    answer, _ = stack.slack.command(stack.url, "/call", "+61 412 345 678", client=http)
    assert answer.json()["text"].startswith("I don't know which business number the customer should see.")


def test_bad_signature_is_rejected(stack: Stack, http: httpx.Client) -> None:
    answer, _ = stack.slack.command(stack.url, "/numbers", "help", client=http, secret="not-the-secret")
    assert answer.status_code == 401


def test_stale_timestamp_is_rejected(stack: Stack, http: httpx.Client) -> None:
    six_minutes_ago = int(time.time()) - 360
    answer, _ = stack.slack.command(stack.url, "/numbers", "help", client=http, timestamp=six_minutes_ago)
    assert answer.status_code == 401
    fresh, _ = stack.slack.command(stack.url, "/numbers", "help", client=http, timestamp=int(time.time()) - 60)
    assert fresh.status_code == 200


def test_body_changed_after_signing_is_rejected(stack: Stack, http: httpx.Client) -> None:
    body = slash_command_body("/numbers", "help", user_id="U0REP", channel_id="C1", response_url="x", trigger_id="t")
    headers = signature_headers(stack.slack.signing_secret, body)
    answer = http.post(
        f"{stack.url}/slack/events",
        content=body.replace("help", "list"),
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 401


def test_unexpected_failure_shows_a_reference_that_is_in_the_log(
    stack: Stack, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    bolt = stack.app_server.app.state.bolt  # type: ignore[union-attr]

    @bolt.command("/boom")
    async def boom(ack, body):
        raise RuntimeError("secret internals xoxb-should-not-show")

    with caplog.at_level("ERROR"):
        answer, _ = stack.slack.command(stack.url, "/boom", "", client=http)
    assert answer.status_code == 200
    text = answer.json()["text"]
    assert "something went wrong" in text and "xoxb" not in text and "internals" not in text
    ref = text.split("`")[1]
    assert any(ref in record.getMessage() for record in caplog.records)


def test_user_error_is_shown_as_its_sentence(stack: Stack, http: httpx.Client) -> None:
    bolt = stack.app_server.app.state.bolt  # type: ignore[union-attr]

    @bolt.command("/refuse")
    async def refuse(ack, body):
        raise UserError("That number isn't one of ours.")

    answer, _ = stack.slack.command(stack.url, "/refuse", "", client=http)
    assert answer.json() == {"response_type": "ephemeral", "text": "That number isn't one of ours."}


def test_background_failure_reaches_the_user_through_response_url(stack: Stack, http: httpx.Client) -> None:
    from commands.base import CommandFamily

    family = CommandFamily("/slow", "test", "")

    @family.subcommand("go")
    async def go(request):
        """Fail after the ack."""
        await request.reply("Working on it…")

        async def work():
            raise UserError("AVANSER has no free numbers in Perth right now.")

        request.later(work(), name="slow")

    family.register(stack.app_server.app.state.bolt, stack.services)  # type: ignore[union-attr]
    answer, response_url = stack.slack.command(stack.url, "/slow", "go", client=http)
    assert answer.json()["text"] == "Working on it…"
    responses = wait_for(lambda: stack.slack.responses_to(response_url))
    assert responses == [{"response_type": "ephemeral", "text": "AVANSER has no free numbers in Perth right now."}]


def test_app_home_is_published_on_open(stack: Stack, http: httpx.Client) -> None:
    from bot.sandbox.signing import signature_headers as sign

    event = {
        "token": "verification_token",
        "team_id": "T0SANDBOX",
        "api_app_id": "A0SWITCHBOARD",
        "type": "event_callback",
        "event_id": "Ev01",
        "event_time": int(time.time()),
        "event": {
            "type": "app_home_opened",
            "user": "U0REP",
            "channel": "D0REP",
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        },
    }
    body = json.dumps(event)
    answer = http.post(
        f"{stack.url}/slack/events",
        content=body,
        headers={**sign(stack.slack.signing_secret, body), "Content-Type": "application/json"},
    )
    assert answer.status_code == 200
    home = wait_for(lambda: stack.slack.home.get("U0REP"))
    assert home["type"] == "home"
    assert "/numbers" in json.dumps(home["blocks"]) and "/call" in json.dumps(home["blocks"])


def test_socket_mode_when_an_app_token_is_set(tmp_path) -> None:
    from bot.sandbox.slack import SANDBOX_APP_TOKEN

    with Stack(tmp_path, SLACK_APP_TOKEN=SANDBOX_APP_TOKEN) as stack:
        wait_for(lambda: stack.slack.socket_connections == 1)
        opened = [c for c in stack.slack.calls if c.method == "apps.connections.open"]
        assert opened and opened[0].response["ok"] is True
        ack = stack.slack.socket_command("/numbers", "help")
        assert ack["response_type"] == "ephemeral"
        assert ack["text"].startswith("/numbers — ")
        ack = stack.slack.socket_command("/vn", "frobnicate")
        assert ack["text"] == "I don't know `/vn frobnicate`. Here is what `/vn` can do:"
