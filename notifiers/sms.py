"""AVANSER inbound texts → Slack, one thread per sender per number so a conversation reads as one.

The text itself is shown as plain_text, exactly as it was sent: a stranger's `<!channel>`, link,
`*bold*`, `>` quote or code fence is never read as markup or formatting. Everything else from
AVANSER (sender, number, date) and the route's name is escaped mrkdwn (`notifiers.text`).
"""

from __future__ import annotations

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, PlainTextObject, SectionBlock

from bot.phone import national
from notifiers.events import AvanserSms
from notifiers.message import AlertState, Message, Route, alert_actions, alert_status_line, clock, number_text
from notifiers.text import CONTEXT, DATE_AT_TIME, LINE, SECTION, TEXT, body, mrkdwn, slack_date, truncate

PREVIEW = 200  # how much of a text the notification (`text`) shows


def thread_key(sms: AvanserSms) -> str:
    return f"sms:{sms.tracking_e164 or sms.to}:{sms.sender_e164 or sms.sender}"


def _body(sms: AvanserSms) -> dict[str, object]:
    return SectionBlock(block_id="sms", text=PlainTextObject(text=body(sms.txt, SECTION), emoji=False)).to_dict()


def sent_at(sms: AvanserSms, received_at: float | None) -> str:
    """When the text came, in each reader's zone: AVANSER's `date` carries no zone, so the time Switchboard
    received it (SMS-Forward posts it at once) is the token, and AVANSER's own words its fallback."""
    if received_at is None:
        return mrkdwn(sms.date, 100)
    return slack_date(received_at, DATE_AT_TIME, sms.date[:100] if sms.date else None)


def sms_summary(sms: AvanserSms, route: Route, received_at: float | None = None) -> str:
    """The text as one line of a storm digest — cheap: no Block Kit."""
    sender = number_text(sms.sender_e164, sms.sender, mask=route.mask_callers)
    name = mrkdwn(route.name) or "tracking number"
    when = clock(received_at) if received_at is not None else mrkdwn(sms.date, 100)
    return truncate(f"💬 {when} — text from {sender} to {name}", LINE)


def render_sms(sms: AvanserSms, route: Route, state: AlertState, *, first: bool) -> Message:
    """The first text from a sender starts the thread (with the buttons); later ones reply in it."""
    sender = number_text(sms.sender_e164, sms.sender, mask=route.mask_callers)
    tracking = mrkdwn(national(sms.tracking_e164) if sms.tracking_e164 else sms.to)
    name = mrkdwn(route.name) or "tracking number"
    date = sent_at(sms, state.created_at)
    preview = mrkdwn(sms.txt, PREVIEW)
    key = thread_key(sms)
    summary = sms_summary(sms, route, state.created_at)
    if not first:
        reply = [_body(sms)]
        if date:
            reply.append(ContextBlock(block_id="facts", elements=[MarkdownTextObject(text=date)]).to_dict())
        return Message(
            text=truncate(f"Text from {sender}: {preview}", TEXT),
            blocks=reply,
            summary=summary,
            thread_keys=(key,),
        )
    head = truncate(f"💬 *Text from {sender}* to *{name}* · {tracking}", SECTION)
    blocks = [SectionBlock(block_id="from", text=MarkdownTextObject(text=head)).to_dict(), _body(sms)]
    if date:
        facts = truncate(f"{date} · replies from this sender continue in the thread", CONTEXT)
        blocks.append(ContextBlock(block_id="facts", elements=[MarkdownTextObject(text=facts)]).to_dict())
    status = alert_status_line(state)
    if status:
        blocks.append(ContextBlock(block_id="status", elements=[MarkdownTextObject(text=status)]).to_dict())
    blocks.append(alert_actions(state))
    return Message(
        text=truncate(f"Text from {sender} to {name}: {preview}", TEXT),
        blocks=blocks,
        summary=summary,
        starts_thread=key,
    )
