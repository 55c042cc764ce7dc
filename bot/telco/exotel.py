"""Exotel Lead Assist GreenVN client (seed 002): allocate a virtual number between two parties.

    TelcoError (bot.telco.base)
     ├── ProviderUnavailable / ProviderTimeout / ProviderRateLimited / ProviderBadResponse
     ├── ProviderAuthFailed                      code 7, or HTTP 401/402
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
a JSON boolean on create and the string "true"/"false" on PUT …/vn; the number-type preference is
`type` on create and `number_type` on PUT …/vn.

Creating an allocation is not retried after an ambiguous failure: Exotel has no lookup by
connection_id, so a second POST could only fail with code 18; the user is told to check /vn list.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.telco.base import (
    HttpProvider,
    ProviderAuthFailed,
    ProviderBadResponse,
    ProviderRejected,
    RetryPolicy,
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


# Appendix 1: code -> (error type, what the user is told, the HTTP status Exotel uses).
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

    async def _call(self, method: str, path: str, body: Any = None) -> Allocation:
        response = await self.send(
            method,
            path,
            idempotent=method in ("GET", "PUT", "DELETE"),
            json_body=body,
            headers={"Content-Type": "application/json"} if body is not None else None,
        )
        answer = self.decode(response)
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
        """Create an allocation (POST …/greenvn)."""
        return await self._call("POST", self._path(), request.to_body())

    async def get_allocation(self, greenvn_id: str) -> Allocation:
        return await self._call("GET", self._path(greenvn_id))

    async def deallocate(self, greenvn_id: str) -> Allocation:
        """Release the GreenVN (DELETE); the allocation moves to state 'vault'."""
        return await self._call("DELETE", self._path(greenvn_id))

    async def update_parties(self, greenvn_id: str, update: PartiesUpdate) -> Allocation:
        return await self._call("PUT", self._path(greenvn_id, "/call-party"), update.to_body())

    async def swap_number(
        self, greenvn_id: str, preferences: Preferences | None = None, strictness: bool | None = None
    ) -> Allocation:
        """Give the allocation a new GreenVN (PUT …/vn); with no body Exotel picks any free one."""
        body: dict[str, Any] = {}
        if strictness is not None:
            body["strictness"] = "true" if strictness else "false"
        if preferences is not None:
            prefs = preferences.model_dump(exclude_none=True)
            if "type" in prefs:
                prefs["number_type"] = prefs.pop("type")
            if prefs:
                body["preferences"] = prefs
        return await self._call("PUT", self._path(greenvn_id, "/vn"), body or None)
