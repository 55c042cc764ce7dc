"""The store: versioned migrations that keep existing data, transactions (both back ends); SQLite's pragmas and
its busy timeout. PostgreSQL-only behaviour (several replicas) is in test_replicas.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlite_utils

from bot.store import BUSY_TIMEOUT_MS, MIGRATIONS, Migration, Store, StoreBusy


def test_pragmas(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    assert store.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert store.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS == 200
    assert store.execute("PRAGMA foreign_keys").fetchone()[0] == 1


@pytest.mark.both_backends
def test_spine_tables_exist(backend: str) -> None:
    store = Store(backend)
    assert {"inbox", "outbox", "routes", "audit", "_migrations"} <= set(store.table_names())
    assert store.schema_version() == max(m.version for m in MIGRATIONS)
    store.close()


@pytest.mark.both_backends
def test_reopening_applies_nothing_twice(backend: str) -> None:
    Store(backend).close()
    store = Store(backend)
    assert store.migrate(MIGRATIONS) == []
    assert store.execute("SELECT COUNT(*) FROM _migrations").fetchone()[0] == len(MIGRATIONS)
    store.close()


@pytest.mark.both_backends
def test_a_later_migration_keeps_existing_rows(backend: str) -> None:
    old = Store(backend)
    old.audit("U0ADMIN", "route.set", "+61290081596")
    old.close()

    def add_leases(db: sqlite_utils.Database) -> None:
        db.execute("CREATE TABLE leases (id TEXT PRIMARY KEY, expires_at REAL)")
        db.execute("ALTER TABLE audit ADD COLUMN channel TEXT")
        db.execute("CREATE TABLE lease_notes (id INTEGER PRIMARY KEY, lease TEXT REFERENCES leases(id), at REAL)")
        db.execute("INSERT INTO leases (id, expires_at) VALUES (?, ?)", ("L1", 1_795_000_000.25))

    newer = [*MIGRATIONS, Migration(999, "leases", add_leases)]
    store = Store(backend, migrations=newer)
    assert {"leases", "lease_notes"} <= set(store.table_names())
    assert store.schema_version() == 999
    assert store.execute("SELECT actor, action, channel FROM audit").fetchall() == [("U0ADMIN", "route.set", None)]
    assert store.execute("SELECT expires_at FROM leases").fetchone()[0] == 1_795_000_000.25
    note = store.execute("INSERT INTO lease_notes (lease, at) VALUES (?, ?)", ("L1", 0)).lastrowid
    assert note == 1
    store.close()


@pytest.mark.both_backends
def test_a_failing_migration_is_rolled_back_whole(backend: str) -> None:
    def broken(db: sqlite_utils.Database) -> None:
        db.execute("CREATE TABLE half (x TEXT)")
        db.execute("THIS IS NOT SQL")

    with pytest.raises(Exception, match="syntax error"):
        Store(backend, migrations=[*MIGRATIONS, Migration(99, "broken", broken)])
    store = Store(backend)
    assert "half" not in store.table_names()
    assert store.schema_version() == max(m.version for m in MIGRATIONS)
    store.close()


@pytest.mark.both_backends
def test_transaction_rolls_back_on_error(backend: str) -> None:
    store = Store(backend)
    with pytest.raises(RuntimeError), store.transaction():
        store.audit("U1", "x")
        with store.transaction():  # a savepoint: its work goes with the transaction around it
            store.audit("U1", "y")
        raise RuntimeError("boom")
    assert store.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 0
    with store.transaction():
        store.audit("U1", "kept")
        with pytest.raises(ValueError), store.transaction():
            store.audit("U1", "rolled back alone")
            raise ValueError
    assert [r[0] for r in store.execute("SELECT action FROM audit")] == ["kept"]
    assert not store.in_transaction
    store.close()


def test_writable(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    assert store.writable()
    assert store.execute("SELECT COUNT(*) FROM health").fetchone()[0] == 1  # a real, committed write
    other = Store(tmp_path / "s.db")
    other.conn.execute("BEGIN IMMEDIATE")
    assert store.write_problem() == "busy: another connection holds the write lock"
    other.conn.execute("ROLLBACK")
    assert store.writable()


def test_a_held_lock_costs_one_short_wait_then_statements_fail_at_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    other = Store(tmp_path / "s.db")
    other.conn.execute("BEGIN IMMEDIATE")
    waits = []
    for _ in range(5):
        started = time.monotonic()
        with pytest.raises(StoreBusy):
            store.audit("U1", "x")
        waits.append(time.monotonic() - started)
    assert 0.15 < waits[0] < 0.5  # the busy timeout, once
    assert max(waits[1:]) < 0.02  # then at once, for BUSY_BACKOFF_S
    assert store.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 0  # reads never wait (WAL)
    with pytest.raises(StoreBusy), store.transaction():
        pass
    other.conn.execute("COMMIT")
    started = time.monotonic()
    store.audit("U1", "x")  # the lock is gone: works at once, even inside the fail-fast second
    assert time.monotonic() - started < 0.02
    time.sleep(1.05)
    assert store.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS


def test_a_transaction_sqlite_rolled_back_itself_reports_the_real_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    pages = store.execute("PRAGMA page_count").fetchone()[0]
    store.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(Exception, match="full"), store.transaction():
        store.execute("INSERT INTO audit (at, actor, action, detail) VALUES (0, 'a', 'b', zeroblob(100000))")
    assert not store.conn.in_transaction
