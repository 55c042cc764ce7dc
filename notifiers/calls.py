"""AVANSER calls → Slack: missed, abandoned, busy, unanswered, voicemail, and answered when asked."""

from __future__ import annotations

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

from bot.phone import national
from notifiers.events import AvanserCall
from notifiers.message import (
    AlertState,
    Message,
    Route,
    alert_actions,
    alert_status_line,
    duration_text,
    local_clock,
    local_time,
    number_text,
)
from notifiers.text import CONTEXT, LINE, SECTION, TEXT, mrkdwn, plain, shown_url, truncate

HEADLINES = {
    "missed": ("📞", "Missed call"),
    "abandoned": ("📞", "Abandoned call"),
    "busy": ("📞", "Busy — call not taken"),
    "unanswered": ("📞", "Unanswered call"),
    "answered": ("✅", "Answered call"),
    "fax": ("📠", "Fax call"),
    "voicemail": ("📼", "Voicemail"),
}


def kind_of(call: AvanserCall) -> str:
    return "voicemail" if call.is_voicemail else call.status


def wanted(call: AvanserCall, route: Route) -> bool:
    """Answered calls (and faxes) are posted only where the route asks for all calls."""
    return kind_of(call) not in ("answered", "fax") or route.report == "all"


def voicemail_title(call: AvanserCall, route: Route) -> str:
    """The voicemail file's title: plain text (a file title isn't mrkdwn), cut to a title's length."""
    if call.caller_e164:
        caller = number_text(call.caller_e164, mask=route.mask_callers)  # digits and bullets only
    else:
        caller = call.ani or "a private number"
    tracking = national(call.tracking_e164) if call.tracking_e164 else call.bnum
    name = call.adname or route.name or "tracking number"
    return plain(f"Voicemail — Voicemail from {caller} to {name} ({tracking})", 250)


def recording_title(call: AvanserCall, route: Route) -> str:
    """The title of a recording the data feed brought: a voicemail's, or a call recording's (answered calls)."""
    if call.is_voicemail:
        return voicemail_title(call, route)
    return voicemail_title(call, route).replace("Voicemail — Voicemail from", "Call recording — the call from", 1)


def recording_link_reply(call: AvanserCall, route: Route) -> str:
    """The reply in an alert's thread when the feed's recording can't be uploaded here (its host isn't allowed)."""
    what = "voicemail" if call.is_voicemail else "call recording"
    label = "▶ Play the voicemail" if call.is_voicemail else "▶ Play the recording"
    return f"📼 The {what} of this call, from AVANSER's data feed: {shown_url(call.recording_url, label)}"


RECOVERED = "↺ recovered from AVANSER's data feed (its webhook never came)"


def _headline(call: AvanserCall) -> tuple[str, str]:
    kind = kind_of(call)
    return HEADLINES.get(kind) or ("📞", f"Call ({mrkdwn(kind, 60)})")  # a status the seed doesn't list


def call_summary(call: AvanserCall, route: Route) -> str:
    """The call as one line of a storm digest — cheap: no Block Kit."""
    icon, headline = _headline(call)
    caller = number_text(call.caller_e164, call.ani, mask=route.mask_callers)
    name = mrkdwn(call.adname) or mrkdwn(route.name) or "tracking number"
    recovered = " (from the data feed)" if call.from_feed else ""
    # A recovered call may be hours old: its day is said; a live one's is the digest message's own.
    when = local_time(call.at, call.tzdate) if call.from_feed else local_clock(call.at, call.tzdate)
    return truncate(f"{icon} {when} — {headline.lower()} from {caller} to {name}{recovered}", LINE)


def render_call(call: AvanserCall, route: Route, state: AlertState) -> Message:
    """Every field from AVANSER (and the route's typed name) is escaped and cut by `notifiers.text`."""
    kind = kind_of(call)
    icon, headline = _headline(call)
    caller = number_text(call.caller_e164, call.ani, mask=route.mask_callers)
    state_name = call.cstate if call.cstate not in ("MOB",) else "mobile"
    where = mrkdwn(", ".join(p for p in (call.clocation, state_name) if p))
    tracking = mrkdwn(national(call.tracking_e164) if call.tracking_e164 else call.bnum)
    name = mrkdwn(call.adname) or mrkdwn(route.name) or "tracking number"
    answer_point = mrkdwn(call.targetname)
    if call.answer_point_e164:
        point = national(call.answer_point_e164)
        answer_point = f"{answer_point} ({point})" if answer_point else point
    lines = [f"{icon} *{headline}* from *{caller}*" + (f" ({where})" if where else "")]
    lines.append(f"to *{name}* · {tracking}" + (f" → {answer_point}" if answer_point else ""))
    blocks = [
        SectionBlock(block_id="call", text=MarkdownTextObject(text=truncate("\n".join(lines), SECTION))).to_dict()
    ]
    if kind == "voicemail" and call.recording_url:
        blocks.append(
            SectionBlock(
                block_id="recording",
                text=MarkdownTextObject(text=shown_url(call.recording_url, "▶ Play the voicemail")),
            ).to_dict()
        )
    facts = [local_time(call.at, call.tzdate)]
    if call.duration:
        facts.append(("talked " if kind == "answered" else "rang ") + duration_text(call.duration))
    if call.uniqueid:
        facts.append(f"ref {mrkdwn(call.uniqueid, 100)}")
    if call.from_feed:
        facts.append(RECOVERED)
    blocks.append(
        ContextBlock(
            block_id="facts", elements=[MarkdownTextObject(text=truncate(" · ".join(f for f in facts if f), CONTEXT))]
        ).to_dict()
    )
    status = alert_status_line(state, call.at)
    if status:
        blocks.append(ContextBlock(block_id="status", elements=[MarkdownTextObject(text=status)]).to_dict())
    blocks.append(alert_actions(state))
    text = f"{headline} from {caller} to {name} ({tracking})"
    # A number Switchboard provisioned threads its calls under its request message (also shown in the channel).
    keys = (f"number:{call.tracking_e164}",) if call.tracking_e164 else ()
    return Message(
        text=truncate(text, TEXT), blocks=blocks, summary=call_summary(call, route), thread_keys=keys, broadcast=True
    )


def recording_not_attached() -> str:
    """The reply in a voicemail's thread when its recording could not be attached ("{reason}" is filled in)."""
    return (
        "📼 I couldn't attach the voicemail recording here ({reason}). "
        "The *▶ Play the voicemail* link in the alert above still works."
    )
