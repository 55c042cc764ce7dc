"""APScheduler (3.x) on the app's event loop. Jobs live in memory only: SQLite is the truth, and
whoever owns a kind of job rebuilds it from SQLite at start (`Services.on_start`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self) -> None:
        self._scheduler: AsyncIOScheduler | None = None

    async def start(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.start()

    async def stop(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None

    def at(self, when: float, job_id: str, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run `func(*args)` once at epoch `when` (now if past); a job with the same id is replaced."""
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

    def every(self, seconds: float, job_id: str, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run `func(*args)` now and then every `seconds`, one run at a time (a run still going when the
        next is due makes that one wait for the next interval); a job with the same id is replaced."""
        assert self._scheduler is not None, "the scheduler starts with the app"
        self._scheduler.add_job(
            func,
            "interval",
            seconds=seconds,
            args=args,
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
        """Run `func(*args)` every week on `day` at `hour`:00 UTC, one run at a time."""
        assert self._scheduler is not None, "the scheduler starts with the app"
        self._scheduler.add_job(
            func,
            "cron",
            day_of_week=day,
            hour=hour,
            minute=0,
            timezone=UTC,
            args=args,
            id=job_id,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )

    def cancel(self, job_id: str) -> None:
        if self._scheduler is None:
            return
        with contextlib.suppress(JobLookupError):
            self._scheduler.remove_job(job_id)

    def job(self, job_id: str) -> Any:
        """The APScheduler job with that id (its trigger and options), or None."""
        return self._scheduler.get_job(job_id) if self._scheduler else None

    def pending(self) -> list[str]:
        return [job.id for job in self._scheduler.get_jobs()] if self._scheduler else []
