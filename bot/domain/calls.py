"""Click-to-call: ring a person's own phone first, then the customer, and join the two (DataTechLabs).

Caller IDs are the point: the customer sees a business number, never the rep's own.

    leg A  rings the rep's phone      shows the tracking number the customer called, when known,
                                      else the customer's number
    leg B  rings the customer         shows that tracking number, else SWITCHBOARD_CALLER_ID

Guards: the customer's number must parse and be in SWITCHBOARD_CALL_COUNTRIES; each requester may
place SWITCHBOARD_CALL_LIMIT calls per window; bridging someone else is for admins unless
SWITCHBOARD_BRIDGE_OTHERS=everyone. Every call (placed or refused by DataTechLabs) is audited.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.domain.phones import phone_for
from bot.errors import UserError
from bot.phone import national, parse_number, region_of
from bot.telco.base import TelcoError
from bot.telco.dtl import CallbackCall, Leg
from notifiers.text import mrkdwn

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


class CallNotAllowed(UserError):
    """The call breaks a rule: country, rate limit, or who may bridge whom."""


@dataclass(frozen=True)
class PlacedCall:
    rep: str  # Slack user whose phone rings first
    rep_phone: str
    customer: str
    leg_a_caller_id: str
    leg_b_caller_id: str
    result: CallbackCall


def check_destination(services: Services, customer: str) -> None:
    allowed = services.settings.call_countries or frozenset({services.settings.country})
    region = region_of(customer)
    if region not in allowed:
        raise CallNotAllowed(
            f"Switchboard isn't allowed to call {national(customer)} ({region or 'unknown country'}). "
            f"Allowed countries: {', '.join(sorted(allowed))}."
        )


def check_rate(services: Services, requester: str) -> None:
    limit, window = services.settings.call_limit
    since = time.time() - window
    row = services.store.execute(
        "SELECT COUNT(*), MIN(at) FROM audit WHERE actor = ? AND action = 'call.placed' AND at > ?", (requester, since)
    ).fetchone()
    if int(row[0]) >= limit:
        wait = max(1, int(row[1] + window - time.time() + 59) // 60)
        raise CallNotAllowed(
            f"You've placed {limit} calls in the last {window // 60} minutes, the most Switchboard allows. "
            f"Try again in about {wait} minute{'s' if wait != 1 else ''}."
        )


def check_bridge(services: Services, requester: str, target: str) -> None:
    if target == requester or services.settings.bridge_others == "everyone" or services.is_admin(requester):
        return
    raise CallNotAllowed(
        "Only Switchboard admins can connect someone else to a call. You can call yourself with `/call <number>`."
    )


def number_they_called(services: Services, customer: str) -> str | None:
    """The tracking number this customer last called or texted, if an alert knows it."""
    row = services.store.execute(
        "SELECT tracking FROM alerts WHERE caller = ? AND tracking IS NOT NULL ORDER BY id DESC LIMIT 1", (customer,)
    ).fetchone()
    return str(row[0]) if row else None


def business_number(services: Services, tracking: str | None) -> str:
    """The number the customer sees: the one they called, else SWITCHBOARD_CALLER_ID."""
    if tracking:
        return tracking
    if services.settings.caller_id:
        return services.settings.caller_id
    raise CallNotAllowed(
        "I don't know which business number the customer should see. Call back from an alert, or ask an admin "
        "to set SWITCHBOARD_CALLER_ID."
    )


def check_call(services: Services, *, requester: str, customer_text: str, rep: str) -> str:
    """The quick rules, checked before the ack: the customer's number (E.164) when the call may go ahead."""
    customer = parse_number(customer_text, services.settings.country)
    check_destination(services, customer)
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
    customer = parse_number(customer_text, services.settings.country)
    check_destination(services, customer)
    check_bridge(services, requester, rep)
    check_rate(services, requester)
    tracking = tracking or number_they_called(services, customer)
    shown = business_number(services, tracking)
    rep_phone = await phone_for(services, rep, requester=requester)
    leg_a = Leg(to=rep_phone, caller_id=tracking or customer)
    leg_b = Leg(to=customer, caller_id=shown)
    detail: dict[str, Any] = {"rep": rep, "customer": customer, "shown_to_customer": shown, "via": via}
    if note:
        detail["note"] = note[:500]
    try:
        result = await services.dtl.callback_call(leg_a, leg_b)
    except TelcoError as exc:
        services.store.audit(
            requester, "call.failed", subject=customer, detail=json.dumps({**detail, "error": exc.detail})
        )
        raise
    services.store.audit(
        requester, "call.placed", subject=customer, detail=json.dumps(detail), provider_ref=result.call_id
    )
    if rep != requester:
        why = f" — “{mrkdwn(note, 500)}”" if note else ""
        services.outbox.post(
            rep,
            f"📞 <@{requester}> asked you to take a call with {national(customer)}{why}. "
            f"Your phone ({national(rep_phone)}) is ringing now.",
        )
    return PlacedCall(rep, rep_phone, customer, leg_a.caller_id, leg_b.caller_id, result)
