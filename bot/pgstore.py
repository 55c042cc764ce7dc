"""The PostgreSQL store: the same `Store` interface, for several replicas sharing one database.

Chosen over SQLAlchemy Core: the domain already writes plain SQL through `store.execute`, synchronously,
on the event loop, and so do the features being written beside this one; a thin translator keeps every
statement they write working here unchanged, where Core would mean rewriting them all. psycopg 3 is the
driver, one synchronous connection per replica used briefly on the event loop (a statement here costs a
local round trip, ~0.1 ms), with short server-side timeouts so nothing holds the loop long:
`lock_timeout` 200 ms (→ `StoreBusy`), `statement_timeout` 5 s, and a transaction left idle is ended
after 10 s so a stuck replica can't hold the write lock. A lost connection is never re-made on the
event loop: statements fail at once with `StoreUnavailable` (webhooks answer 503) while a thread
reconnects in the background; PostgreSQL restarting is recovered from by itself.

The portable subset (what `execute` translates, so a statement written for SQLite runs here):

- `?` placeholders (and `:name` with a dict); a literal `%` is escaped for the driver;
- `INSERT OR IGNORE INTO …` → `INSERT INTO … ON CONFLICT DO NOTHING`; `ON CONFLICT(col) DO UPDATE SET
  x = excluded.x` is the same in both; `INSERT OR REPLACE` is refused (write the ON CONFLICT form);
- `cursor.lastrowid` after an INSERT into a table with an integer `id` column (`RETURNING id` is added);
  `cursor.rowcount` as usual; `IFNULL` → `COALESCE`; `LIKE` → `ILIKE` (SQLite's LIKE ignores case);
- Python ints are sent untyped, so `text_column = 5` compares as SQLite would; bools are sent as 0/1;
  NUMERIC results (`SUM` of integers) come back as int (or float), as from SQLite;
- in migrations: `INTEGER PRIMARY KEY` → an identity column, `INTEGER` → `BIGINT`, `REAL` → `DOUBLE
  PRECISION` (PostgreSQL's REAL is 4 bytes: an epoch would lose minutes), `BLOB` → `BYTEA`, `AUTOINCREMENT`
  dropped, and a `REFERENCES` to a table created later in the same migration is added at its end.

Not translated (write them portably): `PRAGMA`, `zeroblob()`, scalar `MAX(a, b)`/`MIN(a, b)` (use CASE),
`GROUP_CONCAT`, `strftime`/`julianday` (store epochs as REAL and compute in Python), `INSERT OR REPLACE`,
inserting explicit values into an `id` column, and comparing a text column with a float.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import Dumper
from psycopg.types.numeric import NumericLoader

from bot.store import (
    BUSY_BACKOFF_S,
    BUSY_TIMEOUT_MS,
    MIGRATIONS,
    Cursor,
    Locks,
    Migration,
    Store,
    StoreBusy,
    StoreUnavailable,
    redact_url,
    replica_name,
)

log = logging.getLogger(__name__)

STATEMENT_TIMEOUT_MS = 5000
ASYNC_POOL = 4  # connections for webhook inserts (aexecute), beside the one the event loop uses
ASYNC_WAIT_S = 0.5  # a webhook waits this long for one of them, then is answered 503
IDLE_IN_TRANSACTION_MS = 10_000
CONNECT_TIMEOUT_S = 2
STARTUP_WAIT_S = 30.0  # at start, how long to wait for PostgreSQL to accept connections
# Keepalives both ways: a replica whose machine died loses its locks (leadership, channels) in ~11 s.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}
SERVER_KEEPALIVES = "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3"


# -- translation -----------------------------------------------------------------------------------------

_TOKENS = re.compile(
    r"""(?P<str>'(?:[^']|'')*')|(?P<ident>"(?:[^"]|"")*")|(?P<comment>--[^\n]*)"""
    r"""|(?P<q>\?)|(?P<pct>%)|(?P<named>(?<!:):[A-Za-z_]\w*)"""
    r"""|(?P<ignore>\bINSERT\s+OR\s+IGNORE\s+INTO\b)|(?P<replace>\bINSERT\s+OR\s+REPLACE\s+INTO\b)"""
    r"""|(?P<ifnull>\bIFNULL\s*\()|(?P<like>\bLIKE\b)|(?P<returning>\bRETURNING\b)""",
    re.IGNORECASE,
)
_INSERT_INTO = re.compile(r'^\s*INSERT\s+(?:OR\s+\w+\s+)?INTO\s+"?(\w+)"?', re.IGNORECASE)


