"""Voicemail recordings attacked as an outsider would: hostile recording servers on loopback.

Used by `tests/test_recordings.py`; `recording_attacks()` runs the end-to-end attacks and returns
their figures in the shape of `bench/faults.py`'s checks (name, counts, pass), so the fault report
can show them:

- internal_fetches: requests that reached a server on a non-public address that Switchboard must not
  fetch from (a redirect's target on 127.0.0.2, a loopback server when loopback is not trusted);
- stuck_messages: later alerts in the same channel not posted within 2 s while a recording fails;
- bytes_uploaded / file_size: what reached Slack for a 6 MB recording.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from bot.recordings import RecordingFetcher
from bot.sandbox.server import LoopbackServer
from bot.sandbox.stack import Stack
from tests.helpers import call, route, send, wait_for

MB = 1024 * 1024
UNATTACHED = "couldn't attach the voicemail recording"


def payload(size: int) -> bytes:
    """`size` bytes that differ along the file, so a truncated or reordered upload shows."""
    block = hashlib.sha256(str(size).encode()).digest() * 2048  # 64 KiB
    body = bytearray()
    n = 0
    while len(body) < size:
        body += n.to_bytes(4, "big") + block[4:]
        n += 1
    return bytes(body[:size])


class Hostile:
    """A recording server that misbehaves on request; `hits` counts requests per path."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.streamed: Counter[str] = Counter()  # bytes a streaming route has handed to the server
        self.release = asyncio.Event()
        self.redirect_to = ""

    @property
    def total_hits(self) -> int:
        return sum(self.hits.values())

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/vm.mp3", self._small),
                Route("/size/{size:int}.mp3", self._sized),
                Route("/declared/{size:int}.mp3", self._declared),
                Route("/redirect.mp3", self._redirect),
                Route("/drip.mp3", self._drip),
                Route("/status/{code:int}.mp3", self._status),
                Route("/hang.mp3", self._hang),
            ]
        )

    def _count(self, request: Request) -> None:
        self.hits[request.url.path] += 1

    async def _small(self, request: Request) -> Response:
        self._count(request)
        return Response(b"ID3" + payload(2000), media_type="audio/mpeg")

    async def _sized(self, request: Request) -> Response:
        """Streamed in 64 KiB chunks, no Content-Length: the reader must go on to the end."""
        self._count(request)
        size, path = int(request.path_params["size"]), request.url.path
        body = payload(size)

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, size, 64 * 1024):
                self.streamed[path] += len(body[start : start + 64 * 1024])
                yield body[start : start + 64 * 1024]
                await asyncio.sleep(0)

        return StreamingResponse(chunks(), media_type="audio/mpeg")

    async def _declared(self, request: Request) -> Response:
        """Says how big it is up front (and sends nothing but the first bytes)."""
        self._count(request)
        size = int(request.path_params["size"])

        async def chunks() -> AsyncIterator[bytes]:
            self.streamed[request.url.path] += 1024
            yield b"ID3" + b"\0" * 1021
            await self.release.wait()

        return StreamingResponse(chunks(), media_type="audio/mpeg", headers={"Content-Length": str(size)})

    async def _redirect(self, request: Request) -> Response:
        self._count(request)
        return RedirectResponse(self.redirect_to, status_code=302)

    async def _drip(self, request: Request) -> Response:
        """One byte every 0.1 s, for ever (or until the test ends)."""
        self._count(request)

        async def chunks() -> AsyncIterator[bytes]:
            yield b"I"
            while not self.release.is_set():
                await asyncio.sleep(0.1)
                yield b"\0"

        return StreamingResponse(chunks(), media_type="audio/mpeg")

    async def _status(self, request: Request) -> Response:
        self._count(request)
        return Response("no", status_code=int(request.path_params["code"]))

    async def _hang(self, request: Request) -> Response:
        """Takes the request and never answers (until the test ends)."""
        self._count(request)
        await self.release.wait()
        return Response(b"", status_code=204)


@contextmanager
def hostile_server(host: str = "127.0.0.1", port: int = 0) -> Iterator[tuple[Hostile, LoopbackServer]]:
    hostile = Hostile()
    server = LoopbackServer(hostile.app(), host=host, port=port, name=f"hostile-{host}").start()
    try:
        yield hostile, server
    finally:
        assert server.loop is not None
        server.loop.call_soon_threadsafe(hostile.release.set)
        server.stop()


def trust_loopback(stack: Stack, **options: Any) -> RecordingFetcher:
    """Let the app fetch from the loopback sandboxes (the test-only escape hatch), with `options`."""
    fetcher = RecordingFetcher(allow_private=True, **options)
    return use_fetcher(stack, fetcher)


def use_fetcher(stack: Stack, fetcher: RecordingFetcher, *, backoff_base: float = 0.02) -> RecordingFetcher:
    async def swap() -> None:
        assert stack.services is not None
        stack.services.outbox.recordings = fetcher
        stack.services.outbox.backoff_base = backoff_base

    stack.on_app(swap())
    return fetcher


