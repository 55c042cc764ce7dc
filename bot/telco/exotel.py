"""Exotel Lead Assist GreenVN client (seed 002): allocate a virtual number between two parties.

    UserError (bot.errors)
     ├── InvalidPin                              a PIN Exotel can't keep as given (a leading 0; not a
     │                                           positive integer): refused by the models, nothing sent
     └── TelcoError (bot.telco.base)
          ├── ProviderUnavailable / ProviderTimeout / ProviderRateLimited / ProviderBadResponse
          │                                           (HTTP 499 "Response timeout exceeded" is a timeout;
          │                                           429 "Throttle limit exceeded" is rate limiting)
          ├── ProviderAuthFailed                      code 7, or HTTP 401/402
          ├── ProviderMaybeApplied
          │    └── ExotelMaybeApplied                 PUT …/vn got no clear answer and the allocation
          │         │                                 couldn't settle it: it may have a new number
          │         └── ExotelMaybeCreated            POST …/greenvn answered 499, 5xx or cut off: the
          │                                           allocation may have been created — check /vn list
          └── ProviderRejected
               └── ExotelError                        any Appendix 1 code; `.code`, `.http_status`
                    ├── ExotelNotFound                1 GreenVN not found, 20 group mapping missing
                    ├── ExotelAlreadyDeleted          22 already deleted
                    ├── ExotelBadRequest              2, 3, 5, 9, 16, 23 (parameters, filters, number, dates)
                    ├── ExotelNoFreeNumber            4 no free GreenVN
                    ├── ExotelForbidden               8 not permitted, 15 region not supported
                    ├── ExotelDuplicate               13 duplicates, 14 a/b overlap, 18 connection id, 19 pin
                    ├── ExotelTooMany                 17 too many allocation requests
                    ├── ExotelInvalidFlow             50 invalid call flow
                    └── ExotelInternal                0 internal service error

Paths: `{EXOTEL_API_URL}tenants/{sid}/greenvn[/{greenvn_id}[/call-party|/vn]]`, HTTP Basic with the
API key and token. Answers come as `{"success", "status", "data"}` or, for errors, that object
wrapped in a list (both shapes in the seed); both are read.

Where the seed contradicts itself the client follows each endpoint's own example: `strictness` is
a JSON boolean on create and the string "true"/"false" on PUT …/vn (False is sent as false/"false";
None sends nothing, Exotel's default being false); the number-type preference is `type` on create
and `number_type` on PUT …/vn. Appendix 1 is the table of codes; the shorter list under `code` in
the allocation answer names fewer and words some differently (9, 17), and the status list says
402 for "Unauthorized Request" where Appendix 1 says 401 for code 7: both are read as auth failures.

PINs are integers on the wire ("any positive integer"; the examples send 12340): a PIN typed with
a leading zero can't survive that, so the models refuse it with a sentence (`InvalidPin`) rather
than send 0123 as 123. `parse_pins()` reads PINs as typed.

Creating an allocation is not retried after an ambiguous failure (a timeout, a cut connection, a
5xx without Exotel's own error, HTTP 499): Exotel has no lookup by connection_id, so the error is
ExotelMaybeCreated, "may have been created — check `/vn list`". Swapping the number (PUT …/vn)
gives a new number each time it is applied, so it isn't retried either: after an ambiguous failure
the allocation is read back; a new number means it was done, the old one after an error answer
means it wasn't, and otherwise the error is ExotelMaybeApplied.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from bot.errors import UserError
from bot.phone import national
from bot.telco.base import (
    RETRYABLE_STATUS,
    HttpProvider,
    ProviderAuthFailed,
    ProviderBadResponse,
    ProviderMaybeApplied,
    ProviderRejected,
    ProviderTimeout,
    RetryPolicy,
    TelcoError,
    ambiguous,
)

log = logging.getLogger("switchboard.telco.exotel")

REGIONS = ("DL", "MU", "MH", "WB", "AP", "TN", "GJ", "KA", "KL", "RJ", "MP")
Usage = Literal["oneway", "twoway"]


class ExotelError(ProviderRejected):
    """Exotel refused the request with an Appendix 1 code."""

    def __init__(self, message: str, *, code: int | None, http_status: int | None, detail: str = "") -> None:
        super().__init__(message, provider="Exotel", status=http_status, detail=detail)
        self.code = code
        self.http_status = http_status


class ExotelNotFound(ExotelError):
    """The GreenVN or mapping does not exist (codes 1, 20)."""


class ExotelAlreadyDeleted(ExotelError):
    """The allocation was already released (code 22)."""


class ExotelBadRequest(ExotelError):
    """Parameters missing or wrong (codes 2, 3, 5, 9, 16, 23)."""


class ExotelNoFreeNumber(ExotelError):
    """No free GreenVN is available (code 4)."""


class ExotelForbidden(ExotelError):
    """Not permitted, or region not supported (codes 8, 15)."""


class ExotelDuplicate(ExotelError):
    """Duplicate numbers, connection id or pin (codes 13, 14, 18, 19)."""


class ExotelTooMany(ExotelError):
    """Too many allocation requests at once (code 17)."""


class ExotelInvalidFlow(ExotelError):
    """The call flow configured for the number is invalid (code 50)."""


class ExotelInternal(ExotelError):
    """Exotel had an internal error (code 0)."""


class ExotelMaybeApplied(ProviderMaybeApplied):
    """A change got no clear answer and reading the allocation back didn't settle it."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message, provider="Exotel", detail=detail)


