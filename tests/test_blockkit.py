"""The sandbox refuses what Slack refuses, so a broken message fails a test before it fails a user."""

from __future__ import annotations

import httpx
import pytest

from bot.sandbox.blockkit import check_blocks, check_view
from bot.sandbox.stack import Stack
from commands import FAMILIES
from commands.home_views import phone_form
from notifiers.home import Dashboard, render_home


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.mark.parametrize(
    ("blocks", "error"),
    [
        ([section("x")] * 51, "must be no more than 50 items [json-pointer:/blocks]"),
        ([section("x" * 3001)], "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"),
        (
            [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}],
            "must be one of the following types: plain_text",
        ),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "/blocks/0/text/text"),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {"type": "button", "text": {"type": "plain_text", "text": "b" * 76}, "action_id": "a"}
                    ],
                }
            ],
            "/blocks/0/elements/0/text/text",
        ),
        ([{"type": "actions", "elements": []}], "must provide between 1 and 25 items"),
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
            "must provide at most 10 items",
        ),
        ([{"type": "sectoin", "text": {"type": "mrkdwn", "text": "x"}}], "must be a valid block type"),
        (
            [
                {"type": "section", "block_id": "a", "text": {"type": "mrkdwn", "text": "x"}},
                {"type": "section", "block_id": "a", "text": {"type": "mrkdwn", "text": "y"}},
            ],
            "duplicate block_id a",
        ),
        (
            [
                {
                    "type": "input",
                    "label": {"type": "plain_text", "text": "l"},
                    "element": {"type": "plain_text_input", "action_id": "i"},
                }
            ],
            "only allowed in modals",
        ),
        ([section("")], "must be more than 0 characters"),
    ],
)
def test_message_limits(blocks, error) -> None:
    errors = check_blocks(blocks)
    assert any(error in e for e in errors), errors


def test_valid_message_passes() -> None:
    assert check_blocks([section("x" * 3000)] * 50) == []


def test_view_limits() -> None:
    modal = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Request a tracking number"},
        "blocks": [section("x")] * 101,
    }
    errors = check_view(modal)
    assert "must be less than 25 characters [json-pointer:/view/title/text]" in errors
    assert "must be no more than 100 items [json-pointer:/view/blocks]" in errors
    needs_submit = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "New"},
        "blocks": [
            {
                "type": "input",
                "label": {"type": "plain_text", "text": "Name"},
                "element": {"type": "plain_text_input", "action_id": "n"},
            }
        ],
    }
    assert any("submit" in e for e in check_view(needs_submit))


def test_the_app_own_views_and_help_are_valid() -> None:
    for admin in (False, True):
        assert check_view(render_home(Dashboard(user="U0REP", admin=admin, now=0, claim_within=900))) == []
    assert check_view(phone_form("+61412345678")) == []
    for family in FAMILIES:
        assert check_blocks(family.help_blocks("intro")) == []


def test_sandbox_answers_invalid_blocks(stack: Stack, http: httpx.Client) -> None:
    answer = http.post(
        f"{stack.slack.base_url}/api/chat.postMessage",
        headers={"Authorization": f"Bearer {stack.slack.bot_token}"},
        json={"channel": "C1", "text": "t", "blocks": [section("x" * 3001)]},
    )
    body = answer.json()
    assert body["ok"] is False and body["error"] == "invalid_blocks"
    assert body["errors"] == ["must be less than 3001 characters [json-pointer:/blocks/0/text/text]"]
    assert stack.slack.channel_messages("C1") == []