class _Translated:
    __slots__ = ("returning_id", "sql")

    def __init__(self, sql: str, returning_id: bool) -> None:
        self.sql = sql
        self.returning_id = returning_id


def translate(sql: str, *, named: bool = False, id_tables: frozenset[str] = frozenset()) -> _Translated:
    """A statement in SQLite's dialect, as psycopg and PostgreSQL take it (see the module docstring)."""
    out: list[str] = []
    pos = 0
    ignore = has_returning = False
    for match in _TOKENS.finditer(sql):
        out.append(sql[pos : match.start()])
        pos = match.end()
        kind = match.lastgroup
        text = match.group()
        if kind in ("str", "ident", "comment"):
            out.append(text.replace("%", "%%") if kind != "comment" else "")
        elif kind == "q":
            out.append("%s")
        elif kind == "pct":
            out.append("%%")
        elif kind == "named":
            out.append(f"%({text[1:]})s" if named else text)
        elif kind == "ignore":
            out.append("INSERT INTO")
            ignore = True
        elif kind == "replace":
            raise sqlite3.OperationalError(
                "INSERT OR REPLACE is SQLite's: write INSERT … ON CONFLICT(key) DO UPDATE SET …, which both take"
            )
        elif kind == "ifnull":
            out.append("COALESCE(")
        elif kind == "like":
            out.append("ILIKE")
        elif kind == "returning":
            has_returning = True
            out.append(text)
    out.append(sql[pos:])
    text = "".join(out).strip().rstrip(";").rstrip()
    if ignore:
        if has_returning:
            head, _, tail = re.split(r"(\bRETURNING\b)", text, maxsplit=1, flags=re.IGNORECASE)
            text = f"{head.rstrip()} ON CONFLICT DO NOTHING RETURNING{tail}"
        else:
            text += " ON CONFLICT DO NOTHING"
    returning_id = False
    insert = _INSERT_INTO.match(text)
    if insert and not has_returning and insert.group(1).lower() in id_tables:
        text += " RETURNING id"
        returning_id = True
    return _Translated(text, returning_id)


