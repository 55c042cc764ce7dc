"""The SQLite store: pragmas, versioned migrations that keep existing data."""

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


def test_spine_tables_exist(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    assert {"inbox", "outbox", "routes", "audit", "_migrations"} <= set(store.db.table_names())
    assert store.schema_version() == max(m.version for m in MIGRATIONS)


def test_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    Store(tmp_path / "s.db").close()
    store = Store(tmp_path / "s.db")
    assert store.migrate(MIGRATIONS) == []
    assert store.execute("SELECT COUNT(*) FROM _migrations").fetchone()[0] == len(MIGRATIONS)


def test_a_later_migration_keeps_existing_rows(tmp_path: Path) -> None:
    old = Store(tmp_path / "s.db")
    old.audit("U0ADMIN", "route.set", "+61290081596")
    old.close()

    def add_leases(db: sqlite_utils.Database) -> None:
        db.execute("CREATE TABLE leases (id TEXT PRIMARY KEY, expires_at REAL)")
        db.execute("ALTER TABLE audit ADD COLUMN channel TEXT")

    newer = [*MIGRATIONS, Migration(999, "leases", add_leases)]
    store = Store(tmp_path / "s.db", migrations=newer)
    assert "leases" in store.db.table_names()
    assert store.schema_version() == 999
    assert store.execute("SELECT actor, action, channel FROM audit").fetchall() == [("U0ADMIN", "route.set", None)]


def test_a_failing_migration_is_rolled_back_whole(tmp_path: Path) -> None:
    def broken(db: sqlite_utils.Database) -> None:
        db.execute("CREATE TABLE half (x)")
        db.execute("THIS IS NOT SQL")

    with pytest.raises(Exception, match="syntax error"):
        Store(tmp_path / "s.db", migrations=[*MIGRATIONS, Migration(99, "broken", broken)])
    store = Store(tmp_path / "s.db")
    assert "half" not in store.db.table_names()
    assert store.schema_version() == max(m.version for m in MIGRATIONS)


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    with pytest.raises(RuntimeError), store.transaction():
        store.audit("U1", "x")
        raise RuntimeError("boom")
    assert store.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 0


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
