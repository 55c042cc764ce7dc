"""What a notifier returns, and the formatting every notifier shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from slack_sdk.models.blocks import ActionsBlock, ButtonElement

from bot.phone import national
from notifiers.text import DATE_AT_TIME, TIME_ONLY, mrkdwn, slack_date

CALL_BACK_ACTION = "alert_call_back"
CLAIM_ACTION = "alert_claim"


ReportLevel = Literal["missed", "all"]


@dataclass(frozen=True)
class Route:
    """Where a number's events go and how they are shown there (bot.domain.routing finds it)."""

    channel: str
    name: str | None = None  # the tracking number's friendly name
    report: ReportLevel = "missed"  # "all": answered calls are posted too
    mask_callers: bool = False  # show only the last 3 digits of callers in the channel
    via: Literal["number", "group", "default"] = "number"
    escalate: str | None = None  # `<@U…>` or `<!subteam^S…>`: who hears of an unclaimed call (else the requester)


@dataclass
class AlertState:
    """What people did about an alert (stored in the alerts table)."""

    id: int
    claimed_by: str | None = None
    claimed_at: float | None = None
    called_back_by: str | None = None
    called_back_at: float | None = None
    created_at: float | None = None
    escalated_at: float | None = None  # when "still unclaimed" was said in its thread


@dataclass
class Message:
    """A Slack message a notifier wants shown: post it, reply in a thread, or edit an earlier one."""

    text: str  # the notification and screen-reader fallback
    blocks: list[dict[str, Any]] = field(default_factory=list)
    summary: str = ""  # one line for a storm digest
    thread_keys: tuple[str, ...] = ()  # reply under the first registered thread among these
    starts_thread: str | None = None  # register this message as the root of this thread key
    update_key: str | None = None  # edit the message registered under this key instead of posting
    broadcast: bool = False  # when replying in a thread, show the reply in the channel too


def number_text(e164: str | None, raw: str = "", *, mask: bool = False) -> str:
    """`0410 203 045`, or `•••• ••• 045` when masked, or what the provider sent when it isn't a number.

    mrkdwn-safe: what the provider sent is escaped and cut (`notifiers.text.mrkdwn`)."""
    if not e164:
        return mrkdwn(raw or "a private number")
    shown = mrkdwn(national(e164))
    if mask:
        digits = [c for c in shown if c.isdigit()]
        keep = len(digits) - 3
        out, seen = [], 0
        for c in shown:
            if c.isdigit():
                out.append(c if seen >= keep else "•")
                seen += 1
            else:
                out.append(c)
        return "".join(out)
    return shown


def provider_time(at: datetime) -> str:
    """`12:11 pm, Thu 14 Nov` as the provider wrote it (its own zone)."""
    hour = at.strftime("%I").lstrip("0") or "12"
    return f"{hour}:{at.strftime('%M')} {at.strftime('%p').lower()}, {at.strftime('%a %d %b').replace(' 0', ' ')}"


def local_time(at: datetime | None, fallback: str = "") -> str:
    """When a call happened, in each reader's own zone (a Slack date token; the provider's own time as its
    fallback); a time without a zone can't be placed, so it is shown as sent (`fallback`, escaped)."""
    if at is None:
        return mrkdwn(fallback)
    if at.tzinfo is None:
        return mrkdwn(provider_time(at))
    return slack_date(at.timestamp(), DATE_AT_TIME, provider_time(at))


def local_clock(at: datetime | None, fallback: str = "") -> str:
    """`12:11 pm` in each reader's zone: for a storm digest's lines, which all fall in the minute its message was
    posted in (the day is the message's own); half the characters of `local_time`, so a digest holds more."""
    if at is None or at.tzinfo is None:
        return local_time(at, fallback)
    hour = at.strftime("%I").lstrip("0") or "12"
    return slack_date(at.timestamp(), TIME_ONLY, f"{hour}:{at.strftime('%M')} {at.strftime('%p').lower()}")


def iso_time(text: str | None) -> str:
    """A provider's ISO 8601 time with its offset, in each reader's zone; anything else as sent (escaped)."""
    try:
        at = datetime.fromisoformat(str(text or "").strip())
    except ValueError:
        return mrkdwn(text or "", 100)
    return local_time(at, text or "")


def clock(epoch: float, like: datetime | None = None) -> str:
    """`10:42` in each reader's zone (a Slack date token), falling back to the event's own zone."""
    tz = like.tzinfo if like is not None and like.tzinfo is not None else None
    fallback = datetime.fromtimestamp(epoch, tz or UTC).strftime("%H:%M") + ("" if tz is not None else " GMT")
    return slack_date(epoch, TIME_ONLY, fallback)


def minutes_text(seconds: float) -> str:
    """`15 min`, `2 h 5 min`."""
    minutes = max(1, round(seconds / 60))
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def duration_text(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def alert_actions(state: AlertState) -> dict[str, Any]:
    """Call back (always) and Claim (until someone has)."""
    elements = [ButtonElement(text="Call back", action_id=CALL_BACK_ACTION, value=str(state.id), style="primary")]
    if state.claimed_by is None:
        elements.append(ButtonElement(text="Claim", action_id=CLAIM_ACTION, value=str(state.id)))
    return ActionsBlock(block_id=f"alert-{state.id}", elements=elements).to_dict()


def alert_status_line(state: AlertState, like: datetime | None = None) -> str | None:
    parts = []
    if state.escalated_at and state.created_at and not (state.claimed_by or state.called_back_by):
        parts.append(f"⏰ Unclaimed for {minutes_text(state.escalated_at - state.created_at)}")
    if state.claimed_by:
        parts.append(
            f"🙋 Claimed by <@{state.claimed_by}>"
            + (f" at {clock(state.claimed_at, like)}" if state.claimed_at else "")
        )
    if state.called_back_by:
        parts.append(
            f"📲 Called back by <@{state.called_back_by}>"
            + (f" at {clock(state.called_back_at, like)}" if state.called_back_at else "")
        )
    return " · ".join(parts) or None
