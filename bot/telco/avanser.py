"""AVANSER Telco API v1 client (seed 001): accounts, number search, service requests, templates.

    TelcoError (bot.telco.base)
     ├── ProviderUnavailable / ProviderTimeout / ProviderRateLimited / ProviderAuthFailed
     ├── ProviderBadResponse
     ├── ProviderMaybeApplied
     │    └── AvanserMaybeApplied      a new service or a decommission got no clear answer and the
     │                                 request list could not be read: it may have been taken
     └── ProviderRejected
          └── AvanserRejected          400 Error Detail: `.fields` maps a field to AVANSER's reason
               ├── TemplateInUse       DELETE /templates refused: the template is used by a service
               └── RuleNotOffered      refused before sending: a `service_number` rule the request
                                       schema doesn't list (number type GEO)

Every answer carries the `@transaction` object; errors come as
`{"error": {"message", "code"}, "errors": {field: reason}}` (Error Detail / Error Response).
A location search that matches several addresses answers HTTP 300 with the candidates: returned as
`SearchResult.addresses`, not raised.

Where the seed contradicts itself the client sends what the endpoint's own example shows, and reads
both forms (see `NumberRule.to_body` and `service_request_body`):
- coordinates search: `search_type` "coordinates" (the enum) with `lat` and both `long` (the
  schema) and `lng` (the example and the GET search);
- number types: upper case (`MOBILE`, the example; the schema lists lower case);
- `call_reporting`: inside `service` on create (schema, transfer and voicemail examples; the prompt
  example has it at the top level), at the top level on update (the update example);
- the callback URL is sent as `callback_uri` (request schema); `call_callback_uri` is only prose.

- number types in a request rule: only what the schema lists (tollfree, freecall, mobile); GEO is
  a search type only, and a rule asking for it is refused with a sentence (`NumberRule.problem`).

A new-service request is never sent twice for one Slack request: `custom_id` is the idempotency
key, and after an ambiguous failure the request list is searched for it before anything is re-sent.
A decommission (DELETE /services/{n}) makes a new `delete` request each time it is sent, so it is
not retried either: after an ambiguous failure the request list is searched for a delete request
for the number; if the list can't be read the error is AvanserMaybeApplied.

Number rates (seed: `"rate_code": 61`, a code, not a number type): `number_cost()` gives the rate
whose description names the number type, or says the cost is unknown.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import httpx
import phonenumbers
from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from bot.phone import from_avanser, national, to_avanser
from bot.telco.base import (
    HttpProvider,
    ProviderAuthFailed,
    ProviderBadResponse,
    ProviderMaybeApplied,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    TelcoError,
    ambiguous,
)

log = logging.getLogger("switchboard.telco.avanser")

NumberType = Literal["GEO", "TOLLFREE", "FREECALL", "MOBILE"]  # the search API's enum
REQUEST_NUMBER_TYPES = ("TOLLFREE", "FREECALL", "MOBILE")  # the request schema's (sent upper case, as its example)
ServiceType = Literal["transfer", "voicemail", "prompt"]
ReportLevel = Literal["none", "missed", "missed-voicemail", "all-calls"]
RequestStatus = Literal["pending", "completed", "pending_confirmation", "failed", "reported"]
FINAL_STATUSES = frozenset({"completed", "failed", "reported"})


class AvanserRejected(ProviderRejected):
    """AVANSER refused the request; `.fields` says which field and why."""

    def __init__(self, message: str, *, fields: dict[str, str], status: int | None, detail: str = "") -> None:
        super().__init__(message, provider="AVANSER", status=status, detail=detail)
        self.fields = fields


class TemplateInUse(AvanserRejected):
    """The template is used by a service and cannot be deleted."""


class RuleNotOffered(AvanserRejected):
    """A `service_number` rule the request schema doesn't offer; refused before anything is sent."""


class AvanserMaybeApplied(ProviderMaybeApplied):
    """No clear answer to a change, and the request list couldn't be read: AVANSER may have taken it."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message, provider="AVANSER", detail=detail)


# -- models -----------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


def _text(value: Any) -> Any:
    """The seed types these fields as strings but shows them unquoted (`rate_code : 61`): read both."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return value