_DDL_TYPES = [
    (
        re.compile(r"\bINTEGER\s+PRIMARY\s+KEY(\s+AUTOINCREMENT)?\b", re.I),
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    (re.compile(r"\bAUTOINCREMENT\b", re.I), ""),
    (re.compile(r"\bINTEGER\b", re.I), "BIGINT"),
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b", re.I), "BYTEA"),
    (re.compile(r"\)\s*(WITHOUT\s+ROWID|STRICT)\s*$", re.I), ")"),
]
_REFERENCES = re.compile(r'\s+REFERENCES\s+"?(\w+)"?\s*\(\s*"?(\w+)"?\s*\)', re.I)
_CREATE_TABLE = re.compile(r'^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"?(\w+)"?', re.I)


def translate_ddl(sql: str, exists: Callable[[str], bool]) -> tuple[str, list[tuple[str, str, str, str]]]:
    """A migration's DDL for PostgreSQL; and the foreign keys to add after the migration (forward references:
    SQLite takes a REFERENCES to a table created later, PostgreSQL does not)."""
    parts: list[str] = []
    pos = 0
    for match in _TOKENS.finditer(sql):
        kind = match.lastgroup
        if kind not in ("str", "ident", "comment"):
            continue
        chunk = sql[pos : match.start()]
        for pattern, replacement in _DDL_TYPES[:-1]:
            chunk = pattern.sub(replacement, chunk)
        parts.append(chunk)
        parts.append("" if kind == "comment" else match.group())
        pos = match.end()
    chunk = sql[pos:]
    for pattern, replacement in _DDL_TYPES[:-1]:
        chunk = pattern.sub(replacement, chunk)
    parts.append(chunk)
    text = _DDL_TYPES[-1][0].sub(_DDL_TYPES[-1][1], "".join(parts).strip().rstrip(";"))
    deferred: list[tuple[str, str, str, str]] = []
    created = _CREATE_TABLE.match(text)
    if created:
        table = created.group(1)

        def defer(match: re.Match[str]) -> str:
            target, column = match.group(1), match.group(2)
            if target.lower() == table.lower() or exists(target):
                return match.group()
            before = text[: match.start()]
            own = re.split(r"[,(]", before)[-1].strip().split()[0].strip('"')
            deferred.append((table, own, target, column))
            return ""

        text = _REFERENCES.sub(defer, text)
    return text, deferred


# -- the driver's types ------------------------------------------------------------------------------------


class _IntUnknown(Dumper):
    """Python ints go untyped: PostgreSQL casts them to what they are compared with, as SQLite would."""

    oid = 0  # unknown

    def dump(self, obj: Any) -> bytes:
        return str(int(obj)).encode()


class _Number(NumericLoader):
    """NUMERIC (SUM of integers, AVG) as int when whole, else float: what SQLite returns."""

    def load(self, data: Any) -> Any:
        value = super().load(data)
        try:
            return int(value) if value == value.to_integral_value() else float(value)
        except (ArithmeticError, ValueError):
            return float(value)


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.adapters.register_dumper(int, _IntUnknown)
    conn.adapters.register_loader("numeric", _Number)


def _params(params: Any) -> Any:
    if isinstance(params, dict):
        return {k: int(v) if isinstance(v, bool) else v for k, v in params.items()}
    return tuple(int(v) if isinstance(v, bool) else v for v in params)


_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")
_BUSY_STATES = ("55P03", "40001", "40P01", "57014")


def _mapped(exc: psycopg.Error, connection_lost: bool) -> sqlite3.Error:
    """A driver error as the store's callers know them (sqlite3's DB-API classes; StoreBusy; StoreUnavailable)."""
    state = exc.sqlstate or ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if connection_lost or state.startswith(_UNAVAILABLE_STATES) or isinstance(exc, psycopg.InterfaceError):
        return StoreUnavailable(f"PostgreSQL unreachable: {text}")
    if state.startswith(_BUSY_STATES):
        return StoreBusy(f"busy: {text}")
    if state.startswith("23"):
        return sqlite3.IntegrityError(text)
    if state.startswith("22"):
        return sqlite3.DataError(text)
    if state.startswith(("42", "53", "25", "54", "55", "58", "XX", "0A")):
        return sqlite3.OperationalError(text)
    return sqlite3.DatabaseError(text)


def _lock_key(namespace: str, name: str) -> int:
    """A 64-bit advisory lock key for `name`, distinct per database and schema."""
    digest = hashlib.blake2b(f"switchboard:{namespace}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# -- connections -------------------------------------------------------------------------------------------


class _Link:
    """One connection, made again in a background thread when it is lost (never on the event loop)."""

    def __init__(self, url: str, role: str, setup: Callable[[psycopg.Connection[Any]], None]) -> None:
        self.url = url
        self.role = role
        self.setup = setup
        self.conn: psycopg.Connection[Any] | None = None
        self.generation = 0  # counts connections made: locks held on an older one are gone
        self._reconnecting: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()
        self.last_error = ""

    def connect_now(self, wait: float = 0.0) -> psycopg.Connection[Any]:
        """Connect in this thread (at start), retrying for up to `wait` seconds while PostgreSQL starts."""
        deadline = time.monotonic() + wait
        while True:
            try:
                conn = self._connect()
                break
            except psycopg.Error as exc:
                self.last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                if time.monotonic() >= deadline:
                    raise StoreUnavailable(f"PostgreSQL unreachable: {self.last_error}") from None
                time.sleep(0.25)
        self.conn = conn
        self.generation += 1
        return conn

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=f"switchboard {replica_name()} {self.role}"[:63],
            **KEEPALIVES,  # type: ignore[arg-type]
        )
        _configure(conn)
        conn.execute(SERVER_KEEPALIVES)
        self.setup(conn)
        return conn

    def get(self) -> psycopg.Connection[Any]:
        conn = self.conn
        if conn is None or conn.closed:
            self.lost()
            raise StoreUnavailable(f"PostgreSQL unreachable: reconnecting ({self.last_error or 'connection lost'})")
        return conn

    def broken(self) -> bool:
        conn = self.conn
        return conn is None or conn.closed or conn.broken

    def lost(self) -> None:
        """The connection is gone: forget it and reconnect in the background."""
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        with self._lock:
            if self._closed or (self._reconnecting is not None and self._reconnecting.is_alive()):
                return
            self._reconnecting = threading.Thread(target=self._reconnect, name=f"pg-{self.role}", daemon=True)
            self._reconnecting.start()

    def _reconnect(self) -> None:
        delay = 0.1
        while not self._closed:
            try:
                conn = self._connect()
            except Exception as exc:
                self.last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                time.sleep(delay)
                delay = min(1.0, delay * 2)
                continue
            if self._closed:
                conn.close()
                return
            self.generation += 1
            self.conn = conn
            log.info("store: the %s connection to PostgreSQL is back", self.role)
            return

    def close(self) -> None:
        self._closed = True
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


class PgLocks(Locks):
    """Session advisory locks on a connection of their own: released by PostgreSQL the moment it ends."""

    shared = True

    def __init__(self, url: str, namespace: str) -> None:
        self.namespace = namespace
        self.link = _Link(url, "locks", self._setup)
        self._held: set[str] = set()
        self._generation = 0

    @staticmethod
    def _setup(conn: psycopg.Connection[Any]) -> None:
        conn.execute("SET statement_timeout = 2000")

    def key(self, name: str) -> int:
        return _lock_key(self.namespace, name)

    def _conn(self) -> psycopg.Connection[Any] | None:
        if self.link.generation != self._generation:  # a new session: whatever the old one held is gone
            self._held.clear()
            self._generation = self.link.generation
        if self.link.broken():
            if self._held:
                log.warning(
                    "store: lost the connection holding %s; they are free for other replicas", sorted(self._held)
                )
            self._held.clear()
            self.link.lost()
            return None
        return self.link.conn

    def _query(self, sql: str, params: tuple[Any, ...]) -> Any:
        conn = self._conn()
        if conn is None:
            return None
        try:
            return conn.execute(sql, params).fetchone()
        except psycopg.Error:
            self._held.clear()
            self.link.lost()
            return None

    def try_acquire(self, name: str) -> bool:
        if name in self._held and self._conn() is not None and name in self._held:
            return True
        row = self._query("SELECT pg_try_advisory_lock(%s::bigint)", (self.key(name),))
        if row and row[0]:
            self._held.add(name)
            return True
        return False

    def release(self, name: str) -> None:
        if name in self._held:
            self._held.discard(name)
            self._query("SELECT pg_advisory_unlock(%s::bigint)", (self.key(name),))

    def held(self, name: str) -> bool:
        return name in self._held and not self.link.broken() and self.link.generation == self._generation

    def alive(self) -> bool:
        return self._query("SELECT 1", ()) is not None

    def holder(self, name: str) -> str | None:
        key = self.key(name)
        row = self._query(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            " AND l.classid::bigint = %s::bigint AND l.objid::bigint = %s::bigint",
            ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
        )
        return str(row[0]).removeprefix("switchboard ").removesuffix(" locks") if row else None

    def close(self) -> None:
        self._held.clear()
        self.link.close()


# -- the store ---------------------------------------------------------------------------------------------


class PostgresStore(Store):
    """A PostgreSQL database shared by every replica (see the module docstring)."""

    kind = "PostgreSQL"
    shared = True

    def __init__(
        self,
        url: str | Path,
        migrations: list[Migration] | None = None,
        *,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
        wait: float = STARTUP_WAIT_S,
    ) -> None:
        self.target = str(url)
        self.busy_timeout_ms = busy_timeout_ms
        self.statement_timeout_ms = statement_timeout_ms
        self._fail_fast_until = 0.0
        self._id_tables: frozenset[str] = frozenset()
        self._cache: dict[tuple[str, bool, frozenset[str]], _Translated] = {}
        self._savepoints = 0  # names savepoints; unique across threads is enough
        self._pool: Any = None
        # One connection per thread: the event loop's, and the inbox worker's (which runs its batches in a thread
        # of its own here, so the loop never waits on their round trips).
        self._local = threading.local()
        self._links: list[_Link] = []
        self._main = threading.get_ident()
        conn = self.link.connect_now(wait)
        database, schema = conn.execute("SELECT current_database(), current_schema()").fetchone() or ("", "")
        self.namespace = f"{database}.{schema}"
        self.schema = str(schema)
        self._write_key = _lock_key(self.namespace, "write")
        self.locks = PgLocks(self.target, self.namespace)
        try:
            self.locks.link.connect_now(wait)
            self.migrate(MIGRATIONS if migrations is None else migrations)
        except BaseException:
            self.close()
            raise

    @property
    def link(self) -> _Link:
        link = getattr(self._local, "link", None)
        if link is None:
            main = threading.get_ident() == self._main
            role = "store" if main else f"store-{threading.current_thread().name}"
            link = self._local.link = _Link(self.target, role, self._setup)
            self._links.append(link)
            if not main:
                try:
                    link.connect_now()
                except StoreUnavailable:
                    link.lost()  # reconnects in the background; statements answer StoreUnavailable meanwhile
        return link

    def _setup(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(f"SET statement_timeout = {int(self.statement_timeout_ms)}")
        conn.execute(f"SET lock_timeout = {int(self.busy_timeout_ms)}")
        conn.execute(f"SET idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_MS}")

    # -- statements ----------------------------------------------------------------------------------

    def _translated(self, sql: str, named: bool) -> _Translated:
        key = (sql, named, self._id_tables)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            found = self._cache[key] = translate(sql, named=named, id_tables=self._id_tables)
        return found

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] | dict[str, Any] = ()) -> Cursor:
        """Run one statement written for SQLite (translated, see the module docstring)."""
        head = sql.lstrip()[:16].upper()
        if head.startswith("PRAGMA"):
            raise sqlite3.OperationalError("PRAGMA is SQLite's; PostgreSQL has no such statement")
        if head.startswith("BEGIN"):
            self._begin(wait=True)
            return Cursor([], -1, None)
        statement = self._translated(sql, isinstance(params, dict))
        return self._run(statement.sql, _params(params), statement.returning_id)

    def _run(self, sql: str, params: Any, returning_id: bool = False) -> Cursor:
        conn = self.link.get()
        try:
            cursor = conn.execute(sql, params)
            rows = cursor.fetchall() if cursor.description is not None else []
        except psycopg.Error as exc:
            lost = self.link.broken()
            if lost:
                self.link.lost()
            raise _mapped(exc, lost) from None
        if returning_id:
            return Cursor([], cursor.rowcount, int(rows[0][0]) if rows else None)
        columns = [c.name for c in cursor.description] if cursor.description is not None else None
        return Cursor(rows, cursor.rowcount, None, columns)

    @property
    def in_transaction(self) -> bool:
        conn = self.link.conn
        if conn is None or conn.closed:
            return False
        return conn.info.transaction_status in (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)

    def transaction(self, *, wait: bool = True) -> _PgTransaction:
        """One writer at a time across replicas (an advisory lock held to COMMIT); nested: a SAVEPOINT."""
        return _PgTransaction(self, wait)

    def _begin(self, wait: bool) -> None:
        self._run("BEGIN", None)
        if self._fail_fast_until and time.monotonic() >= self._fail_fast_until:
            self._fail_fast_until = 0.0
        try:
            if wait and not self._fail_fast_until:
                try:
                    self._run("SELECT pg_advisory_xact_lock(%s::bigint)", (self._write_key,))
                except StoreUnavailable:
                    raise
                except StoreBusy:
                    self._fail_fast_until = time.monotonic() + BUSY_BACKOFF_S
                    raise StoreBusy("busy: another replica's transaction holds the write lock") from None
            else:
                got = self._run("SELECT pg_try_advisory_xact_lock(%s::bigint)", (self._write_key,)).fetchone()
                if not got or not got[0]:
                    raise StoreBusy("busy: another replica's transaction holds the write lock")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        conn = self.link.conn
        if conn is None or conn.closed:
            return
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            if self.link.broken():
                self.link.lost()

    def skip_locked(self) -> str:
        return " FOR UPDATE SKIP LOCKED"

    # -- the async path (webhook inserts) ---------------------------------------------------------------

    async def open_async(self) -> None:
        from psycopg_pool import AsyncConnectionPool

        async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
            _configure(conn)  # type: ignore[arg-type]
            await conn.execute(SERVER_KEEPALIVES)
            await conn.execute(f"SET statement_timeout = {int(self.statement_timeout_ms)}")
            await conn.execute(f"SET lock_timeout = {int(self.busy_timeout_ms)}")

        self._pool = AsyncConnectionPool(
            self.target,
            min_size=1,
            max_size=ASYNC_POOL,
            open=False,
            timeout=ASYNC_WAIT_S,
            reconnect_timeout=365 * 86400.0,  # never give up: PostgreSQL comes back, and so do its connections
            configure=configure,
            kwargs={
                "autocommit": True,
                "connect_timeout": CONNECT_TIMEOUT_S,
                "application_name": f"switchboard {replica_name()} hooks"[:63],
                **KEEPALIVES,
            },
        )
        await self._pool.open(wait=False)

    async def close_async(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close(timeout=2)

    async def aexecute(self, sql: str, params: tuple[Any, ...] | list[Any] | dict[str, Any] = ()) -> Cursor:
        pool = self._pool
        if pool is None:
            return self.execute(sql, params)
        from psycopg_pool import PoolTimeout

        statement = self._translated(sql, isinstance(params, dict))
        try:
            async with pool.connection() as conn:
                cursor = await conn.execute(statement.sql, _params(params))
                rows = await cursor.fetchall() if cursor.description is not None else []
        except PoolTimeout:
            raise StoreUnavailable("PostgreSQL unreachable: no connection free or made in time") from None
        except psycopg.Error as exc:
            lost = isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None
            raise _mapped(exc, lost) from None
        if statement.returning_id:
            return Cursor([], cursor.rowcount, int(rows[0][0]) if rows else None)
        return Cursor(rows, cursor.rowcount, None)

    # -- migrations -----------------------------------------------------------------------------------

    def migrate(self, migrations: list[Migration]) -> list[int]:
        """Apply what is not yet recorded, each in its own transaction, under an advisory lock: replicas that
        start together wait for the first to finish, then find nothing left to do."""
        conn = self.link.get()
        key = _lock_key(self.namespace, "migrate")
        conn.execute("SET lock_timeout = 0")
        conn.execute("SET statement_timeout = 0")
        conn.execute("SELECT pg_advisory_lock(%s::bigint)", (key,))
        applied = []
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS _migrations"
                " (version BIGINT PRIMARY KEY, name TEXT, applied_at DOUBLE PRECISION)"
            )
            done = {int(r[0]) for r in conn.execute("SELECT version FROM _migrations").fetchall()}
            self._refresh_id_tables()
            for migration in sorted(migrations, key=lambda m: m.version):
                if migration.version in done:
                    continue
                with conn.transaction():
                    db = _MigrationDb(self)
                    migration.apply(db)
                    db.finish()
                    conn.execute(
                        "INSERT INTO _migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, time.time()),
                    )
                self._refresh_id_tables()
                applied.append(migration.version)
                log.info("store: migration %d applied (%s)", migration.version, migration.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s::bigint)", (key,))
            self._setup(conn)
        return applied

    def _refresh_id_tables(self) -> None:
        conn = self.link.get()
        rows = conn.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND column_name = 'id' AND data_type IN ('bigint', 'integer', 'smallint')"
        ).fetchall()
        self._id_tables = frozenset(str(r[0]).lower() for r in rows)

    def _exists(self, table: str) -> bool:
        row = self.link.get().execute("SELECT to_regclass(%s)", (table,)).fetchone()
        return bool(row and row[0])

    # -- health, description ---------------------------------------------------------------------------

    def write_problem(self) -> str | None:
        """Commit a real write (for /healthz) — not behind the write lock: a replica busy with a storm is
        healthy. None when it worked, else why not (unreachable, read-only, disk full…)."""
        try:
            cursor = self.execute("INSERT INTO health (checked_at, room) VALUES (?, ?)", (time.time(), b"\0" * 64))
            self.execute("DELETE FROM health WHERE id < ?", (cursor.lastrowid,))
        except StoreUnavailable as exc:
            return str(exc)
        except StoreBusy:
            return "busy: a lock on the health table was held too long"
        except sqlite3.Error as exc:
            return str(exc)
        return None

    def table_names(self) -> list[str]:
        rows = self.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1"
        ).fetchall()
        return [str(r[0]) for r in rows]

    def server_version(self) -> str:
        row = self.execute("SHOW server_version").fetchone()
        return str(row[0]).split()[0] if row else "?"

    def describe(self) -> str:
        return f"{self.kind} {self.server_version()} at {redact_url(self.target)} (schema {self.schema})"

    def close(self) -> None:
        self.locks.close()
        for link in self._links:
            link.close()


