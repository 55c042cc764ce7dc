"""Click-to-call: ring a person's own phone first, then the customer, and join the two (DataTechLabs).

Caller IDs are the point: the customer sees a business number, never the rep's own.

    leg A  rings the rep's phone      shows the tracking number the customer called, when known,
                                      else the customer's number
    leg B  rings the customer         shows that tracking number, else SWITCHBOARD_CALLER_ID

Guards: both numbers must pass the dialling rules (`bot.domain.dialling`); each requester may place
SWITCHBOARD_CALL_LIMIT calls per window and the workspace SWITCHBOARD_CALL_LIMIT_TEAM — a call's slot
is reserved in SQLite, in one transaction, before DataTechLabs is called, so parallel attempts can't
overrun the limit; bridging someone else is for admins unless SWITCHBOARD_BRIDGE_OTHERS=everyone.
Every call (placed or refused by DataTechLabs) is audited.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.domain.dialling import CallNotAllowed, countries, parse_dialable
from bot.domain.phones import phone_for
from bot.errors import UserError
from bot.phone import national
from bot.telco.base import TelcoError, ambiguous
from bot.telco.dtl import CallbackCall, Leg
from bot.workspaces import current_team
from notifiers.text import mrkdwn

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlacedCall:
    rep: str  # Slack user whose phone rings first
    rep_phone: str
    customer: str
    leg_a_caller_id: str
    leg_b_caller_id: str
    result: CallbackCall


def allowed_countries(services: Services) -> frozenset[str]:
    return countries(services.settings.call_countries, services.settings.country)


def _slots_used(services: Services, requester: str | None, window: float) -> tuple[int, float | None]:
    """(slots reserved or placed in the window, the oldest one's time) for one person, or the workspace — this
    workspace: each has its own SWITCHBOARD_CALL_LIMIT_TEAM."""
    query = "SELECT COUNT(*), MIN(reserved_at) FROM call_slots WHERE reserved_at > ? AND team_id = ?"
    params: tuple[Any, ...] = (time.time() - window, current_team())
    if requester is not None:
        query += " AND requester = ?"
        params = (*params, requester)
    count, oldest = services.store.execute(query, params).fetchone()
    return int(count), oldest


def check_rate(services: Services, requester: str) -> None:
    """Refuse when the person's or the workspace's calls in the window are used up (the sentence says until when)."""
    for who, (limit, window) in ((requester, services.settings.call_limit), (None, services.settings.call_limit_team)):
        used, oldest = _slots_used(services, who, window)
        if used >= limit:
            wait = max(1, int((oldest or time.time()) + window - time.time() + 59) // 60)
            whose = "You've" if who else "Your team has"
            raise CallNotAllowed(
                f"{whose} placed {limit} calls in the last {_window(window)}, the most Switchboard allows. "
                f"Try again in about {wait} minute{'s' if wait != 1 else ''}."
            )


def _window(seconds: float) -> str:
    return f"{int(seconds // 3600)} hours" if seconds >= 7200 else f"{int(seconds // 60)} minutes"


def reserve_slot(services: Services, requester: str) -> int:
    """Take one call slot, or refuse: counted and taken in one write transaction, so 20 parallel attempts
    with a limit of N place exactly N calls."""
    with services.store.transaction():
        check_rate(services, requester)
        cursor = services.store.execute(
            "INSERT INTO call_slots (requester, reserved_at, state, team_id) VALUES (?, ?, 'reserved', ?)",
            (requester, time.time(), current_team()),
        )
    return int(cursor.lastrowid or 0)


def release_slot(services: Services, slot: int) -> None:
    """The call never reached DataTechLabs (or DataTechLabs refused it): the slot counts no more."""
    services.store.execute("DELETE FROM call_slots WHERE id = ?", (slot,))


def check_bridge(services: Services, requester: str, target: str) -> None:
    if target == requester or services.settings.bridge_others == "everyone" or services.is_admin(requester):
        return
    raise CallNotAllowed(
        "Only Switchboard admins can connect someone else to a call. You can call yourself with `/call <number>`."
    )


def number_they_called(services: Services, customer: str) -> str | None:
    """The tracking number this customer last called or texted, if an alert of this workspace knows it."""
    row = services.store.execute(
        "SELECT tracking FROM alerts WHERE caller = ? AND tracking IS NOT NULL AND team_id = ?"
        " ORDER BY id DESC LIMIT 1",
        (customer, current_team()),
    ).fetchone()
    return str(row[0]) if row else None


def business_number(services: Services, tracking: str | None) -> str:
    """The number the customer sees: the one they called, else the workspace's caller id (SWITCHBOARD_CALLER_ID)."""
    if tracking:
        return tracking
    caller_id = services.workspace().caller_id
    if caller_id:
        return caller_id
    raise CallNotAllowed(
        "I don't know which business number the customer should see. Call back from an alert, or ask an admin "
        "to set SWITCHBOARD_CALLER_ID."
    )


def check_call(services: Services, *, requester: str, customer_text: str, rep: str) -> str:
    """The quick rules, checked before the ack: the customer's number (E.164) when the call may go ahead."""
    customer = parse_dialable(customer_text, services.settings.country, allowed_countries(services))
    check_bridge(services, requester, rep)
    check_rate(services, requester)
    business_number(services, number_they_called(services, customer))
    return customer


async def place_call(
    services: Services,
    *,
    requester: str,
    customer_text: str,
    rep: str | None = None,
    tracking: str | None = None,
    note: str | None = None,
    via: str = "command",
) -> PlacedCall:
    """Check every rule, ring `rep` (default: the requester) then the customer, and audit it."""
    if services.dtl is None:
        raise UserError("Click-to-call isn't set up: an admin needs to add the DataTechLabs settings.")
    rep = rep or requester
    customer = parse_dialable(customer_text, services.settings.country, allowed_countries(services))
    check_bridge(services, requester, rep)
    tracking = tracking or number_they_called(services, customer)
    shown = business_number(services, tracking)
    slot = reserve_slot(services, requester)
    try:
        rep_phone = await phone_for(services, rep, requester=requester)
    except UserError:
        release_slot(services, slot)
        raise
    leg_a = Leg(to=rep_phone, caller_id=tracking or customer)
    leg_b = Leg(to=customer, caller_id=shown)
    detail: dict[str, Any] = {"rep": rep, "customer": customer, "shown_to_customer": shown, "via": via}
    if note:
        detail["note"] = note[:500]
    try:
        result = await services.dtl.callback_call(leg_a, leg_b)
    except TelcoError as exc:
        if not ambiguous(exc):  # DataTechLabs said no: no call was placed
            release_slot(services, slot)
        services.store.audit(
            requester,
            "call.failed",
            subject=customer,
            detail=json.dumps({**detail, "error": exc.detail}),
            team=current_team(),
        )
        raise
    services.store.execute("UPDATE call_slots SET state = 'placed' WHERE id = ?", (slot,))
    services.store.audit(
        requester,
        "call.placed",
        subject=customer,
        detail=json.dumps(detail),
        provider_ref=result.call_id,
        team=current_team(),
    )
    if rep != requester:
        why = f" — “{mrkdwn(note, 500)}”" if note else ""
        services.outbox.post(
            rep,
            f"📞 <@{requester}> asked you to take a call with {national(customer)}{why}. "
            f"Your phone ({national(rep_phone)}) is ringing now.",
        )
    return PlacedCall(rep, rep_phone, customer, leg_a.caller_id, leg_b.caller_id, result)