def _money(value: Any) -> Any:
    """A charge: "0.00" (the seed's type) or 0.0 / 0 (its unquoted example) both read as "0.00"."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.2f}"
    return value


Text = Annotated[str | None, BeforeValidator(_text)]
Money = Annotated[str | None, BeforeValidator(_money)]


class Transaction(_Model):
    id: str | None = None
    account_id: int | None = Field(default=None, validation_alias=AliasChoices("account-id", "account_id"))
    request: dict[str, Any] | None = None


class Account(_Model):
    account_id: int = Field(validation_alias=AliasChoices("account-id", "account_id"))
    account: str = ""


class NumberCandidate(_Model):
    """A number AVANSER has available; `e164` is Switchboard's form of the response's key."""

    e164: str
    country: str = ""
    region: str = ""
    type: str = ""
    national: str = ""
    calling_code: str = ""


class AddressCandidate(_Model):
    name: str
    state: str = ""
    country: str = ""
    lat_lng: list[float] = Field(default_factory=list)

    @field_validator("lat_lng", mode="before")
    @classmethod
    def _numbers(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.replace("`", "").split(",")
        return [float(str(v).strip().strip("`")) for v in value or []]


class SearchResult(_Model):
    numbers: list[NumberCandidate] = Field(default_factory=list)
    addresses: list[AddressCandidate] = Field(default_factory=list)  # HTTP 300: pick one and search again

    @property
    def ambiguous(self) -> bool:
        return bool(self.addresses)


class Acknowledgment(_Model):
    request_id: str
    message: str = ""
    code: int | None = None
    service_number: str | None = None  # the reserved number, on a new-service request

    @property
    def service_e164(self) -> str | None:
        return from_avanser(self.service_number) if self.service_number else None


class CallbackInfo(_Model):
    last_update: str | None = None
    status: str | None = None
    http_reply: int | None = None


class RequestRecord(_Model):
    id: str
    request_type: Literal["create", "update", "delete"] | str = "create"
    custom_id: str | None = None
    custom_group: str | None = None
    request_date: str | None = None
    callback_date: str | None = None
    request_status: str = "pending"
    message: str | None = None
    service_number: str | None = None
    answer_point: str | None = None
    callback_url: str | None = None
    links: dict[str, Any] = Field(default_factory=dict, validation_alias=AliasChoices("@links", "links"))
    callback: CallbackInfo | None = Field(default=None, validation_alias=AliasChoices("@callback", "callback"))

    @property
    def final(self) -> bool:
        return self.request_status in FINAL_STATUSES


class CallbackBody(_Model):
    """What AVANSER POSTs to the callback URI when a request is completed or failed."""

    request_id: str
    status: Literal["completed", "failed"] | str
    custom_id: str | None = None
    account_id: int | None = None
    message: str = ""
    service_number: str | None = None
    answer_point: str | None = None


class EmailReport(_Model):
    subject: str
    email_to: list[str]
    email_cc: list[str] | None = None  # the schema calls cc/bcc required; the examples leave them out
    email_bcc: list[str] | None = None
    template: str | None = None


class SmsReport(_Model):
    mobile: str  # E.164 inside Switchboard; sent in AVANSER's form
    sms_id: str | None = None
    template: str | None = None


class CallReporting(_Model):
    report: ReportLevel = "none"
    email: EmailReport | None = None
    sms: SmsReport | None = None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"report": self.report}
        if self.email is not None:
            body["email"] = self.email.model_dump(exclude_none=True)
        if self.sms is not None:
            sms = self.sms.model_dump(exclude_none=True)
            sms["mobile"] = to_avanser(self.sms.mobile)
            body["sms"] = sms
        return body


class ServiceConfig(_Model):
    type: ServiceType | None = None
    answer_point: str | None = None  # E.164
    answer_point_name: str | None = None
    record_call: bool | None = None
    call_greeting: str | None = None
    call_whisper: str | None = None
    voicemail: str | None = None
    call_reporting: CallReporting | None = None

    @field_validator("answer_point", mode="before")
    @classmethod
    def _answer_point(cls, value: Any) -> Any:
        return from_avanser(str(value)) if value not in (None, "") else None

    def to_body(self, *, with_reporting: bool = True) -> dict[str, Any]:
        body = self.model_dump(exclude_none=True, exclude={"call_reporting"})
        for key in list(body):
            if key not in ServiceConfig.model_fields:
                body.pop(key)
        if self.answer_point:
            body["answer_point"] = to_avanser(self.answer_point)
        if with_reporting and self.call_reporting is not None:
            body["call_reporting"] = self.call_reporting.to_body()
        return body


class NumberRule(_Model):
    """The `service_number` search rule of a new-service request: how AVANSER picks the number."""

    search_type: Literal["location", "coordinates", "prefix", "number_type", "number", "szu"]
    country: str = "AU"
    location: str | None = None
    radius: float | None = None
    lat: float | None = None
    lng: float | None = None
    number_type: NumberType | None = None
    number: str | None = None  # E.164
    szu: str | None = None

    @field_validator("number_type", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value  # the schema's lower case reads too

    def problem(self) -> str | None:
        """Why AVANSER's request schema can't carry this rule, as a sentence; None when it can."""
        if self.search_type == "number_type" and self.number_type not in REQUEST_NUMBER_TYPES:
            return (
                f"AVANSER can't pick a {str(self.number_type or '').lower() or 'typeless'} number by type in a "
                "new-service request (it offers mobile, tollfree and freecall). Search near an address, by SZU "
                "or by prefix, or pick a number from `/numbers search geo`."
            )
        return None

    def to_body(self) -> dict[str, Any]:
        problem = self.problem()
        if problem:
            raise RuleNotOffered(
                problem,
                fields={"number_type": f"{self.number_type} is not a request number type"},
                status=None,
                detail=f"service_number rule refused before sending: number_type={self.number_type}",
            )
        body: dict[str, Any] = {"country": self.country, "search_type": self.search_type}
        if self.search_type == "location":
            body.update(location=self.location, radius=self.radius if self.radius is not None else 20)
        elif self.search_type == "coordinates":
            body.update(lat=self.lat, long=self.lng, lng=self.lng, radius=self.radius if self.radius else 20)
        elif self.search_type in ("prefix", "number"):
            body["number"] = to_avanser(self.number or "")
        elif self.search_type == "number_type":
            body["number_type"] = self.number_type
        elif self.search_type == "szu":
            body["szu"] = self.szu
        return body


class ServiceRequest(_Model):
    """A new service: its name, how to pick its number, what it does, where its events go."""

    name: str
    custom_id: str
    service_number: NumberRule
    service: ServiceConfig
    custom_group: str | None = None
    call_uri: str | None = None
    sms_forward_uri: str | None = None
    callback_uri: str | None = None

    def to_body(self) -> dict[str, Any]:
        # call_reporting goes where each type's own example in seed 001 puts it: inside `service` for
        # transfer and voicemail, at the top level for prompt (the schema says inside; AVANSER reads both).
        prompt = self.service.type == "prompt"
        body: dict[str, Any] = {
            "name": self.name,
            "custom_id": self.custom_id,
            "service_number": self.service_number.to_body(),
            "service": self.service.to_body(with_reporting=not prompt),
        }
        if prompt and self.service.call_reporting is not None:
            body["call_reporting"] = self.service.call_reporting.to_body()
        if self.custom_group:
            body["custom_group"] = self.custom_group
        for key in ("call_uri", "sms_forward_uri", "callback_uri"):
            value = getattr(self, key)
            if value:
                body[key] = value
        return body


class ServiceDetail(_Model):
    name: str = ""
    service_number: str | None = None
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    call_reporting: CallReporting | None = None
    call_uri: str | None = None
    sms_forward_uri: str | None = None
    links: dict[str, Any] = Field(default_factory=dict, validation_alias=AliasChoices("@links", "links"))

    @property
    def e164(self) -> str | None:
        return from_avanser(self.service_number) if self.service_number else None

    @property
    def reporting(self) -> CallReporting | None:
        return self.service.call_reporting or self.call_reporting


class ServiceUpdate(_Model):
    """A partial change to a service: only the fields set are sent (seed: 'only the required changes')."""

    name: str | None = None
    service: ServiceConfig | None = None
    call_reporting: CallReporting | None = None
    call_uri: str | None = None
    sms_forward_uri: str | None = None

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.name is not None:
            body["name"] = self.name
        if self.service is not None:
            service = self.service.to_body(with_reporting=False)
            if service:
                body["service"] = service
        reporting = self.call_reporting or (self.service.call_reporting if self.service else None)
        if reporting is not None:
            body["call_reporting"] = reporting.to_body()
        for key in ("call_uri", "sms_forward_uri"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        return body


class Template(_Model):
    name: str
    type: Literal["email", "sms"] | str = "email"
    country: str = "AU"


class AccountDetails(_Model):
    client_name: str | None = None
    client_id: str | int | None = None
    abn: str | None = None
    primary_contact: dict[str, Any] | None = None
    billing_contact: dict[str, Any] | None = None
    invoice_address: dict[str, Any] | None = None


class Package(_Model):
    package_code: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    setup_charge: str | None = None
    monthly_charge: str | None = None
    email: str | None = None
    fixed_call_rate: dict[str, Any] | None = None
    rates: list[dict[str, Any]] = Field(default_factory=list)


class NumberRate(_Model):
    """Seed 001 accountNumberRates: `rate_code : 61 (string)` — a code (61 in the only example), not a
    number type; number or string on the wire, a string here."""

    rate_code: Text = None
    description: Text = None
    setup_date: Text = None
    setup_charge: Money = None
    rental_charge: Money = None

    @property
    def label(self) -> str:
        parts = [p for p in (self.description, f"rate code {self.rate_code}" if self.rate_code else None) if p]
        return ", ".join(parts) or "unnamed rate"

    def names(self, number_type: str) -> bool:
        """Whether this rate says it is for `number_type` (by its code or a word of its description)."""
        if (self.rate_code or "").upper() == number_type.upper():
            return True
        text = (self.description or "").lower()
        return any(
            re.search(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])", text) for word in TYPE_WORDS.get(number_type, ())
        )


class CallRate(_Model):
    rate_code: Text = None
    call_type: Text = None
    cost_per_minute: Money = None
    free_seconds: Text = None
    minimum_seconds: Text = None


# How a number rate's description may name a number type; nothing else in the seed ties the two.
TYPE_WORDS: dict[str, tuple[str, ...]] = {
    "MOBILE": ("mobile",),
    "GEO": ("geo", "geographic", "local"),
    "TOLLFREE": ("tollfree", "toll free", "toll-free", "1300"),
    "FREECALL": ("freecall", "free call", "free-call", "1800"),
}
TYPE_NAMES = {"MOBILE": "mobile", "GEO": "local (geo)", "TOLLFREE": "1300 (tollfree)", "FREECALL": "1800 (freecall)"}


def number_type_of(number: str) -> str:
    """AVANSER's type of an E.164 number: MOBILE, FREECALL (1800), TOLLFREE (1300/13) or GEO."""
    kind = phonenumbers.number_type(phonenumbers.parse(number, None))
    if kind == phonenumbers.PhoneNumberType.MOBILE:
        return "MOBILE"
    if kind == phonenumbers.PhoneNumberType.TOLL_FREE:
        return "FREECALL"
    if kind == phonenumbers.PhoneNumberType.SHARED_COST:
        return "TOLLFREE"
    return "GEO"


