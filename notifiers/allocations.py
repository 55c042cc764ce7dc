"""Exotel allocation events → the allocation's thread: calls, PIN verifications, deallocation."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.phone import national
from notifiers.events import ExotelCall, ExotelDeallocation, ExotelVerification, exotel_number
from notifiers.message import (
    AlertState,
    Message,
    Route,
    alert_actions,
    alert_status_line,
    duration_text,
    iso_time,
    number_text,
)
from notifiers.text import CONTEXT, LINE, SECTION, TEXT, mrkdwn, shown_url, slack_date, truncate


def allocation_keys(greenvn_id: str | None, greenvn: str | None) -> tuple[str, ...]:
    keys = []
    if greenvn_id:
        keys.append(f"allocation:{greenvn_id}")
    number = exotel_number(greenvn)
    if number:
        keys.append(f"allocation-number:{number}")
    return tuple(keys)


def _vn(greenvn: str | None) -> str:
    """The virtual number for mrkdwn: national form, or what Exotel sent, escaped."""
    number = exotel_number(greenvn)
    return mrkdwn(national(number) if number else (greenvn or "the virtual number"))


def render_allocation_call(event: ExotelCall, route: Route, state: AlertState) -> Message:
    """Every field from Exotel is escaped and cut by `notifiers.text`."""
    caller = number_text(exotel_number(event.caller), event.caller, mask=route.mask_callers)
    callee = number_text(exotel_number(event.to), event.to, mask=route.mask_callers)
    status = mrkdwn(event.dial_call_status or event.call_type or "ended", 100) or "ended"  # blank: "ended"
    facts = [status]
    if event.dial_call_duration:
        facts.append(duration_text(event.dial_call_duration))
    if event.insights and event.insights.get("DisconnectedBy"):
        facts.append(f"hung up by {mrkdwn(str(event.insights['DisconnectedBy']).lower(), 100)}")
    if event.start_time:
        facts.append(iso_time(event.start_time))
    vn = _vn(event.greenvn)
    line = truncate(f"📞 *Call on {vn}*: {caller} → {callee}", SECTION)
    blocks = [SectionBlock(block_id="call", text=MarkdownTextObject(text=line)).to_dict()]
    if event.recording_url:
        blocks.append(
            SectionBlock(
                block_id="recording",
                text=MarkdownTextObject(text=shown_url(event.recording_url, "▶ Play the recording")),
            ).to_dict()
        )
    blocks.append(
        ContextBlock(
            block_id="facts", elements=[MarkdownTextObject(text=truncate(" · ".join(facts), CONTEXT))]
        ).to_dict()
    )
    claimed = alert_status_line(state)
    if claimed:
        blocks.append(ContextBlock(block_id="status", elements=[MarkdownTextObject(text=claimed)]).to_dict())
    blocks.append(alert_actions(state))
    return Message(
        text=truncate(f"Call on {vn}: {caller} → {callee} ({status})", TEXT),
        blocks=blocks,
        summary=truncate(f"📞 call on {vn} from {caller}", LINE),
        thread_keys=allocation_keys(event.greenvn_id, event.greenvn),
    )


def render_verification(event: ExotelVerification, route: Route) -> Message:
    caller = number_text(exotel_number(event.caller), event.caller, mask=route.mask_callers)
    if event.succeeded:
        text = f"🔑 {caller} entered the right PIN and was connected through {_vn(event.greenvn)}."
    else:
        text = f"🚫 {caller} entered a wrong PIN on {_vn(event.greenvn)} and was not connected."
    return Message(
        text=text,
        blocks=[SectionBlock(text=MarkdownTextObject(text=text)).to_dict()],
        summary=truncate(text, LINE),
        thread_keys=allocation_keys(event.greenvn_id, event.greenvn),
    )


def render_deallocation(event: ExotelDeallocation) -> Message:
    text = (
        f"🔚 {_vn(event.greenvn)} was released: its time ran out, so Exotel ended the allocation "
        f"(connection `{mrkdwn(event.connection_id, 100)}`)."
    )
    return Message(
        text=text,
        blocks=[SectionBlock(text=MarkdownTextObject(text=text)).to_dict()],
        summary=truncate(text, LINE),
        thread_keys=allocation_keys(event.greenvn_id, event.greenvn),
    )


EXTEND_ACTION = "vn_extend"
EXTEND_CUSTOM_ACTION = "vn_extend_custom"
RELEASE_ACTION = "vn_release"


def _when(epoch: float) -> str:
    """The lease's end in each reader's own zone (a Slack date token)."""
    return slack_date(epoch)


def render_allocation(
    allocation_id: int,
    green_vn: str | None,
    parties: dict[str, Any],
    usage: str,
    owner: str,
    expires_at: float,
    state: str,
    masked: bool,
) -> tuple[str, list[dict[str, Any]]]:
    """The allocation's message: the root of its thread, edited when it changes or ends."""
    vn = mrkdwn(national(green_vn)) if green_vn else "a virtual number"

    def people(numbers: list[str]) -> str:
        return truncate(", ".join(number_text(n, n, mask=masked) for n in numbers) or "—", 1000)

    a, b = people(parties.get("aparty_numbers", [])), people(parties.get("bparty_numbers", []))
    arrow = "⇄" if usage == "twoway" else "→"
    pins = "set" if parties.get("aparty_pins") or parties.get("bparty_pins") else "none"
    if state == "active":
        headline = f"☎️ *{vn}* connects {a} {arrow} {b}"
        until = f"until {_when(expires_at)}"
    else:
        headline = f"~☎️ {vn} connected {a} {arrow} {b}~"
        until = {"expired": "ended: its time ran out", "released": "released", "deallocated": "ended by Exotel"}.get(
            state, mrkdwn(state, 100)
        )
    facts = f"#{allocation_id} · {mrkdwn(usage, 20)} · PINs {pins} · owner <@{owner}> · {until}"
    blocks = [
        SectionBlock(block_id="allocation", text=MarkdownTextObject(text=truncate(headline, SECTION))).to_dict(),
        ContextBlock(block_id="facts", elements=[MarkdownTextObject(text=facts)]).to_dict(),
    ]
    text = f"{vn} connects {a} {arrow} {b} ({until})" if state == "active" else f"{vn}: {until}"
    return text, blocks


def render_reminder(allocation_id: int, green_vn: str | None, expires_at: float) -> tuple[str, list[dict[str, Any]]]:
    vn = mrkdwn(national(green_vn)) if green_vn else "Your virtual number"
    text = f"⏰ {vn} (#{allocation_id}) will be released at {_when(expires_at)}. Keep it longer?"
    value = str(allocation_id)
    buttons = [
        ButtonElement(text="Extend 1 hour", action_id=f"{EXTEND_ACTION}-1h", value=f"{value}:1h", style="primary"),
        ButtonElement(text="Extend 1 day", action_id=f"{EXTEND_ACTION}-1d", value=f"{value}:1d"),
        ButtonElement(text="Extend…", action_id=EXTEND_CUSTOM_ACTION, value=value),
        ButtonElement(
            text="Release now",
            action_id=RELEASE_ACTION,
            value=value,
            style="danger",
            confirm=ConfirmObject(
                title="Release it now?", text=f"{vn} stops working at once.", confirm="Release", deny="Keep it"
            ),
        ),
    ]
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=text)).to_dict(),
        ActionsBlock(block_id=f"vn-{allocation_id}", elements=buttons).to_dict(),
    ]
    return text, blocks