def voicemail(http: httpx.Client, stack: Stack, n: int, url: str) -> None:
    assert send(http, stack, "GET", "/hooks/avanser/call", call(n, recording=url)).status_code == 200


def caller(n: int) -> tuple[str, str]:
    """(ani as AVANSER sends it, as the alert shows it) for call `n`."""
    digits = f"{n:06d}"
    return f"+61-0410{digits}", f"0410 {digits[:3]} {digits[3:]}"


def alert_shown(stack: Stack, channel: str, n: int) -> bool:
    return caller(n)[1] in json.dumps(stack.slack.channel_messages(channel), ensure_ascii=False)


def later_alert_wait(http: httpx.Client, stack: Stack, n: int, channel: str = "C0SALES", limit: float = 10) -> float:
    """Seconds from a missed-call webhook (call `n`) to its alert being visible in `channel`."""
    started = time.monotonic()
    assert send(http, stack, "GET", "/hooks/avanser/call", call(n, ani=caller(n)[0])).status_code == 200
    try:
        wait_for(lambda: alert_shown(stack, channel, n), timeout=limit, interval=0.01)
    except AssertionError:
        return float("inf")
    return time.monotonic() - started


def notices(stack: Stack, channel: str = "C0SALES") -> list[dict[str, Any]]:
    """Replies that say a recording could not be attached."""
    return [m for m in stack.slack.channel_messages(channel) if UNATTACHED in m.get("text", "")]


def upload_row(stack: Stack) -> dict[str, Any]:
    async def fetch() -> dict[str, Any]:
        assert stack.services is not None
        cursor = stack.services.store.execute(
            "SELECT * FROM outbox WHERE method = 'files.upload_v2' ORDER BY id DESC LIMIT 1"
        )
        names = [d[0] for d in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))

    return dict(stack.on_app(fetch()))


def file_settled(stack: Stack) -> bool:
    return upload_row(stack)["status"] in ("sent", "failed")


# -- the figures, for the fault report ---------------------------------------------------------------


def recording_attacks() -> dict[str, Any]:
    """Every end-to-end attack once; internal fetches and stuck messages must both be 0."""
    figures: dict[str, Any] = {"name": "hostile voicemail recordings"}
    with (
        hostile_server("127.0.0.1") as (outside, outside_server),
        hostile_server("127.0.0.2") as (inside, inside_server),
        httpx.Client(timeout=10) as http,
        Stack(SWITCHBOARD_RECORDING_HOSTS="localhost,127.0.0.1,127.0.0.2") as stack,
    ):
        route(stack)
        # 1. Loopback not trusted (production): a name and addresses that are local are never fetched.
        for n, url in enumerate(
            (
                f"http://127.0.0.2:{inside_server.port}/vm.mp3",
                f"http://localhost:{outside_server.port}/vm.mp3",
                f"http://127.0.0.1:{outside_server.port}/vm.mp3",
            )
        ):
            voicemail(http, stack, n, url)
        wait_for(lambda: len(notices(stack)) == 3)
        figures["internal_fetches"] = inside.total_hits + outside.total_hits
        # 2. Loopback trusted for the rest (the sandbox lives there); redirects are still refused.
        trust_loopback(stack, total_timeout=1.0)
        outside.redirect_to = f"http://127.0.0.2:{inside_server.port}/vm.mp3"
        voicemail(http, stack, 10, f"{outside_server.url}/redirect.mp3")
        wait_for(lambda: len(notices(stack)) == 4)
        figures["internal_fetches"] += inside.total_hits
        # 3. A 6 MB recording, whole.
        voicemail(http, stack, 11, f"{outside_server.url}/size/{6 * MB}.mp3")
        wait_for(lambda: stack.slack.uploads and file_settled(stack), timeout=20)
        content = next(iter(stack.slack.uploads.values()))["content"] or b""
        figures["file_size"] = 6 * MB
        figures["bytes_uploaded"] = len(content)
        figures["byte_exact"] = content == payload(6 * MB)
        # 4. Failing recordings (503, hang, drip) and a later alert in the same channel each time.
        waits = []
        for n, path in enumerate(("/status/503.mp3", "/hang.mp3", "/drip.mp3"), start=20):
            voicemail(http, stack, n, f"{outside_server.url}{path}")
            wait_for(lambda path=path: outside.hits[path] >= 1)  # type: ignore[misc]
            waits.append(later_alert_wait(http, stack, 100 + n))
        figures["stuck_messages"] = sum(1 for w in waits if w > 2.0)
        figures["later_alert_wait_s"] = round(max(waits), 2)
        wait_for(lambda: len(notices(stack)) == 7, timeout=30)
        figures["tries_of_the_503"] = outside.hits["/status/503.mp3"]
    figures["pass"] = (
        figures["internal_fetches"] == 0
        and figures["stuck_messages"] == 0
        and figures["bytes_uploaded"] == figures["file_size"]
        and figures["byte_exact"]
        and figures["tries_of_the_503"] == 3
    )
    return figures
