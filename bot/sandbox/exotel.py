"""A stand-in for Exotel Lead Assist GreenVN (seed 002) on loopback.

Checks Basic auth (API key and token) and the tenant SID, validates allocations as the seed
describes (the documented parameters and no others, E.164 numbers, a/b disjoint — code 14, regions
— code 15, preference filters — code 2, pins as positive integers, usage, strictness), keeps
allocations with their state (active / vault), swaps numbers (a new one on every PUT …/vn) and
parties, deallocates automatically when the `deallocation_policy` duration runs out (and POSTs the
deallocation event), and fires call and PIN verification events on demand.

Errors are built from this module's own copy of seed 002's Appendix 1 (`APPENDIX_1`: code → HTTP
status and description) and of the allocation answer's status list (`STATUSES`: 402, 429, 499),
never from the client's table. Where the seed is silent or contradicts itself the sandbox has
options: `error_shape` ("list", as the seed's one error example, or "object", as its parameter
table), `auth_failure_status` (401, Appendix 1's code 7, or 402, the status list's "Unauthorized
Request"), `bulk_limit` (numbers per side before code 17) and `call_flows` (the flow_ids that exist;
any other gives code 50). Codes with no request that causes them here (0, 9, 20, 23) and the bare
statuses come from `refuse_next()`.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

import httpx
import phonenumbers
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.sandbox.common import Fault, SandboxBase

ACCOUNT_SID = "switchboard1"

# Seed 002, Appendix 1 "List of status codes and their definition", as written there.
APPENDIX_1: dict[int, tuple[int, str]] = {
    0: (500, "Internal Service Error"),
    1: (404, "Could not find the given GreenVN"),
    2: (400, "One or more unsupported search filters provided"),
    3: (400, "One or more mandatory parameters not present in request"),
    4: (452, "No free GreenVNs are available for allocation"),
    5: (400, "Bad or missing parameters in Request"),
    7: (401, "Authentication not provided or failed"),
    8: (403, "Not permitted to do this operation."),
    9: (400, "Version header not specified or supported for this API"),
    13: (409, "All numbers in the group are duplicates"),
    14: (409, "a-party numbers and b-party numbers cannot contain the same number for an allocation."),
    15: (403, "The region code specified is not supported"),
    16: (400, "Invalid Number Received."),
    17: (413, "Too many allocation requests in bulk."),
    18: (409, "Allocation exists for this connection id"),
    19: (409, "One or more of the numbers is already registered with another pin"),
    20: (404, "Group and number mapping doesn't exist"),
    22: (410, "This greenvn is already deleted"),
    23: (400, "An invalid date range was provided in the query"),
    50: (422, "An invalid call flow is configured"),
}
# Seed 002, 'Create an Allocation', the `status` parameter: HTTP statuses that have no Appendix code.
STATUSES: dict[int, str] = {
    402: "Unauthorized Request",
    429: "Throttle limit exceeded",
    499: "Response timeout exceeded",
}
# Seed 002, `preferences.region`: "Valid values are: DL, MU, MH, WB, AP, TN, GJ, KA, KL, RJ, MP".
REGIONS = ("DL", "MU", "MH", "WB", "AP", "TN", "GJ", "KA", "KL", "RJ", "MP")
CREATE_FIELDS = {
    "connection_id",
    "aparty_numbers",
    "bparty_numbers",
    "aparty_pins",
    "bparty_pins",
    "usage",
    "strictness",
    "preferences",
    "deallocation_policy",
    "flow_id",
}
PARTIES_FIELDS = {"aparty_numbers", "bparty_numbers", "aparty_pins", "bparty_pins", "usage"}
SWAP_FIELDS = {"strictness", "preferences"}
# `type` (create's list) and `number_type` (the PUT …/vn example): each endpoint refers to the other.
PREFERENCE_FIELDS = {"greenvn", "region", "pin_code", "type", "number_type"}
# Fields of an allocation in the answers: create, GET, DELETE and PUT …/vn show these (flow_id only
# when it was passed); PUT …/call-party also shows the pins.
ANSWER_FIELDS = ("connection_id", "aparty_numbers", "bparty_numbers", "usage", "state", "green_vn", "greenvn_id")

POOL = [
    ("+918012345678", "KA", "landline"),
    ("+918012345679", "KA", "landline"),
    ("+919845012345", "KA", "mobile"),
    ("+912261234567", "MU", "landline"),
    ("+919820012345", "MH", "mobile"),
    ("+911141234567", "DL", "landline"),
    ("+919810012345", "DL", "mobile"),
    ("+914461234567", "TN", "landline"),
    ("+913361234567", "WB", "landline"),
    ("+917205827365", "KA", "mobile"),
]


def _e164(value: Any) -> bool:
    if not isinstance(value, str) or not value.startswith("+"):
        return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(value, None))
    except phonenumbers.NumberParseException:
        return False


def _seconds(duration: Any) -> float | None:
    match = re.fullmatch(r"(\d+)\s*([dhms]?)", str(duration or "").strip())
    if not match:
        return None
    value, unit = int(match.group(1)), match.group(2) or "s"
    return value * {"d": 86400, "h": 3600, "m": 60, "s": 1}[unit]


class ExotelSandbox(SandboxBase):
    def __init__(
        self,
        api_key: str = "exotel-key",
        api_token: str = "exotel-sandbox-token",
        *,
        account_sid: str = ACCOUNT_SID,
        error_shape: str = "list",
        auth_failure_status: int = 401,
        bulk_limit: int | None = None,
        call_flows: set[str] | None = None,
    ) -> None:
        super().__init__(api_key, api_token)
        self.account_sid = account_sid
        self.error_shape = error_shape  # "list" (the seed's error example) or "object" (its parameter table)
        self.auth_failure_status = auth_failure_status  # 401 (Appendix 1, code 7) or 402 ("Unauthorized Request")
        self.bulk_limit = bulk_limit  # numbers per side before code 17; None: no limit (the seed names none)
        self.call_flows = call_flows  # flow_ids that exist; None: any (the seed lists none)
        self.pool = list(POOL)
        self.allocations: dict[str, dict[str, Any]] = {}
        self.event_urls: dict[str, str] = {}  # call / deallocation / verification -> URL
        self.events_sent: list[tuple[str, dict[str, Any], int]] = []
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- helpers for tests and the demo --------------------------------------------------------

    def active(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(a) for a in self.allocations.values() if a["state"] == "active"]

    def fire_call(
        self,
        greenvn_id: str,
        caller: str,
        *,
        status: str = "completed",
        duration: int = 32,
        insights: bool = False,
    ) -> httpx.Response:
        """A call on an allocation: POST the call event (seed 002 'Call Event') to the events URL."""
        with self.lock:
            allocation = self.allocations[greenvn_id]
        other = (
            allocation["bparty_numbers"][0]
            if caller in allocation["aparty_numbers"]
            else (allocation["aparty_numbers"][0])
        )
        now = time.strftime("%Y-%m-%d %H:%M:%S")
        event: dict[str, Any] = {
            "start_time": now,
            "direction": "incoming",
            "source": "exotel",
            "dial_call_duration": str(duration),
            "connection_id": allocation["connection_id"],
            "dial_call_status": status,
            "greenvn": allocation["green_vn"],
            "recording_url": f"https://recordings.sandbox.invalid/{greenvn_id}/{uuid.uuid4().hex}.mp3",
            "on_call_duration": str(max(0, duration - 5)),
            "greenvn_id": greenvn_id,
            "call_type": status,
            "call_sid": uuid.uuid4().hex,
            "to": other,
            "current_time": now,
            "from": caller,
        }
        if insights:
            event["insights"] = {
                "DisconnectedBy": "Caller",
                "Status": status,
                "DetailedStatus": "CALL_COMPLETED",
                "RingingDuration": "4.58",
            }
        return self._post_event_sync("call", event)

    def fire_verification(self, greenvn_id: str, caller: str, pin: str, *, success: bool) -> httpx.Response:
        with self.lock:
            allocation = self.allocations[greenvn_id]
        if success:
            event: dict[str, Any] = {
                "connection_id": allocation["connection_id"],
                "greenvn": allocation["green_vn"],
                "greenvn_id": greenvn_id,
                "caller": caller,
                "pin": pin,
            }
        else:
            event = {
                "call_sid": uuid.uuid4().hex,
                "greenvn": allocation["green_vn"],
                "start_time": time.strftime("%Y-%m-%d %H:%M:%S"),
                "caller": caller,
                "pin": pin,
            }
        return self._post_event_sync("verification", event)

    def _post_event_sync(self, kind: str, event: dict[str, Any]) -> httpx.Response:
        url = self.event_urls[kind]
        response = self.client().post(url, json=event)
        with self.lock:
            self.events_sent.append((kind, event, response.status_code))
        return response

    def refuse_next(
        self,
        code: int | None = None,
        *,
        status: int | None = None,
        count: int = 1,
        method: str | None = None,
        path: str | None = None,
        after_commit: bool = False,
        retry_after: int | None = None,
    ) -> Fault:
        """Answer the next matching request(s) with an Appendix 1 code, or a bare status (402, 429, 499),
        built from this module's tables; `after_commit` does the work first (the ambiguous case)."""
        body, http_status = self.error_body(code, status)
        return self.inject(
            "after_commit" if after_commit else "status",
            status=http_status,
            body=body,
            count=count,
            method=method,
            path=path,
            retry_after=retry_after,
            delay=0.0,
        )

    def error_body(self, code: int | None = None, status: int | None = None) -> tuple[str, int]:
        """An error answer as the seed shows it, in this sandbox's `error_shape`, and its HTTP status."""
        if code is not None:
            http_status, message = APPENDIX_1[code]
            http_status = status or http_status
            envelope: dict[str, Any] = {
                "success": False,
                "status": http_status,
                "code": code,
                "message": message,
                "data": None,
            }
        else:
            assert status is not None, "give an Appendix 1 code or one of the documented statuses"
            http_status, message = status, STATUSES[status]
            # no Appendix code: "code … only comes in case of an error" listed there
            envelope = {"success": False, "status": http_status, "message": message, "data": None}
        return json.dumps([envelope] if self.error_shape == "list" else envelope), http_status

    # -- wire format ---------------------------------------------------------------------------

    def _fail(self, code: int, *, status: int | None = None) -> Response:
        body, http_status = self.error_body(code, status)
        return Response(body, status_code=http_status, media_type="application/json")

    @staticmethod
    def _ok(allocation: dict[str, Any], *, pins: bool = False) -> JSONResponse:
        fields = ANSWER_FIELDS + (("aparty_pins", "bparty_pins") if pins else ()) + ("flow_id",)
        data = {k: allocation[k] for k in fields if k in allocation}
        return JSONResponse({"success": True, "status": 200, "data": data})

    def asgi(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/tenants/{sid}/greenvn", self._endpoint, methods=["POST"]),
                Route("/v1/tenants/{sid}/greenvn/{greenvn_id}", self._endpoint, methods=["GET", "DELETE"]),
                Route("/v1/tenants/{sid}/greenvn/{greenvn_id}/{what}", self._endpoint, methods=["PUT"]),
            ]
        )

    async def _endpoint(self, request: Request) -> Response:
        self._loop = asyncio.get_running_loop()
        received, fault, early = await self.admit(request)
        if early is not None:
            return early
        if not self.authorized(received):
            return self._fail(7, status=self.auth_failure_status)
        if request.path_params["sid"] != self.account_sid:
            return self._fail(8)
        body: Any = None
        if received.body:
            try:
                body = received.json
            except ValueError:
                return self._fail(5)
        greenvn_id = request.path_params.get("greenvn_id")
        what = request.path_params.get("what")
        if request.method == "POST":
            response = self._allocate(body)
        elif greenvn_id not in self.allocations:
            response = self._fail(1)
        elif request.method == "GET":
            response = self._ok(self.allocations[greenvn_id])
        elif request.method == "DELETE":
            response = self._deallocate(greenvn_id, notify=False)
        elif what == "call-party":
            response = self._update_parties(greenvn_id, body)
        elif what == "vn":
            response = self._swap(greenvn_id, body or {})
        else:
            response = self._fail(5)
        if fault is not None and fault.kind == "after_commit":
            return await self.after_commit_response(fault)
        return response

    # -- operations ----------------------------------------------------------------------------

    def _check_parties(self, a: Any, b: Any, a_pins: Any, b_pins: Any, usage: Any) -> Response | None:
        for numbers in (a, b):
            if numbers is None:
                continue
            if not isinstance(numbers, list) or not numbers:
                return self._fail(3)
            if not all(_e164(n) for n in numbers):
                return self._fail(16)
            if len(set(numbers)) < len(numbers):
                return self._fail(13)
            if self.bulk_limit is not None and len(numbers) > self.bulk_limit:
                return self._fail(17)
        if a and b and set(a) & set(b):
            return self._fail(14)
        for pins in (a_pins, b_pins):
            # "any positive integer": a list of JSON integers (the examples: [12340], [2340])
            if pins is not None and (
                not isinstance(pins, list)
                or not all(isinstance(p, int) and not isinstance(p, bool) and p > 0 for p in pins)
            ):
                return self._fail(5)
        if usage is not None and usage not in ("oneway", "twoway"):
            return self._fail(5)
        return None

    def _pin_clash(self, sides: list[tuple[list[str], Any]], greenvn_id: str | None) -> bool:
        """Code 19: a number already registered, in another active allocation, with other pins."""
        with self.lock:
            others = [a for k, a in self.allocations.items() if k != greenvn_id and a["state"] == "active"]
        for numbers, pins in sides:
            if not pins:
                continue
            for other in others:
                for key in ("aparty", "bparty"):
                    theirs = [p for p in other[f"{key}_pins"] if p is not None]
                    if theirs and set(numbers) & set(other[f"{key}_numbers"]) and set(theirs) != set(pins):
                        return True
        return False

    @staticmethod
    def _strictness(body: dict[str, Any]) -> bool | None:
        """A boolean on create, "true"/"false" in the PUT …/vn example; None for anything else."""
        value = body.get("strictness", False)
        if value is True or value == "true":
            return True
        if value is False or value == "false":
            return False
        return None

    def _free(self, preferences: Any, strict: bool) -> tuple[str, str, str] | Response | None:
        if not isinstance(preferences, dict):
            return self._fail(5)
        if set(preferences) - PREFERENCE_FIELDS:
            return self._fail(2)
        region = preferences.get("region")
        if region is not None and region not in REGIONS:
            return self._fail(15)
        kind = preferences.get("type", preferences.get("number_type"))
        if kind is not None and kind not in ("mobile", "landline"):
            return self._fail(2)
        wanted = preferences.get("greenvn")
        if wanted is not None and not _e164(wanted):
            return self._fail(16)
        pin_code = preferences.get("pin_code")
        if pin_code is not None and not str(pin_code).isdigit():
            return self._fail(5)
        with self.lock:
            used = {a["green_vn"] for a in self.allocations.values() if a["state"] == "active"}
        free = [p for p in self.pool if p[0] not in used]

        def score(p: tuple[str, str, str]) -> int:
            return (p[0] == wanted) * 4 + (p[1] == region) * 2 + (p[2] == kind)

        ranked = sorted(free, key=score, reverse=True)
        if not ranked:
            return None
        best = ranked[0]
        if strict and ((wanted and best[0] != wanted) or (region and best[1] != region) or (kind and best[2] != kind)):
            return None
        return best

    def _allocate(self, body: Any) -> Response:
        if not isinstance(body, dict):
            return self._fail(3)
        if (
            not body.get("connection_id")
            or "aparty_numbers" not in body
            or "bparty_numbers" not in body
            or "usage" not in body
        ):
            return self._fail(3)
        if set(body) - CREATE_FIELDS or not isinstance(body["connection_id"], str):
            return self._fail(5)
        problem = self._check_parties(
            body["aparty_numbers"],
            body["bparty_numbers"],
            body.get("aparty_pins"),
            body.get("bparty_pins"),
            body["usage"],
        )
        if problem:
            return problem
        strict = self._strictness(body)
        if strict is None:
            return self._fail(5)
        policy = body.get("deallocation_policy", {})
        if not isinstance(policy, dict) or set(policy) - {"duration"}:
            return self._fail(5)
        seconds = _seconds(policy["duration"]) if "duration" in policy else 3600.0
        if seconds is None:
            return self._fail(5)
        flow_id = body.get("flow_id")
        if flow_id is not None and (
            not isinstance(flow_id, str) or (self.call_flows is not None and flow_id not in self.call_flows)
        ):
            return self._fail(50)
        with self.lock:
            if any(a["connection_id"] == body["connection_id"] for a in self.allocations.values()):
                return self._fail(18)
        sides = [(body["aparty_numbers"], body.get("aparty_pins")), (body["bparty_numbers"], body.get("bparty_pins"))]
        if self._pin_clash(sides, None):
            return self._fail(19)
        picked = self._free(body.get("preferences") or {}, strict)
        if isinstance(picked, Response):
            return picked
        if picked is None:
            return self._fail(4)
        greenvn_id = str(uuid.uuid4())
        allocation = {
            "connection_id": body["connection_id"],
            "aparty_numbers": body["aparty_numbers"],
            "bparty_numbers": body["bparty_numbers"],
            "aparty_pins": body.get("aparty_pins") or [None],  # the deallocation event shows [null]
            "bparty_pins": body.get("bparty_pins") or [None],
            "usage": body["usage"],
            "state": "active",
            "green_vn": picked[0],
            "greenvn_id": greenvn_id,
        }
        if flow_id:
            allocation["flow_id"] = flow_id
        with self.lock:
            self.allocations[greenvn_id] = allocation
        self._schedule_expiry(greenvn_id, seconds)
        return self._ok(allocation)

    def _schedule_expiry(self, greenvn_id: str, seconds: float) -> None:
        assert self._loop is not None
        old = self._timers.pop(greenvn_id, None)
        if old is not None:
            old.cancel()
        self._timers[greenvn_id] = self._loop.call_later(seconds, self._expire, greenvn_id)

    def _expire(self, greenvn_id: str) -> None:
        with self.lock:
            allocation = self.allocations.get(greenvn_id)
            if allocation is None or allocation["state"] != "active":
                return
        self._deallocate(greenvn_id, notify=True)

    def _deallocate(self, greenvn_id: str, *, notify: bool) -> Response:
        with self.lock:
            allocation = self.allocations[greenvn_id]
            if allocation["state"] == "vault":
                return self._fail(22)
            allocation["state"] = "vault"
        timer = self._timers.pop(greenvn_id, None)
        if timer is not None:
            timer.cancel()
        if notify and "deallocation" in self.event_urls:
            # Seed: the event is sent when the policy deallocates, not when the API is called.
            event = {
                k: allocation[k]
                for k in (
                    "connection_id",
                    "aparty_numbers",
                    "bparty_numbers",
                    "aparty_pins",
                    "bparty_pins",
                    "usage",
                    "state",
                )
            }
            event.update(greenvn=allocation["green_vn"], greenvn_id=greenvn_id)
            task = asyncio.get_running_loop().create_task(self._post_event("deallocation", event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return self._ok(allocation)

    async def _post_event(self, kind: str, event: dict[str, Any]) -> None:
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                status = (await client.post(self.event_urls[kind], json=event)).status_code
        except httpx.HTTPError:
            status = 0
        with self.lock:
            self.events_sent.append((kind, event, status))

    def _update_parties(self, greenvn_id: str, body: Any) -> Response:
        allocation = self.allocations[greenvn_id]
        if allocation["state"] != "active":
            return self._fail(22)
        if not isinstance(body, dict) or ("aparty_numbers" not in body and "bparty_numbers" not in body):
            return self._fail(3)
        if set(body) - PARTIES_FIELDS:
            return self._fail(5)
        a = body.get("aparty_numbers", allocation["aparty_numbers"])
        b = body.get("bparty_numbers", allocation["bparty_numbers"])
        problem = self._check_parties(a, b, body.get("aparty_pins"), body.get("bparty_pins"), body.get("usage"))
        if problem:
            return problem
        a_pins = body.get("aparty_pins", allocation["aparty_pins"])
        b_pins = body.get("bparty_pins", allocation["bparty_pins"])
        if self._pin_clash([(a, [p for p in a_pins if p]), (b, [p for p in b_pins if p])], greenvn_id):
            return self._fail(19)
        with self.lock:
            allocation.update(aparty_numbers=a, bparty_numbers=b)
            for key in ("aparty_pins", "bparty_pins", "usage"):
                if key in body:
                    allocation[key] = body[key]
        return self._ok(allocation, pins=True)

    def _swap(self, greenvn_id: str, body: Any) -> Response:
        """PUT …/vn: a new number from the pool every time (the old one goes back)."""
        allocation = self.allocations[greenvn_id]
        if allocation["state"] != "active":
            return self._fail(22)
        if not isinstance(body, dict) or set(body) - SWAP_FIELDS:
            return self._fail(5)
        strict = self._strictness(body)
        if strict is None:
            return self._fail(5)
        picked = self._free(body.get("preferences") or {}, strict)
        if isinstance(picked, Response):
            return picked
        if picked is None:
            return self._fail(4)
        with self.lock:
            allocation["green_vn"] = picked[0]
        return self._ok(allocation)