def rule_number_type(rule: NumberRule) -> str | None:
    """The type of number a `service_number` rule will get, where the rule says."""
    if rule.search_type == "number_type":
        return rule.number_type
    if rule.search_type in ("location", "coordinates", "szu"):
        return "GEO"  # picked by place: a geographic number
    if rule.number:
        try:
            return number_type_of(rule.number)
        except phonenumbers.NumberParseException:
            return None
    return None


@dataclass(frozen=True)
class NumberCost:
    """What a number of one type costs on this account, or that AVANSER's rates don't say."""

    number_type: str | None
    rate: NumberRate | None  # the account's rate that names this type; None: unknown
    rates: tuple[NumberRate, ...]  # every number rate of the account

    @property
    def known(self) -> bool:
        return self.rate is not None

    def sentence(self) -> str:
        if self.rate is not None:
            return f"Cost: setup ${self.rate.setup_charge}, rental ${self.rate.rental_charge} ({self.rate.label})"
        if not self.rates:
            return "Cost: unknown — AVANSER lists no number rates for this account."
        what = f"a {TYPE_NAMES.get(self.number_type, self.number_type.lower())} number" if self.number_type else "it"
        listed = "; ".join(f"{r.label}: setup ${r.setup_charge}, rental ${r.rental_charge}" for r in self.rates[:4])
        return f"Cost: unknown — AVANSER's number rates don't say which applies to {what} ({listed})."