class ExotelMaybeCreated(ExotelMaybeApplied):
    """POST …/greenvn got no clear answer (499, 5xx, timeout, cut off): the allocation may exist."""


MAYBE_CREATED = (
    "Exotel didn't answer clearly, so the virtual number may have been created — check `/vn list` before trying again."
)


class InvalidPin(UserError):
    """A PIN Exotel can't keep as typed: pins are positive integers on the wire."""


def _pin(value: Any, side: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise InvalidPin(f"{side}: “{value}” isn't a PIN; a PIN is a positive number.")
        return value
    text = str(value).strip()
    if not re.fullmatch(r"[0-9]{1,9}", text):
        raise InvalidPin(f"{side}: “{text}” isn't a PIN; use positive numbers, 4 to 6 digits are easiest.")
    if int(text) == 0:
        raise InvalidPin(f"{side}: “{text}” isn't a PIN; a PIN is a positive number.")
    if text.startswith("0"):
        raise InvalidPin(
            f"{side} “{text}” starts with 0. Exotel keeps PINs as numbers, so it would become "
            f"{int(text)}; choose one that doesn't start with 0."
        )
    return int(text)


def parse_pins(text: str, side: str) -> list[int]:
    """PINs as a person types them ("1234, 5678"), each checked by `_pin` (a leading 0 is refused)."""
    return [_pin(part, side) for part in re.split(r"[,\s]+", text.strip()) if part]


def _pins_field(value: Any, info: ValidationInfo) -> Any:
    if value is None or not isinstance(value, list):
        return value
    side = "a-party PIN" if str(info.field_name).startswith("a") else "b-party PIN"
    return [_pin(pin, side) for pin in value]


# Appendix 1: code -> (error type, what the user is told, the HTTP status Exotel uses). The sandbox
# (bot/sandbox/exotel.py) has its own copy of the seed's table; tests hold the two to each other.
APPENDIX_1: dict[int, tuple[type[ExotelError], str, int]] = {
    0: (ExotelInternal, "Exotel had an internal problem. Please try again in a few minutes.", 500),
    1: (ExotelNotFound, "Exotel couldn't find that virtual number.", 404),
    2: (ExotelBadRequest, "Exotel doesn't support one of the preferences given. Try without them.", 400),
    3: (ExotelBadRequest, "Something Exotel needs was missing from the request.", 400),
    4: (
        ExotelNoFreeNumber,
        "Exotel has no free virtual numbers right now. Try another region or later.",
        452,
    ),
    5: (ExotelBadRequest, "Exotel said some details of the request were missing or wrong.", 400),
    7: (ExotelError, "Switchboard couldn't sign in to Exotel; an admin needs to check the credentials.", 401),
    8: (ExotelForbidden, "Exotel doesn't allow this account to do that.", 403),
    9: (
        ExotelBadRequest,
        "Exotel didn't accept the API version Switchboard used. An admin has the details.",
        400,
    ),
    13: (ExotelDuplicate, "All of those numbers are duplicates of each other.", 409),
    14: (ExotelDuplicate, "The same number can't be on both sides of a virtual number.", 409),
    15: (ExotelForbidden, "Exotel doesn't offer virtual numbers in that region.", 403),
    16: (ExotelBadRequest, "Exotel says one of the phone numbers is invalid.", 400),
    17: (ExotelTooMany, "Too many virtual numbers were requested at once. Try fewer.", 413),
    18: (ExotelDuplicate, "A virtual number already exists for this connection.", 409),
    19: (ExotelDuplicate, "One of the numbers is already registered with another PIN.", 409),
    20: (ExotelNotFound, "Exotel has no such group and number mapping.", 404),
    22: (ExotelAlreadyDeleted, "That virtual number was already released.", 410),
    23: (ExotelBadRequest, "Exotel was given an invalid date range.", 400),
    50: (
        ExotelInvalidFlow,
        "The call flow set up for this number in Exotel is invalid. An admin needs to fix it.",
        422,
    ),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Preferences(_Model):
    greenvn: str | None = None  # E.164
    region: str | None = None
    pin_code: str | None = None
    type: Literal["mobile", "landline"] | None = None

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in REGIONS:
            raise ValueError(f"region must be one of {', '.join(REGIONS)}")
        return value.upper() if value else value


class AllocationRequest(_Model):
    """POST …/greenvn: connect a-party numbers with b-party numbers through a GreenVN."""

    connection_id: str
    aparty_numbers: list[str]  # E.164
    bparty_numbers: list[str]
    usage: Usage = "twoway"
    aparty_pins: list[int] | None = None
    bparty_pins: list[int] | None = None
    strictness: bool | None = None
    preferences: Preferences | None = None
    deallocation_duration: str | None = None  # e.g. "600s", "2d"
    flow_id: str | None = None

    check_pins = field_validator("aparty_pins", "bparty_pins", mode="before")(_pins_field)

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "aparty_numbers": list(self.aparty_numbers),
            "bparty_numbers": list(self.bparty_numbers),
            "usage": self.usage,
            "connection_id": self.connection_id,
        }
        if self.aparty_pins:
            body["aparty_pins"] = list(self.aparty_pins)
        if self.bparty_pins:
            body["bparty_pins"] = list(self.bparty_pins)
        if self.strictness is not None:
            body["strictness"] = self.strictness
        if self.preferences is not None:
            prefs = self.preferences.model_dump(exclude_none=True)
            if prefs:
                body["preferences"] = prefs
        if self.deallocation_duration:
            body["deallocation_policy"] = {"duration": self.deallocation_duration}
        if self.flow_id:
            body["flow_id"] = self.flow_id
        return body


class PartiesUpdate(_Model):
    """PUT …/call-party: at least one of the number lists; pins and usage when they change."""

    aparty_numbers: list[str] | None = None
    bparty_numbers: list[str] | None = None
    aparty_pins: list[int] | None = None
    bparty_pins: list[int] | None = None
    usage: Usage | None = None

    check_pins = field_validator("aparty_pins", "bparty_pins", mode="before")(_pins_field)

    def to_body(self) -> dict[str, Any]:
        if not self.aparty_numbers and not self.bparty_numbers:
            raise ValueError("give a-party or b-party numbers (Exotel needs at least one)")
        return self.model_dump(exclude_none=True)


class Allocation(_Model):
    connection_id: str | None = None
    aparty_numbers: list[str] = Field(default_factory=list)
    bparty_numbers: list[str] = Field(default_factory=list)
    aparty_pins: list[int | None] = Field(default_factory=list)
    bparty_pins: list[int | None] = Field(default_factory=list)
    usage: str | None = None
    state: Literal["active", "vault"] | str | None = None
    green_vn: str | None = None
    greenvn_id: str
    flow_id: str | None = None


class ExotelClient(HttpProvider):
    name = "Exotel"
    retryable_status = RETRYABLE_STATUS | {499}  # "Response timeout exceeded": safe to repeat a GET

    def __init__(
        self,
        base_url: str,
        account_sid: str,
        api_key: str,
        api_token: str,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, api_token, timeout=timeout, retry=retry, transport=transport)
        self.account_sid = account_sid

    def _path(self, greenvn_id: str | None = None, tail: str = "") -> str:
        path = f"tenants/{self.account_sid}/greenvn"
        if greenvn_id is not None:
            path += f"/{greenvn_id}"
        return path + tail

    def provider_error_body(self, response: httpx.Response) -> bool:
        """A 5xx carrying an Appendix 1 code (0, Internal Service Error) is Exotel's own answer."""
        try:
            answer = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return False
        envelope = answer[0] if isinstance(answer, list) and answer else answer
        return isinstance(envelope, dict) and isinstance(envelope.get("code"), int)

    async def _call(self, method: str, path: str, body: Any = None, *, idempotent: bool | None = None) -> Allocation:
        response = await self.send(
            method,
            path,
            idempotent=method in ("GET", "PUT", "DELETE") if idempotent is None else idempotent,
            json_body=body,
            headers={"Content-Type": "application/json"} if body is not None else None,
        )
        detail = f"{method} {path}: HTTP {response.status_code} {response.text[:200]!r}"
        if response.status_code == 499:  # "Response timeout exceeded", whatever the body
            log.warning("Exotel %s %s answered 499 (response timeout exceeded)", method, path)
            raise ProviderTimeout(self.timeout_text(), provider=self.name, status=499, detail=detail)
        try:
            answer = self.decode(response)
        except ProviderBadResponse:
            if response.status_code in (401, 402):
                raise ProviderAuthFailed(
                    self.auth_text(), provider=self.name, status=response.status_code, detail=detail
                ) from None
            raise
        envelope = answer[0] if isinstance(answer, list) and answer else answer
        if not isinstance(envelope, dict):
            raise ProviderBadResponse(
                self.bad_response_text(),
                provider=self.name,
                status=response.status_code,
                detail=f"unexpected body {str(answer)[:200]}",
            )
        if envelope.get("success") is True and response.status_code < 400:
            return self.parse(Allocation, envelope.get("data"), response)
        raise self._error(response, envelope)

    def _error(self, response: httpx.Response, envelope: dict[str, Any]) -> Exception:
        code = envelope.get("code")
        code = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
        status = envelope.get("status") or response.status_code
        message = str(envelope.get("message") or "")
        detail = f"HTTP {response.status_code}, status {status}, code {code}: {message}"
        log.warning("Exotel %s %s refused: %s", response.request.method, response.request.url.path, detail)
        if code == 7 or (code is None and response.status_code in (401, 402)):
            return ProviderAuthFailed(self.auth_text(), provider=self.name, status=response.status_code, detail=detail)
        if code in APPENDIX_1:
            cls, sentence, _ = APPENDIX_1[code]
            return cls(sentence, code=code, http_status=response.status_code, detail=detail)
        sentence = (
            f"Exotel refused the request: {message.rstrip('.')}."
            if message
            else ("Exotel refused the request without saying why. An admin can find the details in the log.")
        )
        return ExotelError(sentence, code=code, http_status=response.status_code, detail=detail)

    async def allocate(self, request: AllocationRequest) -> Allocation:
        """Create an allocation (POST …/greenvn). Never sent twice: an unclear outcome is ExotelMaybeCreated."""
        try:
            return await self._call("POST", self._path(), request.to_body())
        except TelcoError as exc:
            if not ambiguous(exc):
                raise
            log.warning("Exotel allocation %s: no clear answer (%s)", request.connection_id, exc.detail)
            raise ExotelMaybeCreated(MAYBE_CREATED, detail=exc.detail) from exc

    async def get_allocation(self, greenvn_id: str) -> Allocation:
        return await self._call("GET", self._path(greenvn_id))

    async def deallocate(self, greenvn_id: str) -> Allocation:
        """Release the GreenVN (DELETE); the allocation moves to state 'vault'."""
        return await self._call("DELETE", self._path(greenvn_id))

    async def update_parties(self, greenvn_id: str, update: PartiesUpdate) -> Allocation:
        return await self._call("PUT", self._path(greenvn_id, "/call-party"), update.to_body())

    async def swap_number(
        self,
        greenvn_id: str,
        preferences: Preferences | None = None,
        strictness: bool | None = None,
        *,
        current_green_vn: str | None = None,
    ) -> Allocation:
        """Give the allocation a new GreenVN (PUT …/vn); with no body Exotel picks any free one.

        Each PUT that Exotel applies gives another number, so it is sent once; `current_green_vn` (read
        from Exotel first when not given) tells a swap that happened from one that didn't."""
        if current_green_vn is None:
            current_green_vn = (await self.get_allocation(greenvn_id)).green_vn
        body: dict[str, Any] = {}
        if strictness is not None:
            body["strictness"] = "true" if strictness else "false"
        if preferences is not None:
            prefs = preferences.model_dump(exclude_none=True)
            if "type" in prefs:
                prefs["number_type"] = prefs.pop("type")
            if prefs:
                body["preferences"] = prefs
        try:
            return await self._call("PUT", self._path(greenvn_id, "/vn"), body or None, idempotent=False)
        except TelcoError as exc:
            if not ambiguous(exc):
                raise
            return await self._settle_swap(greenvn_id, current_green_vn, exc)

    async def _settle_swap(self, greenvn_id: str, before: str | None, exc: TelcoError) -> Allocation:
        shown = national(before) if before else "the virtual number"
        log.warning("Exotel swap of %s: no clear answer (%s); reading the allocation back", greenvn_id, exc.detail)
        try:
            now = await self.get_allocation(greenvn_id)
        except TelcoError:
            raise ExotelMaybeApplied(
                f"Exotel didn't answer, and I couldn't check whether {shown} was swapped for a new number: it may "
                "have been. Check `/vn list` before trying again.",
                detail=exc.detail,
            ) from exc
        if now.green_vn and now.green_vn != before:
            log.info("Exotel swap of %s was applied: %s → %s", greenvn_id, before, now.green_vn)
            return now
        if exc.status is not None and exc.status != 499:
            raise exc  # Exotel answered (an error) and still shows the old number: nothing changed
        raise ExotelMaybeApplied(
            f"Exotel didn't answer in time. It still shows {shown}, but the swap may yet go through — check "
            "`/vn list` in a minute before trying again.",
            detail=exc.detail,
        ) from exc
