"""The front door: what is refused before any route reads, parses or stores a request.

`Guard` is a pure ASGI middleware in front of every route. For each HTTP request it:

1. refuses a declared `Content-Length` over the route's cap with 413 before reading a byte
   (`/slack/*` 1 MB, everything else — the `/hooks/*` — 64 KB);
2. for `POST /slack/events`, refuses a request without Slack's signature headers, or with a
   timestamp more than 5 minutes away, with 401 before reading its body;
3. reads the body itself, counting bytes as they arrive (chunked bodies too): over the cap → 413,
   not all there within `BODY_TIMEOUT` seconds of the first read → 408; both close the connection;
4. for `POST /slack/events`, checks the signature on the raw bytes (`SignatureVerifier`) → 401,
   then refuses a signature already seen within its 5 minutes: a replay gets 200 with an empty
   body, which Slack (or whoever replays) takes as an ack, and reaches no listener;
5. hands the route the body it read, exactly as received.

Socket Mode requests don't come through HTTP and aren't affected.

`guarded_http_protocol()` is the uvicorn protocol `switchboard serve` runs: httptools, plus what it
lacks — a connection must finish its request line and headers within `HEADER_TIMEOUT` seconds
(408) and in at most `MAX_HEADER_BYTES` (431), so a slow or endless head can't hold a socket or
grow memory forever.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.signature import SignatureVerifier

log = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
SLACK_MAX_BODY = 1024 * 1024
HOOK_MAX_BODY = 64 * 1024
BODY_TIMEOUT = 10.0  # seconds from the first read of a body to its last byte
HEADER_TIMEOUT = 10.0  # seconds from a request's first byte (or the connection) to its last header
MAX_HEADER_BYTES = 64 * 1024  # request line and headers; a GET webhook's query string is its payload
SLACK_WINDOW = 300  # Slack's signatures are good for 5 minutes either side of their timestamp

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
OnRefused = Callable[[str, int, str], None]


def body_cap(path: str) -> int:
    """The largest body a route takes, in bytes."""
    return SLACK_MAX_BODY if path.startswith("/slack/") else HOOK_MAX_BODY


class ReplayGuard:
    """The signatures seen within their 5 minutes: an in-memory TTL set, O(log n) per request.

    One process holds it; a restart forgets it (item 7's SQLite keys on purchases and calls remain).
    Only verified signatures get in, so its size is bounded by what Slack sends in 5 minutes.
    """

    def __init__(self, window: float = SLACK_WINDOW, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self.clock = clock
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def first_time(self, signature: str, timestamp: int) -> bool:
        """Record `signature`; False when it was already seen and could still be accepted."""
        now = self.clock()
        while self._heap and self._heap[0][0] < now:
            _, old = heapq.heappop(self._heap)
            if self._expiry.get(old, now) < now:
                del self._expiry[old]
        if signature in self._expiry:
            return False
        # The verifier accepts the signature until its timestamp is `window` seconds old.
        expires = max(now, timestamp + self.window) + 1
        self._expiry[signature] = expires
        heapq.heappush(self._heap, (expires, signature))
        return True

    def __len__(self) -> int:
        return len(self._expiry)


class _Refusal(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _Disconnected(Exception):
    pass


class Guard:
    """ASGI middleware: body caps, a body deadline, and Slack's signature and replays, before any route."""

    def __init__(
        self,
        app: Any,
        *,
        signing_secret: str | None = None,
        body_timeout: float | None = None,
        on_refused: OnRefused | None = None,
        replays: ReplayGuard | None = None,
        shared_replays: Callable[[str, float], Awaitable[bool]] | None = None,
    ) -> None:
        self.app = app
        # Several replicas: a signature is also recorded in the shared database (first_time(signature, expires)).
        self.shared_replays = shared_replays
        self.verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self.body_timeout = BODY_TIMEOUT if body_timeout is None else body_timeout
        self.on_refused = on_refused
        self.replays = replays or ReplayGuard()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        slack = self.verifier is not None and path == SLACK_PATH and scope["method"] == "POST"
        headers = _headers(scope)
        try:
            cap = body_cap(path)
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > cap):
                if not length.isdigit():
                    raise _Refusal(400, "Content-Length is not a number")
                raise _Refusal(413, f"body of {length} bytes is over the {cap}-byte limit")
            if slack:
                _fresh(headers, self.verifier.clock.now())  # type: ignore[union-attr]
            body = await self._read(receive, cap)
            if slack:
                self._verify(headers, body)
                signature, timestamp = headers["x-slack-signature"], int(headers["x-slack-request-timestamp"])
                if not self.replays.first_time(signature, timestamp) or (
                    self.shared_replays is not None
                    and not await self.shared_replays(signature, timestamp + self.replays.window)
                ):
                    self._refused(path, 200, "replay of a signed request already handled: acked, not handled")
                    await _answer(send, 200, b"", close=False)
                    return
        except _Refusal as refusal:
            self._refused(path, refusal.status, refusal.reason)
            await _answer(send, refusal.status, json.dumps({"ok": False, "error": refusal.reason}).encode(), close=True)
            return
        except _Disconnected:
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive, cap: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        deadline = asyncio.get_running_loop().time() + self.body_timeout
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _Refusal(408, f"body not received within {self.body_timeout:g} s") from None
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                raise _Refusal(413, f"body over the {cap}-byte limit")
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _verify(self, headers: dict[str, str], body: bytes) -> None:
        assert self.verifier is not None
        if not self.verifier.is_valid(body, headers["x-slack-request-timestamp"], headers["x-slack-signature"]):
            raise _Refusal(401, "invalid request signature")

    def _refused(self, path: str, status: int, reason: str) -> None:
        log.warning("%s answered %d: %s", path, status, reason)
        if self.on_refused is not None:
            self.on_refused(path, status, reason)


