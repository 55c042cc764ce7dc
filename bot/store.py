"""The store: one database behind one interface — SQLite (a file, the zero-setup default) or PostgreSQL
(`postgresql://…`, for several replicas). Versioned migrations; the database is the truth, memory a cache.

`Store(target)` opens either: a file path gives `SqliteStore` (below), a `postgresql://` URL gives
`PostgresStore` (`bot/pgstore.py`, which translates the SQL the domain writes — see its docstring for the
portable subset). A later issue adds its tables by appending a `Migration` to `MIGRATIONS`; a database
made by an older version is brought forward at open, one recorded step at a time, never rebuilt.

Every statement runs on the event loop's thread, so no statement may wait long for a lock another
process holds (a backup, a second writer, another replica's transaction): a statement waits at most
`BUSY_TIMEOUT_MS`, then raises `StoreBusy`; for `BUSY_BACKOFF_S` after that, statements that would wait
fail at once instead, so a lock held for minutes costs the loop one short wait per second, never one per
statement. A database that can't be reached at all (PostgreSQL restarting) raises `StoreUnavailable`, a
`StoreBusy` too. Callers on a request path turn `StoreBusy` into an honest 503; background workers try
again later.

Explicit transactions (`with store.transaction():`) are serialized, as SQLite's `BEGIN IMMEDIATE` is:
on PostgreSQL by a transaction-scoped advisory lock that every replica's transactions take first, so a
read-then-write written for SQLite (count the call slots, then take one) holds across replicas too.
Single statements outside a transaction run concurrently.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

# How long one statement may wait for another connection's write lock (it blocks the event loop).
BUSY_TIMEOUT_MS = 200
# After a statement gave up waiting, statements fail at once for this long instead of waiting again.
BUSY_BACKOFF_S = 1.0


class StoreBusy(sqlite3.OperationalError):
    """Another connection holds the database's write lock; nothing was written. Try again later."""


class StoreUnavailable(StoreBusy):
    """The database can't be reached right now (PostgreSQL down or restarting); try again later."""


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc)


def is_postgres_url(target: str | Path) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def redact_url(target: str | Path) -> str:
    """A database target as it may be shown or logged: a URL's password replaced by `***`."""
    text = str(target)
    if not is_postgres_url(text):
        return text
    scheme, _, rest = text.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return text
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in userinfo else ''}@{host}"


def replica_name() -> str:
    """Who this process is, as other replicas and `switchboard check` see it: host, pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    # Called with a `sqlite_utils.Database` on SQLite and a look-alike on PostgreSQL: use `db.execute(sql,
    # params)` (and `db.conn.executemany`) with portable DDL, not sqlite-utils' table helpers.
    apply: Callable[[Any], None]


def _spine_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE inbox (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,           -- e.g. avanser.call, exotel.deallocation
            dedup_key TEXT NOT NULL UNIQUE, -- source + the provider's own id for the event
            payload TEXT NOT NULL,          -- JSON, exactly as received (unknown fields kept)
            received_at REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'new',  -- new | done | unrouted | failed
            processed_at REAL,
            error TEXT
        )
        """
    )
    db.execute("CREATE INDEX inbox_status ON inbox (status, id)")
    db.execute(
        """
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            dedup_key TEXT UNIQUE,          -- enqueueing the same key twice posts once
            method TEXT NOT NULL,           -- chat.postMessage, chat.update, chat.postEphemeral, response_url
            channel TEXT NOT NULL,          -- Slack channel id, or the response_url for method=response_url
            payload TEXT NOT NULL,          -- JSON arguments for the Web API method
            update_of INTEGER REFERENCES outbox(id),  -- chat.update: the row whose message is edited
            thread_of INTEGER REFERENCES outbox(id),  -- reply in the thread of that row's message
            status TEXT NOT NULL DEFAULT 'pending',   -- pending | sent | failed
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            ts TEXT,                        -- Slack's ts of the posted message
            posted_channel TEXT,            -- the channel id Slack answered (a DM's D… for a user id)
            error TEXT,
            created_at REAL NOT NULL,
            sent_at REAL
        )
        """
    )
    db.execute("CREATE INDEX outbox_pending ON outbox (status, channel, id)")
    db.execute(
        """
        CREATE TABLE routes (
            number TEXT PRIMARY KEY,        -- E.164
            channel TEXT NOT NULL,
            thread_ts TEXT,
            name TEXT,
            options TEXT NOT NULL DEFAULT '{}',  -- JSON: report level, privacy, ...
            updated_by TEXT,
            updated_at REAL NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            actor TEXT NOT NULL,            -- Slack user id, or 'system' / a provider name
            action TEXT NOT NULL,
            subject TEXT,
            detail TEXT NOT NULL DEFAULT '{}',
            provider_ref TEXT
        )
        """
    )
    db.execute("CREATE INDEX audit_at ON audit (at)")


