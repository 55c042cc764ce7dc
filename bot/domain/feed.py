"""AVANSER's data feed: no call lost when its webhook is, and the recordings the call-URI doesn't carry.

    every SWITCHBOARD_FEED_INTERVAL (one pull at a time) ─▶ pull_feed
        ─▶ AvanserFeed.pull (bot.telco.avanser_feed: the days since the last good pull)
        ─▶ each record as the call-URI's event (notifiers.events.feed_call_payload), into the inbox with the
           webhook's dedup key (`call_unique_id` = `uniqueid`):
             new          ─▶ the call's webhook never came: handled like any call (alerts.on_avanser_call),
                             its alert marked "recovered from AVANSER's data feed"
             known        ─▶ nothing (already posted, or skipped as its route says)
             known + audio ─▶ an `avanser.recording` event: the recording goes in the alert's thread, once

A record that can't be read is skipped and counted; a pull that fails (the feed down, 5xx, slow,
malformed, refused credentials, a locked database) is logged, counted in /metrics
(`switchboard_feed_pulls{outcome}`) and simply tried again at the next interval: nothing else waits
on it. Records are stored in batches, one transaction each, and the loop serves requests between
them. The last good pull is kept in SQLite (`feed_state`): after a restart the days since then are
asked for again (at most MAX_DAYS). A call older than RECOVER_WINDOW that the feed brings is counted
in reports but not posted (a day-old missed call is history, not an alert).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from bot.inbox import store_event
from bot.store import StoreBusy
from bot.telco.avanser_feed import FeedMalformed
from bot.telco.base import ProviderAuthFailed, ProviderTimeout, TelcoError
from notifiers.events import AvanserCall, AvanserRecording, feed_call_payload

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

JOB = "avanser-feed"
BATCH = 200  # records stored per transaction before the event loop serves requests again
MAX_DAYS = 7  # days asked for after a long stop
RECOVER_WINDOW = 24 * 3600  # a recovered call older than this is counted in reports, not posted


@dataclass
class FeedResult:
    """One pull: what the feed gave and what became of it."""

    records: int = 0
    recovered: int = 0  # calls whose webhook never came, now in the inbox
    known: int = 0
    recordings: int = 0  # recordings of known calls, now in the inbox
    bad: int = 0  # records skipped: not a call Switchboard can read
    filtered: bool = True
    error: str | None = None  # why the pull failed (it is tried again at the next interval)


async def schedule(services: Services) -> None:
    """Said once at start: the feed is off, or read every SWITCHBOARD_FEED_INTERVAL (first pull now)."""
    if services.feed is None:
        log.info("AVANSER data feed: off (AVANSER_FEED_URL is not set); calls whose webhook is lost stay lost")
        return
    interval = services.settings.feed_interval
    log.info("AVANSER data feed: reading %s every %g s", services.feed.host, interval)
    services.scheduler.every(interval, JOB, pull_feed, services)


def days_to_ask(services: Services, now: float | None = None) -> list[date]:
    """The days since the last good pull (and the day either side: the feed's days are its own time zone's)."""
    moment = now if now is not None else time.time()
    today = datetime.fromtimestamp(moment, UTC).date()
    row = services.store.execute("SELECT last_success_at FROM feed_state WHERE id = 1").fetchone()
    since = datetime.fromtimestamp(row[0], UTC).date() if row and row[0] else today
    first = max(since - timedelta(days=1), today - timedelta(days=MAX_DAYS - 2))
    return [first + timedelta(days=i) for i in range((today + timedelta(days=1) - first).days + 1)]


async def pull_feed(services: Services) -> FeedResult:
    """Read the feed once and put every call it has that Switchboard hasn't seen into the inbox."""
    if services.feed is None:
        return FeedResult(error="the feed is off")
    async with services.feed.one_at_a_time:  # the job runs one at a time; so does a manual pull (tests, demo)
        result = FeedResult()
        started = time.time()
        try:
            pulled = await services.feed.pull(days_to_ask(services, started))
        except TelcoError as exc:
            return _failed(services, result, _outcome(exc), f"{exc} ({exc.detail})" if exc.detail else str(exc))
        result.records, result.bad, result.filtered = len(pulled.records), pulled.bad, pulled.filtered
        try:
            for first in range(0, len(pulled.records), BATCH):
                with services.store.transaction():
                    for record in pulled.records[first : first + BATCH]:
                        _count(result, take_record(services, record))
                services.inbox.wake()
                await asyncio.sleep(0)  # between batches, the loop serves requests
            _remember(services, started, None)
        except StoreBusy as exc:
            return _failed(services, result, "store", f"the database was busy ({exc}); the rest waits for next time")
        metrics = services.metrics
        metrics.feed_pulls.labels("ok").inc()
        metrics.feed_last_success.set(time.time())
        for outcome in ("recovered", "known", "recording", "bad"):
            value = {"recovered": result.recovered, "known": result.known, "recording": result.recordings}.get(
                outcome, result.bad
            )
            if value:
                metrics.feed_records.labels(outcome).inc(value)
        if result.bad:
            log.warning("AVANSER data feed: %d record(s) skipped: not calls Switchboard can read", result.bad)
        if result.recovered or result.recordings:
            log.info(
                "AVANSER data feed: %d call(s) whose webhook never came, %d recording(s) of known calls",
                result.recovered,
                result.recordings,
            )
        return result


