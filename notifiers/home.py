"""The App Home: one person's dashboard, as a Block Kit `home` view (pure: data in, view out).

    My virtual numbers       soonest to expire first: parties (masked as the allocation says), time left,
                             Extend 1 hour / 1 day and Release
    My tracking numbers      requested by the viewer (admins: all): route and its options, calls and
                             missed calls today, a link to its thread
    Missed calls waiting     unclaimed missed calls and voicemails of the last 24 h on those numbers,
                             newest first, with Claim and Call back
    My phone for /call       the phone Switchboard rings, with Change
    Waiting for approval     admins: requests with their cost, Approve and Reject

Every time is a Slack date token (each viewer sees their own zone); outside text is escaped by
`notifiers.text`. A view holds at most 100 blocks: each section shows its first few and ends with
"and N more — `/vn list`" (or the command that lists them all). An empty section says what to do next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.phone import national
from notifiers.calls import HEADLINES
from notifiers.message import minutes_text, number_text
from notifiers.provisioning import APPROVE_ACTION, REJECT_ACTION
from notifiers.routes import route_option_words
from notifiers.text import CONFIRM_TEXT, SECTION, link, mrkdwn, slack_date, truncate

HOME_EXTEND_ACTION = "home_vn_extend"  # home_vn_extend-1h, home_vn_extend-1d; value "<id>:<duration>"
HOME_RELEASE_ACTION = "home_vn_release"
HOME_CLAIM_ACTION = "home_claim"
HOME_CALL_BACK_ACTION = "home_call_back"
HOME_PHONE_ACTION = "home_phone"

# How many of each a Home shows: with their headers, dividers and "more" lines, at most 80 of Slack's 100 blocks.
MAX_ALLOCATIONS = 8  # two blocks each
MAX_NUMBERS = 10  # one block each
MAX_CALLS = 10  # two blocks each
MAX_APPROVALS = 8  # two blocks each


@dataclass(frozen=True)
class HomeAllocation:
    id: int
    green_vn: str | None
    aparty: list[str]
    bparty: list[str]
    usage: str
    masked: bool
    expires_at: float


@dataclass(frozen=True)
class HomeNumber:
    number: str
    name: str | None
    channel: str | None  # its own route's channel; None without one
    options: dict[str, Any]
    calls_today: int
    missed_today: int
    thread: str | None = None  # a link to the message its calls reply under
    requester: str | None = None


@dataclass(frozen=True)
class HomeCall:
    alert_id: int
    kind: str
    caller: str | None  # E.164, or None when withheld
    caller_raw: str
    masked: bool
    number: str | None
    name: str | None
    at: float
    channel: str


@dataclass(frozen=True)
class HomeApproval:
    request_id: int
    requester: str
    what: str  # mrkdwn, its outside parts escaped (bot.domain.numbers.summary)
    details: list[str]
    cost: str | None


@dataclass
class Dashboard:
    user: str
    admin: bool
    now: float
    claim_within: float
    allocations: list[HomeAllocation] = field(default_factory=list)
    allocations_total: int = 0
    numbers: list[HomeNumber] = field(default_factory=list)
    numbers_total: int = 0
    calls: list[HomeCall] = field(default_factory=list)
    calls_total: int = 0
    phone: str | None = None
    approvals: list[HomeApproval] = field(default_factory=list)
    approvals_total: int = 0
    approvals_channel: str | None = None


def _section(text: str, block_id: str | None = None, accessory: Any = None) -> SectionBlock:
    return SectionBlock(block_id=block_id, text=MarkdownTextObject(text=truncate(text, SECTION)), accessory=accessory)


def _context(text: str, block_id: str | None = None) -> ContextBlock:
    return ContextBlock(block_id=block_id, elements=[MarkdownTextObject(text=truncate(text, 2000))])


def _more(shown: int, total: int, where: str, block_id: str) -> list[Any]:
    return [_context(f"and {total - shown} more — {where}", block_id)] if total > shown else []


def _people(numbers: list[str], masked: bool) -> str:
    return truncate(", ".join(number_text(n, n, mask=masked) for n in numbers) or "—", 600)


def allocations_blocks(d: Dashboard) -> list[Any]:
    blocks: list[Any] = [HeaderBlock(block_id="vn-header", text="My virtual numbers")]
    if not d.allocations:
        blocks.append(
            _section(
                "No virtual numbers. `/vn +919176226528 to +918136966620 for 2h` connects two people without sharing "
                "their own numbers (or `/vn new` for the form).",
                "vn-empty",
            )
        )
    for a in d.allocations[:MAX_ALLOCATIONS]:
        vn = mrkdwn(national(a.green_vn)) if a.green_vn else "A virtual number"
        arrow = "⇄" if a.usage == "twoway" else "→"
        left = minutes_text(a.expires_at - d.now) + " left" if a.expires_at > d.now else "ending now"
        text = (
            f"*{vn}* (#{a.id}) connects {_people(a.aparty, a.masked)} {arrow} {_people(a.bparty, a.masked)}\n"
            f"Ends {slack_date(a.expires_at)} · {left}"
        )
        blocks.append(_section(text, f"vn-{a.id}"))
        value = str(a.id)
        blocks.append(
            ActionsBlock(
                block_id=f"vn-actions-{a.id}",
                elements=[
                    ButtonElement(text="Extend 1 hour", action_id=f"{HOME_EXTEND_ACTION}-1h", value=f"{value}:1h"),
                    ButtonElement(text="Extend 1 day", action_id=f"{HOME_EXTEND_ACTION}-1d", value=f"{value}:1d"),
                    ButtonElement(
                        text="Release",
                        action_id=HOME_RELEASE_ACTION,
                        value=value,
                        style="danger",
                        confirm=ConfirmObject(
                            title="Release it now?",
                            text=truncate(f"{vn} stops working at once.", CONFIRM_TEXT),
                            confirm="Release",
                            deny="Keep it",
                        ),
                    ),
                ],
            )
        )
    blocks += _more(min(len(d.allocations), MAX_ALLOCATIONS), d.allocations_total, "`/vn list`", "vn-more")
    return blocks


def numbers_blocks(d: Dashboard) -> list[Any]:
    title = "Tracking numbers" if d.admin else "My tracking numbers"
    blocks: list[Any] = [HeaderBlock(block_id="numbers-header", text=title)]
    if not d.numbers:
        blocks.append(
            _section(
                "You haven't asked for a tracking number yet. `/numbers search mobile` finds one; "
                "`/numbers new` asks for it.",
                "numbers-empty",
            )
        )
    for n in d.numbers[:MAX_NUMBERS]:
        name = f" — “{mrkdwn(n.name)}”" if n.name else ""
        where = f"alerts in <#{n.channel}>" if n.channel else "no route: `/numbers route <number> #channel`"
        lines = [f"*{mrkdwn(national(n.number))}*{name} · {where}"]
        if n.channel:
            lines.append(" · ".join(route_option_words(n.options, claim_within=d.claim_within)))
        today = f"Today: {n.calls_today} call{'s' if n.calls_today != 1 else ''}, {n.missed_today} missed"
        thread = link(n.thread, "its thread") if n.thread else None
        lines.append(today + (f" · {thread}" if thread else ""))
        if d.admin and n.requester and n.requester != d.user:
            lines.append(f"asked for by <@{n.requester}>")
        blocks.append(_section("\n".join(lines), f"number-{n.number}"))
    blocks += _more(min(len(d.numbers), MAX_NUMBERS), d.numbers_total, "`/numbers list`", "numbers-more")
    return blocks


def calls_blocks(d: Dashboard) -> list[Any]:
    blocks: list[Any] = [HeaderBlock(block_id="calls-header", text="Missed calls waiting")]
    if not d.calls:
        blocks.append(
            _section("Nothing waiting: no unclaimed missed calls on your numbers in the last 24 hours.", "calls-empty")
        )
    for c in d.calls[:MAX_CALLS]:
        icon, headline = HEADLINES.get(c.kind, ("📞", "Missed call"))
        caller = number_text(c.caller, c.caller_raw, mask=c.masked)
        to = f" to *{mrkdwn(c.name)}*" if c.name else ""
        number = f" · {mrkdwn(national(c.number))}" if c.number else ""
        text = f"{icon} *{headline}* from *{caller}*{to}{number}\n{slack_date(c.at)} · in <#{c.channel}>"
        blocks.append(_section(text, f"call-{c.alert_id}"))
        blocks.append(
            ActionsBlock(
                block_id=f"call-actions-{c.alert_id}",
                elements=[
                    ButtonElement(text="Claim", action_id=HOME_CLAIM_ACTION, value=str(c.alert_id)),
                    ButtonElement(
                        text="Call back", action_id=HOME_CALL_BACK_ACTION, value=str(c.alert_id), style="primary"
                    ),
                ],
            )
        )
    blocks += _more(min(len(d.calls), MAX_CALLS), d.calls_total, "in their channels", "calls-more")
    return blocks


def phone_blocks(d: Dashboard) -> list[Any]:
    if d.phone:
        text = f"Switchboard rings *{mrkdwn(national(d.phone))}* when you `/call` a customer or click Call back."
    else:
        text = (
            "No phone is registered: Switchboard rings the phone on your Slack profile when you `/call` or click "
            "Call back. Change sets the one to ring."
        )
    change = ButtonElement(text="Change", action_id=HOME_PHONE_ACTION, value="change")
    return [HeaderBlock(block_id="phone-header", text="My phone for /call"), _section(text, "phone", change)]


def approvals_blocks(d: Dashboard) -> list[Any]:
    blocks: list[Any] = [HeaderBlock(block_id="approvals-header", text="Waiting for approval")]
    if not d.approvals:
        blocks.append(_section("Nothing is waiting for an admin's approval.", "approvals-empty"))
    for r in d.approvals[:MAX_APPROVALS]:
        cost = mrkdwn(r.cost, 1000) if r.cost else "Cost: being looked up"
        details = "\n".join(f"• {line}" for line in r.details)
        text = f"📝 <@{r.requester}> asks for {r.what}.\n{details}\n💲 {cost}"
        blocks.append(_section(text, f"approval-{r.request_id}"))
        blocks.append(
            ActionsBlock(
                block_id=f"approval-actions-{r.request_id}",
                elements=[
                    ButtonElement(
                        text="Approve",
                        action_id=APPROVE_ACTION,
                        value=str(r.request_id),
                        style="primary",
                        confirm=ConfirmObject(
                            title="Approve this request?",
                            text=truncate(f"{r.what} — {cost}", CONFIRM_TEXT),
                            confirm="Approve",
                            deny="Not yet",
                        ),
                    ),
                    ButtonElement(text="Reject", action_id=REJECT_ACTION, value=str(r.request_id), style="danger"),
                ],
            )
        )
    where = f"in <#{d.approvals_channel}>" if d.approvals_channel else "in the approvals channel"
    blocks += _more(min(len(d.approvals), MAX_APPROVALS), d.approvals_total, where, "approvals-more")
    return blocks


def render_home(d: Dashboard) -> dict[str, Any]:
    """The viewer's App Home view (at most 100 blocks)."""
    blocks: list[Any] = [
        HeaderBlock(block_id="title", text="Switchboard"),
        _context(f"Your numbers, calls and requests as of {slack_date(d.now)}, in your own time zone.", "as-of"),
        DividerBlock(),
        *allocations_blocks(d),
        DividerBlock(),
        *numbers_blocks(d),
        DividerBlock(),
        *calls_blocks(d),
        DividerBlock(),
        *phone_blocks(d),
    ]
    if d.admin:
        blocks += [DividerBlock(), *approvals_blocks(d)]
    blocks.append(_context("`/numbers help` · `/vn help` · `/call help` — everything Switchboard can do.", "help"))
    return View(type="home", blocks=blocks[:100]).to_dict()
