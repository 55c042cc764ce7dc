"""The inbox: every telco event is committed here before its webhook is answered, then handled once.

`store_event` is the only way in (webhooks, the provisioning poll): one insert with a dedup key, so
a replay of an event already held stores nothing. `InboxProcessor` takes the stored events in order
and hands each to the handler registered for its type (`on(event_type, handler)`, wired when the app
is built — the inbox knows no domain module). A handler runs inside one SQLite transaction with the
event's own status update: its outbox rows, alert rows and thread registrations commit together with
'done', or not at all. Events are handled in batches: one transaction per step (each event in a
savepoint of its own, so a failing one rolls back only itself), for at most BATCH_SECONDS, so a
storm costs one commit per batch and the event loop is back to serving requests within a few
milliseconds; while webhooks keep arriving, the worker rests between batches. A crash before the
commit leaves the event 'new' and it is handled after the restart. A handler that fails (the
database locked by a backup, a bug) rolls its work back and the event is tried again with backoff —
MAX_ATTEMPTS times over about ten minutes — then kept as 'failed', counted in /metrics and logged
with its id; nothing acknowledged is dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bot.metrics import Metrics
from bot.store import Store, StoreBusy
from bot.worker import Worker
from bot.workspaces import team_scope
from notifiers.events import Event, parse_event

log = logging.getLogger(__name__)

BATCH = 64  # events read per step
BATCH_SECONDS = 0.003  # … handled in one transaction for at most this long before the loop serves requests again
# On PostgreSQL a batch runs in a thread of its own (the loop doesn't wait for it) and each statement is a round
# trip: a longer batch shares its BEGIN, claim and COMMIT (a WAL flush) among more events.
SHARED_BATCH_SECONDS = 0.025
# While webhooks keep arriving (a storm), the worker rests as long as it worked after each batch, so the
# event loop gives requests at least half its time: acks and webhooks don't queue behind the backlog.
ARRIVING = 0.05  # a webhook within this many seconds: they are still arriving
REST_RATIO = 1.0
BUSY_RETRY = 0.005  # another replica is in its batch: try again this soon (never waiting on the loop)
MAX_ATTEMPTS = 8
BACKOFF = (1, 2, 5, 10, 30, 60, 120, 300)  # seconds before the next attempt

# (inbox row id, the event) -> its status: done | skipped | unrouted
Handler = Callable[[int, Event], str]


def store_event(store: Store, source: str, dedup_key: str, payload: dict[str, Any]) -> tuple[int, bool]:
    """Commit one event to the inbox; (row id, True) when new, (existing id, False) for a replay."""
    key = f"{source}:{dedup_key}"
    cursor = store.execute(
        "INSERT OR IGNORE INTO inbox (source, dedup_key, payload, received_at) VALUES (?, ?, ?, ?)",
        (source, key, json.dumps(payload, separators=(",", ":")), time.time()),
    )
    if cursor.rowcount:
        return int(cursor.lastrowid or 0), True
    row = store.execute("SELECT id FROM inbox WHERE dedup_key = ?", (key,)).fetchone()
    return int(row[0]), False


async def store_event_async(store: Store, source: str, dedup_key: str, payload: dict[str, Any]) -> tuple[int, bool]:
    """`store_event` for webhooks: on PostgreSQL the event loop doesn't wait for the commit."""
    key = f"{source}:{dedup_key}"
    cursor = await store.aexecute(
        "INSERT OR IGNORE INTO inbox (source, dedup_key, payload, received_at) VALUES (?, ?, ?, ?)",
        (source, key, json.dumps(payload, separators=(",", ":")), time.time()),
    )
    if cursor.rowcount:
        return int(cursor.lastrowid or 0), True
    row = (await store.aexecute("SELECT id FROM inbox WHERE dedup_key = ?", (key,))).fetchone()
    return int(row[0]), False


class NoHandler(LookupError):
    """No handler is registered for an event type (a wiring mistake)."""


