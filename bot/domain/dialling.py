"""Which numbers Switchboard may ring: one rule for every path that places a call.

Used for the customer (`/call <number>`, `/call … @user`, Call back, the message shortcut) and for
the rep's own phone (at `/call phone` registration and again at dial time, registered or from the
Slack profile). A number may be rung only when it is

- in SWITCHBOARD_CALL_COUNTRIES (default: SWITCHBOARD_COUNTRY), and
- a fixed-line, mobile or toll-free number by phonenumbers' number types, and
- not in a range the prefix table below names (where phonenumbers' types are coarse or where a
  range costs the caller money whatever its type).

Everything else is refused with a sentence that says why: premium-rate, shared-cost, personal/UAN,
VoIP, pager, voicemail-only, satellite and international networks (+870, +881, +882, +883, +888),
short codes and emergency or special services (000, 112, 911, 1223, …).
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType, shortnumberinfo

from bot.errors import UserError
from bot.phone import InvalidNumber, national, parse_number

ALLOWED_TYPES = {
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.TOLL_FREE,
}
REFUSED_TYPES = {
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number (the caller pays part of the call)",
    PhoneNumberType.PERSONAL_NUMBER: "a personal (follow-me) number",
    PhoneNumberType.UAN: "a universal access number",
    PhoneNumberType.VOIP: "an internet (VoIP) number",
    PhoneNumberType.PAGER: "a pager",
    PhoneNumberType.VOICEMAIL: "a voicemail access number",
}
# National significant number prefixes refused whatever phonenumbers' type says, by region.
REFUSED_PREFIXES: dict[str, tuple[tuple[str, str], ...]] = {
    "AU": (("19", "a premium-rate number (19…)"), ("13", "a shared-cost number (13… / 1300…)")),
    "GB": (
        ("9", "a premium-rate number (09…)"),
        ("84", "a shared-cost number (084…)"),
        ("87", "a shared-cost number (087…)"),
        ("70", "a personal number (070…)"),
        ("76", "a pager (076…)"),
    ),
    "NZ": (("900", "a premium-rate number (0900…)"),),
    "US": (("900", "a premium-rate number (1-900…)"),),
    "IN": (("1860", "a shared-cost number (1860…)"),),
}
INTERNATIONAL_NETWORKS = {870, 878, 881, 882, 883, 888, 979}


class CallNotAllowed(UserError):
    """The call breaks a rule: a number Switchboard may not ring, the rate limit, or who may bridge whom."""


def countries(allowed: frozenset[str], default: str) -> frozenset[str]:
    return allowed or frozenset({default})


def parse_dialable(text: str, region: str, allowed: frozenset[str]) -> str:
    """What a person typed → E.164, refusing emergency and special services and short codes with the reason."""
    digits = "".join(c for c in text if c.isdigit() or c == "+")
    for place in sorted(allowed | {region}):
        if digits and shortnumberinfo.is_emergency_number(digits, place):
            raise CallNotAllowed(f"{text.strip()} is an emergency number; Switchboard never dials emergency services.")
    try:
        number = parse_number(text, region)
    except InvalidNumber:
        if (
            digits
            and len(digits) <= 8
            and shortnumberinfo.is_valid_short_number_for_region(phonenumbers.parse(digits, region), region)
        ):
            raise CallNotAllowed(
                f"{text.strip()} is a short code or special service; Switchboard only dials full phone numbers."
            ) from None
        raise
    check_dialable(number, allowed)
    return number


def check_dialable(number: str, allowed: frozenset[str]) -> None:
    """Refuse `number` (E.164) unless Switchboard may ring it; the sentence says why."""
    parsed = phonenumbers.parse(number, None)
    shown = national(number)
    if parsed.country_code in INTERNATIONAL_NETWORKS:
        raise CallNotAllowed(f"{number} is on a satellite or international network; Switchboard doesn't dial those.")
    region = phonenumbers.region_code_for_number(parsed)
    if region not in allowed:
        raise CallNotAllowed(
            f"Switchboard isn't allowed to call {shown} ({region or 'unknown country'}). "
            f"Allowed countries: {', '.join(sorted(allowed))}."
        )
    nsn = phonenumbers.national_significant_number(parsed)
    for prefix, what in REFUSED_PREFIXES.get(region, ()):
        if nsn.startswith(prefix):
            raise CallNotAllowed(f"{shown} is {what}; Switchboard only dials fixed-line, mobile and toll-free numbers.")
    kind = phonenumbers.number_type(parsed)
    if kind not in ALLOWED_TYPES:
        what = REFUSED_TYPES.get(kind, "a kind of number Switchboard can't tell")
        raise CallNotAllowed(f"{shown} is {what}; Switchboard only dials fixed-line, mobile and toll-free numbers.")