def _alert_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE group_routes (
            custom_group TEXT PRIMARY KEY,  -- AVANSER custom_group of a tracking number
            channel TEXT NOT NULL,
            updated_by TEXT,
            updated_at REAL NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE threads (
            key TEXT PRIMARY KEY,           -- request:<id>, allocation:<greenvn_id>, sms:<number>:<sender>
            outbox_id INTEGER NOT NULL REFERENCES outbox(id),
            created_at REAL NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            inbox_id INTEGER NOT NULL UNIQUE REFERENCES inbox(id),
            outbox_id INTEGER REFERENCES outbox(id),  -- the message that shows it (NULL inside a digest)
            digest_id INTEGER REFERENCES digests(id),
            channel TEXT NOT NULL,
            kind TEXT NOT NULL,             -- missed, voicemail, answered, sms, allocation_call, ...
            caller TEXT,                    -- E.164, the full number even when the message masks it
            tracking TEXT,                  -- E.164 of the number that was called or texted
            claimed_by TEXT,
            claimed_at REAL,
            called_back_by TEXT,
            called_back_at REAL,
            created_at REAL NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE digests (
            id INTEGER PRIMARY KEY,
            channel TEXT NOT NULL,
            outbox_id INTEGER NOT NULL REFERENCES outbox(id),
            opened_at REAL NOT NULL,
            lines TEXT NOT NULL DEFAULT '[]'  -- JSON list of one-line summaries, oldest first
        )
        """
    )
    db.execute("CREATE INDEX digests_channel ON digests (channel, opened_at)")


def _outbox_sending(db: sqlite_utils.Database) -> None:
    # When a post was sent but its answer not seen (crash, timeout): check Slack before re-posting.
    db.execute("ALTER TABLE outbox ADD COLUMN sending_at REAL")


def _user_phones(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE user_phones (
            user_id TEXT PRIMARY KEY,       -- Slack user id
            phone TEXT NOT NULL,            -- E.164: what Switchboard rings for this person's calls
            updated_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX audit_actor ON audit (actor, action, at)")


def _number_requests(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE number_requests (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,             -- create | update | delete
            custom_id TEXT NOT NULL UNIQUE, -- AVANSER idempotency key
            name TEXT NOT NULL,
            number TEXT,                    -- E.164: picked, reserved, or the service changed
            channel TEXT NOT NULL,          -- where it was asked from: progress message and alerts
            requester TEXT NOT NULL,
            status TEXT NOT NULL,           -- awaiting_approval, rejected, submitting, pending, completed, failed
            body TEXT NOT NULL,             -- JSON sent (or to be sent) to AVANSER
            request_id TEXT UNIQUE,         -- AVANSER's, once submitted
            message_row INTEGER REFERENCES outbox(id),   -- the progress message
            approval_row INTEGER REFERENCES outbox(id),  -- the approval request, for non-admins
            decided_by TEXT,
            error TEXT,
            created_at REAL NOT NULL,
            submitted_at REAL,
            updated_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX number_requests_status ON number_requests (status)")


def _allocations(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE allocations (
            id INTEGER PRIMARY KEY,         -- the short id people type: /vn extend 12 2h
            connection_id TEXT NOT NULL UNIQUE,
            greenvn_id TEXT UNIQUE,
            green_vn TEXT,                  -- E.164 of the virtual number
            parties TEXT NOT NULL,          -- JSON: aparty_numbers, bparty_numbers, aparty_pins, bparty_pins
            usage TEXT NOT NULL,
            owner TEXT NOT NULL,
            channel TEXT NOT NULL,
            masked INTEGER NOT NULL DEFAULT 0,
            message_row INTEGER REFERENCES outbox(id),
            expires_at REAL NOT NULL,       -- Switchboard's lease
            provider_expires_at REAL,       -- Exotel's own deallocation policy: the safety net
            reminder_at REAL,
            reminded_at REAL,
            state TEXT NOT NULL,            -- active | released | expired
            ended_at REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX allocations_state ON allocations (state, expires_at)")


def _slack_events(db: sqlite_utils.Database) -> None:
    # Slack re-sends an event (X-Slack-Retry-Num) when the ack was late: each event_id is handled once.
    db.execute("CREATE TABLE slack_events (event_id TEXT PRIMARY KEY, received_at REAL NOT NULL)")


def _alert_indexes(db: sqlite_utils.Database) -> None:
    # /call looks up the number a caller last called; make bench shows it on a million alerts.
    db.execute("CREATE INDEX alerts_caller ON alerts (caller, id)")


def _allocation_requests(db: sqlite_utils.Database) -> None:
    # An allocation whose POST got no clear answer is kept 'unconfirmed' with the request sent, so it can be
    # settled by sending the same connection_id again (Exotel answers code 18 when it already exists).
    db.execute("ALTER TABLE allocations ADD COLUMN request TEXT")


def _health(db: sqlite_utils.Database) -> None:
    # /healthz commits a row here (and deletes the previous one) to prove the store takes writes.
    db.execute("CREATE TABLE health (id INTEGER PRIMARY KEY, checked_at REAL NOT NULL, room BLOB)")


def _call_slots(db: sqlite_utils.Database) -> None:
    # A call's place in SWITCHBOARD_CALL_LIMIT(_TEAM), taken atomically before DataTechLabs is called.
    db.execute(
        """
        CREATE TABLE call_slots (
            id INTEGER PRIMARY KEY,
            requester TEXT NOT NULL,        -- Slack user id of who asked for the call
            reserved_at REAL NOT NULL,
            state TEXT NOT NULL             -- reserved | placed (a released slot is deleted)
        )
        """
    )
    db.execute("CREATE INDEX call_slots_at ON call_slots (reserved_at, requester)")


def _once_keys(db: sqlite_utils.Database) -> None:
    # A form submitted twice, a button double-clicked: each causes at most one provider effect.
    db.execute("CREATE TABLE once_keys (key TEXT PRIMARY KEY, at REAL NOT NULL)")


def _inbox_retries(db: sqlite_utils.Database) -> None:
    # An event whose handling failed (a locked database, a bug) is tried again with backoff, not dropped.
    db.execute("ALTER TABLE inbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE inbox ADD COLUMN next_attempt_at REAL NOT NULL DEFAULT 0")


def _request_live(db: sqlite_utils.Database) -> None:
    # Seed 000: "configured" (about 7 minutes to propagate, then a test call) comes before "live".
    db.execute("ALTER TABLE number_requests ADD COLUMN configured_at REAL")
    db.execute("ALTER TABLE number_requests ADD COLUMN live_via TEXT")  # test_call | timer


def _digest_lines(db: sqlite_utils.Database) -> None:
    # A storm costs O(1) per alert: a line appended here; the digest message is rendered when it is sent.
    db.execute(
        """
        CREATE TABLE digest_lines (
            id INTEGER PRIMARY KEY,
            digest_id INTEGER NOT NULL REFERENCES digests(id),
            line TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX digest_lines_digest ON digest_lines (digest_id, id)")
    db.execute("ALTER TABLE digests ADD COLUMN line_count INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE digests ADD COLUMN chars INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE digests ADD COLUMN update_row INTEGER REFERENCES outbox(id)")
    # Digests opened before this version listed their lines in `digests.lines`: move them over.
    for digest_id, lines in db.execute("SELECT id, lines FROM digests").fetchall():
        listed = json.loads(lines or "[]")
        db.conn.executemany(
            "INSERT INTO digest_lines (digest_id, line) VALUES (?, ?)", [(digest_id, line) for line in listed]
        )
        db.execute(
            "UPDATE digests SET line_count = ?, chars = ? WHERE id = ?",
            (len(listed), sum(len(line) + 1 for line in listed), digest_id),
        )


def _calls(db: sqlite_utils.Database) -> None:
    # Every call on a tracking number (answered ones too, from webhooks and the data feed), for /numbers report.
    db.execute(
        """
        CREATE TABLE calls (
            id INTEGER PRIMARY KEY,
            call_key TEXT NOT NULL UNIQUE,  -- AVANSER uniqueid (the feed's call_unique_id), as the inbox dedups it
            inbox_id INTEGER,
            tracking TEXT,                  -- E.164 of the number called
            name TEXT,                      -- the tracking number's name (adname / tracking_name)
            caller TEXT,                    -- E.164, NULL when withheld
            status TEXT NOT NULL,           -- missed, abandoned, busy, unanswered, answered, voicemail, ...
            answered INTEGER NOT NULL,      -- 1 when status is answered
            started_at REAL NOT NULL,       -- epoch seconds
            local_day TEXT NOT NULL,        -- YYYY-MM-DD in the call's own time zone (AVANSER's tzdate)
            local_hour INTEGER NOT NULL,    -- 0-23, the same
            utc_offset INTEGER NOT NULL,    -- minutes east of UTC of that time zone
            duration INTEGER NOT NULL DEFAULT 0,
            via TEXT NOT NULL               -- call_uri | feed
        )
        """
    )
    db.execute("CREATE INDEX calls_tracking ON calls (tracking, started_at)")
    # The report's counts, kept as calls arrive (one upsert each): a row per number and day, with its calls
    # per hour of the day in 24 columns, so a 30-day report reads numbers x 30 rows, whatever the calls.
    hours = ",\n            ".join(f"h{h:02d} INTEGER NOT NULL DEFAULT 0" for h in range(24))
    db.execute(
        f"""
        CREATE TABLE call_days (
            tracking TEXT NOT NULL,         -- E.164 ('' when the call's number couldn't be read)
            local_day TEXT NOT NULL,        -- YYYY-MM-DD, the calls' own time zone
            calls INTEGER NOT NULL,
            answered INTEGER NOT NULL,
            {hours},
            PRIMARY KEY (tracking, local_day)
        ) WITHOUT ROWID
        """
    )


def _feed_state(db: sqlite_utils.Database) -> None:
    # The data feed's last good pull (the days asked for next start from it) and the weekly reports posted.
    db.execute(
        """
        CREATE TABLE feed_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            last_success_at REAL,
            last_attempt_at REAL,
            last_error TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE weekly_reports (
            number TEXT NOT NULL,
            week TEXT NOT NULL,             -- ISO week, e.g. 2026-W47
            channel TEXT NOT NULL,
            posted_at REAL NOT NULL,
            PRIMARY KEY (number, week)
        )
        """
    )


def _scheduled_jobs(db: Any) -> None:
    # The scheduler's jobs, so any replica can schedule one and only the leader runs it (bot/scheduler.py).
    db.execute(
        """
        CREATE TABLE scheduled_jobs (
            job_id TEXT PRIMARY KEY,        -- e.g. vn-expire-12: scheduling the same id again replaces it
            run_at REAL NOT NULL,
            func TEXT NOT NULL,             -- module:qualname of a module-level async function
            args TEXT NOT NULL,             -- JSON; {"$": "services"} stands for the app's Services
            token TEXT NOT NULL,            -- new each time it is (re)scheduled: a run claims this one
            started_at REAL,                -- claimed by the leader; reset when a new leader takes over
            created_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX scheduled_jobs_due ON scheduled_jobs (run_at)")


def _leader(db: Any) -> None:
    # Who runs the scheduler (for `switchboard check` and /healthz; the lock itself is the truth on PostgreSQL).
    db.execute(
        """
        CREATE TABLE leader (
            role TEXT PRIMARY KEY,          -- scheduler
            holder TEXT NOT NULL,           -- host:pid of the replica
            since REAL NOT NULL,
            seen_at REAL NOT NULL           -- refreshed while it leads
        )
        """
    )


def _escalations(db: sqlite_utils.Database) -> None:
    # An unclaimed missed call or voicemail is escalated once: when it is due, and whether it was (set atomically).
    db.execute("ALTER TABLE alerts ADD COLUMN escalate_at REAL")
    db.execute("ALTER TABLE alerts ADD COLUMN escalated_at REAL")
    db.execute("CREATE INDEX alerts_escalation ON alerts (escalate_at) WHERE escalate_at IS NOT NULL")
    # The App Home's "calls today" and "missed calls waiting" read alerts by number and time.
    db.execute("CREATE INDEX alerts_tracking ON alerts (tracking, created_at)")


def _released_numbers(db: sqlite_utils.Database) -> None:
    # Seed 000: a released number spends 3 to 6 months in AVANSER's quarantine; Switchboard remembers it.
    db.execute(
        """
        CREATE TABLE released_numbers (
            id INTEGER PRIMARY KEY,
            number TEXT NOT NULL,           -- E.164
            name TEXT,
            released_at REAL NOT NULL,      -- when AVANSER confirmed the release
            released_by TEXT NOT NULL,      -- Slack user id of who asked for it
            request_row INTEGER UNIQUE REFERENCES number_requests(id)
        )
        """
    )
    db.execute("CREATE INDEX released_numbers_number ON released_numbers (number, released_at)")
    db.execute(
        "INSERT INTO released_numbers (number, name, released_at, released_by, request_row)"
        " SELECT number, name, updated_at, requester, id FROM number_requests"
        " WHERE kind = 'delete' AND status = 'completed' AND number IS NOT NULL"
    )


def _home(db: sqlite_utils.Database) -> None:
    # Who has opened the App Home (their dashboard is published again when something on it changes), and a
    # request's cost (the Home's "Waiting for approval"). Its "calls today" reads `calls` (migration 20).
    db.execute("CREATE TABLE home_viewers (user_id TEXT PRIMARY KEY, opened_at REAL NOT NULL)")
    db.execute("ALTER TABLE number_requests ADD COLUMN cost TEXT")
    # Whose number is it (escalations, the Home's refreshes) is asked for every missed call.
    db.execute("CREATE INDEX number_requests_number ON number_requests (number, kind, status)")


def _channel_pace(db: Any) -> None:
    # Several replicas: when a Slack channel may next be posted to, so its next owner keeps the pace.
    db.execute("CREATE TABLE channel_pace (channel TEXT PRIMARY KEY, ready_at REAL NOT NULL)")


def _slack_signatures(db: Any) -> None:
    # Several replicas: signed Slack requests already handled, so a replay to another replica is refused too.
    db.execute("CREATE TABLE slack_signatures (signature TEXT PRIMARY KEY, expires_at REAL NOT NULL)")


# The tables migration 50 gave a team_id (fixed: a migration must do the same on every database, whenever it runs).
_TEAM_TABLES_50 = (
    "routes",
    "group_routes",
    "user_phones",
    "number_requests",
    "allocations",
    "alerts",
    "audit",
    "outbox",
    "call_slots",
    "released_numbers",
    "calls",
    "home_viewers",
    "scheduled_jobs",  # a job runs as the workspace that scheduled it
)
# Every table whose rows are a workspace's (`switchboard workspace --adopt` moves them, the retention purge
# deletes them, in this order: a row before the rows it refers to): migration 50's, call_days (53), digests (52).
TEAM_TABLES = (
    "released_numbers",
    "alerts",
    "calls",
    "call_days",
    "call_slots",
    "routes",
    "group_routes",
    "user_phones",
    "home_viewers",
    "scheduled_jobs",
    "audit",
    "allocations",
    "number_requests",
    "digests",
    "outbox",
)


def _workspaces(db: Any) -> None:
    # Many workspaces (#18): each row says whose it is ("" = the one workspace of SLACK_BOT_TOKEN); the
    # installations made through Slack's OAuth flow, its `state` values, and each workspace's own settings.
    for table in _TEAM_TABLES_50:
        db.execute(f"ALTER TABLE {table} ADD COLUMN team_id TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE INDEX routes_team ON routes (team_id)")
    db.execute("CREATE INDEX alerts_team ON alerts (team_id, created_at)")
    db.execute("CREATE INDEX outbox_team ON outbox (team_id, status)")
    db.execute(
        """
        CREATE TABLE installations (
            team_id TEXT PRIMARY KEY,
            team_name TEXT NOT NULL,
            bot_token TEXT NOT NULL,         -- '' once uninstalled
            bot_user_id TEXT NOT NULL,
            bot_scopes TEXT NOT NULL,
            installer TEXT NOT NULL,         -- Slack user id of whoever installed it: an admin there
            enterprise_id TEXT,
            installed_at REAL NOT NULL,
            uninstalled_at REAL,
            raw TEXT NOT NULL DEFAULT '{}'   -- Bolt's Installation, as JSON
        )
        """
    )
    db.execute("CREATE TABLE oauth_states (state TEXT PRIMARY KEY, expires_at REAL NOT NULL)")
    db.execute(
        """
        CREATE TABLE workspace_settings (
            team_id TEXT PRIMARY KEY,
            admins TEXT,                     -- JSON list of Slack user ids; NULL: SWITCHBOARD_ADMINS
            approvals_channel TEXT,          -- NULL: SWITCHBOARD_APPROVALS_CHANNEL
            alerts_channel TEXT,             -- NULL: SWITCHBOARD_ALERTS_CHANNEL
            caller_id TEXT,                  -- NULL: SWITCHBOARD_CALLER_ID
            avanser_account INTEGER,         -- the AVANSER account this workspace works in (agency users)
            updated_by TEXT,
            updated_at REAL NOT NULL
        )
        """
    )


def _calls_by_team(db: Any) -> None:
    # A workspace's /numbers report starts from the numbers its calls came to.
    db.execute("CREATE INDEX calls_team ON calls (team_id, tracking)")


def _operator_controls(db: Any) -> None:
    # Many workspaces: a workspace that installed Switchboard does nothing until the operator enables it (it
    # spends the operator's telco money); a storm digest is one workspace's.
    db.execute("ALTER TABLE installations ADD COLUMN enabled_at REAL")
    db.execute("ALTER TABLE digests ADD COLUMN team_id TEXT NOT NULL DEFAULT ''")
    db.execute("CREATE UNIQUE INDEX workspace_avanser_account ON workspace_settings (avanser_account)")
    # the AVANSER accounts the operator lets the workspace work in (JSON list); avanser_account is the one in use
    db.execute("ALTER TABLE workspace_settings ADD COLUMN avanser_accounts TEXT")


def _call_days_by_team(db: Any) -> None:
    # A number's counts are its workspace's: a number released by one workspace and later given to another
    # starts afresh there. The table is made again with the workspace in its key (the rows so far are "").
    hours = ", ".join(f"h{h:02d}" for h in range(24))
    columns = ",\n            ".join(f"h{h:02d} INTEGER NOT NULL DEFAULT 0" for h in range(24))
    db.execute(
        f"""
        CREATE TABLE call_days_by_team (
            team_id TEXT NOT NULL DEFAULT '',
            tracking TEXT NOT NULL,
            local_day TEXT NOT NULL,
            calls INTEGER NOT NULL,
            answered INTEGER NOT NULL,
            {columns},
            PRIMARY KEY (team_id, tracking, local_day)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        f"INSERT INTO call_days_by_team (team_id, tracking, local_day, calls, answered, {hours})"
        f" SELECT '', tracking, local_day, calls, answered, {hours} FROM call_days"
    )
    db.execute("DROP TABLE call_days")
    db.execute("ALTER TABLE call_days_by_team RENAME TO call_days")


MIGRATIONS: list[Migration] = [
    Migration(1, "spine: inbox, outbox, routes, audit", _spine_tables),
    Migration(2, "alerts: group routes, threads, alerts, digests", _alert_tables),
    Migration(3, "outbox: sending_at, to verify a post before sending it again", _outbox_sending),
    Migration(4, "click-to-call: user phones", _user_phones),
    Migration(5, "/numbers: number requests and their progress", _number_requests),
    Migration(6, "/vn: allocations and their leases", _allocations),
    Migration(7, "Slack event ids, to handle each event once", _slack_events),
    Migration(8, "index alerts by caller", _alert_indexes),
    Migration(9, "allocations: the request of an unconfirmed allocation", _allocation_requests),
    Migration(11, "health: the row /healthz writes", _health),
    Migration(12, "click-to-call: call slots for the per-person and per-workspace limits", _call_slots),
    Migration(13, "keys of interactions handled once", _once_keys),
    Migration(14, "inbox: attempts and the next one, for retries with backoff", _inbox_retries),
    Migration(15, "number requests: configured, then live by test call or after propagation", _request_live),
    Migration(16, "storm digests: their lines in a table, rendered when the message is sent", _digest_lines),
    Migration(20, "calls: every call, and the daily counts /numbers report reads", _calls),
    Migration(21, "the data feed's last pull; weekly reports posted", _feed_state),
    Migration(30, "alerts: escalation of unclaimed calls, once", _escalations),
    Migration(31, "released numbers and their quarantine", _released_numbers),
    Migration(32, "the App Home: its viewers, a request's cost", _home),
    Migration(40, "scheduler: jobs in the database, run by the leader", _scheduled_jobs),
    Migration(41, "scheduler: who leads", _leader),
    Migration(42, "outbox: each channel's pace, kept across replicas", _channel_pace),
    Migration(43, "signed Slack requests seen by any replica", _slack_signatures),
    Migration(50, "many workspaces: whose each row is, installations, OAuth states, workspace settings", _workspaces),
    Migration(51, "calls: a workspace's numbers", _calls_by_team),
    Migration(52, "many workspaces: enabled by the operator, one AVANSER account each, digests", _operator_controls),
    Migration(53, "call_days: each workspace's counts", _call_days_by_team),
]


class Locks:
    """Named locks a process holds until it releases them or dies (its database session ends).

    The scheduler's leadership and each Slack channel's sender are one of these. With SQLite there is one
    process, so it holds them all (`LocalLocks`); on PostgreSQL they are session advisory locks on a
    connection of their own (`bot.pgstore.PgLocks`): a replica killed with SIGKILL loses them at once.
    """

    shared = False  # True when other processes may hold them: the caller must ask

    def try_acquire(self, name: str) -> bool:
        """Take `name` if nobody holds it (never waits); True when this process holds it now."""
        return True

    def release(self, name: str) -> None:
        """Give `name` back."""

    def held(self, name: str) -> bool:
        """Whether this process still holds `name` (False once its session was lost)."""
        return True

    def alive(self) -> bool:
        """Check the session that holds the locks; False (and every lock forgotten) if it was lost."""
        return True

    def holder(self, name: str) -> str | None:
        """Who holds `name` now, as far as the database knows (None: nobody, or unknown)."""
        return None

    def close(self) -> None:
        """Release everything."""


class LocalLocks(Locks):
    """One process on one SQLite file: it holds every lock."""


class Cursor:
    """What `Store.execute` returns: rows, `rowcount`, `lastrowid` (the DB-API subset the domain uses)."""

    def __init__(
        self, rows: list[tuple[Any, ...]], rowcount: int, lastrowid: int | None, columns: list[str] | None = None
    ) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount
        self.lastrowid = lastrowid
        self.description = [(name, None, None, None, None, None, None) for name in columns] if columns else None

    def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[Any]:
        rows, self._next = self._rows[self._next :], len(self._rows)
        return rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class Store:
    """The database of a Switchboard process: `Store(path)` is SQLite, `Store("postgresql://…")` PostgreSQL."""

    kind = "?"
    shared = False  # True when other processes (replicas) use the same database
    locks: Locks
    target: str

    def __new__(cls, target: Path | str, *args: Any, **kwargs: Any) -> Store:
        if cls is Store:
            # bot.pgstore builds on this module; it is imported only when a URL asks for it.
            cls = importlib.import_module("bot.pgstore").PostgresStore if is_postgres_url(target) else SqliteStore
        return super().__new__(cls)

    # -- what every store implements ---------------------------------------------------------------

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] | dict[str, Any] = ()) -> Any:
        """Run one statement (SQLite's dialect, `?` placeholders); a cursor with rows, rowcount, lastrowid."""
        raise NotImplementedError

    def transaction(self, *, wait: bool = True) -> Any:
        """`with store.transaction():` — one writer at a time, COMMIT or ROLLBACK; nested: a SAVEPOINT.

        `wait=False`: raise `StoreBusy` at once instead of waiting for another writer's transaction."""
        raise NotImplementedError

    @property
    def in_transaction(self) -> bool:
        raise NotImplementedError

    def migrate(self, migrations: list[Migration]) -> list[int]:
        raise NotImplementedError

    def write_problem(self) -> str | None:
        """Commit a real write (for /healthz); None when it worked, else why it could not be done."""
        raise NotImplementedError

    def table_names(self) -> list[str]:
        raise NotImplementedError

    def server_version(self) -> str:
        raise NotImplementedError

    def skip_locked(self) -> str:
        """The clause that claims selected rows for this transaction, skipping rows another one claimed."""
        return ""

    async def open_async(self) -> None:
        """Start what `aexecute` needs on the running event loop (PostgreSQL: a few pooled connections)."""

    async def close_async(self) -> None:
        """Stop what `open_async` started."""

    async def aexecute(self, sql: str, params: tuple[Any, ...] | list[Any] | dict[str, Any] = ()) -> Any:
        """`execute` for the hottest path, a webhook's insert: on PostgreSQL the event loop doesn't wait for the
        commit (several can be in flight and share one WAL flush); on SQLite it is `execute`, microseconds."""
        return self.execute(sql, params)

    def close(self) -> None:
        raise NotImplementedError

    # -- the same on every store ---------------------------------------------------------------------

    def describe(self) -> str:
        return f"{self.kind} {self.server_version()} at {redact_url(self.target)}"

    def applied_migrations(self) -> list[int]:
        return sorted(int(r[0]) for r in self.execute("SELECT version FROM _migrations").fetchall())

    def schema_version(self) -> int:
        row = self.execute("SELECT MAX(version) FROM _migrations").fetchone()
        return int(row[0] or 0)

    def writable(self) -> bool:
        """True when a real write was just committed (for /healthz)."""
        return self.write_problem() is None

    def first_time(self, key: str, *, within: float | None = None) -> bool:
        """True the first time `key` is seen (or the first time in `within` seconds); records it."""
        now = time.time()
        if within is not None:
            self.execute("DELETE FROM once_keys WHERE key = ? AND at < ?", (key, now - within))
        cursor = self.execute("INSERT OR IGNORE INTO once_keys (key, at) VALUES (?, ?)", (key, now))
        return bool(cursor.rowcount)

    def audit(
        self,
        actor: str,
        action: str,
        subject: str | None = None,
        detail: str = "{}",
        provider_ref: str | None = None,
        *,
        team: str = "",
    ) -> int:
        """Append one line to the audit table, as workspace `team`'s (the domain passes `current_team()`: the store
        sits below `bot.workspaces`, which imports it, so it can't read the workspace itself)."""
        cursor = self.execute(
            "INSERT INTO audit (at, actor, action, subject, detail, provider_ref, team_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (time.time(), actor, action, subject, detail, provider_ref, team),
        )
        return int(cursor.lastrowid or 0)


class SqliteStore(Store):
    """The one SQLite file of a Switchboard process."""

    kind = "SQLite"

    def __init__(
        self, path: Path | str, migrations: list[Migration] | None = None, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS
    ) -> None:
        self.path = Path(path)
        self.target = str(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # Every caller runs on the event loop's thread; check_same_thread=False lets a test
        # or the demo build the store on one thread and serve it on another.
        conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.busy_timeout_ms = busy_timeout_ms
        self._fail_fast_until = 0.0  # monotonic time until which statements don't wait for a lock
        conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        self.locks = LocalLocks()
        self.migrate(MIGRATIONS if migrations is None else migrations)

    def migrate(self, migrations: list[Migration]) -> list[int]:
        """Apply the migrations not yet recorded, each in its own transaction; return their versions."""
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS _migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at REAL)"
        )
        done = {row[0] for row in self.conn.execute("SELECT version FROM _migrations")}
        applied = []
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version in done:
                continue
            with self.transaction():
                migration.apply(self.db)
                self.conn.execute(
                    "INSERT INTO _migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )
            applied.append(migration.version)
        return applied

    def transaction(self, *, wait: bool = True) -> _Transaction:
        """`with store.transaction():` — BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error."""
        return _Transaction(self)

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        """Run one statement; `StoreBusy` when another connection holds the lock past the busy timeout."""
        if self._fail_fast_until and time.monotonic() >= self._fail_fast_until:
            self._fail_fast_until = 0.0
            self.conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        try:
            return self.conn.execute(sql, params)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or isinstance(exc, StoreBusy):
                raise
            if not self._fail_fast_until:
                self._fail_fast_until = time.monotonic() + BUSY_BACKOFF_S
                self.conn.execute("PRAGMA busy_timeout = 0")
            raise StoreBusy(str(exc)) from exc

    def write_problem(self) -> str | None:
        """Commit a real write (for /healthz); None when it worked, else why it could not be done.

        The probe inserts a row holding one page of zeros before deleting the previous one, so it
        needs a page the database doesn't hold yet unless the last probe's page is still free: on a
        full disk (or a database at its `max_page_count`) it fails as every other insert would.
        """
        try:
            page_size = int(self.conn.execute("PRAGMA page_size").fetchone()[0])
            with self.transaction():
                cursor = self.execute(
                    "INSERT INTO health (checked_at, room) VALUES (?, zeroblob(?))", (time.time(), 4 * page_size)
                )
                self.execute("DELETE FROM health WHERE id < ?", (cursor.lastrowid,))
        except StoreBusy:
            return "busy: another connection holds the write lock"
        except sqlite3.Error as exc:
            return str(exc)
        return None

    def table_names(self) -> list[str]:
        return list(self.db.table_names())

    def server_version(self) -> str:
        return sqlite3.sqlite_version

    def close(self) -> None:
        self.conn.close()


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT; inside another transaction, a SAVEPOINT that rolls back only its own work."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.conn = store.conn
        self.savepoint: str | None = None

    def __enter__(self) -> sqlite3.Connection:
        if self.conn.in_transaction:
            self.savepoint = f"sp{id(self)}"
            self.store.execute(f"SAVEPOINT {self.savepoint}")
        else:
            self.store.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self.savepoint is not None:
            if exc_type and self.conn.in_transaction:
                self.conn.execute(f"ROLLBACK TO {self.savepoint}")
            if self.conn.in_transaction:
                self.conn.execute(f"RELEASE {self.savepoint}")
            return
        if not exc_type:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error:
                # Never leave the connection inside a transaction: later autocommit writes (a webhook's
                # row, answered 200) would silently join it and could be lost with it.
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        elif self.conn.in_transaction:
            # SQLite has already rolled back by itself after some errors (a full disk, an I/O error):
            # a second ROLLBACK would raise and hide the error that matters.
            self.conn.execute("ROLLBACK")