def _headers(scope: Scope) -> dict[str, str]:
    # The few headers the guard reads; a repeated header keeps its first value, as Starlette's get() does.
    wanted = {b"content-length", b"x-slack-request-timestamp", b"x-slack-signature"}
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name in wanted:
            found.setdefault(name.decode("latin-1"), value.decode("latin-1").strip())
    return found


def _fresh(headers: dict[str, str], now: float) -> None:
    """Slack's headers are there and the timestamp is within its 5 minutes; else 401 without reading."""
    timestamp = headers.get("x-slack-request-timestamp", "")
    if not headers.get("x-slack-signature") or not timestamp.isdigit():
        raise _Refusal(401, "missing Slack signature headers")
    if abs(now - int(timestamp)) > SLACK_WINDOW:
        raise _Refusal(401, "stale request timestamp")


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # nothing more to read: this waits for the disconnect

    return replayed


async def _answer(send: Send, status: int, body: bytes, *, close: bool) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"application/json"))
    if close:
        # The rest of the body is never read: close rather than let uvicorn drain it.
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def guarded_http_protocol(
    header_timeout: float = HEADER_TIMEOUT, max_header_bytes: int = MAX_HEADER_BYTES
) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with a deadline and a size cap on each request's head."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        # Counting: a head runs from the connection (or the end of the previous request) to its blank
        # line, and its bytes are counted before httptools sees them. Timing: from the connection (or
        # the next request's first byte) to the last header; idle kept-alive time is uvicorn's own.
        _head_timer: asyncio.TimerHandle | None = None
        _in_head = True
        _head_bytes = 0
        _tail = b""  # the last bytes seen, for a blank line split across two reads

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def _arm(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(header_timeout, self._head_too_slow)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            self._in_head, self._head_bytes, self._tail = False, 0, b""
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head = True  # whatever comes next is the next request's head

        def data_received(self, data: bytes) -> None:
            if self._in_head and not self.transport.is_closing():
                joined = self._tail + data[:3]
                split = joined.find(b"\r\n\r\n")
                if split >= 0:
                    head = split + 4 - len(self._tail)
                else:
                    found = data.find(b"\r\n\r\n")
                    head = found + 4 if found >= 0 else len(data)
                self._head_bytes += head
                self._tail = (self._tail + data)[-3:]
                if self._head_bytes > max_header_bytes:
                    self._refuse(431, b"Request Header Fields Too Large")
                    return
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _head_too_slow(self) -> None:
            self._head_timer = None
            self._refuse(408, b"Request Timeout")

        def _refuse(self, status: int, phrase: bytes) -> None:
            self._disarm()
            if self.transport.is_closing():
                return
            log.warning("connection from %s refused with %d: %s", self.client, status, phrase.decode())
            self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-length: 0\r\nconnection: close\r\n\r\n" % (status, phrase))
            self.transport.close()

    return GuardedHttpToolsProtocol
