"""A loop on the app's event loop that sleeps until it is woken (from any thread) or its next work is due.

The outbox sender and the inbox processor are both one: `step()` does what is ready and says how
long to sleep; `wake()` cuts the sleep short when new work is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

log = logging.getLogger(__name__)


class Worker:
    name = "worker"

    def __init__(self) -> None:
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._runner: asyncio.Task[None] | None = None

    def step(self) -> float:
        """Do what is ready; return the seconds to sleep before the next step (0: go again at once)."""
        return 1.0

    async def astep(self) -> float:
        """`step`, where it runs: on the event loop unless a worker says otherwise."""
        return self.step()

    def wake(self) -> None:
        """There is new work; safe from any thread."""
        if self._wake is None or self._loop is None or self._loop.is_closed():
            return
        if threading.get_ident() == self._thread:
            self._wake.set()
        else:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake.set)

    async def start_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._runner = asyncio.create_task(self._run(), name=self.name)

    async def stop_loop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            try:
                delay = await self.astep()
            except Exception:
                log.exception("%s: a step failed; trying again in 1 s", self.name)
                delay = 1.0
            if delay <= 0:
                await asyncio.sleep(0)  # let requests in between batches
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