class InboxProcessor(Worker):
    name = "inbox-processor"

    def __init__(self, store: Store, metrics: Metrics | None = None) -> None:
        super().__init__()
        self.store = store
        self.metrics = metrics
        self.handlers: dict[type[Event], Handler] = {}
        self.last_arrival = 0.0
        self._thread_pool: ThreadPoolExecutor | None = None

    def on(self, event_type: type[Event], handler: Handler) -> None:
        """Handle every stored event of `event_type` with `handler`."""
        self.handlers[event_type] = handler

    async def start(self) -> None:
        await self.start_loop()

    async def stop(self) -> None:
        await self.stop_loop()
        if self._thread_pool is not None:
            self._thread_pool.shutdown(wait=True)
            self._thread_pool = None

    async def astep(self) -> float:
        """On SQLite a batch runs on the event loop (its statements take microseconds). On PostgreSQL each
        statement is a round trip, so batches run in a thread of their own with its own connection: the loop
        keeps answering webhooks and commands meanwhile. Handlers must therefore touch the app only through
        what is thread-safe: the store, the outbox, the scheduler, `services.tasks.spawn`, metrics, logging."""
        if not self.store.shared:
            return self.step()
        if self._thread_pool is None:
            self._thread_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox")
        return await asyncio.get_running_loop().run_in_executor(self._thread_pool, self.step)

    def wake(self) -> None:
        self.last_arrival = time.monotonic()
        super().wake()

    def step(self) -> float:
        started = time.perf_counter()
        try:
            handled = self.process_pending(budget=SHARED_BATCH_SECONDS if self.store.shared else BATCH_SECONDS)
        except StoreBusy:  # another replica's batch holds the write lock (or the database is restarting)
            return BUSY_RETRY
        if handled:
            if time.monotonic() - self.last_arrival < ARRIVING:
                return max(0.0005, (time.perf_counter() - started) * REST_RATIO)
            return 0.0
        row = self.store.execute("SELECT MIN(next_attempt_at) FROM inbox WHERE status = 'new'").fetchone()
        return 1.0 if row[0] is None else min(1.0, max(0.05, row[0] - time.time()))

    def process_pending(self, limit: int = BATCH, budget: float = BATCH_SECONDS) -> int:
        """Handle the events that are due, in one transaction (each in a savepoint of its own), for at most
        `budget` seconds: the event loop — and so every ack and webhook — waits no longer than that.

        The events are claimed inside the transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL, where
        transactions are also serialized by the store's write lock): two replicas never handle one."""
        now = time.time()
        due = self.store.execute(
            "SELECT 1 FROM inbox WHERE status = 'new' AND next_attempt_at <= ? LIMIT 1", (now,)
        ).fetchone()
        if due is None:
            return 0
        started, handled = time.perf_counter(), 0
        with self.store.transaction(wait=False):
            rows = self.store.execute(
                "SELECT id, source, payload, attempts FROM inbox WHERE status = 'new' AND next_attempt_at <= ?"
                " ORDER BY id LIMIT ?" + self.store.skip_locked(),
                (now, limit),
            ).fetchall()
            for inbox_id, source, payload, attempts in rows:
                self.process_one(inbox_id, source, payload, attempts)
                handled += 1
                if time.perf_counter() - started > budget:
                    break
        if self.metrics is not None and handled:
            self.metrics.inbox_batch.observe(handled)
        return handled

    def process_one(self, inbox_id: int, source: str, payload: str, attempts: int = 0) -> None:
        try:
            event = parse_event(source, json.loads(payload))
            handler = self.handlers.get(type(event))
            if handler is None:
                raise NoHandler(f"no handler for {type(event).__name__}")
            # A handler finds the event's workspace (its number's route) and enters it; it ends with the event.
            with team_scope(None), self.store.transaction():
                status = handler(inbox_id, event)
                self.store.execute(
                    "UPDATE inbox SET status = ?, processed_at = ? WHERE id = ?",
                    (status, time.time(), inbox_id),
                )
            if status == "unrouted":
                log.warning(
                    "inbox: event %d (%s) has no route and no SWITCHBOARD_ALERTS_CHANNEL; kept, not posted",
                    inbox_id,
                    source,
                )
        except Exception as exc:
            self._failed(inbox_id, source, attempts + 1, exc)

    def _failed(self, inbox_id: int, source: str, attempts: int, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"[:500]
        final = attempts >= MAX_ATTEMPTS or isinstance(exc, NoHandler)
        try:
            self.store.execute(
                "UPDATE inbox SET status = ?, error = ?, attempts = ?, next_attempt_at = ?, processed_at = ?"
                " WHERE id = ?",
                (
                    "failed" if final else "new",
                    error,
                    attempts,
                    time.time() + BACKOFF[min(attempts, len(BACKOFF)) - 1],
                    time.time(),
                    inbox_id,
                ),
            )
        except Exception:  # the database itself is unavailable: the event stays 'new' and is tried next step
            log.exception("inbox: event %d (%s) failed and its attempt couldn't be recorded", inbox_id, source)
            return
        if final:
            log.error("inbox: event %d (%s) failed %d times; kept as failed: %s", inbox_id, source, attempts, error)
            if self.metrics is not None:
                self.metrics.inbox_failed.labels(source).inc()
        else:
            log.warning("inbox: event %d (%s) failed (attempt %d, %s); trying again", inbox_id, source, attempts, error)
