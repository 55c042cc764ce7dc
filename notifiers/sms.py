"""AVANSER inbound texts → Slack, one thread per sender per number so a conversation reads as one."""

from __future__ import annotations

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

from bot.phone import national
from notifiers.events import AvanserSms
from notifiers.message import AlertState, Message, Route, alert_actions, alert_status_line, number_text


def thread_key(sms: AvanserSms) -> str:
    return f"sms:{sms.tracking_e164 or sms.to}:{sms.sender_e164 or sms.sender}"


def _quote(text: str) -> str:
    body = text.strip() or "(empty message)"
    return "\n".join("> " + line for line in body[:2800].splitlines())


def render_sms(sms: AvanserSms, route: Route, state: AlertState, *, first: bool) -> Message:
    """The first text from a sender starts the thread (with the buttons); later ones reply in it."""
    sender = number_text(sms.sender_e164, sms.sender, mask=route.mask_callers)
    tracking = national(sms.tracking_e164) if sms.tracking_e164 else sms.to
    name = route.name or "tracking number"
    key = thread_key(sms)
    if not first:
        reply = [SectionBlock(block_id="sms", text=MarkdownTextObject(text=_quote(sms.txt))).to_dict()]
        if sms.date:
            reply.append(ContextBlock(block_id="facts", elements=[MarkdownTextObject(text=sms.date)]).to_dict())
        return Message(
            text=f"Text from {sender}: {sms.txt[:200]}",
            blocks=reply,
            summary=f"💬 {sms.date} — text from {sender} to {name}",
            thread_keys=(key,),
        )
    blocks = [
        SectionBlock(
            block_id="sms",
            text=MarkdownTextObject(text=f"💬 *Text from {sender}* to *{name}* · {tracking}\n{_quote(sms.txt)}"),
        ).to_dict(),
    ]
    if sms.date:
        blocks.append(
            ContextBlock(
                block_id="facts",
                elements=[MarkdownTextObject(text=f"{sms.date} · replies from this sender continue in the thread")],
            ).to_dict()
        )
    status = alert_status_line(state)
    if status:
        blocks.append(ContextBlock(block_id="status", elements=[MarkdownTextObject(text=status)]).to_dict())
    blocks.append(alert_actions(state))
    return Message(
        text=f"Text from {sender} to {name}: {sms.txt[:200]}",
        blocks=blocks,
        summary=f"💬 {sms.date} — text from {sender} to {name}",
        starts_thread=key,
    )
