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

from bot.errors import UserError
from bot.phone import InvalidNumber, national, parse_number, region_of
from bot.telco.base import TelcoError
from bot.telco.dtl import CallbackCall, Leg

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


class NoPhone(UserError):
    """The person to ring has no phone Switchboard can use."""


class CallNotAllowed(UserError):
    """The call breaks a rule: country, rate limit, or who may bridge whom."""


# -- the user phone registry (SQLite is the truth) ------------------------------------------------


def registered_phone(services: Services, user_id: str) -> str | None:
    row = services.store.execute("SELECT phone FROM user_phones WHERE user_id = ?", (user_id,)).fetchone()
    return str(row[0]) if row else None


def register_phone(services: Services, user_id: str, text: str) -> str:
    """Validate and store the phone Switchboard rings for `user_id`; returns it in E.164."""
    phone = parse_number(text, services.settings.country)
    services.store.execute(
        "INSERT INTO user_phones (user_id, phone, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT(user_id) DO UPDATE SET phone = excluded.phone, updated_at = excluded.updated_at",
        (user_id, phone, time.time()),
    )
    services.store.audit(user_id, "phone.register", subject=user_id)
    return phone


def clear_phone(services: Services, user_id: str) -> bool:
    cursor = services.store.execute("DELETE FROM user_phones WHERE user_id = ?", (user_id,))
    if cursor.rowcount:
        services.store.audit(user_id, "phone.clear", subject=user_id)
    return bool(cursor.rowcount)


def how_to_register(who: str = "you") -> str:
    if who == "you":
        return (
            "I don't have a phone number for you. Register the phone Switchboard should ring with "
            "`/call phone +61 412 345 678` (or add a phone number to your Slack profile)."
        )
    return (
        f"I don't have a phone number for <@{who}>. They can register one with `/call phone <number>` "
        "(or add a phone number to their Slack profile)."
    )


async def phone_for(services: Services, user_id: str, *, requester: str) -> str:
    """The registered phone, else the Slack profile's phone if it parses; NoPhone with guidance otherwise."""
    phone = registered_phone(services, user_id)
    if phone:
        return phone
    try:
        profile = await services.slack.users_profile_get(user=user_id)
        text = str((profile.get("profile") or {}).get("phone") or "")
    except Exception as exc:  # Slack unreachable or no users.profile:read: same guidance
        log.warning("could not read the Slack profile of %s: %s", user_id, type(exc).__name__)
        text = ""
    if text:
        try:
            return parse_number(text, services.settings.country)
        except InvalidNumber:
            pass
    raise NoPhone(how_to_register("you" if user_id == requester else user_id))


# -- placing a call ---------------------------------------------------------------------------------


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
    return PlacedCall(rep, rep_phone, customer, leg_a.caller_id, leg_b.caller_id, result)
