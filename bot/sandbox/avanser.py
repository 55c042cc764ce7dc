"""A stand-in for the AVANSER Telco API v1 (seed 001) on loopback.

It checks HTTP Basic auth, validates request bodies as the seed describes (required fields, enums,
number forms, no field the schema doesn't list, templates that exist), keeps state (inventory,
reserved numbers, services, requests pending → completed / failed, templates, accounts), POSTs the
callback-URI after `callback_delay` seconds, and makes calls and texts on demand (`place_call`,
`send_sms`) by calling a service's call-URI / SMS-forward URI with the seed's parameters and no
others. Answers carry only what the seed shows: number rates are the seed's (`"rate_code": 61`),
a template preview is Generic Success (`message`, `code`) with no template text. Where the seed
types a value as a string but shows it unquoted (`rate_code : 61 (string)`), `rate_code_form`
chooses which the sandbox sends ("number", the default, or "string"). Faults are injected with
`inject()` (bot.sandbox.common).

The data feed (seed 000): every call placed is also a record of the feed, with the seed's field names
(its example record's fields, `call_param_0[1-7]` written out as call_param_01 … 07), served at
`/feed/calls.json`, `.csv` and `.xml` (`/feed/calls` in `feed_format`) behind its own Basic auth, with
the filters the seed names — day, (calling) number, status, custom_id, custom_group — as query options.
The seed names no parameters, so `feed_day_form` chooses them: "ymd" (`?year=2020&month=05&day=26`,
the default), "date" (`?day=2020-05-26`) or "none" (every parameter ignored); an unknown parameter is
refused (400). Without a day it answers the last 24 hours. `feed_content_type=False` answers
`application/octet-stream`, leaving the format to the URL's extension. `drop_webhooks` (uniqueids) are
calls whose call-URI is never called — only the feed has them (`dropped` lists them).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode
from xml.sax.saxutils import escape as xml_escape

import httpx
import phonenumbers
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.sandbox.common import SandboxBase

ACCOUNT_ID = 6999
# The call-URI example of seed 001, parameter for parameter (a missed call to 02 9008 1596).
SEED_CALL = {
    "clientid": "6999",
    "callid": "324213111",
    "uniqueid": "ECS1-1923211.11",
    "bnum": "+61-0290081596",
    "adname": "Tracking Service 1",
    "target": "+61-0401020304",
    "targetname": "Sydney Office",
    "ani": "+61-0410203045",
    "tzdate": "2019-11-14T12:11:21+10:00",
    "duration": "30",
    "callstatus": "avanser_missed_call",
    "callcode": "1",
    "clocation": "Sydney",
    "cstate": "MOB",
    "ccountry": "AU",
}
RECORDING_BYTES = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 512
PAGE = 100
SEARCH_TYPES = {"location", "coordinates", "prefix", "number_type", "number", "szu"}
NUMBER_TYPES = {"GEO", "TOLLFREE", "FREECALL", "MOBILE"}  # GET /numbers?number_type= (upper case)
REQUEST_NUMBER_TYPES = {"tollfree", "freecall", "mobile"}  # Inbound Request (the example has MOBILE)
# The fields of Inbound Request / Service Detail, level by level; anything else is refused.
REQUEST_FIELDS = {
    "name",
    "custom_id",
    "custom_group",  # seed 000: "This request specifies both custom_id and custom_group"
    "service_number",
    "service",
    "call_reporting",  # the prompt example has it at the top level
    "call_uri",
    "sms_forward_uri",
    "callback_uri",
}
UPDATE_FIELDS = {"name", "service_number", "service", "call_reporting", "call_uri", "sms_forward_uri"}
RULE_FIELDS = {"country", "search_type", "szu", "radius", "lat", "long", "lng", "location", "number_type", "number"}
SERVICE_FIELDS = {
    "type",
    "answer_point",
    "answer_point_name",
    "record_call",
    "call_greeting",
    "call_whisper",
    "voicemail",
    "call_reporting",
}
REPORTING_FIELDS = {"report", "email", "sms"}
EMAIL_FIELDS = {"subject", "email_to", "email_cc", "email_bcc", "template"}
SMS_FIELDS = {"sms_id", "mobile", "template"}
# seed 001 accountNumberRates / accountCallRates, value for value
SEED_NUMBER_RATE = {
    "rate_code": 61,
    "description": "Test MMT",
    "setup_date": "2017-01-07",
    "setup_charge": "0.00",
    "rental_charge": "0.00",
}
SEED_CALL_RATE = {
    "rate_code": 61,
    "call_type": "L",
    "cost_per_minute": "0.39",
    "free_seconds": "0.00",
    "minimum_seconds": "0.00",
}
REPORT_LEVELS = {"none", "missed", "missed-voicemail", "all-calls"}
# The data feed's `call_status` for each call-URI status: seed 000 shows "Missed"; the others are the
# call-URI's own words, capitalised the same way (the seed doesn't list them).
FEED_STATUSES = {
    "avanser_missed_call": "Missed",
    "avanser_answered_call": "Answered",
    "avanser_abandoned_call": "Abandoned",
    "avanser_busy_call": "Busy",
    "avanser_unanswered_call": "Unanswered",
    "avanser_fax_call": "Fax",
}
FEED_FORMATS = {"json": "application/json", "csv": "text/csv", "xml": "application/xml"}
FEED_FILTERS = {"number", "status", "custom_id", "custom_group"}  # besides the day
FEED_ZONE = 10 * 3600  # the sandbox's calls are in Australia/Sydney, +10:00 as the seed's example shows
CALL_STATUSES = {
    "avanser_abandoned_call",
    "avanser_answered_call",
    "avanser_busy_call",
    "avanser_unanswered_call",
    "avanser_fax_call",
    "avanser_missed_call",
}

# (name, state, lat, lng, szu) — enough geography for searches and one ambiguous address.
PLACES = [
    ("Sydney, NSW, AU", "NSW", -33.8688197, 151.2092955, "sydney"),
    ("Melbourne, VIC, AU", "VIC", -37.8136276, 144.9630576, "melbourne"),
    ("Brisbane, QLD, AU", "QLD", -27.4697707, 153.0251235, "brisbane"),
    ("Perth, WA, AU", "WA", -31.9505269, 115.8604572, "perth"),
    ("Richmond, NSW, AU", "NSW", -33.5997, 150.7514, "richmond"),
    ("Richmond, VIC, AU", "VIC", -37.8230, 144.9980, "melbourne"),
]


def make_inventory(scale: int = 1) -> list[dict[str, Any]]:
    numbers: list[dict[str, Any]] = []

    def add(e164: str, region: str, kind: str, lat: float | None, lng: float | None, szu: str | None) -> None:
        numbers.append({"e164": e164, "region": region, "type": kind, "lat": lat, "lng": lng, "szu": szu})

    for i in range(12 * scale):
        add(f"+6129008{1590 + i:04d}", "NSW: Sydney", "GEO", -33.87, 151.21, "sydney")
        add(f"+6139081{2010 + i:04d}", "VIC: Melbourne", "GEO", -37.81, 144.96, "melbourne")
    for i in range(6 * scale):
        add(f"+6173004{5010 + i:04d}", "QLD: Brisbane", "GEO", -27.47, 153.03, "brisbane")
        add(f"+6189004{7010 + i:04d}", "WA: Perth", "GEO", -31.95, 115.86, "perth")
        add(f"+6124570{1100 + i:04d}", "NSW: Richmond", "GEO", -33.60, 150.75, "richmond")
        add(f"+611300{123120 + i:06d}", "AU: National", "TOLLFREE", None, None, None)
        add(f"+611800{555120 + i:06d}", "AU: National", "FREECALL", None, None, None)
        add(f"+614120{100 + i:05d}", "AU: Mobile", "MOBILE", None, None, None)
    return numbers


def _digits(e164: str) -> str:
    return e164.lstrip("+")


def _national(e164: str) -> str:
    number = phonenumbers.parse(e164, None)
    return (
        "0" + str(number.national_number)
        if not str(number.national_number).startswith("1")
        else str(number.national_number)
    )


def _km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371 * 2 * math.asin(math.sqrt(a))


def _valid_digits(value: Any) -> bool:
    if not isinstance(value, str) or not value.isdigit():
        return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse("+" + value, None))
    except phonenumbers.NumberParseException:
        return False


def _url_ok(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


class AvanserSandbox(SandboxBase):
    def __init__(
        self,
        username: str = "switchboard",
        password: str = "avanser-sandbox-password",
        *,
        callback_delay: float = 0.2,
        inventory_scale: int = 1,
        rate_code_form: str = "number",
    ) -> None:
        super().__init__(username, password)
        if rate_code_form not in ("number", "string"):
            raise ValueError("rate_code_form is 'number' (61, as the seed shows it) or 'string' (\"61\", its type)")
        self.rate_code_form = rate_code_form
        self.number_rates: list[dict[str, Any]] = [dict(SEED_NUMBER_RATE)]  # tests may add rates of this shape
        self.call_rates: list[dict[str, Any]] = [dict(SEED_CALL_RATE)]
        self.callback_delay = callback_delay
        # How the call-URI is called: "append" the parameters to the registered URL (tags in it stay
        # literal), or "substitute" seed 000's [[tags]] in it with the call's values (custom_id=[[tag]],
        # custom_group=[[curl]]); the seed shows the template but not which AVANSER does.
        self.call_uri_mode = "append"
        self.test_calls = True  # the account has AVANSER's test-call subscription (seed 000)
        # The status a finished request shows in the request list: "completed", or seed 001's
        # "pending_confirmation" ("Request is completed, waiting to send confirmation").
        self.final_status = "completed"
        self.test_call_delay = callback_delay
        self.send_callbacks = True  # False: requests complete but the callback-URI is never called
        self.fail_provisioning: set[str] = set()  # E.164 numbers whose provisioning fails
        self.accounts = {6999: "Test Account", 7001: "Agency Client B"}
        self.account_id = ACCOUNT_ID
        self.inventory = make_inventory(inventory_scale)
        self.reserved: set[str] = set()
        self.services: dict[str, dict[str, Any]] = {}  # E.164 -> service detail
        self.requests: list[dict[str, Any]] = []
        self.templates: dict[tuple[str, str, str], str] = {
            ("html_email_template", "AU", "email"): "<p>Call for __adsource__ from __ani__</p>",
            ("text_sms_template", "AU", "sms"): "Missed call __ani__ on __bnum__",
        }
        self.callbacks_sent: list[tuple[str, dict[str, Any], int]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        # The data feed (seed 000): its own Basic credentials, its records, and its undocumented choices.
        self.feed_username = "switchboard-feed"
        self.feed_password = "avanser-feed-password"
        self.feed_records: list[dict[str, Any]] = []
        self.feed_day_form = "ymd"  # "ymd" | "date" | "none" (see the module's docstring)
        self.feed_format = "json"  # the format of /feed/calls (no extension)
        self.feed_content_type = True  # False: application/octet-stream, the format only in the URL
        self.feed_number_field = "caller_number"  # what `number` matches: "calling number" (or tracking_number)
        self.drop_webhooks: set[str] = set()  # uniqueids whose call-URI is never called
        self.dropped: list[str] = []

    # -- helpers for tests and the demo --------------------------------------------------------

    def posts_for(self, custom_id: str) -> int:
        """How many new-service requests AVANSER accepted for one custom_id (numbers bought)."""
        with self.lock:
            return sum(1 for r in self.requests if r["request_type"] == "create" and r["custom_id"] == custom_id)

    def register_service(
        self,
        e164: str,
        name: str,
        call_uri: str,
        *,
        custom_id: str = "",
        custom_group: str = "",
        answer_point: str = "61401020304",
        answer_point_name: str = "Sydney Office",
    ) -> None:
        """A live tracking number without the provisioning flow (tests, bench, faults)."""
        with self.lock:
            self.services[e164] = {
                "name": name,
                "service_number": _digits(e164),
                "service": {"type": "transfer", "answer_point": answer_point, "answer_point_name": answer_point_name},
                "call_uri": call_uri,
                "custom_id": custom_id,
                "custom_group": custom_group,
                "@links": {"service_uri": f"/services/{_digits(e164)}"},
            }

    def place_call(
        self,
        service_e164: str,
        caller_e164: str,
        *,
        status: str = "avanser_missed_call",
        duration: int = 0,
        uniqueid: str | None = None,
        has_audio: bool = False,
        at: float | None = None,
        send: bool = True,
    ) -> httpx.Response | None:
        """A call to a tracking number: GET its call-URI with the seed's parameters (seed 001's table, plus
        seed 000's custom_id and custom_group) and no others, and a record of it in the data feed.

        `has_audio`: the caller left a recording — only the feed carries it (`call_audio_url`), as the
        seeds document. None when the webhook is dropped (`drop_webhooks`, or `send=False`)."""
        if status not in CALL_STATUSES:
            raise ValueError(f"call status must be one of {sorted(CALL_STATUSES)}")
        with self.lock:
            service = self.services[service_e164]
        started = time.time() if at is None else at
        params = {
            "clientid": str(self.account_id),
            "callid": str(int(started * 1000) % 10**9),
            "uniqueid": uniqueid or f"ECS1-{started:.6f}",
            "bnum": _avanser_display(service_e164),
            "adname": service["name"],
            # a voicemail or prompt service has no answer point: the call was answered by AVANSER itself
            "target": _avanser_display("+" + answer_point)
            if (answer_point := service["service"].get("answer_point"))
            else "",
            "targetname": service["service"].get("answer_point_name", ""),
            "ani": _avanser_display(caller_e164),
            "tzdate": time.strftime("%Y-%m-%dT%H:%M:%S+10:00", time.gmtime(started + FEED_ZONE)),
            "duration": str(duration),
            "callstatus": status,
            "callcode": "1" if status != "avanser_answered_call" else "0",
            "clocation": "Sydney",
            "cstate": "MOB" if caller_e164.startswith("+614") else "NSW",
            "ccountry": "AU",
            "custom_id": service.get("custom_id", ""),
            "custom_group": service.get("custom_group", ""),
        }
        record = self._feed_record(params, started, has_audio)
        with self.lock:
            self.feed_records.append(record)
            if not send or params["uniqueid"] in self.drop_webhooks:
                self.dropped.append(params["uniqueid"])
                return None
        if self.call_uri_mode == "substitute":
            return self.client().get(_substitute(service["call_uri"], params))
        return self.client().get(_with_query(service["call_uri"], params))

    def _feed_record(self, params: dict[str, str], started: float, has_audio: bool) -> dict[str, Any]:
        """The call as seed 000's example feed record shows one: every field it has, in its order."""
        duration = int(params["duration"])
        answered = params["callstatus"] == "avanser_answered_call"
        local = time.gmtime(started + FEED_ZONE)
        ended = time.gmtime(started + FEED_ZONE + duration)
        record: dict[str, Any] = {
            "call_audio_url": self.recording_url(params["uniqueid"]) if has_audio else "",
            "call_connection_duration": 1,
            "call_direction": "call-in",
            "call_duration": duration,
            "call_end_time": time.strftime("%Y-%m-%d %H:%M:%S", ended),
            "call_has_audio": 1 if has_audio else 0,
            "call_id": int(params["callid"]),
            "call_is_artic": 0,
            "call_local_time": time.strftime("%Y-%m-%d %H:%M:%S", local),
        }
        record.update({f"call_param_0{i}": 0 for i in range(1, 8)})
        record.update(
            {
                "call_param_08": "",
                "call_param_09": "",
                "call_start_time": time.strftime("%Y-%m-%d %H:%M:%S", local),
                "call_status": FEED_STATUSES[params["callstatus"]],
                "call_status_code": int(params["callcode"]),
                "call_talk_duration": duration if answered else 0,
                "call_timezone": "Australia/Sydney",
                "call_tz_end_time": time.strftime("%Y-%m-%dT%H:%M:%S+1000", ended),
                "call_tz_start_time": time.strftime("%Y-%m-%dT%H:%M:%S+1000", local),
                "call_u_end_time": int(started) + duration,
                "call_u_start_time": int(started),
                "call_unique_id": params["uniqueid"],
                "caller_country": params["ccountry"],
                "caller_location": params["clocation"],
                "caller_number": params["ani"],
                "caller_state": params["cstate"],
                "client_id": int(params["clientid"]),
                "custom_group": params["custom_group"] or "",
                "custom_id": params["custom_id"] or "",
                "private_reference": None,
                "target_name": params["targetname"],
                "target_number": params["target"],
                "tracking_master_id": 0,
                "tracking_name": params["adname"],
                "tracking_notes": "",
                "tracking_number": params["bnum"],
                "tracking_wpc_id": 0,
            }
        )
        return record

    def send_sms(self, service_e164: str, sender_e164: str, text: str) -> httpx.Response:
        """An inbound SMS: GET the service's SMS-forward URI with the seed's parameters."""
        with self.lock:
            service = self.services[service_e164]
        params = {
            "clientId": str(self.account_id),
            "to": _avanser_display(service_e164),
            "from": _avanser_display(sender_e164),
            "txt": text,
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        return self.client().get(_with_query(service["sms_forward_uri"], params))

    # -- wire format ---------------------------------------------------------------------------

    def _transaction(self, received: Any) -> dict[str, Any]:
        return {
            "id": uuid.uuid4().hex,
            "account-id": self.account_id,
            "request": {
                "api-version": "v1",
                "method": received.method,
                "path": received.path + ("?" + urlencode(received.query) if received.query else ""),
            },
            "time": time.strftime("%Y-%m-%dT%H:%M:%S+10:00"),
            "ms": 0.039,
        }

    def _reply(self, received: Any, response: Any, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"@transaction": self._transaction(received), **(extra or {}), "response": response}

    def _ok(self, received: Any, response: Any, extra: dict[str, Any] | None = None) -> JSONResponse:
        return JSONResponse(self._reply(received, response, extra))

    def _error(self, received: Any, status: int, message: str, errors: dict[str, Any] | None = None) -> JSONResponse:
        """Error Detail (400: `errors` maps a field to its reason) or Error Response (401/500: `errors`
        has `description` and `code`), each with the `error` object the endpoints' examples show."""
        body: dict[str, Any] = {
            "@transaction": self._transaction(received),
            "error": {"message": message, "code": status},
        }
        if errors:
            body["errors"] = errors
        elif status != 400:
            body["errors"] = {"description": message, "code": str(status)}
        return JSONResponse(body, status_code=status)

    def asgi(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/{path:path}", self._endpoint, methods=["GET", "POST", "DELETE", "PUT"]),
                Route("/recordings/{name}", self._recording, methods=["GET"]),
                Route("/feed/{name}", self._feed, methods=["GET"]),
            ]
        )

    def recording_url(self, name: str) -> str:
        """A voicemail recording this sandbox serves (an MP3 header and silence), as AVANSER's storage would."""
        return f"{self.base_url}/recordings/{name}.mp3"

    async def _recording(self, request: Request) -> Response:
        name = request.path_params["name"]
        if not name.endswith(".mp3") or name.startswith("missing"):
            return Response("not found", status_code=404)
        return Response(RECORDING_BYTES, media_type="audio/mpeg")

    def feed_url(self, extension: str | None = "json") -> str:
        """The account's data feed URL: `.json`, `.csv` or `.xml`, or None for /feed/calls (`feed_format`)."""
        return f"{self.base_url}/feed/calls" + (f".{extension}" if extension else "")

    async def _feed(self, request: Request) -> Response:
        received, _fault, early = await self.admit(request)
        if early is not None:
            return early
        if received.basic_auth != (self.feed_username, self.feed_password):
            return Response("Unauthorized", status_code=401, headers={"WWW-Authenticate": 'Basic realm="feed"'})
        name = request.path_params["name"]
        kind = name.removeprefix("calls.") if name.startswith("calls.") else self.feed_format if name == "calls" else ""
        if kind not in FEED_FORMATS:
            return Response("Not Found", status_code=404)
        try:
            records = self._feed_select(received.query)
        except ValueError as exc:
            return Response(str(exc), status_code=400, media_type="text/plain")
        media = FEED_FORMATS[kind] if self.feed_content_type else "application/octet-stream"
        return Response(_feed_body(records, kind), media_type=media)

    def _feed_select(self, query: dict[str, str]) -> list[dict[str, Any]]:
        """The records the query asks for (ValueError: a parameter this feed doesn't take)."""
        if self.feed_day_form == "none":
            query = {}
        day_names = {"ymd": {"year", "month", "day"}, "date": {"day"}}.get(self.feed_day_form, set())
        unknown = set(query) - day_names - FEED_FILTERS
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        prefix = ""
        if self.feed_day_form == "date" and "day" in query:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", query["day"]):
                raise ValueError("day must look like 2020-05-26")
            prefix = query["day"]
        elif self.feed_day_form == "ymd" and {"year", "month", "day"} & set(query):
            parts = [query.get("year"), query.get("month"), query.get("day")]
            given = [p for p in parts if p is not None]
            if parts[: len(given)] != given or not all(p.isdigit() for p in given):
                raise ValueError("year, then month, then day, as numbers")
            prefix = "-".join(f"{int(p):0{4 if i == 0 else 2}d}" for i, p in enumerate(given))
        with self.lock:
            records = list(self.feed_records)
        if prefix:
            records = [r for r in records if str(r.get("call_start_time", "")).startswith(prefix)]
        else:  # "the most recent data": the last 24 hours
            records = [r for r in records if int(r.get("call_u_start_time") or 0) >= time.time() - 86400]
        if "number" in query:
            wanted = re.sub(r"\D", "", query["number"])[-9:]
            records = [r for r in records if re.sub(r"\D", "", str(r.get(self.feed_number_field)))[-9:] == wanted]
        if "status" in query:
            records = [r for r in records if str(r.get("call_status")).lower() == query["status"].lower()]
        for name in ("custom_id", "custom_group"):
            if name in query:
                records = [r for r in records if r.get(name) == query[name]]
        return records

    async def _endpoint(self, request: Request) -> Response:
        received, fault, early = await self.admit(request)
        if early is not None:
            return early
        if not self.authorized(received):
            return self._error(received, 401, "Unauthorized")
        path = request.path_params["path"].strip("/")
        response = await self._route(received, request.method, path)
        if fault is not None and fault.kind == "after_commit":
            return await self.after_commit_response(fault)
        return response

    async def _route(self, received: Any, method: str, path: str) -> Response:
        parts = path.split("/")
        if parts[0] == "accounts":
            return self._accounts(received, method, parts[1:])
        if parts[0] == "numbers" and method == "GET":
            return self._search(received)
        if parts[0] == "requests":
            if method == "POST" and len(parts) == 1:
                return self._new_service(received)
            if method == "GET" and (len(parts) == 1 or parts[1].isdigit()):
                return self._page(received, "requests", self.requests, int(parts[1]) if len(parts) > 1 else 1)
            if method == "GET" and len(parts) == 3:
                return self._request_raw(received, parts[1], parts[2])
        if parts[0] == "services":
            if method == "GET" and (len(parts) == 1 or (parts[1].isdigit() and len(parts[1]) < 6)):
                services = sorted(self.services.values(), key=lambda s: s["name"])
                return self._page(received, "services", services, int(parts[1]) if len(parts) > 1 else 1)
            if len(parts) == 2 and method in ("POST", "DELETE"):
                return self._change_service(received, method, parts[1])
        if parts[0] == "templates":
            return self._templates(received, method)
        return self._error(received, 404, "Not Found")

    # -- accounts ------------------------------------------------------------------------------

    def _accounts(self, received: Any, method: str, rest: list[str]) -> Response:
        if method == "POST" and not rest:
            raw = received.query.get("account-id") or dict(_form(received.body)).get("account-id")
            if not raw or not str(raw).isdigit() or int(raw) not in self.accounts:
                return self._error(received, 400, "Bad Request", {"account-id": "invalid account"})
            self.account_id = int(raw)
            return self._ok(received, {"message": "Success", "code": 200})
        if method != "GET":
            return self._error(received, 405, "Method Not Allowed")
        if not rest:
            kind = received.query.get("type", "configuration")
            if kind not in ("configuration", "billing"):
                return self._error(received, 400, "Bad Request", {"type": "must be configuration or billing"})
            return self._ok(received, [{"account-id": k, "account": v} for k, v in self.accounts.items()])
        fixtures: dict[str, list[dict[str, Any]]] = {
            "details": [
                {
                    "client_name": self.accounts[self.account_id],
                    "client_id": str(self.account_id),
                    "abn": "11 223 491 505",
                    "primary_contact": {"name": "AVANSER", "email": "test@email.com", "phone": "0412345678"},
                    "billing_contact": {"name": "AVANSER", "email": "test@email.com"},
                    "invoice_address": {
                        "client_name": "AVANSER test EDB",
                        "address_line_1": "Level 2, 152 Elizabeth St",
                        "address_line_2": "",
                        "suburb": "Sydney",
                        "state": "NSW",
                        "post_code": "2000",
                    },
                }
            ],
            "packages": [
                {
                    "package_code": "corporate",
                    "start_date": "2016-12-07",
                    "end_date": "2017-01-07",
                    "setup_charge": "250.00",
                    "monthly_charge": "1.00",
                    "email": "test@email.com",
                    "fixed_call_rate": {"included": "0", "perMinute": "1.50"},
                    "rates": [{"callType": "default", "price": "0.25", "usage": "100"}],
                }
            ],
            "number_rates": [self._rate(r) for r in self.number_rates],
            "call_rates": [self._rate(r) for r in self.call_rates],
            "transcription_rates": [{"setup_date": "2020-09-08", "rate": "0.1"}],
            "features": [
                {
                    "feature_code": "TBR",
                    "description": "Time Based Routing",
                    "start_date": "2017-08-01",
                    "end_date": "2017-10-01",
                    "setup_charge": "350.00",
                    "monthly_charge": "250.00",
                    "change_charge": "0.00",
                    "charging_method": "usage",
                    "charge_term": "advance",
                }
            ],
        }
        if rest[0] in fixtures:
            return self._ok(received, fixtures[rest[0]])
        return self._error(received, 404, "Not Found")

    def _rate(self, rate: dict[str, Any]) -> dict[str, Any]:
        code = rate.get("rate_code")
        if self.rate_code_form == "string" and code is not None:
            return {**rate, "rate_code": str(code)}
        return dict(rate)

    # -- search --------------------------------------------------------------------------------

    def _available(self) -> list[dict[str, Any]]:
        with self.lock:
            taken = self.reserved | set(self.services)
            return [n for n in self.inventory if n["e164"] not in taken]

    def _search(self, received: Any) -> Response:
        q = received.query
        pool = self._available()
        if "szu" in q:
            found = [n for n in pool if n["szu"] == q["szu"].lower()]
            return self._numbers(received, found)
        if not q.get("country"):
            return self._error(received, 400, "Bad Request", {"country": "required"})
        pool = [n for n in pool if q["country"].upper() == "AU"]
        try:
            radius = float(q.get("radius", 20))
        except ValueError:
            return self._error(received, 400, "Bad Request", {"radius": "must be a number"})
        if "location" in q:
            places = _places(q["location"])
            if not places:
                return self._error(received, 400, "Bad Request", {"location": "address not found"})
            if len(places) > 1:
                candidates = [{"name": p[0], "state": p[1], "country": "AU", "lat_lng": [p[2], p[3]]} for p in places]
                return JSONResponse(  # Multiple Addresses: the candidates under errors.location
                    {"@transaction": self._transaction(received), "errors": {"location": candidates}},
                    status_code=300,
                )
            lat, lng = places[0][2], places[0][3]
            return self._numbers(received, _near(pool, lat, lng, radius))
        if "lat" in q:
            try:
                lat, lng = float(q["lat"]), float(q.get("lng", "x"))  # the search takes lng (never long)
            except ValueError:
                return self._error(received, 400, "Bad Request", {"lng": "lat and lng must be numbers"})
            return self._numbers(received, _near(pool, lat, lng, radius))
        if "number" in q:
            if not _valid_digits(q["number"]):
                return self._error(received, 400, "Bad Request", {"number": "invalid number"})
            return self._numbers(received, _prefix(pool, q["number"]))
        if "number_type" in q:
            kind = q["number_type"]
            if kind not in NUMBER_TYPES:  # the search's enum: GEO, TOLLFREE, FREECALL, MOBILE
                return self._error(received, 400, "Bad Request", {"number_type": "invalid number type"})
            return self._numbers(received, [n for n in pool if n["type"] == kind])
        return self._error(received, 400, "Bad Request", {"search": "give location, lat/lng, number or number_type"})

    def _numbers(self, received: Any, numbers: list[dict[str, Any]]) -> Response:
        body = {
            _digits(n["e164"]): {
                "country": "AU",
                "region": n["region"],
                "type": n["type"],
                "national": _national(n["e164"]),
                "calling_code": "+61",
            }
            for n in numbers[:20]
        }
        return self._ok(received, body)

    # -- requests ------------------------------------------------------------------------------

    def _validate_request(self, body: Any) -> dict[str, str]:
        """Inbound Request, field by field."""
        if not isinstance(body, dict):
            return {"body": "must be a JSON object"}
        errors = _unknown(body, REQUEST_FIELDS)
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            errors["name"] = "required"
        for key in ("custom_id", "custom_group"):
            if key in body and (not isinstance(body[key], str) or len(body[key]) > 50):
                errors[key] = "must be a string of at most 50 characters"
        rule = body.get("service_number")
        if not isinstance(rule, dict):
            errors["service_number"] = "required"
        else:
            errors.update(_validate_rule(rule))
        service = body.get("service")
        if not isinstance(service, dict):
            errors["service"] = "required"
        else:
            errors.update(self._validate_service(service, creating=True))
        if "call_reporting" in body:
            errors.update(self._validate_reporting(body["call_reporting"]))
        for key in ("call_uri", "sms_forward_uri", "callback_uri"):
            if key in body and not _url_ok(body[key]):
                errors[key] = "must be an http(s) URL"
        return errors

    def _validate_update(self, body: dict[str, Any]) -> dict[str, str]:
        """Service Detail, partial ("only the required changes can be submitted")."""
        errors = _unknown(body, UPDATE_FIELDS)
        if "name" in body and (not isinstance(body["name"], str) or not body["name"].strip()):
            errors["name"] = "must not be empty"
        if "service_number" in body and not _valid_digits(body["service_number"]):
            errors["service_number"] = "invalid number"
        if "service" in body:
            if isinstance(body["service"], dict):
                errors.update(self._validate_service(body["service"], creating=False))
            else:
                errors["service"] = "must be an object"
        if "call_reporting" in body:
            errors.update(self._validate_reporting(body["call_reporting"]))
        for key in ("call_uri", "sms_forward_uri"):
            if key in body and not _url_ok(body[key]):
                errors[key] = "must be an http(s) URL"
        return errors

    def _validate_service(self, service: dict[str, Any], *, creating: bool) -> dict[str, str]:
        errors = _unknown(service, SERVICE_FIELDS)
        kind = service.get("type")
        if (creating or "type" in service) and kind not in ("transfer", "voicemail", "prompt"):
            errors["type"] = "must be transfer, voicemail or prompt"
        if kind == "transfer" and creating:
            if not _valid_digits(service.get("answer_point")):
                errors["answer_point"] = "invalid number"
            if not isinstance(service.get("record_call"), bool):
                errors["record_call"] = "required for transfer (true or false)"
        if "answer_point" in service and not _valid_digits(service["answer_point"]):
            errors["answer_point"] = "invalid number"
        if "record_call" in service and not isinstance(service["record_call"], bool):
            errors["record_call"] = "must be true or false"
        if "answer_point_name" in service and not isinstance(service["answer_point_name"], str):
            errors["answer_point_name"] = "must be a string"
        for key in ("call_greeting", "call_whisper", "voicemail"):
            if key in service and not _url_ok(service[key]):
                errors[key] = "must be an http(s) URL"
        if "call_reporting" in service:
            errors.update(self._validate_reporting(service["call_reporting"]))
        return errors

    def _validate_reporting(self, reporting: Any) -> dict[str, str]:
        if not isinstance(reporting, dict):
            return {"call_reporting": "must be an object"}
        errors = _unknown(reporting, REPORTING_FIELDS)
        if reporting.get("report", "none") not in REPORT_LEVELS:
            errors["report"] = "must be none, missed, missed-voicemail or all-calls"
        email = reporting.get("email")
        if email is not None:
            if not isinstance(email, dict):
                return {**errors, "email": "must be an object"}
            errors.update(_unknown(email, EMAIL_FIELDS))
            if not isinstance(email.get("subject"), str) or not email["subject"]:
                errors["subject"] = "required"
            for key in ("email_to", "email_cc", "email_bcc"):  # cc/bcc: "required" in the schema, absent in examples
                recipients = email.get(key)
                if key != "email_to" and recipients is None:
                    continue
                if (
                    not isinstance(recipients, list)
                    or (key == "email_to" and not recipients)
                    or not all(isinstance(r, str) and "@" in r for r in recipients)
                ):
                    errors[key] = "must be a list of email addresses"
            if "template" in email and not self._template_saved(email["template"], "email"):
                errors["template"] = "invalid template"
        sms = reporting.get("sms")
        if sms is not None:
            if not isinstance(sms, dict):
                return {**errors, "sms": "must be an object"}
            errors.update(_unknown(sms, SMS_FIELDS))
            if not _valid_digits(sms.get("mobile")):
                errors["mobile"] = "invalid number"
            if "template" in sms and not self._template_saved(sms["template"], "sms"):
                errors["template"] = "invalid template"
        return errors

    def _template_saved(self, name: Any, kind: str) -> bool:
        """Seed: a template "if defined must be a valid template previously saved" (of that report's type)."""
        with self.lock:
            return any(n == name and t == kind for (n, _, t) in self.templates)

    def _pick(self, rule: dict[str, Any]) -> str | None:
        pool = self._available()
        kind = rule.get("search_type")
        if kind == "number":
            exact = [n for n in pool if _digits(n["e164"]) == rule.get("number")]
            candidates = exact or _prefix(pool, str(rule.get("number")))
        elif kind == "prefix":
            candidates = _prefix(pool, str(rule.get("number")))
        elif kind == "number_type":
            candidates = [n for n in pool if n["type"] == str(rule.get("number_type")).upper()]
        elif kind == "szu":
            candidates = [n for n in pool if n["szu"] == str(rule.get("szu")).lower()]
        elif kind == "location" and "location" in rule:
            places = _places(str(rule["location"]))
            candidates = _near(pool, places[0][2], places[0][3], float(rule.get("radius") or 20)) if places else []
        else:  # coordinates (or "location" with lat/lng, as the seed's example has it)
            lng = float(rule.get("long", rule.get("lng")) or 0)
            candidates = _near(pool, float(rule["lat"]), lng, float(rule.get("radius") or 20))
        return candidates[0]["e164"] if candidates else None

    def _new_service(self, received: Any) -> Response:
        try:
            body = received.json
        except ValueError:
            return self._error(received, 400, "Bad Request", {"body": "must be JSON"})
        errors = self._validate_request(body)
        if errors:
            return self._error(received, 400, "Bad Request", errors)
        with self.lock:
            number = self._pick(body["service_number"])
            if number is None:
                return self._error(
                    received,
                    400,
                    "Bad Request",
                    {"service_number": "no available number matches the search rules"},
                )
            self.reserved.add(number)
            record = self._add_request("create", body, number, received.text)
        ack = {
            "service_number": _digits(number),
            "request_id": record["id"],
            "message": "Success",
            "code": 200,
        }
        return self._acknowledge(received, record, ack)

    def _acknowledge(self, received: Any, record: dict[str, Any], ack: dict[str, Any]) -> JSONResponse:
        reply = self._reply(received, ack)
        record["acknowledgment_body"] = reply  # served back as sent, by /requests/{id}/acknowledgment_body
        self._complete_later(record)
        return JSONResponse(reply)

    def _add_request(self, kind: str, body: dict[str, Any], number: str, text: str) -> dict[str, Any]:
        record = {
            "id": uuid.uuid4().hex,
            "request_type": kind,
            "custom_id": body.get("custom_id"),
            "custom_group": body.get("custom_group"),
            "request_date": _now(),
            "callback_date": None,
            "request_status": "pending",
            "message": "Request is pending completion",
            "service_number": _digits(number),
            "answer_point": (body.get("service") or {}).get("answer_point"),
            "callback_url": body.get("callback_uri"),
            "request_body": body,
            "request_text": text,  # "the request as received"
            "acknowledgment_body": None,
            "callback_body": None,
            "callback": {"last_update": None, "status": "pending", "http_reply": 0},
        }
        self.requests.append(record)
        return record

    def _complete_later(self, record: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._complete(record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _complete(self, record: dict[str, Any]) -> None:
        await asyncio.sleep(self.callback_delay)
        number = "+" + record["service_number"]
        body = record["request_body"]
        with self.lock:
            if record["request_type"] == "create" and number in self.fail_provisioning:
                record.update(request_status="failed", message="Selected service number is not available")
                self.reserved.discard(number)
            else:
                record.update(request_status=self.final_status, message="Request completed successfully")
                self._apply(record["request_type"], number, body)
        callback = {
            "account_id": self.account_id,
            "request_id": record["id"],
            "custom_id": record["custom_id"],
            "status": record["request_status"],
            "message": record["message"],
            "service_number": record["service_number"],
            "answer_point": record["answer_point"],
        }
        record["callback_body"] = callback
        url = record.get("callback_url") or (self.services.get(number) or {}).get("callback_uri")
        if url and self.send_callbacks:
            await self._send_callback(record, url, callback)
        if record["request_type"] == "create" and record["request_status"] == "completed" and self.test_calls:
            # Seed 000: once configured, "a test call is automatically conducted and the data sent via HTTP
            # Callback (Requires Subscription)" — a call to the new number, reported on its call-URI.
            await asyncio.sleep(self.test_call_delay)
            await asyncio.to_thread(self.place_call, number, TEST_CALLER, status="avanser_answered_call", duration=3)

    async def _send_callback(self, record: dict[str, Any], url: str, callback: dict[str, Any]) -> None:
        for attempt in (1, 2):  # the seed's callback statuses: retry once, then failed
            try:
                async with httpx.AsyncClient(timeout=10) as client:
                    answer = await client.post(url, json=callback)
                status = answer.status_code
            except httpx.HTTPError:
                status = 0
            with self.lock:
                record["callback"] = {
                    "last_update": _now(),
                    "status": "success" if 200 <= status < 300 else ("retry" if attempt == 1 else "failed"),
                    "http_reply": status,
                }
                record["callback_date"] = _now()
                self.callbacks_sent.append((url, callback, status))
            if 200 <= status < 300:
                return
            await asyncio.sleep(self.callback_delay)

    def _apply(self, kind: str, number: str, body: dict[str, Any]) -> None:
        if kind == "create":
            self.reserved.discard(number)
            service = dict(body.get("service") or {})
            if "call_reporting" in body and "call_reporting" not in service:
                service["call_reporting"] = body["call_reporting"]
            self.services[number] = {
                "name": body["name"],
                "service_number": _digits(number),
                "service": service,
                "call_uri": body.get("call_uri"),
                "sms_forward_uri": body.get("sms_forward_uri"),
                "callback_uri": body.get("callback_uri"),
                "custom_id": body.get("custom_id"),
                "custom_group": body.get("custom_group"),
                "@links": {"service_uri": f"/services/{_digits(number)}"},
            }
        elif kind == "update" and number in self.services:
            service = self.services[number]
            for key, value in body.items():
                if key == "service" and isinstance(value, dict):
                    service["service"].update(value)
                elif key == "call_reporting":
                    service["service"]["call_reporting"] = value
                else:
                    service[key] = value
        elif kind == "delete":
            self.services.pop(number, None)  # the number goes to quarantine, not back to the pool

    def _page(self, received: Any, name: str, items: list[dict[str, Any]], page: int) -> Response:
        with self.lock:
            chunk = items[(page - 1) * PAGE : page * PAGE]
            more = len(items) > page * PAGE
        public = [_public(item, name) for item in chunk]
        extra = {"@next": f"/{name}/{page + 1}"} if more else {}
        return self._ok(received, public, extra)

    def _request_raw(self, received: Any, request_id: str, which: str) -> Response:
        with self.lock:
            record = next((r for r in self.requests if r["id"] == request_id), None)
        if record is None or which not in ("request_body", "acknowledgment_body", "callback_body"):
            return self._error(received, 400, "Bad Request", {"request_id": "invalid request id"})
        if which == "request_body":  # "Returns the submitted user body, this is the request as received"
            return Response(record["request_text"], media_type="text/plain")
        value = record[which]
        if value is None:
            return self._error(received, 400, "Bad Request", {which: "not available yet"})
        return Response(json.dumps(value), media_type="text/plain")  # "returned as plain text"

    def _change_service(self, received: Any, method: str, digits: str) -> Response:
        number = "+" + digits
        with self.lock:
            if number not in self.services:
                return self._error(received, 400, "Bad Request", {"service_number": "service not found"})
        if method == "POST":
            try:
                body = received.json
            except ValueError:
                return self._error(received, 400, "Bad Request", {"body": "must be JSON"})
            if not isinstance(body, dict) or not body:
                return self._error(received, 400, "Bad Request", {"body": "nothing to update"})
            errors = self._validate_update(body)
            if errors:
                return self._error(received, 400, "Bad Request", errors)
            kind = "update"
        else:
            body, kind = {}, "delete"
        with self.lock:
            record = self._add_request(kind, body, number, received.text)
            record["callback_url"] = self.services[number].get("callback_uri")
        return self._acknowledge(received, record, {"request_id": record["id"], "message": "Success", "code": 200})

    # -- templates -----------------------------------------------------------------------------

    def _templates(self, received: Any, method: str) -> Response:
        q = received.query
        if method == "GET" and "name" not in q:
            listed = [{"name": n, "type": t, "country": c} for (n, c, t) in sorted(self.templates)]
            return self._ok(received, listed)
        name, country, kind = q.get("name"), q.get("country"), q.get("type", "email")
        if not name or not country:
            return self._error(received, 400, "Bad Request", {"name": "name and country are required"})
        if kind not in ("email", "sms"):
            return self._error(received, 400, "Bad Request", {"type": "must be email or sms"})
        key = (name, country, kind)
        if method == "GET":
            matches = [k for k in self.templates if k[0] == name and k[1] == country]
            if not matches:
                return self._error(received, 400, "Bad Request", {"name": "template not found"})
            return self._ok(received, {"message": "Success", "code": 200})  # Generic Success: all the seed shows
        if method == "POST":
            if not received.headers.get("content-type", "").startswith("text/html"):
                return self._error(received, 400, "Bad Request", {"body": "send the template as text/html"})
            content = received.body.decode()
            if not content.strip():
                return self._error(received, 400, "Bad Request", {"body": "template content is empty"})
            with self.lock:
                self.templates[key] = content
            return self._ok(received, {"message": "Success", "code": 200})
        if method == "DELETE":
            if key not in self.templates:
                return self._error(received, 400, "Bad Request", {"name": "template not found"})
            in_use = any(_uses_template(s, name) for s in self.services.values())
            if in_use:
                return self._error(received, 400, "Template is in use")
            with self.lock:
                del self.templates[key]
            return self._ok(received, {"message": "Success", "code": 200})
        return self._error(received, 405, "Method Not Allowed")


def _unknown(body: dict[str, Any], known: set[str]) -> dict[str, str]:
    return {key: "unknown field" for key in body if key not in known}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _validate_rule(rule: dict[str, Any]) -> dict[str, str]:
    """Inbound Request's `service_number`: "only one search type supported", and what each requires."""
    errors = _unknown(rule, RULE_FIELDS)
    kind = rule.get("search_type")
    if not isinstance(rule.get("country"), str) or not rule["country"]:
        errors["country"] = "required"
    if kind not in SEARCH_TYPES:  # the enum lists five; `szu` is the field's own example value and has a field
        return {**errors, "search_type": f"must be one of {', '.join(sorted(SEARCH_TYPES))}"}
    by_point = kind == "coordinates" or (kind == "location" and "lat" in rule)  # the example: location + lat/lng
    if kind == "location" and not by_point and not (isinstance(rule.get("location"), str) and rule["location"]):
        errors["location"] = "required when search_type is location"
    if by_point:
        if not _number(rule.get("lat")):
            errors["lat"] = "required when search_type is coordinates"
        if not _number(rule.get("long", rule.get("lng"))):
            errors["long"] = "required when search_type is coordinates"
    if kind in ("location", "coordinates") and not _number(rule.get("radius")):
        errors["radius"] = "required when search_type is coordinates or location"
    if kind in ("prefix", "number") and not _valid_digits(rule.get("number")):
        errors["number"] = "invalid number"
    if kind == "number_type" and str(rule.get("number_type", "")).lower() not in REQUEST_NUMBER_TYPES:
        errors["number_type"] = "must be tollfree, freecall or mobile"
    if kind == "szu" and not (isinstance(rule.get("szu"), str) and rule["szu"]):
        errors["szu"] = "required when search_type is szu"
    return errors


def _uses_template(service: dict[str, Any], name: str) -> bool:
    reporting = service.get("service", {}).get("call_reporting") or {}
    return any((reporting.get(k) or {}).get("template") == name for k in ("email", "sms"))


def _places(text: str) -> list[tuple[str, str, float, float, str]]:
    """Places an address may mean: by town name, else by the state's capital (a tiny geocoder)."""
    words = text.lower().replace(",", " ").split()
    by_town = [p for p in PLACES if p[0].split(",")[0].lower() in words]
    if by_town:
        return by_town
    capitals = {"nsw": "Sydney", "vic": "Melbourne", "qld": "Brisbane", "wa": "Perth"}
    towns = {capitals[w] for w in words if w in capitals}
    return [p for p in PLACES if p[0].split(",")[0] in towns and p[1] == p[0].split(", ")[1]][:1]


def _near(pool: list[dict[str, Any]], lat: float, lng: float, radius: float) -> list[dict[str, Any]]:
    located = [(n, _km(lat, lng, n["lat"], n["lng"])) for n in pool if n["lat"] is not None]
    return [n for n, d in sorted(located, key=lambda x: x[1]) if d <= radius]


def _prefix(pool: list[dict[str, Any]], digits: str) -> list[dict[str, Any]]:
    # Seed: a perfect match first, then one digit shorter at a time, down to 6 digits.
    for length in range(len(digits), 5, -1):
        found = [n for n in pool if _digits(n["e164"]).startswith(digits[:length])]
        if found:
            return found
    return []


def _public(item: dict[str, Any], kind: str) -> dict[str, Any]:
    if kind == "services":
        return {k: v for k, v in item.items() if k not in ("custom_id", "custom_group", "callback_uri")}
    public = {
        k: v
        for k, v in item.items()
        if k not in ("request_body", "request_text", "acknowledgment_body", "callback_body", "callback")
    }
    public["@links"] = {
        "request_body": f"/requests/{item['id']}/request_body",
        "acknowledgment_body": f"/requests/{item['id']}/acknowledgment_body",
        "callback_body": f"/requests/{item['id']}/callback_body" if item["callback_body"] else None,
    }
    public["@callback"] = item["callback"]
    return public


def _avanser_display(e164: str) -> str:
    """`+61-0290081596`: the form the seed's call-URI and SMS-forward examples use."""
    number = phonenumbers.parse(e164, None)
    return f"+{number.country_code}-0{number.national_number}"


TEST_CALLER = "+61290000000"  # who AVANSER's automatic test call comes from (the seed doesn't say)
TEMPLATE_TAGS = {"tag": "custom_id", "curl": "custom_group"}  # seed 000's tag names where they differ


def _substitute(url: str, params: dict[str, str]) -> str:
    """Seed 000's template filled in: each [[tag]] replaced by its value, URL-encoded; unknown tags kept."""

    def value(match: re.Match[str]) -> str:
        name = TEMPLATE_TAGS.get(match.group(1), match.group(1))
        return quote(params[name], safe="") if name in params else match.group(0)

    return re.sub(r"\[\[(\w+)\]\]", value, url)


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _feed_body(records: list[dict[str, Any]], kind: str) -> str:
    """The records as the feed serves them: a JSON list, CSV with a header row, or XML (a <call> per record)."""
    if kind == "json":
        return json.dumps(records)
    names = list(records[0]) if records else ["call_unique_id", "call_id", "call_status", "tracking_number"]
    if kind == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=names, lineterminator="\r\n")
        writer.writeheader()
        for record in records:
            writer.writerow({k: "" if v is None else v for k, v in record.items()})
        return out.getvalue()
    calls = "".join(
        "<call>" + "".join(f"<{k}>{xml_escape('' if v is None else str(v))}</{k}>" for k, v in r.items()) + "</call>"
        for r in records
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<calls>{calls}</calls>'


def _form(body: bytes) -> list[tuple[str, str]]:
    return parse_qsl(body.decode(), keep_blank_values=True)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+10:00")
