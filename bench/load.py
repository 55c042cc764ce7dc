"""A bounded load generator: N requests over C keep-alive connections, latency per request."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx


@dataclass
class Result:
    requests: int
    concurrency: int
    seconds: float
    latencies_ms: list[float]
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def p99(self) -> float:
        return self.pct(99)


Build = Callable[[int], httpx.Request]


async def run_load(
    build: Build, total: int, concurrency: int, ok: Callable[[httpx.Response], bool], timeout: float = 30.0
) -> Result:
    """Send `total` requests made by `build(i)`, `concurrency` at a time; stop after `timeout` s."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def worker() -> None:
            nonlocal errors
            for i in counter:
                if time.monotonic() > deadline:
                    return
                request = build(i)
                start = time.perf_counter()
                try:
                    response = await client.send(request)
                    good = ok(response)
                except httpx.HTTPError:
                    good = False
                elapsed = (time.perf_counter() - start) * 1000
                if good:
                    latencies.append(elapsed)
                else:
                    errors += 1

        # Warm the connections (and Bolt's one-time auth.test) outside the measurement.
        for i in range(concurrency):
            await client.send(build(total + i))
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    return Result(len(latencies) + errors, concurrency, seconds, latencies, errors)