class _PgTransaction:
    """BEGIN + the write lock … COMMIT; inside another transaction, a SAVEPOINT that rolls back only its own work."""

    def __init__(self, store: PostgresStore, wait: bool) -> None:
        self.store = store
        self.wait = wait
        self.savepoint: str | None = None

    def __enter__(self) -> PostgresStore:
        if self.store.in_transaction:
            self.store._savepoints += 1
            self.savepoint = f"sp{self.store._savepoints}"
            self.store._run(f"SAVEPOINT {self.savepoint}", None)
        else:
            self.store._begin(self.wait)
        return self.store

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        store = self.store
        if self.savepoint is not None:
            if not store.in_transaction:
                return  # the connection was lost: the outer transaction reports it
            if exc_type:
                store._run(f"ROLLBACK TO SAVEPOINT {self.savepoint}", None)
            store._run(f"RELEASE SAVEPOINT {self.savepoint}", None)
            return
        if exc_type:
            store._rollback()
            return
        conn = store.link.conn
        if conn is not None and conn.info.transaction_status == pq.TransactionStatus.INERROR:
            store._rollback()  # PostgreSQL would answer COMMIT with a silent ROLLBACK
            raise sqlite3.OperationalError("a statement failed inside the transaction: nothing was committed")
        try:
            store._run("COMMIT", None)
        except BaseException:
            store._rollback()
            raise


class _MigrationDb:
    """What a migration's `apply(db)` gets on PostgreSQL: `execute`, `conn.executemany`, `table_names`."""

    _DDL = re.compile(r"^\s*(CREATE|ALTER|DROP)\b", re.I)

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.conn = self
        self.deferred: list[tuple[str, str, str, str]] = []

    def execute(self, sql: str, params: Iterable[Any] | dict[str, Any] | None = None) -> Cursor:
        if self._DDL.match(sql) and not params:
            text, deferred = translate_ddl(sql, self.store._exists)
            self.deferred.extend(deferred)
            self.store._run(text, None)
            self.store._refresh_id_tables()
            return Cursor([], -1, None)
        return self.store.execute(sql, params if isinstance(params, dict) else tuple(params or ()))

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        statement = translate(sql)
        conn = self.store.link.get()
        with conn.cursor() as cursor:
            cursor.executemany(statement.sql, [_params(tuple(r)) for r in rows])

    def table_names(self) -> list[str]:
        return self.store.table_names()

    def finish(self) -> None:
        for table, column, target, target_column in self.deferred:
            self.store._run(
                f'ALTER TABLE "{table}" ADD FOREIGN KEY ("{column}") REFERENCES "{target}" ("{target_column}")', None
            )
