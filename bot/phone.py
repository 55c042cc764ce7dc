"""Phone numbers: what a person types in, E.164 inside Switchboard, each provider's own form out.

parse_number("0290081596", "AU")   -> "+61290081596"
to_avanser("+61290081596")        -> "61290081596"     (seed 001: E.164 digits, no +)
from_avanser("+61-0290081596")    -> "+61290081596"     (seed 001 call-URI form)
to_exotel("+919176226528")        -> "+919176226528"    (seed 002: E.164 with +)
to_dtl("+61412345678")            -> "61412345678"      (seed 003 shows bare digits)

The readers and formatters are pure and cached: a storm on one number parses it once.
"""

from __future__ import annotations

import functools

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

from bot.errors import UserError


class InvalidNumber(UserError):
    """What was typed is not a phone number Switchboard can use."""


@functools.lru_cache(maxsize=8192)
def parse_number(text: str, default_region: str = "AU") -> str:
    """E.164 for what a person typed (`0290081596`, `+61 2 9008 1596`, `61290081596`)."""
    raw = (text or "").strip()
    if not raw:
        raise InvalidNumber("Please give a phone number.")
    candidate = raw.replace("-", " ")
    try:
        number = phonenumbers.parse(candidate, default_region)
        if not phonenumbers.is_valid_number(number) and not candidate.startswith("+"):
            # 61290081596: international digits typed without the +.
            number = phonenumbers.parse("+" + candidate.lstrip("0"), None)
    except NumberParseException:
        raise InvalidNumber(f"“{raw}” isn't a phone number I can read.") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidNumber(f"“{raw}” isn't a valid phone number. Include the area code, e.g. 02 9008 1596.")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def is_e164(value: str) -> bool:
    try:
        number = phonenumbers.parse(value, None)
    except NumberParseException:
        return False
    return value.startswith("+") and phonenumbers.is_valid_number(number)


def to_avanser(e164: str) -> str:
    return e164.lstrip("+")


@functools.lru_cache(maxsize=8192)
def from_avanser(value: str) -> str:
    """E.164 from AVANSER's forms: `61290081596`, `+61-0290081596` (call-URI), `0290081596` (national)."""
    text = value.strip()
    if text.startswith("+"):
        number = phonenumbers.parse(text.replace("-", ""), None)
    elif text.startswith("0"):
        number = phonenumbers.parse(text, "AU")
    else:
        number = phonenumbers.parse("+" + text, None)
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def to_exotel(e164: str) -> str:
    return e164


def to_dtl(e164: str) -> str:
    return e164.lstrip("+")


@functools.lru_cache(maxsize=8192)
def national(e164: str) -> str:
    """`02 9008 1596` — how people in the number's own country write it."""
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164, None), PhoneNumberFormat.NATIONAL)
    except NumberParseException:
        return e164


@functools.lru_cache(maxsize=8192)
def international(e164: str) -> str:
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164, None), PhoneNumberFormat.INTERNATIONAL)
    except NumberParseException:
        return e164


@functools.lru_cache(maxsize=8192)
def region_of(e164: str) -> str | None:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except NumberParseException:
        return None
