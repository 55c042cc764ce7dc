"""Telco events as Switchboard reads them: one pydantic model per webhook, unknown fields kept.

Each model knows its dedup key: the provider's own id for the event, so a replay is recognised.
A payload that cannot be the event (no id, a field of the wrong kind) fails validation, and the
webhook answers 400 with the reason.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.phone import from_avanser, parse_number

CALL_STATUSES = {
    "avanser_missed_call": "missed",
    "avanser_abandoned_call": "abandoned",
    "avanser_busy_call": "busy",
    "avanser_unanswered_call": "unanswered",
    "avanser_answered_call": "answered",
    "avanser_fax_call": "fax",
}


PLACEHOLDER = re.compile(r"^(\[\[\w+\]\]|__\w+__)$")  # a template tag AVANSER left unsubstituted


def is_placeholder(value: Any) -> bool:
    """`[[uniqueid]]` or `__URL__` left literal: the field counts as absent."""
    return isinstance(value, str) and bool(PLACEHOLDER.match(value.strip()))


def _digest(*values: Any) -> str:
    return hashlib.sha256(json.dumps(values, default=str).encode()).hexdigest()[:32]


def _e164_or_none(value: str | None, reader: Any = from_avanser) -> str | None:
    if not value:
        return None
    try:
        return str(reader(value))
    except Exception:  # a private/withheld caller comes as text, not a number
        return None


class Event(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    source: ClassVar[str]

    def dedup_key(self) -> str:
        """The provider's own id for this event; subclasses name it, this is the last resort."""
        return _digest(self.model_dump(mode="json"))

    @property
    def extra_fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class AvanserCall(Event):
    """A completed call on a tracking number (seed 001, Call-URI: a GET with these parameters)."""

    source: ClassVar[str] = "avanser.call"
    clientid: str | None = None
    callid: str | None = None
    uniqueid: str | None = None
    bnum: str  # the tracking number, e.g. +61-0290081596
    adname: str = ""
    target: str = ""
    targetname: str = ""
    ani: str = ""  # the caller, or a private reference
    tzdate: str = ""
    duration: int = 0
    callstatus: str = "avanser_missed_call"
    callcode: str | None = None
    clocation: str = ""
    cstate: str = ""
    ccountry: str = ""
    custom_id: str = ""
    custom_group: str = ""
    recording_url: str | None = Field(
        default=None, validation_alias=AliasChoices("recording_url", "recording", "URL", "url", "audio_url")
    )

    @model_validator(mode="before")
    @classmethod
    def _tags_left_literal(cls, values: Any) -> Any:
        # The call-URI is registered as seed 000's template; a tag AVANSER didn't fill counts as absent.
        if isinstance(values, dict):
            return {k: v for k, v in values.items() if not is_placeholder(v)}
        return values

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return 0 if value in (None, "") or not str(value).strip().isdigit() else value

    @field_validator("callstatus", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        return value or "avanser_missed_call"

    def dedup_key(self) -> str:
        """AVANSER's uniqueid, else its callid, else a hash of the call's own fields (never a literal tag)."""
        return (
            self.uniqueid
            or self.callid
            or "fields:"
            + _digest(self.clientid, self.bnum, self.ani, self.tzdate, self.duration, self.callstatus, self.target)
        )

    @property
    def status(self) -> str:
        """missed | abandoned | busy | unanswered | answered | fax, or AVANSER's own word for one it adds later."""
        known = CALL_STATUSES.get(self.callstatus)
        if known:
            return known
        return self.callstatus.removeprefix("avanser_").removesuffix("_call").replace("_", " ") or "missed"

    @property
    def is_voicemail(self) -> bool:
        return bool(self.recording_url) and self.status != "answered"

    @property
    def tracking_e164(self) -> str | None:
        return _e164_or_none(self.bnum)

    @property
    def caller_e164(self) -> str | None:
        return _e164_or_none(self.ani)

    @property
    def answer_point_e164(self) -> str | None:
        return _e164_or_none(self.target)

    @property
    def at(self) -> datetime | None:
        try:
            return datetime.fromisoformat(self.tzdate)
        except ValueError:
            return None

    @property
    def from_feed(self) -> bool:
        """The call came from AVANSER's data feed (its record's own fields are kept), not from its webhook."""
        return "call_unique_id" in (self.model_extra or {})


class AvanserRecording(AvanserCall):
    """The data feed has the recording of a call Switchboard already knows (its alert gets the file).

    Not a webhook: stored by the feed pull, after the call's own event, with the call's dedup key."""

    source: ClassVar[str] = "avanser.recording"
    recording_url: str


# Seed 000's data feed record → the call-URI's parameter names (seed 001). Every other field is kept as it is.
FEED_FIELDS = {
    "call_unique_id": "uniqueid",
    "call_id": "callid",
    "client_id": "clientid",
    "tracking_number": "bnum",
    "tracking_name": "adname",
    "target_number": "target",
    "target_name": "targetname",
    "caller_number": "ani",
    "call_tz_start_time": "tzdate",
    "call_duration": "duration",
    "call_status_code": "callcode",
    "caller_location": "clocation",
    "caller_state": "cstate",
    "caller_country": "ccountry",
}


def feed_status(value: Any) -> str:
    """The feed's `call_status` ("Missed", "Answered", …) as the call-URI's `callstatus` (avanser_missed_call)."""
    words = re.sub(r"[^a-z0-9]+", "_", str(value or "").strip().lower()).strip("_")
    return f"avanser_{words}_call" if words else "avanser_missed_call"


def feed_call_payload(record: dict[str, Any]) -> dict[str, Any]:
    """A data feed record as the call-URI's parameters (its own fields kept beside them).

    The recording is the call's only when `call_has_audio` is 1 and `call_audio_url` is given."""
    payload: dict[str, Any] = dict(record)
    for feed_name, uri_name in FEED_FIELDS.items():
        value = record.get(feed_name)
        if value is not None and value != "":
            payload[uri_name] = str(value)
    payload["callstatus"] = feed_status(record.get("call_status"))
    audio = str(record.get("call_has_audio") or "0").strip()
    url = str(record.get("call_audio_url") or "").strip()
    if audio in ("1", "true", "True") and url:
        payload["recording_url"] = url
    return payload


class AvanserSms(Event):
    """An inbound text to a virtual mobile tracking number (seed 001, SMS-Forward)."""

    source: ClassVar[str] = "avanser.sms"
    client_id: str | None = Field(default=None, validation_alias=AliasChoices("clientId", "clientid"))
    to: str
    sender: str = Field(validation_alias=AliasChoices("from", "sender"))
    txt: str = ""
    date: str = ""

    def dedup_key(self) -> str:
        # The seed gives SMS no id of its own: the same text from the same sender at the same second.
        return _digest(self.client_id, self.to, self.sender, self.date, self.txt)

    @property
    def tracking_e164(self) -> str | None:
        return _e164_or_none(self.to)

    @property
    def sender_e164(self) -> str | None:
        return _e164_or_none(self.sender)


class AvanserRequestUpdate(Event):
    """A provisioning request finished (seed 001, Callback-URI, POSTed JSON)."""

    source: ClassVar[str] = "avanser.request"
    request_id: str
    status: Literal["completed", "failed"] | str
    account_id: int | None = None
    custom_id: str | None = None
    message: str = ""
    service_number: str | None = None
    answer_point: str | None = None

    def dedup_key(self) -> str:
        return f"{self.request_id}:{self.status}"

    @property
    def service_e164(self) -> str | None:
        return _e164_or_none(self.service_number)


def exotel_number(value: str | None) -> str | None:
    return _e164_or_none(value, lambda v: parse_number(v, "IN"))


class ExotelCall(Event):
    """A call on an allocation (seed 002, Call Event; `insights` when subscribed)."""

    source: ClassVar[str] = "exotel.call"
    call_sid: str
    connection_id: str | None = None
    greenvn: str | None = None
    greenvn_id: str | None = None
    caller: str = Field(default="", validation_alias=AliasChoices("from", "caller"))
    to: str = ""
    call_type: str | None = None
    direction: str | None = None
    start_time: str | None = None
    current_time: str | None = None
    dial_call_duration: int = 0
    on_call_duration: int = 0
    dial_call_status: str | None = None
    recording_url: str | None = None
    insights: dict[str, Any] | None = None

    @field_validator("dial_call_duration", "on_call_duration", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        return 0 if value in (None, "", "null") else value

    @field_validator("recording_url", mode="before")
    @classmethod
    def _recording(cls, value: Any) -> Any:
        return None if value in ("", "null") else value

    def dedup_key(self) -> str:
        return self.call_sid


class ExotelDeallocation(Event):
    """The deallocation policy released an allocation (seed 002, Deallocation Callback Event)."""

    source: ClassVar[str] = "exotel.deallocation"
    greenvn_id: str
    connection_id: str
    greenvn: str | None = None
    usage: str | None = None
    state: str = "vault"
    aparty_numbers: list[str] = Field(default_factory=list)
    bparty_numbers: list[str] = Field(default_factory=list)
    aparty_pins: list[int | None] = Field(default_factory=list)
    bparty_pins: list[int | None] = Field(default_factory=list)

    def dedup_key(self) -> str:
        return f"{self.greenvn_id}:{self.connection_id}"


class ExotelVerification(Event):
    """A new caller entered a PIN: success carries connection_id, failure carries call_sid (seed 002)."""

    source: ClassVar[str] = "exotel.verification"
    caller: str
    pin: str | int | None = None
    greenvn: str | None = None
    greenvn_id: str | None = None
    connection_id: str | None = None
    call_sid: str | None = None
    start_time: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.call_sid is None

    def dedup_key(self) -> str:
        if self.call_sid:
            return f"failed:{self.call_sid}"
        if not (self.connection_id or self.greenvn_id):
            raise ValueError("missing connection_id or greenvn_id")
        return "ok:" + _digest(self.connection_id, self.greenvn_id, self.caller, self.pin)


EVENT_TYPES: dict[str, type[Event]] = {
    cls.source: cls
    for cls in (
        AvanserCall,
        AvanserRecording,
        AvanserSms,
        AvanserRequestUpdate,
        ExotelCall,
        ExotelDeallocation,
        ExotelVerification,
    )
}


def parse_event(source: str, payload: dict[str, Any]) -> Event:
    """The event model for a stored or received payload (raises pydantic.ValidationError / ValueError)."""
    return EVENT_TYPES[source].model_validate(payload)