def cost_for(rates: list[NumberRate], what: NumberRule | str | None) -> NumberCost:
    """The cost of a number type (or of what a rule will get) from the account's number rates."""
    number_type = rule_number_type(what) if isinstance(what, NumberRule) else (what.upper() if what else None)
    rate = next((r for r in rates if number_type and r.names(number_type)), None)
    return NumberCost(number_type=number_type, rate=rate, rates=tuple(rates))


class TranscriptionRate(_Model):
    setup_date: str | None = None
    rate: str | None = None


class Feature(_Model):
    feature_code: str | None = None
    description: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    setup_charge: str | None = None
    monthly_charge: str | None = None
    change_charge: str | None = None
    charging_method: str | None = None
    charge_term: str | None = None


# -- the client -------------------------------------------------------------------------------


class AvanserClient(HttpProvider):
    name = "AVANSER"

    last_transaction: Transaction | None = None  # the @transaction of the latest answer: the selected account
    # Agency users serving many workspaces: the account the work at hand is for (None: whichever is selected).
    account_for: Callable[[], int | None] | None = None
    _selected: int | None = None  # the account AVANSER has selected for this user, as far as we switched it
    _in_flight = 0  # calls running in `_selected`
    _selecting: asyncio.Condition | None = None

    # -- plumbing ----------------------------------------------------------------------------

    async def _call(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, Any]:
        """One call, in the account of the work at hand: AVANSER's selected account is per user, so a call for
        another account waits until the calls in flight finish, switches (`POST /accounts`), then runs."""
        wanted = self.account_for() if self.account_for is not None else None
        if wanted is None or (method == "POST" and path == "accounts"):
            return await self._call_selected(method, path, **kwargs)
        if self._selecting is None:
            self._selecting = asyncio.Condition()
        async with self._selecting:
            await self._selecting.wait_for(lambda: self._selected == wanted or self._in_flight == 0)
            if self._selected != wanted:
                await self._call_selected(
                    "POST", "accounts", params={"account-id": wanted}, form={"account-id": wanted}
                )
                self._selected = wanted
            self._in_flight += 1
        try:
            return await self._call_selected(method, path, **kwargs)
        finally:
            async with self._selecting:
                self._in_flight -= 1
                self._selecting.notify_all()

    async def _call_selected(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        content: str | None = None,
        headers: dict[str, str] | None = None,
        form: dict[str, Any] | None = None,
        ok: tuple[int, ...] = (200,),
        idempotent: bool | None = None,
    ) -> tuple[httpx.Response, Any]:
        response = await self.send(
            method,
            path,
            idempotent=method in ("GET", "PUT", "DELETE") if idempotent is None else idempotent,
            params=params,
            json_body=json_body,
            content=content,
            headers=headers,
            form=form,
        )
        if response.status_code in ok and not response.content.strip():
            return response, None  # an empty answer (a raw request body of a DELETE, say)
        body = self.decode(response)
        if isinstance(body, dict) and isinstance(body.get("@transaction"), dict):
            self.last_transaction = Transaction.model_validate(body["@transaction"])
        if response.status_code in ok:
            return response, body
        raise self._error(response, body)

    def _error(self, response: httpx.Response, body: Any) -> Exception:
        status = response.status_code
        error = body.get("error") if isinstance(body, dict) else None
        errors = body.get("errors") if isinstance(body, dict) else None
        message = ""
        if isinstance(error, dict):
            message = str(error.get("message") or "")
        fields: dict[str, str] = {}
        if isinstance(errors, dict):
            for key, value in errors.items():
                if key in ("description", "code"):
                    continue
                fields[str(key)] = value if isinstance(value, str) else str(value)
            message = str(errors.get("description") or message)
        detail = f"HTTP {status}: {message} {fields}".strip()
        log.warning("AVANSER %s %s refused: %s", response.request.method, response.request.url.path, detail)
        if status in (401, 403):
            return ProviderAuthFailed(self.auth_text(), provider=self.name, status=status, detail=detail)
        if status >= 500:
            return ProviderUnavailable(
                f"AVANSER had a problem on its side ({message or 'unexpected error'}). Please try again later.",
                provider=self.name,
                status=status,
                detail=detail,
            )
        sentence = _sentence(message, fields)
        cls = TemplateInUse if "in use" in message.lower() else AvanserRejected
        return cls(sentence, fields=fields, status=status, detail=detail)

    @staticmethod
    def _response(body: Any) -> Any:
        if not isinstance(body, dict) or "response" not in body:
            raise ProviderBadResponse(
                "AVANSER sent back something Switchboard didn't understand. An admin has the details.",
                provider="AVANSER",
                detail=f"no 'response' in {str(body)[:200]}",
            )
        return body["response"]

    def _list(self, model: type[Any], response: httpx.Response, body: Any) -> list[Any]:
        data = self._response(body)
        if not isinstance(data, list):
            raise ProviderBadResponse(
                self.bad_response_text(),
                provider=self.name,
                detail=f"expected a list, got {type(data).__name__}",
            )
        return [self.parse(model, item, response) for item in data]

    # -- accounts ----------------------------------------------------------------------------

    async def list_accounts(self, type: Literal["configuration", "billing"] = "configuration") -> list[Account]:
        response, body = await self._call("GET", "accounts", params={"type": type})
        return self._list(Account, response, body)

    async def switch_account(self, account_id: int) -> None:
        await self._call("POST", "accounts", params={"account-id": account_id}, form={"account-id": account_id})
        self._selected = account_id

    async def account_details(self) -> list[AccountDetails]:
        response, body = await self._call("GET", "accounts/details")
        return self._list(AccountDetails, response, body)

    async def packages(self) -> list[Package]:
        response, body = await self._call("GET", "accounts/packages")
        return self._list(Package, response, body)

    async def number_rates(self) -> list[NumberRate]:
        response, body = await self._call("GET", "accounts/number_rates")
        return self._list(NumberRate, response, body)

    async def number_cost(self, what: NumberRule | str | None) -> NumberCost:
        """What a number of a type (GEO, MOBILE, …; or the type a rule will get) costs, or that it is unknown."""
        return cost_for(await self.number_rates(), what)

    async def call_rates(self) -> list[CallRate]:
        response, body = await self._call("GET", "accounts/call_rates")
        return self._list(CallRate, response, body)

    async def transcription_rates(self) -> list[TranscriptionRate]:
        response, body = await self._call("GET", "accounts/transcription_rates")
        return self._list(TranscriptionRate, response, body)

    async def features(self) -> list[Feature]:
        response, body = await self._call("GET", "accounts/features")
        return self._list(Feature, response, body)

    # -- number search -----------------------------------------------------------------------

    async def _search(self, params: dict[str, Any]) -> SearchResult:
        response, body = await self._call("GET", "numbers", params=params, ok=(200, 300))
        if response.status_code == 300:
            errors = body.get("errors", {}) if isinstance(body, dict) else {}
            candidates = errors.get("location") if isinstance(errors, dict) else None
            if not isinstance(candidates, list):
                raise ProviderBadResponse(
                    self.bad_response_text(), provider=self.name, detail="HTTP 300 without errors.location"
                )
            return SearchResult(addresses=[self.parse(AddressCandidate, c, response) for c in candidates])
        data = self._response(body)
        if isinstance(data, list) and not data:
            data = {}
        if not isinstance(data, dict):
            raise ProviderBadResponse(
                self.bad_response_text(),
                provider=self.name,
                detail=f"search response is {type(data).__name__}",
            )
        numbers = []
        for key, value in data.items():
            item = dict(value) if isinstance(value, dict) else {}
            item["e164"] = from_avanser(str(key))
            numbers.append(self.parse(NumberCandidate, item, response))
        return SearchResult(numbers=numbers)

    async def search_by_location(self, country: str, location: str, radius: float = 20) -> SearchResult:
        return await self._search({"country": country, "location": location, "radius": _num(radius)})

    async def search_by_coordinates(self, country: str, lat: float, lng: float, radius: float = 20) -> SearchResult:
        return await self._search({"country": country, "lat": lat, "lng": lng, "radius": _num(radius)})

    async def search_by_prefix(self, country: str, number: str) -> SearchResult:
        return await self._search({"country": country, "number": to_avanser(number)})

    async def search_by_type(self, country: str, number_type: NumberType) -> SearchResult:
        return await self._search({"country": country, "number_type": number_type})

    async def search_by_szu(self, szu: str) -> SearchResult:
        return await self._search({"szu": szu})

    # -- requests ----------------------------------------------------------------------------

    async def list_requests_page(self, path: str = "requests") -> tuple[list[RequestRecord], str | None]:
        response, body = await self._call("GET", path)
        records = self._list(RequestRecord, response, body)
        next_path = body.get("@next") if isinstance(body, dict) else None
        return records, (str(next_path) if next_path else None)

    async def list_requests(self, *, max_pages: int = 50) -> list[RequestRecord]:
        """Every request, following `@next` (batches of 100)."""
        records, next_path = await self.list_requests_page()
        pages = 1
        while next_path and pages < max_pages:
            page, next_path = await self.list_requests_page(next_path)
            records.extend(page)
            pages += 1
        return records

    async def find_request(self, custom_id: str) -> RequestRecord | None:
        """The newest request carrying `custom_id`, if AVANSER has one."""
        matches = [r for r in await self.list_requests() if r.custom_id == custom_id]
        return matches[-1] if matches else None

    async def request_service(self, request: ServiceRequest) -> Acknowledgment:
        """Ask for a new service. Sent at most once per `custom_id`, even when the answer is lost."""
        body = request.to_body()
        try:
            response, answer = await self._call("POST", "requests", json_body=body)
            return self.parse(Acknowledgment, self._response(answer), response)
        except TelcoError as exc:
            if not ambiguous(exc):
                raise
            # Ambiguous: AVANSER may have taken it. Look before doing anything else.
            log.warning(
                "AVANSER new-service request %s: no clear answer (%s); checking the request list",
                request.custom_id,
                exc.detail,
            )
            try:
                existing = await self.find_request(request.custom_id)
            except TelcoError:
                raise AvanserMaybeApplied(
                    "AVANSER didn't answer, and I couldn't check whether it took the request: it may have. "
                    "Nothing will be sent again automatically; look at `/numbers requests` in a few minutes "
                    "before retrying.",
                    detail=exc.detail,
                ) from exc
            if existing is not None:
                log.info("AVANSER had request %s for %s; not sending it again", existing.id, request.custom_id)
                return Acknowledgment(
                    request_id=existing.id,
                    message=existing.message or "",
                    service_number=existing.service_number,
                )
            if isinstance(exc, ProviderTimeout):
                raise ProviderTimeout(
                    "AVANSER took too long to answer. It has no record of the request, so no number was "
                    "bought; please try again.",
                    provider=self.name,
                    detail=exc.detail,
                ) from exc
            raise

    async def request_body(self, request_id: str) -> dict[str, Any]:
        return await self._raw(f"requests/{request_id}/request_body")

    async def acknowledgment_body(self, request_id: str) -> dict[str, Any]:
        return await self._raw(f"requests/{request_id}/acknowledgment_body")

    async def callback_body(self, request_id: str) -> dict[str, Any]:
        return await self._raw(f"requests/{request_id}/callback_body")

    async def _raw(self, path: str) -> dict[str, Any]:
        # The seed says these come back "as plain text": the text is the JSON that was exchanged (none
        # for a request that had no body, a DELETE).
        _, body = await self._call("GET", path)
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise ProviderBadResponse(self.bad_response_text(), provider=self.name, detail=f"{path}: not an object")
        return body

    # -- services ----------------------------------------------------------------------------

    async def list_services_page(self, path: str = "services") -> tuple[list[ServiceDetail], str | None]:
        response, body = await self._call("GET", path)
        services = self._list(ServiceDetail, response, body)
        next_path = body.get("@next") if isinstance(body, dict) else None
        return services, (str(next_path) if next_path else None)

    async def list_services(self, *, max_pages: int = 50) -> list[ServiceDetail]:
        services, next_path = await self.list_services_page()
        pages = 1
        while next_path and pages < max_pages:
            page, next_path = await self.list_services_page(next_path)
            services.extend(page)
            pages += 1
        return services

    async def update_service(self, number: str, update: ServiceUpdate) -> Acknowledgment:
        response, body = await self._call("POST", f"services/{to_avanser(number)}", json_body=update.to_body())
        return self.parse(Acknowledgment, self._response(body), response)

    async def decommission_service(self, number: str) -> Acknowledgment:
        """Ask AVANSER to cease the service on `number` (E.164). Sent once: every DELETE makes a new
        delete request, so after an ambiguous failure the request list is read instead of re-sending."""
        try:
            response, body = await self._call("DELETE", f"services/{to_avanser(number)}", idempotent=False)
            return self.parse(Acknowledgment, self._response(body), response)
        except TelcoError as exc:
            if not ambiguous(exc):
                raise
            log.warning(
                "AVANSER decommission of %s: no clear answer (%s); checking the request list", number, exc.detail
            )
            shown = national(number)
            try:
                existing = await self.find_decommission(number)
            except TelcoError:
                raise AvanserMaybeApplied(
                    f"AVANSER didn't answer, and I couldn't check whether it took the release of {shown}: it may "
                    "have. Nothing will be sent again automatically; look at `/numbers requests` in a few minutes "
                    "before trying again.",
                    detail=exc.detail,
                ) from exc
            if existing is not None:
                log.info("AVANSER had delete request %s for %s; not sending it again", existing.id, number)
                return Acknowledgment(
                    request_id=existing.id, message=existing.message or "", service_number=existing.service_number
                )
            if isinstance(exc, ProviderTimeout):
                raise ProviderTimeout(
                    f"AVANSER took too long to answer. It has no record of a release of {shown}, so the number is "
                    "still in service; please try again.",
                    provider=self.name,
                    detail=exc.detail,
                ) from exc
            raise

    async def find_decommission(self, number: str) -> RequestRecord | None:
        """The delete request for `number` made since its latest create request, unless it failed."""
        digits = to_avanser(number)
        found: RequestRecord | None = None
        for record in await self.list_requests():
            if re.sub(r"\D", "", record.service_number or "") != digits:
                continue
            if record.request_type == "create":
                found = None  # a delete before the number's latest creation is about an earlier life
            elif record.request_type == "delete" and record.request_status not in ("failed", "reported"):
                found = record
        return found

    # -- templates ---------------------------------------------------------------------------

    async def list_templates(self) -> list[Template]:
        response, body = await self._call("GET", "templates")
        return self._list(Template, response, body)

    async def preview_template(self, name: str, country: str = "AU") -> dict[str, Any]:
        """The preview's `response`. The seed documents Generic Success only (`message`, `code`): no
        template text. A `content` key is there only if AVANSER sends text (a string `response`)."""
        _, body = await self._call("GET", "templates", params={"name": name, "country": country})
        data = self._response(body)
        return data if isinstance(data, dict) else {"content": data}

    async def save_template(
        self, name: str, content: str, *, country: str = "AU", type: Literal["email", "sms"] = "email"
    ) -> None:
        await self._call(
            "POST",
            "templates",
            params={"type": type, "name": name, "country": country},
            content=content,
            headers={"Content-Type": "text/html; charset=utf-8"},
        )

    async def delete_template(self, name: str, *, country: str = "AU", type: Literal["email", "sms"] = "email") -> None:
        await self._call(
            "DELETE",
            "templates",
            params={"type": type, "name": name, "country": country},
            headers={"Content-Type": "text/html; charset=utf-8"},
        )


_FIELD_NAMES = {
    "answer_point": "the answer point",
    "account-id": "the account",
    "service_number": "the number",
    "location": "the address",
    "number": "the number",
    "email_to": "the email recipients",
    "mobile": "the SMS mobile",
    "template": "the template",
}


def _sentence(message: str, fields: dict[str, str]) -> str:
    """AVANSER's refusal as a sentence: 'AVANSER says the answer point is an invalid number.'"""
    if fields:
        parts = [f"{_FIELD_NAMES.get(k, k.replace('_', ' '))}: {v}" for k, v in fields.items()]
        return "AVANSER refused the request — " + "; ".join(parts) + "."
    if message and message.lower() not in ("bad request",):
        return f"AVANSER refused the request: {message.rstrip('.')}."
    return "AVANSER refused the request without saying why. An admin can find the details in the log."


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value
