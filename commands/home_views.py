"""Block Kit for the App Home's own modal: the phone Switchboard rings for /call (the Home is `notifiers/home.py`)."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ContextBlock, InputBlock, MarkdownTextObject, PlainTextInputElement
from slack_sdk.models.views import View

from bot.phone import national

PHONE_VIEW = "home_phone_view"


def phone_form(current: str | None) -> dict[str, Any]:
    """One input, the phone in national form; empty means "use my Slack profile's phone"."""
    return View(
        type="modal",
        callback_id=PHONE_VIEW,
        title="My phone for /call",
        submit="Save",
        close="Cancel",
        blocks=[
            InputBlock(
                block_id="phone",
                label="The phone Switchboard rings first",
                optional=True,
                hint="Leave it empty to use the phone on your Slack profile.",
                element=PlainTextInputElement(
                    action_id="value", initial_value=national(current) if current else None, placeholder="0412 345 678"
                ),
            ),
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text="Premium-rate, shared-cost and other numbers the dialling rules refuse can't be used."
                    )
                ]
            ),
        ],
    ).to_dict()
