"""AVANSER request callbacks → the request's own message, updated in place (or a new post)."""

from __future__ import annotations

from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

from bot.phone import national
from notifiers.events import AvanserRequestUpdate


def request_key(request_id: str) -> str:
    return f"request:{request_id}"


def render_request_update(event: AvanserRequestUpdate) -> tuple[str, list[dict[str, str]]]:
    number = national(event.service_e164) if event.service_e164 else "the number"
    if event.status == "completed":
        text = f"✅ *{number} is live.* Calls and texts to it will be posted here."
    else:
        reason = (event.message or "AVANSER gave no reason").rstrip(".")
        text = f"❌ *The request for {number} failed:* {reason}. Nothing was bought."
    text += f"\nRequest `{event.request_id}`" + (f" · {event.custom_id}" if event.custom_id else "")
    return text.split("\n")[0].replace("*", ""), [SectionBlock(text=MarkdownTextObject(text=text)).to_dict()]