def take_record(services: Services, record: dict[str, Any]) -> str:
    """One record into the inbox as the call-URI's event: recovered | known | recording | bad."""
    payload = feed_call_payload(record)
    try:
        event = AvanserCall.model_validate(payload)
        key = event.dedup_key()
    except (ValidationError, ValueError):
        return "bad"
    keys = [f"{AvanserCall.source}:{k}" for k in dict.fromkeys(k for k in (event.uniqueid, event.callid) if k)]
    known = services.store.execute(
        f"SELECT 1 FROM inbox WHERE dedup_key IN ({', '.join('?' for _ in keys)}) LIMIT 1", tuple(keys)
    ).fetchone()
    if known is None:
        store_event(services.store, AvanserCall.source, key, payload)
        return "recovered"
    if event.recording_url:
        _, new = store_event(services.store, AvanserRecording.source, key, payload)
        return "recording" if new else "known"
    return "known"


def too_old(event: AvanserCall, now: float | None = None) -> bool:
    """A recovered call older than RECOVER_WINDOW: counted, not posted."""
    at = event.at
    if at is None or at.tzinfo is None:
        return False
    return (now if now is not None else time.time()) - at.timestamp() > RECOVER_WINDOW


def _count(result: FeedResult, outcome: str) -> None:
    if outcome == "recovered":
        result.recovered += 1
    elif outcome == "recording":
        result.recordings += 1
    elif outcome == "bad":
        result.bad += 1
    else:
        result.known += 1


def _outcome(exc: TelcoError) -> str:
    if isinstance(exc, ProviderTimeout):
        return "timeout"
    if isinstance(exc, ProviderAuthFailed):
        return "auth"
    if isinstance(exc, FeedMalformed):
        return "malformed"
    if exc.status == 429:
        return "busy"
    return "unavailable"


def _failed(services: Services, result: FeedResult, outcome: str, why: str) -> FeedResult:
    result.error = why
    log.warning("AVANSER data feed: pull failed (%s): %s; trying again at the next interval", outcome, why)
    services.metrics.feed_pulls.labels(outcome).inc()
    with contextlib.suppress(StoreBusy):  # the state is a nicety; the pull is tried again anyway
        _remember(services, None, why)
    return result


def _remember(services: Services, success_at: float | None, error: str | None) -> None:
    services.store.execute(
        "INSERT INTO feed_state (id, last_success_at, last_attempt_at, last_error) VALUES (1, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET last_success_at = COALESCE(excluded.last_success_at, last_success_at),"
        " last_attempt_at = excluded.last_attempt_at, last_error = excluded.last_error",
        (success_at, time.time(), error[:500] if error else None),
    )
