"""The message posted when an event's own message can't be built: the essentials, in plain text.

An acknowledged call or text is never lost because its rich message failed to render (a field of
an unexpected shape, a bug in a notifier): who called or texted which number, and when, is posted
instead, with the Claim and Call back buttons.
"""

from __future__ import annotations

from slack_sdk.models.blocks import PlainTextObject, SectionBlock

from notifiers.events import AvanserCall, AvanserSms, Event, ExotelCall
from notifiers.message import AlertState, Message, alert_actions

LIMIT = 2900


def _plain(value: object) -> str:
    return str(value or "").replace("\n", " ").strip()[:200] or "?"


def render_fallback(event: Event, state: AlertState | None = None) -> Message:
    """Who called or texted which number, when — nothing that can fail to render."""
    if isinstance(event, AvanserCall):
        status, caller, number = _plain(event.callstatus), _plain(event.ani), _plain(event.bnum)
        text = f"📞 Call ({status}) from {caller} to {number} at {_plain(event.tzdate)}"
    elif isinstance(event, AvanserSms):
        text = f"💬 Text from {_plain(event.sender)} to {_plain(event.to)} at {_plain(event.date)}: {_plain(event.txt)}"
    elif isinstance(event, ExotelCall):
        text = f"📞 Call from {_plain(event.caller)} on {_plain(event.greenvn)} at {_plain(event.start_time)}"
    else:
        text = f"An event from the provider ({event.source}) arrived"
    text += " (shown in short: its full message couldn't be built)"
    blocks = [SectionBlock(block_id="fallback", text=PlainTextObject(text=text[:LIMIT], emoji=True)).to_dict()]
    if state is not None:
        blocks.append(alert_actions(state))
    return Message(text=text[:LIMIT], blocks=blocks, summary=text[:200])
