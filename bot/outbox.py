"""The outbox: the only way anything is posted to Slack.

A post is a row in SQLite first (`enqueue`), then a sender task delivers it:

- per channel, first in first out, at most one message per `channel_interval` seconds
  (Slack allows about one message per second per channel);
- a 429 pauses that channel for `Retry-After` seconds and is not counted as a failure;
- connection errors, timeouts, 5xx and Slack's own transient errors are retried with capped
  exponential backoff, for as long as it takes (nothing is dropped);
- a refusal that a retry cannot fix (`channel_not_found`, `invalid_blocks`, …) marks the row failed
  and logs it with its row id;
- the Slack `ts` of each message is recorded, so a later row can reply in its thread (`thread_of`)
  or edit it (`update_of`); of several pending edits of one message only the newest is sent;
- rows left pending by a stopped process are delivered after the next start;
- an App Home (`publish_home`) is a `views.publish` in a lane of its own per person (`home:<user id>`),
  rendered when it is sent by the renderer the domain registers (`home_renderer`), so it shows the
  state of that moment: at most one waits per person, and one is sent at most every `home_every`
  seconds — a burst of changes costs one publish;
- files (`attach_file`) have a lane of their own: a file row is never "the oldest row of its channel",
  so a recording that is slow or failing never holds back a message. Its recording is fetched by
  `bot.recordings` (allowed host, public address, no redirect, size and time caps); a fetch that
  fails is tried `MAX_RECORDING_TRIES` times in all, then the file is given up and a reply in the
  alert's thread says it could not be attached (the link stays in the alert).

The outbox owns every retry: its Slack client is built with no retry handlers, so that a 429 is
never slept on twice.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.metrics import Metrics
from bot.recordings import RecordingError, RecordingFetcher
from bot.store import Store, StoreBusy
from bot.worker import Worker
from bot.workspaces import TeamClients, current_team, team_scope
from notifiers.digest import render_digest

log = logging.getLogger(__name__)

POST = "chat.postMessage"
UPDATE = "chat.update"
EPHEMERAL = "chat.postEphemeral"
RESPONSE_URL = "response_url"
# payload: url (fetched at delivery), filename, title, hosts (allowed), max_bytes, unattached (the
# sentence posted in the thread if the file is given up; "{reason}" is replaced); posted in a thread.
# Or, for a file Switchboard made (a report's chart): content_b64, filename, title, initial_comment.
FILE = "files.upload_v2"
PUBLISH = "views.publish"
METHODS = (POST, UPDATE, EPHEMERAL, RESPONSE_URL, FILE, PUBLISH)
HOME = "home"  # payload key of an App Home publish: whose Home (rendered when it is sent)
HOME_EVERY = 3.0  # seconds: a person's App Home is published at most this often when things change
MAX_FILE_BYTES = 20 * 1024 * 1024  # when a row does not say
DIGEST = "digest"  # payload key of a storm digest's post or edit: its id (rendered when sent)
MAX_RECORDING_TRIES = 3  # fetches of one recording before the file is given up
RECORDING_BACKOFF = 5.0  # times backoff_base: waits of ~5 s, then ~10 s between tries
UNATTACHED = "I couldn't attach the file here ({reason})."

# ok=false errors that a later attempt can succeed with; every other ok=false error is final.
TRANSIENT_ERRORS = frozenset(
    {
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "ratelimited",
        # A revoked or wrong token is an operator's fix away: keep the message and say so in the log.
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive",
    }
)
MAX_BACKOFF = 8.0  # a retry at least every ~8 s: delivery resumes within ~10 s of Slack recovering
# Several replicas (PostgreSQL): one sender owns a channel at a time (a lock named OWNER + channel).
OWNER = "outbox:"
OWNER_RETRY_S = 1.0  # a channel another replica owns is asked for again after this
IDLE_RELEASE_S = 2.0  # a channel with nothing to send for this long is given back
SHARED_POLL_S = 0.25  # rows queued by other replicas are seen within this
# A post whose answer another replica never saw (it died mid-send) is looked for in Slack only this long
# after it was sent, so a request still on its way can't be missed and posted twice.
SENDING_GRACE_S = 5.0


@dataclass(frozen=True)
class _Row:
    id: int
    method: str
    channel: str
    payload: dict[str, Any]
    update_of: int | None
    thread_of: int | None
    attempts: int
    next_attempt_at: float
    created_at: float
    sending_at: float | None = None  # set while a post may have reached Slack without our knowing
    team: str = ""  # the workspace whose token sends it ("": SLACK_BOT_TOKEN's)


class _Retry(Exception):
    """A delivery attempt failed in a way that a later attempt may not."""

    def __init__(
        self, reason: str, retry_after: float | None = None, *, maybe_posted: bool = False, bounded: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.maybe_posted = maybe_posted  # the request may have reached Slack: check before re-posting
        self.bounded = bounded  # a recording's failure: tried MAX_RECORDING_TRIES times, not forever


class _Refused(Exception):
    """Slack refused the message for good."""


class _RecordingRefused(_Refused):
    """A file's recording cannot be fetched, whatever the number of tries (see `bot.recordings`)."""


