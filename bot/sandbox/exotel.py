"""A stand-in for Exotel Lead Assist GreenVN (seed 002) on loopback.

Checks Basic auth (API key and token) and the tenant SID, validates allocations as the seed
describes (E.164 numbers, a/b disjoint — code 14, regions — code 15, pins, usage), keeps allocations
with their state (active / vault), swaps numbers and parties, deallocates automatically when the
`deallocation_policy` duration runs out (and POSTs the deallocation event), and fires call and PIN
verification events on demand. Errors come as the seed shows them: the envelope wrapped in a list.
"""

from __future__ import annotations

import asyncio
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

from bot.sandbox.common import SandboxBase
from bot.telco.exotel import APPENDIX_1, REGIONS

ACCOUNT_SID = "switchboard1"

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
    ) -> None:
        super().__init__(api_key, api_token)
        self.account_sid = account_sid
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

    # -- wire format ---------------------------------------------------------------------------

    @staticmethod
    def _fail(code: int, message: str | None = None) -> JSONResponse:
        _, sentence, http_status = APPENDIX_1[code]
        body = [
            {
                "success": False,
                "status": http_status,
                "code": code,
                "message": message or sentence,
                "data": None,
            }
        ]
        return JSONResponse(body, status_code=http_status)

    @staticmethod
    def _ok(allocation: dict[str, Any]) -> JSONResponse:
        data = {k: v for k, v in allocation.items() if not k.startswith("_")}
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
            return self._fail(7)
        if request.path_params["sid"] != self.account_sid:
            return self._fail(8)
        body: Any = None
        if received.body:
            try:
                body = received.json
            except ValueError:
                return self._fail(5, "Request body is not valid JSON")
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
            response = self._fail(5, "Unknown operation")
        if fault is not None and fault.kind == "after_commit":
            return await self.after_commit_response(fault)
        return response

    # -- operations ----------------------------------------------------------------------------

    def _check_parties(self, a: Any, b: Any, a_pins: Any, b_pins: Any, usage: Any) -> JSONResponse | None:
        for numbers in (a, b):
            if numbers is None:
                continue
            if not isinstance(numbers, list) or not numbers:
                return self._fail(3)
            if not all(_e164(n) for n in numbers):
                return self._fail(16)
            if len(set(numbers)) < len(numbers):
                return self._fail(13)
        if a and b and set(a) & set(b):
            return self._fail(14)
        for pins in (a_pins, b_pins):
            if pins is not None and (
                not isinstance(pins, list)
                or not all(isinstance(p, int) and not isinstance(p, bool) and p > 0 for p in pins)
            ):
                return self._fail(5, "Pins must be positive integers")
        if usage is not None and usage not in ("oneway", "twoway"):
            return self._fail(5, "usage must be oneway or twoway")
        return None

    def _free(self, preferences: dict[str, Any], strict: bool) -> tuple[str, str, str] | JSONResponse | None:
        region = preferences.get("region")
        if region is not None and region not in REGIONS:
            return self._fail(15)
        kind = preferences.get("type") or preferences.get("number_type")
        with self.lock:
            used = {a["green_vn"] for a in self.allocations.values() if a["state"] == "active"}
        free = [p for p in self.pool if p[0] not in used]
        wanted = preferences.get("greenvn")

        def score(p: tuple[str, str, str]) -> int:
            return (p[0] == wanted) * 4 + (p[1] == region) * 2 + (p[2] == kind)

        ranked = sorted(free, key=score, reverse=True)
        if not ranked:
            return None
        best = ranked[0]
        if strict and ((wanted and best[0] != wanted) or (region and best[1] != region) or (kind and best[2] != kind)):
            return None
        return best

    def _allocate(self, body: Any) -> JSONResponse:
        if not isinstance(body, dict):
            return self._fail(3)
        if (
            not body.get("connection_id")
            or "aparty_numbers" not in body
            or "bparty_numbers" not in body
            or "usage" not in body
        ):
            return self._fail(3)
        problem = self._check_parties(
            body["aparty_numbers"],
            body["bparty_numbers"],
            body.get("aparty_pins"),
            body.get("bparty_pins"),
            body["usage"],
        )
        if problem:
            return problem
        with self.lock:
            if any(a["connection_id"] == body["connection_id"] for a in self.allocations.values()):
                return self._fail(18)
        if body.get("flow_id") == "invalid-flow":
            return self._fail(50)
        strict = body.get("strictness") in (True, "true")
        picked = self._free(body.get("preferences") or {}, strict)
        if isinstance(picked, JSONResponse):
            return picked
        if picked is None:
            return self._fail(4)
        duration = (body.get("deallocation_policy") or {}).get("duration")
        seconds = _seconds(duration) if duration is not None else 3600.0
        if seconds is None:
            return self._fail(5, "deallocation_policy.duration must look like 600s, 30m or 2d")
        greenvn_id = str(uuid.uuid4())
        allocation = {
            "connection_id": body["connection_id"],
            "aparty_numbers": body["aparty_numbers"],
            "bparty_numbers": body["bparty_numbers"],
            "aparty_pins": body.get("aparty_pins") or [None],
            "bparty_pins": body.get("bparty_pins") or [None],
            "usage": body["usage"],
            "state": "active",
            "green_vn": picked[0],
            "greenvn_id": greenvn_id,
        }
        if body.get("flow_id"):
            allocation["flow_id"] = body["flow_id"]
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

    def _deallocate(self, greenvn_id: str, *, notify: bool) -> JSONResponse:
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

    def _update_parties(self, greenvn_id: str, body: Any) -> JSONResponse:
        allocation = self.allocations[greenvn_id]
        if allocation["state"] != "active":
            return self._fail(22)
        if not isinstance(body, dict) or ("aparty_numbers" not in body and "bparty_numbers" not in body):
            return self._fail(3)
        a = body.get("aparty_numbers", allocation["aparty_numbers"])
        b = body.get("bparty_numbers", allocation["bparty_numbers"])
        problem = self._check_parties(a, b, body.get("aparty_pins"), body.get("bparty_pins"), body.get("usage"))
        if problem:
            return problem
        with self.lock:
            allocation.update(aparty_numbers=a, bparty_numbers=b)
            for key in ("aparty_pins", "bparty_pins", "usage"):
                if key in body:
                    allocation[key] = body[key]
        return self._ok(allocation)

    def _swap(self, greenvn_id: str, body: dict[str, Any]) -> JSONResponse:
        allocation = self.allocations[greenvn_id]
        if allocation["state"] != "active":
            return self._fail(22)
        preferences = body.get("preferences") or {}
        strict = body.get("strictness") in (True, "true")
        picked = self._free(preferences, strict)
        if isinstance(picked, JSONResponse):
            return picked
        if picked is None:
            return self._fail(4)
        with self.lock:
            allocation["green_vn"] = picked[0]
        return self._ok(allocation)
