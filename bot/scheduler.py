"""APScheduler (3.x) on the app's event loop, run by one replica at a time: the leader.

A job is a row in `scheduled_jobs` first (`at`: any replica may schedule or cancel one, inside the
domain's own transaction when it has one). The leader is the process that holds the store's
`scheduler` lock (`bot.store.Locks`: with SQLite, the one process; on PostgreSQL a session advisory
lock, which PostgreSQL frees the moment its holder's session ends). It keeps an APScheduler job for
every row due within the hour and runs each once: it claims the row's token before running it (so
nothing fires twice, even if two replicas ever believed they led) and deletes the row when the job is
done. Jobs scheduled elsewhere reach the leader within `LEAD_POLL_S`.

The replica that takes the lead resets the rows its predecessor had claimed but not finished (they
run again; the domain's jobs check state first), runs the rebuild hooks (`Services.on_start`: jobs
recomputed from the domain's own tables), and loads every row. Followers try to take the lead every
`LEAD_POLL_S`; a leader that finds its session lost steps down at once and drops its timers. Failover
after a leader is killed (SIGKILL): about a second; after its machine dies: ~11 s (TCP keepalives).

A durable job is a module-level async function whose arguments are JSON values or the context it was
bound to (the app's `Services`). Anything else (a closure, in a test) is kept in memory by the process
that scheduled it and run there.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.store import Store, StoreBusy, replica_name
from bot.workspaces import current_team, team_scope

log = logging.getLogger(__name__)

ROLE = "scheduler"
LEAD_POLL_S = 1.0  # followers try to lead, the leader checks its session and loads new rows, this often
HORIZON_S = 3600.0  # rows due within this are held as APScheduler jobs by the leader
HEARTBEAT_S = 5.0  # the leader row's seen_at is refreshed this often (for `switchboard check`)
CLAIM_RETRY_S = 2.0
CONTEXT = {"$": "services"}

UPSERT = (
    "INSERT INTO scheduled_jobs (job_id, run_at, func, args, token, created_at, team_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT(job_id) DO UPDATE SET run_at = excluded.run_at, func = excluded.func, args = excluded.args,"
    " token = excluded.token, started_at = NULL, team_id = excluded.team_id"
)


def resolve(reference: str) -> Any:
    module, _, qualname = reference.partition(":")
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


class Scheduler:
    def __init__(self, store: Store | None = None, context: object | None = None) -> None:
        self._scheduler: AsyncIOScheduler | None = None
        self.store = store
        self.context = context
        self.identity = replica_name()
        self.leading = store is None  # without a store: memory only, runs what it holds
        self.since: float | None = None
        self._durable: dict[str, tuple[str, float]] = {}  # job id -> (token, run_at) held as APScheduler jobs
        self._hooks: list[Callable[[], Awaitable[None]]] = []
        self._loop: asyncio.Task[None] | None = None
        self._beat = 0.0

    def bind(self, store: Store, context: object) -> None:
        """Keep jobs in `store`, and stand `context` (the Services) in for itself in stored arguments."""
        self.store, self.context = store, context
        self.leading = False

    def on_lead(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run `hook` each time this process takes the lead (rebuilding jobs from the database)."""
        self._hooks.append(hook)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.start()
        if self.store is not None:
            await self._try_lead()
            self._loop = asyncio.create_task(self._leadership(), name="scheduler-leadership")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        if self.store is not None and self.leading:
            self.leading = False
            with contextlib.suppress(sqlite3.Error):
                self.store.execute("DELETE FROM leader WHERE role = ? AND holder = ?", (ROLE, self.identity))
            self.store.locks.release(ROLE)  # a deploy hands over at once
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None
        self._durable.clear()

    # -- scheduling ---------------------------------------------------------------------------------

    def at(self, when: float, job_id: str, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run `func(*args)` once at epoch `when` (now if past), on the leader; a job with the same id is replaced.

        The job runs as the workspace that scheduled it (`bot.workspaces.current_team()` now)."""
        team = current_team()
        reference = self._reference(func, args)
        if self.store is None or reference is None:
            if self.store is not None and self.store.shared:
                log.warning(
                    "job %s can't be stored (not a module-level function with JSON arguments): it runs here", job_id
                )
            self._add(when, job_id, self._run_in_memory, job_id, func, args, team)
            return
        token = uuid.uuid4().hex
        self.store.execute(UPSERT, (job_id, float(when), reference[0], reference[1], token, time.time(), team))
        if self.leading:
            self._hold(job_id, token, float(when))

    def every(self, seconds: float, job_id: str, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run `func(*args)` now and then every `seconds` while this process leads, one run at a time (a run
        still going when the next is due makes that one wait for the next interval); same id: replaced.

        Recurring jobs are registered by the rebuild hooks, which run on the leader; a replica that loses
        the lead keeps the timer but skips the runs."""
        assert self._scheduler is not None, "the scheduler starts with the app"
        self._scheduler.add_job(
            self._while_leading,
            "interval",
            seconds=seconds,
            args=(func, args),
            id=job_id,
            replace_existing=True,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )

    def weekly(
        self, job_id: str, func: Callable[..., Awaitable[Any]], *args: Any, day: str = "mon", hour: int = 0
    ) -> None:
        """Run `func(*args)` every week on `day` at `hour`:00 UTC while this process leads, one run at a time."""
        assert self._scheduler is not None, "the scheduler starts with the app"
        self._scheduler.add_job(
            self._while_leading,
            "cron",
            day_of_week=day,
            hour=hour,
            minute=0,
            timezone=UTC,
            args=(func, args),
            id=job_id,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )

    async def _while_leading(self, func: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        if self.leading:
            await func(*args)

    def job(self, job_id: str) -> Any:
        """The APScheduler job with that id (its trigger and options), or None."""
        return self._scheduler.get_job(job_id) if self._scheduler else None

    def cancel(self, job_id: str) -> None:
        if self.store is not None:
            self.store.execute("DELETE FROM scheduled_jobs WHERE job_id = ?", (job_id,))
        self._durable.pop(job_id, None)
        self._remove(job_id)

    def pending(self) -> list[str]:
        """Ids of the jobs waiting to run (stored ones, wherever they were scheduled, and this process's own)."""
        ids = {job.id for job in self._scheduler.get_jobs()} if self._scheduler else set()
        if self.store is not None:
            ids |= {str(r[0]) for r in self.store.execute("SELECT job_id FROM scheduled_jobs WHERE started_at IS NULL")}
        return sorted(ids)

    def _reference(self, func: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, str] | None:
        module, qualname = getattr(func, "__module__", None), getattr(func, "__qualname__", "")
        if not module or "<" in qualname:
            return None
        try:
            if resolve(f"{module}:{qualname}") is not func:
                return None
        except (ImportError, AttributeError):
            return None
        encoded = []
        for arg in args:
            if self.context is not None and arg is self.context:
                encoded.append(CONTEXT)
                continue
            try:
                if json.loads(json.dumps(arg)) != arg:
                    return None
            except (TypeError, ValueError):
                return None
            encoded.append(arg)
        return f"{module}:{qualname}", json.dumps(encoded)

    def _add(self, when: float, job_id: str, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        assert self._scheduler is not None, "the scheduler starts with the app"
        self._scheduler.add_job(
            func,
            "date",
            run_date=datetime.fromtimestamp(when, UTC),
            args=args,
            id=job_id,
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
        )

    def _remove(self, job_id: str) -> None:
        if self._scheduler is not None:
            with contextlib.suppress(JobLookupError):
                self._scheduler.remove_job(job_id)

    def _hold(self, job_id: str, token: str, when: float) -> None:
        if self._scheduler is None:
            return
        self._durable[job_id] = (token, when)
        self._add(when, job_id, self._fire, job_id, token)

    # -- running -------------------------------------------------------------------------------------

    async def _run(self, job_id: str, func: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        await func(*args)

    async def _run_in_memory(
        self, job_id: str, func: Callable[..., Awaitable[Any]], args: tuple[Any, ...], team: str = ""
    ) -> None:
        with team_scope(team):
            await self._run(job_id, func, args)

    async def _fire(self, job_id: str, token: str) -> None:
        """A stored job is due: claim it (once, whoever else believes it leads), run it, delete it."""
        if self._durable.get(job_id, ("",))[0] == token:
            del self._durable[job_id]
        if not self.leading or self.store is None:
            return
        try:
            claimed = self.store.execute(
                "UPDATE scheduled_jobs SET started_at = ? WHERE job_id = ? AND token = ? AND started_at IS NULL",
                (time.time(), job_id, token),
            ).rowcount
            row = self.store.execute(
                "SELECT func, args, team_id FROM scheduled_jobs WHERE job_id = ? AND token = ?", (job_id, token)
            ).fetchone()
        except StoreBusy as exc:
            log.warning("job %s could not be claimed (%s); trying again in %g s", job_id, exc, CLAIM_RETRY_S)
            self._hold(job_id, token, time.time() + CLAIM_RETRY_S)
            return
        if not claimed or row is None:
            return  # cancelled, replaced, or run by someone else
        try:
            func = resolve(str(row[0]))
            args = tuple(self.context if arg == CONTEXT else arg for arg in json.loads(row[1]))
        except Exception:
            log.exception("job %s refers to %s, which can't be loaded; dropped", job_id, row[0])
            func = None
        try:
            if func is not None:
                with team_scope(str(row[2] or "")):
                    await self._run(job_id, func, args)
        finally:
            try:
                self.store.execute("DELETE FROM scheduled_jobs WHERE job_id = ? AND token = ?", (job_id, token))
            except sqlite3.Error as exc:  # it ran; only a new leader would run it again
                log.warning("job %s ran but its row could not be deleted (%s)", job_id, exc)

    # -- leadership ----------------------------------------------------------------------------------

    async def _leadership(self) -> None:
        while True:
            await asyncio.sleep(LEAD_POLL_S)
            try:
                await self._tick()
            except StoreBusy as exc:  # locked by another process, or PostgreSQL restarting: next second
                log.debug("scheduler: the database can't answer now (%s)", exc)
            except Exception:
                log.exception("scheduler: leadership check failed; trying again")

    async def _tick(self) -> None:
        assert self.store is not None
        locks = self.store.locks
        if not self.leading:
            if locks.shared:
                locks.alive()  # notices a lost session: the channels it held are free again
            await self._try_lead()
            return
        if locks.shared and (not locks.alive() or not locks.held(ROLE)):
            self._step_down("its database session was lost")
            return
        self._sync()
        if time.monotonic() - self._beat >= HEARTBEAT_S:
            self._beat = time.monotonic()
            self.store.execute(
                "UPDATE leader SET seen_at = ? WHERE role = ? AND holder = ?", (time.time(), ROLE, self.identity)
            )

    async def _try_lead(self) -> bool:
        assert self.store is not None
        if not self.store.locks.try_acquire(ROLE):
            return False
        try:
            now = time.time()
            # What the last leader claimed and never finished runs again (the domain's jobs check state first).
            self.store.execute("UPDATE scheduled_jobs SET started_at = NULL WHERE started_at IS NOT NULL")
            self.store.execute(
                "INSERT INTO leader (role, holder, since, seen_at) VALUES (?, ?, ?, ?) ON CONFLICT(role) DO UPDATE"
                " SET holder = excluded.holder, since = excluded.since, seen_at = excluded.seen_at",
                (ROLE, self.identity, now, now),
            )
        except sqlite3.Error as exc:
            log.warning("scheduler: took the lead but could not record it (%s); letting it go", exc)
            self.store.locks.release(ROLE)
            return False
        self.leading, self.since, self._beat = True, now, time.monotonic()
        if self.store.shared:
            log.info("scheduler: this replica (%s) leads now; rebuilding its jobs from the database", self.identity)
        for hook in self._hooks:
            try:
                await hook()
            except Exception:
                log.exception("scheduler: a rebuild hook failed")
        self._sync()
        return True

    def _step_down(self, why: str) -> None:
        log.warning("scheduler: this replica no longer leads (%s); its jobs are left to the next leader", why)
        self.leading, self.since = False, None
        for job_id in list(self._durable):
            self._remove(job_id)
        self._durable.clear()
        if self.store is not None:
            self.store.locks.release(ROLE)

    def _sync(self) -> None:
        """Hold an APScheduler job for every stored row due within the horizon; drop those gone from the table."""
        assert self.store is not None
        horizon = time.time() + HORIZON_S
        rows = self.store.execute(
            "SELECT job_id, run_at, token FROM scheduled_jobs WHERE started_at IS NULL AND run_at <= ?", (horizon,)
        ).fetchall()
        seen = set()
        for job_id, run_at, token in rows:
            seen.add(job_id)
            if self._durable.get(job_id, ("",))[0] != token:
                self._hold(str(job_id), str(token), float(run_at))
        for job_id, (_, run_at) in list(self._durable.items()):
            if job_id not in seen and run_at <= horizon:
                del self._durable[job_id]
                self._remove(job_id)


def leader_of(store: Store) -> dict[str, Any] | None:
    """Who leads the scheduler, as the database says (for `switchboard check` and /healthz)."""
    row = store.execute("SELECT holder, since, seen_at FROM leader WHERE role = ?", (ROLE,)).fetchone()
    holder = store.locks.holder(ROLE) if store.locks.shared else None
    if row is None and holder is None:
        return None
    info: dict[str, Any] = {"holder": holder or (row[0] if row else None)}
    if row is not None and (holder is None or row[0] == holder):
        info.update(since=float(row[1]), seen_at=float(row[2]))
    if store.locks.shared:
        info["lock_held"] = holder is not None
    return info