class Outbox(Worker):
    name = "outbox-sender"

    def __init__(
        self,
        store: Store,
        client: AsyncWebClient,
        metrics: Metrics,
        *,
        channel_interval: float = 1.0,
        concurrency: int = 16,
        file_concurrency: int = 4,
        backoff_base: float = 1.0,
        recordings: RecordingFetcher | None = None,
        home_every: float = HOME_EVERY,
    ) -> None:
        self.store = store
        self.client = client
        # Many workspaces: each row's workspace's client (None: one workspace, SLACK_BOT_TOKEN's client).
        self.team_clients: TeamClients | None = None
        self.metrics = metrics
        self.channel_interval = channel_interval
        self.concurrency = concurrency  # messages in flight (one per channel)
        self.file_concurrency = file_concurrency  # files in flight, on top of the messages
        self.backoff_base = backoff_base
        self.recordings = recordings or RecordingFetcher()
        self.home_every = home_every
        # whose App Home → its view; registered by the domain (bot.web.wire_domain), called when a publish is sent
        self.home_renderer: Callable[[str], dict[str, Any]] | None = None
        super().__init__()
        self._ready_at: dict[str, float] = {}  # channel -> monotonic time it may be posted to again
        # lane -> its delivery: a channel id for messages, "file:<row id>" for each file
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._owned: set[str] = set()  # channels this replica sends for (shared stores only)
        self._active: dict[str, float] = {}  # channel -> monotonic time it last had something to send
        self._refused: dict[str, float] = {}  # channel -> monotonic time until which another replica owns it
        self._rendered: dict[int, tuple[int, int]] = {}  # digest row -> (digest id, last line id it showed)
        self._sending_here: set[int] = set()  # posts whose sending_at this process set (it saw how they ended)

    # -- enqueueing (synchronous: a row in SQLite is the promise) -----------------------------

    def enqueue(
        self,
        method: str,
        channel: str,
        payload: dict[str, Any],
        *,
        dedup_key: str | None = None,
        update_of: int | None = None,
        thread_of: int | None = None,
        not_before: float = 0.0,
    ) -> int:
        """Store one Slack call to be made; return its row id (the existing row's for a known key)."""
        if method not in METHODS:
            raise ValueError(f"unknown outbox method {method!r}")
        cursor = self.store.execute(
            "INSERT OR IGNORE INTO outbox"
            " (dedup_key, method, channel, payload, update_of, thread_of, created_at, next_attempt_at, team_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                dedup_key,
                method,
                channel,
                json.dumps(payload),
                update_of,
                thread_of,
                time.time(),
                not_before,
                current_team(),
            ),
        )
        if cursor.rowcount == 0:
            row = self.store.execute("SELECT id FROM outbox WHERE dedup_key = ?", (dedup_key,)).fetchone()
            return int(row[0])
        self.wake()
        return int(cursor.lastrowid or 0)

    def post(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        dedup_key: str | None = None,
        thread_of: int | None = None,
        digest: int | None = None,
        **extra: Any,
    ) -> int:
        """Queue a chat.postMessage; `text` is the notification and screen-reader fallback.

        With `digest`, the message is that storm digest, rendered from its lines when it is sent."""
        payload: dict[str, Any] = {"text": text, **extra}
        if blocks is not None:
            payload["blocks"] = blocks
        if digest is not None:
            payload = {DIGEST: digest}
        return self.enqueue(POST, channel, payload, dedup_key=dedup_key, thread_of=thread_of)

    def update(
        self,
        message_row: int,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        dedup_key: str | None = None,
        digest: int | None = None,
    ) -> int:
        """Queue a chat.update of the message that outbox row `message_row` posted (a digest: rendered when sent)."""
        row = self.store.execute("SELECT channel FROM outbox WHERE id = ?", (message_row,)).fetchone()
        if row is None:
            raise ValueError(f"outbox row {message_row} does not exist")
        payload: dict[str, Any] = {"text": text}
        if blocks is not None:
            payload["blocks"] = blocks
        if digest is not None:
            payload = {DIGEST: digest}
        return self.enqueue(UPDATE, row[0], payload, dedup_key=dedup_key, update_of=message_row)

    def ephemeral(self, channel: str, user: str, text: str, blocks: list[dict[str, Any]] | None = None) -> int:
        """Queue a chat.postEphemeral: only `user` sees it."""
        payload: dict[str, Any] = {"user": user, "text": text}
        if blocks is not None:
            payload["blocks"] = blocks
        return self.enqueue(EPHEMERAL, channel, payload)

    def respond(self, response_url: str, body: dict[str, Any]) -> int:
        """Queue a post to an interaction's response_url (ephemeral by default, as Slack does)."""
        return self.enqueue(RESPONSE_URL, response_url, body)

    def publish_home(self, user: str) -> int:
        """Queue a views.publish of `user`'s App Home, rendered when it is sent (so it shows that moment).

        At most one waits per person (a change while one waits is in it already), and it goes no sooner
        than `home_every` seconds after the last one: a burst of changes, or of openings, costs one. One
        already rendered and on its way to Slack (`sending_at`) doesn't show this change: another waits."""
        lane = f"{HOME}:{user}"
        last = self.store.execute(
            "SELECT MAX(COALESCE(sent_at, sending_at)) FROM outbox WHERE channel = ? AND method = ?"
            " AND (status = 'sent' OR (status = 'pending' AND sending_at IS NOT NULL))",
            (lane, PUBLISH),
        ).fetchone()[0]
        due = max(time.time(), float(last or 0) + self.home_every)
        waiting = self.store.execute(
            "SELECT id, next_attempt_at FROM outbox WHERE status = 'pending' AND sending_at IS NULL AND channel = ?"
            " AND method = ?",
            (lane, PUBLISH),
        ).fetchone()
        if waiting is not None:
            if due < float(waiting[1]):  # waiting on a retry's backoff: the Home is wanted sooner
                self.store.execute("UPDATE outbox SET next_attempt_at = ? WHERE id = ?", (due, waiting[0]))
                self.wake()
            return int(waiting[0])
        return self.enqueue(PUBLISH, lane, {HOME: user}, not_before=due)

    def _client_for(self, row: _Row) -> AsyncWebClient:
        """The Slack client with the token of the row's workspace (SLACK_BOT_TOKEN's client for "")."""
        if self.team_clients is None:
            return self.client
        if not row.team:  # many workspaces, and nothing said whose this is: no token could send it
            raise _Refused("the message belongs to no workspace (no route or request says whose it is)")
        client = self.team_clients.get(row.team)
        if client is None:
            raise _Refused(f"workspace {row.team} has no installation (uninstalled?): nothing is sent for it")
        return client

    def render_as_digest(self, row_id: int, digest_id: int) -> None:
        """The row posts (or edits) storm digest `digest_id`, rendered from its lines when it is sent."""
        self.store.execute("UPDATE outbox SET payload = ? WHERE id = ?", (json.dumps({DIGEST: digest_id}), row_id))

    def any_pending(self, *row_ids: int | None) -> bool:
        """Whether any of these rows is still waiting to be sent."""
        ids = [r for r in row_ids if r is not None]
        marks = ", ".join("?" * len(ids))
        query = f"SELECT 1 FROM outbox WHERE id IN ({marks}) AND status = 'pending' LIMIT 1"
        return bool(ids) and self.store.execute(query, tuple(ids)).fetchone() is not None

    def message_ts(self, row_id: int) -> tuple[str, str] | None:
        """(channel id, ts) of a delivered post, or None while it is pending."""
        row = self.store.execute(
            "SELECT posted_channel, ts FROM outbox WHERE id = ? AND status = 'sent'", (row_id,)
        ).fetchone()
        return (row[0], row[1]) if row and row[1] else None

    def pending_count(self) -> int:
        row = self.store.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()
        return int(row[0])

    # -- the sender ----------------------------------------------------------------------------

    async def start(self, session: aiohttp.ClientSession | None = None) -> None:
        self._session = session
        await self.start_loop()
        pending = self.pending_count()
        if pending:
            log.info("outbox: %d message(s) left from an earlier run will be delivered now", pending)

    async def stop(self) -> None:
        await self.stop_loop()
        for task in list(self._in_flight.values()):
            task.cancel()
        if self._in_flight:
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
        self._in_flight.clear()
        for channel in list(self._owned):
            self._give_back(channel)

    async def drain(self, timeout: float = 30.0) -> bool:
        """Wait until nothing is pending or in flight (for the demo and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._in_flight and self.pending_count() == 0:
                return True
            await asyncio.sleep(0.01)
        return False

    def step(self) -> float:
        return self._dispatch_ready()

    _COLUMNS = (
        "SELECT id, method, channel, payload, update_of, thread_of, attempts, next_attempt_at, created_at,"
        " sending_at, team_id FROM outbox"
    )

    def _heads(self) -> list[_Row]:
        """The oldest pending message of every channel: a channel's messages go out in order.

        Files are not messages here: a file waiting for its recording never holds a channel back.
        """
        rows = self.store.execute(
            f"{self._COLUMNS} WHERE id IN (SELECT MIN(id) FROM outbox WHERE status = 'pending' AND method != ?"
            " GROUP BY channel)",
            (FILE,),
        ).fetchall()
        return [_row(r) for r in rows]

    def _files(self) -> list[_Row]:
        """Pending files, the soonest due first (each is a lane of its own)."""
        limit = self.file_concurrency * 4 + 16
        rows = self.store.execute(
            f"{self._COLUMNS} WHERE status = 'pending' AND method = ? ORDER BY next_attempt_at, id LIMIT ?",
            (FILE, limit),
        ).fetchall()
        return [_row(r) for r in rows]

    def _dispatch_ready(self) -> float:
        """Start a delivery for every channel that may post now; return seconds until the next one may."""
        now_wall, now_mono = time.time(), time.monotonic()
        shared = self.store.locks.shared
        # poll at least this often: another process may have queued rows
        next_in = SHARED_POLL_S if shared else 1.0
        heads, files = self._heads(), self._files()
        self.metrics.outbox_pending.set(self.pending_count() if heads or files else 0)
        messages_in_flight = sum(1 for lane in self._in_flight if not lane.startswith("file:"))
        for row in heads:
            if row.channel in self._in_flight:
                continue
            if messages_in_flight >= self.concurrency:
                next_in = min(next_in, 0.05)
                break
            if shared and not self._owns(row.channel, now_wall, now_mono):
                continue
            wait = max(row.next_attempt_at - now_wall, self._ready_at.get(row.channel, 0.0) - now_mono)
            if shared and row.sending_at is not None and row.id not in self._sending_here:
                wait = max(wait, row.sending_at + SENDING_GRACE_S - now_wall)
            if wait > 0:
                next_in = min(next_in, wait)
                continue
            self._start(row.channel, row)
            messages_in_flight += 1
        files_in_flight = len(self._in_flight) - messages_in_flight
        for row in files:
            lane = f"file:{row.id}"
            if lane in self._in_flight:
                continue
            wait = row.next_attempt_at - now_wall  # the channel's pace is kept just before the upload
            if wait > 0:
                next_in = min(next_in, wait)
                break  # ordered by due time: the rest are later still
            if files_in_flight >= self.file_concurrency:
                break  # a finishing file wakes the sender
            if shared and not self._owns(row.channel, now_wall, now_mono):
                continue  # the channel's owner uploads it, keeping the channel's pace
            self._start(lane, row)
            files_in_flight += 1
        if shared:
            self._release_idle(heads, files, now_mono)
        return max(next_in, 0.0)

    # -- several replicas: one sender per channel ------------------------------------------------------

    def _owns(self, channel: str, now_wall: float, now_mono: float) -> bool:
        """Whether this replica sends for `channel` (taking it if nobody does)."""
        locks = self.store.locks
        if channel in self._owned:
            if locks.held(OWNER + channel):
                self._active[channel] = now_mono
                return True
            self._owned.discard(channel)  # the session holding it was lost: another replica may have it now
            log.info("outbox: lost %s to another replica", channel)
        if self._refused.get(channel, 0.0) > now_mono:
            return False
        if not locks.try_acquire(OWNER + channel):
            self._refused[channel] = now_mono + OWNER_RETRY_S
            return False
        self._refused.pop(channel, None)
        self._owned.add(channel)
        self._active[channel] = now_mono
        # Keep the pace the last owner kept: its last post (or a 429's pause) is in channel_pace.
        try:
            row = self.store.execute("SELECT ready_at FROM channel_pace WHERE channel = ?", (channel,)).fetchone()
        except StoreBusy:
            row = (now_wall + self.channel_interval,)
        if row is not None and row[0] > now_wall:
            self._ready_at[channel] = max(self._ready_at.get(channel, 0.0), now_mono + (row[0] - now_wall))
        return True

    def _release_idle(self, heads: list[_Row], files: list[_Row], now_mono: float) -> None:
        busy = {row.channel for row in heads} | {row.channel for row in files}
        busy |= {task.get_name().partition("|")[2] for task in self._in_flight.values()}
        for channel in list(self._owned):
            if channel in busy:
                self._active[channel] = now_mono
            elif now_mono - self._active.get(channel, 0.0) > IDLE_RELEASE_S:
                self._give_back(channel)

    def _give_back(self, channel: str) -> None:
        self._owned.discard(channel)
        self._active.pop(channel, None)
        self.store.locks.release(OWNER + channel)

    def _still_owner(self, channel: str) -> bool:
        """Just before calling Slack: this replica still owns the channel (always so with one process)."""
        locks = self.store.locks
        if not locks.shared or locks.held(OWNER + channel):
            return True
        self._owned.discard(channel)
        return False

    def _paced(self, channel: str, seconds: float) -> None:
        """The channel may be posted to again in `seconds`: here, and for whoever owns it next."""
        self._ready_at[channel] = time.monotonic() + seconds
        if self.store.locks.shared:
            with contextlib.suppress(sqlite3.Error):
                self.store.execute(
                    "INSERT INTO channel_pace (channel, ready_at) VALUES (?, ?)"
                    " ON CONFLICT(channel) DO UPDATE SET ready_at = excluded.ready_at",
                    (channel, time.time() + seconds),
                )

    def _start(self, lane: str, row: _Row) -> None:
        task = asyncio.create_task(self._deliver(row), name=f"outbox-{row.id}|{row.channel}")
        self._in_flight[lane] = task
        task.add_done_callback(functools.partial(self._finished, lane))

    def _finished(self, lane: str, _task: asyncio.Task[None]) -> None:
        self._in_flight.pop(lane, None)
        self.wake()

    async def _deliver(self, row: _Row) -> None:
        try:
            kwargs = self._resolve(row)
            if kwargs is None:
                return
            found = (
                await self._already_posted(row, kwargs) if row.sending_at is not None and row.method == POST else None
            )
            channel_id: str | None
            ts: str | None
            if found is not None:
                channel_id, ts = found
                log.info("outbox: row %d was already in Slack (ts %s); not posting it again", row.id, ts)
                if row.id in self._rendered:
                    # A digest posted by a process that died: which of its lines that post showed is unknown (lines
                    # added meanwhile counted on its edit, which never came), so it is edited to show them all.
                    self._rendered[row.id] = (self._rendered[row.id][0], 0)
            else:
                if not self._still_owner(row.channel):
                    return  # another replica sends for this channel now: the row waits for it
                if row.method not in (RESPONSE_URL, FILE):  # a file keeps the pace once it has its bytes
                    self._paced(row.channel, self.channel_interval)
                if row.method == POST:
                    # From here until Slack answers, a crash leaves it unknown whether the post landed.
                    self.store.execute("UPDATE outbox SET sending_at = ? WHERE id = ?", (time.time(), row.id))
                    self._sending_here.add(row.id)
                    kwargs["metadata"] = {"event_type": "switchboard_outbox", "event_payload": {"row": row.id}}
                channel_id, ts = await self._call(row, kwargs)
        except _Retry as exc:
            if not exc.maybe_posted:
                self.store.execute("UPDATE outbox SET sending_at = NULL WHERE id = ?", (row.id,))
            self._schedule_retry(row, exc)
        except _Refused as exc:
            self._mark_failed(row, str(exc), recording=isinstance(exc, _RecordingRefused))
            if row.method == FILE:
                self._unattached(row, str(exc))
        except Exception as exc:  # a bug here must not kill the sender or lose the row
            log.exception("outbox: row %d (%s to %s) failed unexpectedly", row.id, row.method, row.channel)
            self._schedule_retry(row, _Retry(type(exc).__name__, bounded=row.method == FILE))
        else:
            try:
                self.store.execute(
                    "UPDATE outbox SET status = 'sent', ts = ?, posted_channel = ?, sent_at = ?, error = NULL,"
                    " sending_at = NULL WHERE id = ?",
                    (ts, channel_id, time.time(), row.id),
                )
            except sqlite3.Error as exc:  # Slack has it; the next attempt finds it there before posting again
                log.warning("outbox: row %d reached Slack but could not be recorded (%s)", row.id, exc)
                return
            self._sending_here.discard(row.id)
            self.metrics.outbox_sent.labels(row.method).inc()
            self.metrics.outbox_delivery_seconds.observe(max(0.0, time.time() - row.created_at))
            rendered = self._rendered.pop(row.id, None)
            if rendered is not None:
                with contextlib.suppress(sqlite3.Error):  # the next line of the digest edits it anyway
                    self._follow_digest(row, *rendered)
        finally:
            self._rendered.pop(row.id, None)

    def _follow_digest(self, row: _Row, digest_id: int, last_line: int) -> None:
        """Lines added to a digest while its post or edit was on its way to Slack get an edit of their own."""
        post_row = row.update_of if row.method == UPDATE else row.id
        grew = self.store.execute(
            "SELECT 1 FROM digest_lines WHERE digest_id = ? AND id > ? LIMIT 1", (digest_id, last_line)
        ).fetchone()
        if grew is None or post_row is None or self.any_pending_edit(post_row):
            return
        edit = self.update(post_row, "", None, digest=digest_id)
        self.store.execute("UPDATE digests SET update_row = ? WHERE id = ?", (edit, digest_id))

    def any_pending_edit(self, message_row: int) -> bool:
        return (
            self.store.execute(
                "SELECT 1 FROM outbox WHERE update_of = ? AND status = 'pending' LIMIT 1", (message_row,)
            ).fetchone()
            is not None
        )

    async def _already_posted(self, row: _Row, kwargs: dict[str, Any]) -> tuple[str, str] | None:
        """After a crash or a lost answer: find the post by its row id in the channel, or in its thread.

        conversations.history shows only a channel's top-level messages, so a reply is looked for with
        conversations.replies under its thread's root. Needs channels:history (groups:history in
        private channels, im:history in DMs) and the bot in the channel; without them the row is
        posted again (at least once), and the log says so.
        """
        channel = str(kwargs.get("channel", row.channel))
        if channel[:1] in ("U", "W"):
            return None  # a DM by user id: its D… channel is not known until the post succeeds
        params = {
            "channel": channel,
            "oldest": f"{row.created_at - 5:.6f}",
            "limit": 200,
            "include_all_metadata": "true",
        }
        thread_ts = kwargs.get("thread_ts")
        method = "conversations.history"
        if thread_ts:
            method, params["ts"] = "conversations.replies", str(thread_ts)
        try:
            response = await self._client_for(row).api_call(method, params=params)
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = type(exc).__name__
            if isinstance(exc, SlackApiError) and isinstance(exc.response.data, dict):
                reason = _error_text(exc.response.data) or reason
            log.warning(
                "outbox: could not check whether row %d already reached Slack (%s); posting it again",
                row.id,
                reason,
            )
            return None
        data = response.data if isinstance(response.data, dict) else {}
        for message in data.get("messages", []):
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("row") == row.id:
                return channel, str(message["ts"])
        return None

    def _resolve(self, row: _Row) -> dict[str, Any] | None:
        """The call's arguments with thread_ts / ts filled in; None when the row cannot go now."""
        kwargs = dict(row.payload)
        if DIGEST in kwargs:  # a storm digest: rendered now, from every line it has at this moment
            digest_id = int(kwargs.pop(DIGEST))
            found = self.store.execute(
                "SELECT id, line FROM digest_lines WHERE digest_id = ? ORDER BY id", (digest_id,)
            ).fetchall()
            kwargs["text"], kwargs["blocks"] = render_digest([r[1] for r in found])
            self._rendered[row.id] = (digest_id, int(found[-1][0]) if found else 0)
        if HOME in kwargs:  # an App Home: rendered now, as it is at this moment
            return self._home(row, str(kwargs[HOME]))
        if row.method == UPDATE:
            assert row.update_of is not None
            newer = self.store.execute(
                "SELECT 1 FROM outbox WHERE update_of = ? AND status = 'pending' AND id > ? LIMIT 1",
                (row.update_of, row.id),
            ).fetchone()
            if newer:
                self.store.execute("UPDATE outbox SET status = 'superseded' WHERE id = ?", (row.id,))
                return None
            target = self._target(row, row.update_of)
            if target is None:
                return None
            kwargs["channel"], kwargs["ts"] = target
        elif row.method in (POST, EPHEMERAL, FILE):
            kwargs["channel"] = row.channel
            if row.thread_of is not None:
                target = self._target(row, self._thread_root(row.thread_of))
                if target is None:
                    return None
                kwargs["channel"], kwargs["thread_ts"] = target
        return kwargs

    def _home(self, row: _Row, user: str) -> dict[str, Any] | None:
        if self.home_renderer is None:
            self._mark_failed(row, "no App Home renderer is registered")
            return None
        try:
            with team_scope(row.team):  # the Home of the workspace whose publish this is
                view = self.home_renderer(user)
            # Rendered: a change from now on needs another publish (`publish_home` doesn't reuse this row).
            self.store.execute("UPDATE outbox SET sending_at = ? WHERE id = ?", (time.time(), row.id))
        except Exception:  # a bug in a dashboard must not hold the lane: the next change or opening publishes again
            log.exception("outbox: the App Home of %s couldn't be rendered (row %d)", user, row.id)
            self._mark_failed(row, "the App Home couldn't be rendered")
            return None
        return {"user_id": user, "view": view}

    def _thread_root(self, row_id: int) -> int:
        for _ in range(100):  # replies of replies thread under the first message
            parent = self.store.execute("SELECT thread_of FROM outbox WHERE id = ?", (row_id,)).fetchone()
            if parent is None or parent[0] is None:
                return row_id
            row_id = int(parent[0])
        return row_id

    def _target(self, row: _Row, target_id: int) -> tuple[str, str] | None:
        status = self.store.execute(
            "SELECT status, posted_channel, ts FROM outbox WHERE id = ?", (target_id,)
        ).fetchone()
        if status is None or status[0] in ("failed", "superseded"):
            self._mark_failed(row, f"the message it refers to (outbox row {target_id}) was never posted")
            return None
        if status[0] != "sent":
            # Normally the target is earlier in the same channel and already sent; if not, wait for it.
            self.store.execute("UPDATE outbox SET next_attempt_at = ? WHERE id = ?", (time.time() + 0.2, row.id))
            return None
        return (status[1], status[2])

    async def _call(self, row: _Row, kwargs: dict[str, Any]) -> tuple[str | None, str | None]:
        if row.method == FILE:
            return await self._upload(row, kwargs)
        if row.method == RESPONSE_URL:
            return await self._call_response_url(row.channel, kwargs)
        try:
            response = await self._client_for(row).api_call(row.method, json=kwargs)
        except SlackApiError as exc:
            raise self._classify(exc) from exc
        except aiohttp.ClientConnectorError as exc:  # never connected: nothing was posted
            raise _Retry(f"connection: {type(exc).__name__}") from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _Retry(f"connection: {type(exc).__name__}", maybe_posted=True) from exc
        data = response.data if isinstance(response.data, dict) else {}
        return data.get("channel") or kwargs.get("channel"), data.get("ts") or data.get("message_ts")

    def attach_file(
        self,
        message_row: int,
        url: str,
        filename: str,
        title: str,
        *,
        hosts: frozenset[str] | set[str] | tuple[str, ...] = frozenset(),
        max_bytes: int = MAX_FILE_BYTES,
        unattached: str = UNATTACHED,
        dedup_key: str | None = None,
    ) -> int:
        """Queue a file (fetched from `url` when it is sent) as a reply to the message of `message_row`.

        `url` is fetched only if its host is in `hosts` (see `bot.recordings`); if the file is given
        up, `unattached` (with "{reason}" filled in) is posted in the same thread.
        """
        row = self.store.execute("SELECT channel FROM outbox WHERE id = ?", (message_row,)).fetchone()
        if row is None:
            raise ValueError(f"outbox row {message_row} does not exist")
        payload = {
            "url": url,
            "filename": filename,
            "title": title,
            "hosts": sorted(hosts),
            "max_bytes": int(max_bytes),
            "unattached": unattached,
        }
        return self.enqueue(FILE, row[0], payload, dedup_key=dedup_key, thread_of=message_row)

    def upload(
        self,
        channel: str,
        content: bytes,
        filename: str,
        title: str,
        *,
        comment: str | None = None,
        thread_of: int | None = None,
        dedup_key: str | None = None,
    ) -> int:
        """Queue a file Switchboard made (a report's chart) for `channel`, with `comment` as its message."""
        payload: dict[str, Any] = {
            "content_b64": base64.b64encode(content).decode("ascii"),
            "filename": filename,
            "title": title,
        }
        if comment:
            payload["initial_comment"] = comment
        return self.enqueue(FILE, channel, payload, dedup_key=dedup_key, thread_of=thread_of)

    async def _upload(self, row: _Row, kwargs: dict[str, Any]) -> tuple[str | None, str | None]:
        if "content_b64" in kwargs:  # made here (a chart): nothing to fetch
            content = base64.b64decode(kwargs["content_b64"])
        else:
            try:
                content = await self.recordings.fetch(
                    str(kwargs["url"]), kwargs.get("hosts") or (), int(kwargs.get("max_bytes") or MAX_FILE_BYTES)
                )
            except RecordingError as exc:
                if exc.retryable:
                    raise _Retry(f"recording: {exc.reason}", bounded=True) from exc
                raise _RecordingRefused(exc.reason) from exc
        # The file is posted in the channel: keep its pace, as a message would.
        for _ in range(1000):  # a 429 met meanwhile may push the channel's time back again
            wait = self._ready_at.get(row.channel, 0.0) - time.monotonic()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        if not self._still_owner(row.channel):
            raise _Retry("another replica owns the channel now")
        self._paced(row.channel, self.channel_interval)
        try:
            extra = {"initial_comment": kwargs["initial_comment"]} if kwargs.get("initial_comment") else {}
            response = await self._client_for(row).files_upload_v2(
                content=content,
                filename=kwargs["filename"],
                title=kwargs["title"],
                channel=kwargs["channel"],
                thread_ts=kwargs.get("thread_ts"),
                **extra,
            )
        except SlackApiError as exc:
            raise self._classify(exc) from exc
        except SlackRequestError as exc:
            raise _Retry(f"upload: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _Retry(f"connection: {type(exc).__name__}") from exc
        data = response.data if isinstance(response.data, dict) else {}
        file_id = (data.get("file") or {}).get("id")
        return kwargs["channel"], file_id

    def _unattached(self, row: _Row, reason: str) -> None:
        """Say in the thread that the file was given up (its message stays as it is, link included)."""
        if row.thread_of is None:
            return
        template = str(row.payload.get("unattached") or UNATTACHED)
        reason = reason.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")  # mrkdwn: text only
        self.enqueue(
            POST,
            row.channel,
            {"text": template.replace("{reason}", reason)},
            dedup_key=f"outbox:{row.id}:unattached",
            thread_of=row.thread_of,
        )

    async def _call_response_url(self, url: str, body: dict[str, Any]) -> tuple[None, None]:
        webhook = AsyncWebhookClient(url, timeout=10, session=self._session, retry_handlers=[])
        try:
            response = await webhook.send_dict(body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _Retry(f"connection: {type(exc).__name__}") from exc
        if response.status_code == 429:
            raise _Retry("ratelimited", _retry_after(response.headers))
        if response.status_code >= 500:
            raise _Retry(f"http {response.status_code}")
        if response.status_code >= 400:
            # expired_url / used_url: Slack will never take this response again.
            raise _Refused(f"response_url answered {response.status_code}: {response.body[:200]}")
        return None, None

    def _classify(self, exc: SlackApiError) -> Exception:
        status = exc.response.status_code
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        error = str(data.get("error") or f"http_{status}")
        if status == 429:
            return _Retry("ratelimited", _retry_after(exc.response.headers))
        if status >= 500:
            return _Retry(error, maybe_posted=True)
        if error in TRANSIENT_ERRORS:
            if error in ("invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"):
                log.error("outbox: Slack rejected the bot token (%s); messages are kept until it is fixed", error)
            return _Retry(error)
        return _Refused(_error_text(data) or error)

    def _schedule_retry(self, row: _Row, exc: _Retry) -> None:
        if exc.retry_after is not None:
            # Rate limited: pause the channel, not the message; it is not a failed attempt.
            self.metrics.outbox_rate_limited.inc()
            self._paced(row.channel, exc.retry_after)
            if row.method == FILE:  # its own lane: without this it would fetch its recording again at once
                self.store.execute(
                    "UPDATE outbox SET next_attempt_at = ? WHERE id = ?", (time.time() + exc.retry_after, row.id)
                )
            log.info("outbox: Slack asked to slow down on %s; waiting %.1f s", row.channel, exc.retry_after)
            return
        attempts = row.attempts + 1
        if exc.bounded and attempts >= MAX_RECORDING_TRIES:
            reason = exc.reason.removeprefix("recording: ")
            self._mark_failed(row, f"{reason} ({attempts} tries)", recording=True)
            self._unattached(row, f"{reason}; tried {attempts} times")
            return
        if exc.bounded:
            delay = self.backoff_base * RECORDING_BACKOFF * 2 ** (attempts - 1) * random.uniform(0.8, 1.2)
        else:
            delay = min(MAX_BACKOFF, self.backoff_base * 2 ** min(attempts - 1, 16)) * random.uniform(0.8, 1.2)
        self.store.execute(
            "UPDATE outbox SET attempts = ?, next_attempt_at = ?, error = ? WHERE id = ?",
            (attempts, time.time() + delay, exc.reason, row.id),
        )
        self.metrics.outbox_retries.labels(exc.reason.split(":")[0]).inc()
        log.warning(
            "outbox: row %d (%s to %s) failed (%s), attempt %d; retrying in %.1f s",
            row.id,
            row.method,
            row.channel,
            exc.reason,
            attempts,
            delay,
        )

    def _mark_failed(self, row: _Row, error: str, *, recording: bool = False) -> None:
        self.store.execute(
            "UPDATE outbox SET status = 'failed', error = ?, attempts = attempts + 1 WHERE id = ?",
            (error, row.id),
        )
        label = "recording" if recording else (error.split()[0] if error else "unknown")
        self.metrics.outbox_failed.labels(label).inc()
        if recording:
            log.warning("outbox: row %d (file to %s) given up, the link stays: %s", row.id, row.channel, error)
        else:
            log.error("outbox: Slack refused row %d (%s to %s): %s", row.id, row.method, row.channel, error)


def _row(r: Any) -> _Row:
    return _Row(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7], r[8], r[9], r[10] or "")


def _error_text(data: dict[str, Any]) -> str:
    """Slack's error with what explains it: Block Kit's messages, or the scope a missing_scope needed."""
    error = str(data.get("error") or "")
    if error == "missing_scope":
        return f"missing_scope (needed {data.get('needed')}; the token has {data.get('provided')})"
    detail = data.get("errors") or (data.get("response_metadata") or {}).get("messages") or ""
    return f"{error} {detail}".strip()


def _retry_after(headers: Any) -> float:
    try:
        value = headers.get("Retry-After") or headers.get("retry-after")
        return max(0.0, float(value)) if value is not None else 1.0
    except (TypeError, ValueError):
        return 1.0
