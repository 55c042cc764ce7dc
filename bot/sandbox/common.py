"""What the provider sandboxes share: a record of every request, Basic auth, and injected faults."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

# How a sandbox can misbehave, as a real provider does.
FAULT_KINDS = ("status", "timeout", "malformed", "reset", "after_commit")


@dataclass
class Received:
    """One request as the sandbox received it, for tests to compare with the seed's examples."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def text(self) -> str:
        return self.body.decode()

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        scheme, _, value = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user, password


_cutting: contextvars.ContextVar[bool] = contextvars.ContextVar("sandbox_cutting", default=False)


class _QuietCut(logging.Filter):
    """uvicorn logs an unfinished response as an error; for a CutResponse that is the point."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _cutting.get()


logging.getLogger("uvicorn.error").addFilter(_QuietCut())


class CutResponse(Response):
    """An answer that stops mid-body: the headers promise more than is sent and the server closes the
    connection, as when a proxy or the network cuts a provider off (the client sees a broken
    connection, not an answer)."""

    def __init__(self) -> None:
        super().__init__(b"")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        _cutting.set(True)  # same task as uvicorn's complaint about the unfinished response
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"success": tr', "more_body": True})


@dataclass
class Fault:
    """Misbehave on the next `count` matching requests.

    kind: status (answer `status` with `body`), timeout (answer after `delay` s), malformed (200 with
    a body that is not JSON), reset (cut the answer off mid-body, nothing done), after_commit (do the
    work, then answer `status` — the ambiguous case — or, with `cut`, cut the answer off).
    """

    kind: str
    count: int = 1
    status: int = 500
    delay: float = 30.0
    body: str = ""
    path: str | None = None  # only requests whose path starts with this
    method: str | None = None
    retry_after: int | None = None
    cut: bool = False  # after_commit: cut the answer off instead of answering `status`


class SandboxBase:
    """Request log, credentials and faults, shared by the AVANSER, Exotel and DataTechLabs sandboxes."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self.lock = threading.RLock()
        self.received: list[Received] = []
        self.faults: list[Fault] = []
        self.base_url = ""
        self.latency = 0.0  # seconds every answer takes (a slow provider), on top of any fault
        self._http: httpx.Client | None = None

    def client(self) -> httpx.Client:
        """A keep-alive client for calling out (webhooks on demand); a fresh one costs ~25 ms."""
        with self.lock:
            if self._http is None:
                self._http = httpx.Client(timeout=10)
            return self._http

    def inject(self, kind: str, **options: Any) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        fault = Fault(kind=kind, **options)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def requests_to(self, method: str, path_prefix: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.method == method and r.path.startswith(path_prefix)]

    async def record(self, request: Request) -> Received:
        if self.latency:
            await asyncio.sleep(self.latency)
        received = Received(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
        )
        with self.lock:
            self.received.append(received)
        return received

    async def admit(self, request: Request) -> tuple[Received, Fault | None, Response | None]:
        """Record the request and take its fault; the third item is the answer when the fault answers first."""
        received = await self.record(request)
        fault = self.take_fault(received)
        if fault is not None and fault.kind != "after_commit":
            answer = await self.fault_response(fault)
            if answer is not None:
                return received, fault, answer
        return received, fault, None

    def authorized(self, received: Received) -> bool:
        return received.basic_auth == (self.username, self.password)

    def take_fault(self, received: Received) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.count <= 0:
                    continue
                if fault.path and not received.path.startswith(fault.path):
                    continue
                if fault.method and fault.method != received.method:
                    continue
                fault.count -= 1
                return fault
        return None

    async def fault_response(self, fault: Fault) -> Response | None:
        """The answer a fault gives before any work is done (None for after_commit)."""
        if fault.kind == "timeout":
            await asyncio.sleep(fault.delay)
            return PlainTextResponse("late", status_code=504)
        if fault.kind == "reset":
            return CutResponse()
        if fault.kind == "malformed":
            return PlainTextResponse(
                "<html><body>Bad Gateway</body></html>", status_code=200, media_type="application/json"
            )
        if fault.kind == "status":
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
            return PlainTextResponse(
                fault.body or f"fault {fault.status}",
                status_code=fault.status,
                headers=headers,
                media_type="application/json" if fault.body.startswith(("{", "[")) else None,
            )
        return None

    async def after_commit_response(self, fault: Fault) -> Response:
        if fault.cut:
            return CutResponse()
        if fault.delay and fault.status == 504:
            await asyncio.sleep(fault.delay)
        return PlainTextResponse(
            fault.body or "upstream error",
            status_code=fault.status,
            media_type="application/json" if fault.body.startswith(("{", "[")) else None,
        )
