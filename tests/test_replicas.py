"""Several replicas on one PostgreSQL: nothing lost, nothing doubled, one scheduler, one sender per channel.

Real PostgreSQL (SWITCHBOARD_TEST_PG, which `make test` provides); without it these tests are skipped,
saying why. Replicas are `switchboard serve` processes, killed with SIGKILL like a machine failing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.domain.routing import set_group_route
from bot.sandbox.server import LoopbackServer, free_socket
from bot.sandbox.slack import SlackSandbox
from bot.scheduler import ROLE, Scheduler, leader_of
from bot.store import MIGRATIONS, Store, StoreBusy, StoreUnavailable
from tests.helpers import AVANSER_CALL, wait_for

CHANNELS = 4
RUNS: list[tuple[str, int]] = []  # what test_job did: (replica, n)


async def recorded_job(replica: str, n: int) -> None:
    """A module-level job (stored, so any replica can run it): records who ran it."""
    RUNS.append((replica, n))


def caller(n: int) -> str:
    digits = f"{n:06d}"
    return f"0412 {digits[:3]} {digits[3:]}"


class Replica:
    """`switchboard serve` on its own port against the shared database."""

    def __init__(self, env: dict[str, str], name: str, logdir: Path) -> None:
        sock = free_socket()
        self.port = int(sock.getsockname()[1])
        sock.close()
        self.name = name
        self.env = {**env, "SWITCHBOARD_PORT": str(self.port)}
        self.log = logdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Replica:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for(self.healthy, timeout=30, interval=0.05)
        return self

    def healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/healthz", timeout=2).json())

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def replica_env(slack: SlackSandbox, slack_url: str, db: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "SLACK_API_URL": f"{slack_url}/api/",
        "SWITCHBOARD_DB": db,
        "SWITCHBOARD_WEBHOOK_TOKEN": "replicas",
        "SWITCHBOARD_ALERTS_CHANNEL": "C0ALERTS",
        "SWITCHBOARD_LOG_LEVEL": "INFO",
    }


def params(n: int) -> dict[str, str]:
    return {
        **AVANSER_CALL,
        "uniqueid": f"ECS-replica-{n}",
        "ani": "+61-0" + caller(n).replace(" ", "")[1:],
        "custom_group": f"g{n % CHANNELS}",
        "token": "replicas",
    }


def shown_counts(slack: SlackSandbox, events: int) -> dict[int, int]:
    messages = [json.dumps(m, ensure_ascii=False) for m in slack.all_messages()]
    return {n: sum(caller(n) in m for m in messages) for n in range(events)}


# -- the store ---------------------------------------------------------------------------------------------


def test_migrations_run_once_when_replicas_start_together(pg_url: str) -> None:
    stores: list[Store] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            stores.append(Store(pg_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(stores) == 4
    versions = stores[0].execute("SELECT version FROM _migrations ORDER BY version").fetchall()
    assert len(versions) == len({v[0] for v in versions}) == len(stores[0].applied_migrations())
    assert stores[0].schema_version() >= 43
    for store in stores:
        store.close()


def test_write_transactions_take_turns_across_replicas(pg_url: str) -> None:
    first, second = Store(pg_url), Store(pg_url)
    try:
        with first.transaction():
            first.audit("U1", "held")
            started = time.monotonic()
            with pytest.raises(StoreBusy), second.transaction():
                pass
            waited = time.monotonic() - started
            assert 0.15 < waited < 1.0  # the busy timeout, as SQLite's BEGIN IMMEDIATE
            started = time.monotonic()
            with pytest.raises(StoreBusy), second.transaction(wait=False):
                pass
            assert time.monotonic() - started < 0.1
            assert second.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 0  # reads never wait
            second.audit("U2", "single statements don't wait for the write lock")
        time.sleep(1.05)  # past the fail-fast second
        with second.transaction():
            second.audit("U2", "after")
        assert {r[0] for r in first.execute("SELECT action FROM audit")} == {
            "single statements don't wait for the write lock",
            "held",
            "after",
        }
    finally:
        first.close()
        second.close()


def test_lost_connection_answers_unavailable_then_recovers_by_itself(pg_url: str) -> None:
    store = Store(pg_url)
    other = Store(pg_url)
    try:
        pid = store.execute("SELECT pg_backend_pid()").fetchone()[0]
        other.execute("SELECT pg_terminate_backend(?)", (pid,))
        with pytest.raises(StoreUnavailable):
            store.audit("U1", "lost")
        wait_for(lambda: _works(store), timeout=10, interval=0.05)
        assert store.execute("SELECT COUNT(*) FROM audit WHERE action = 'back'").fetchone()[0] >= 1
    finally:
        store.close()
        other.close()


def _works(store: Store) -> bool:
    try:
        store.audit("U1", "back")
        return True
    except StoreBusy:
        return False


def test_sqlite_statements_run_unchanged(pg_url: str) -> None:
    store = Store(pg_url)
    try:
        first = store.execute(
            "INSERT OR IGNORE INTO threads (key, outbox_id, created_at) SELECT 'k', id, 0 FROM outbox LIMIT 1"
        )
        assert first.rowcount == 0
        row = store.execute(
            "INSERT INTO routes (number, channel, updated_at) VALUES (?, ?, ?)", ("+61290081596", "C1", 1.5)
        )
        assert row.rowcount == 1 and row.lastrowid is None  # routes has no id column
        audit = store.audit("U1", "x", subject="100% sure")
        assert audit > 0
        assert store.execute("SELECT subject FROM audit WHERE id = ?", (audit,)).fetchone()[0] == "100% sure"
        assert store.execute("SELECT COUNT(*) FROM audit WHERE subject LIKE '100%'").fetchone()[0] == 1
        assert store.execute("SELECT IFNULL(SUM(id), 0) FROM audit").fetchone()[0] == audit  # an int, not Decimal
        assert store.execute("SELECT 1 FROM routes WHERE number = ?", (61290081596,)).fetchone() is None
        assert store.execute("SELECT channel FROM routes WHERE updated_at = ?", (1.5,)).fetchone()[0] == "C1"
        named = store.execute("SELECT channel FROM routes WHERE number = :n", {"n": "+61290081596"}).fetchone()
        assert named[0] == "C1"
        received = 1_795_000_000.123456  # an epoch keeps its microseconds (REAL is DOUBLE PRECISION here)
        store.execute(
            "INSERT INTO inbox (source, dedup_key, payload, received_at) VALUES (?, ?, ?, ?)",
            ("s", "k", "{}", received),
        )
        assert store.execute("SELECT received_at FROM inbox").fetchone()[0] == received
        store.execute(
            "INSERT INTO allocations (connection_id, parties, usage, owner, channel, masked, expires_at,"
            " state, created_at, updated_at) VALUES ('c', '{}', 'oneway', 'U1', 'C1', ?, 0, 'active', 0, 0)",
            (True,),
        )
        assert store.execute("SELECT masked FROM allocations").fetchone()[0] == 1
        with pytest.raises(Exception, match="INSERT OR REPLACE"):
            store.execute("INSERT OR REPLACE INTO routes (number, channel, updated_at) VALUES ('a', 'b', 0)")
    finally:
        store.close()


# -- one scheduler -----------------------------------------------------------------------------------------


async def test_one_leader_runs_each_job_once_and_a_follower_takes_over(pg_url: str) -> None:
    RUNS.clear()
    stores = [Store(pg_url), Store(pg_url)]
    schedulers = []
    for name, store in zip(("a", "b"), stores, strict=True):
        scheduler = Scheduler()
        scheduler.bind(store, None)
        scheduler.identity = name
        await scheduler.start()
        schedulers.append(scheduler)
    a, b = schedulers
    try:
        assert a.leading and not b.leading
        assert leader_of(stores[1])["holder"]  # type: ignore[index]
        now = time.time()
        b.at(now, "job-1", recorded_job, "by-follower", 1)  # scheduled on the follower: runs on the leader
        a.at(now + 0.2, "job-2", recorded_job, "by-leader", 2)
        b.at(now + 60, "job-3", recorded_job, "later", 3)
        b.at(now + 0.3, "job-4", recorded_job, "cancelled", 4)
        a.cancel("job-4")
        for _ in range(60):
            if len(RUNS) >= 2:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert sorted(RUNS) == [("by-follower", 1), ("by-leader", 2)]
        # The leader dies (SIGKILL, in effect): it runs nothing more, and PostgreSQL ends its session.
        assert a._loop is not None and a._scheduler is not None
        a._loop.cancel()
        a._scheduler.shutdown(wait=False)
        a._scheduler = None
        # It had claimed a job and not finished it: that job runs again on the new leader.
        stores[1].execute(
            "UPDATE scheduled_jobs SET run_at = ?, started_at = ? WHERE job_id = 'job-3'", (time.time(), time.time())
        )
        lock_pid = stores[0].locks.link.conn.info.backend_pid  # type: ignore[union-attr]
        stores[1].execute("SELECT pg_terminate_backend(?)", (lock_pid,))
        started = time.monotonic()
        for _ in range(100):
            if b.leading and len(RUNS) >= 3:
                break
            await asyncio.sleep(0.1)
        assert b.leading and time.monotonic() - started < 5
        assert sorted(RUNS) == [("by-follower", 1), ("by-leader", 2), ("later", 3)]
        assert stores[1].execute("SELECT COUNT(*) FROM scheduled_jobs").fetchone()[0] == 0
    finally:
        for scheduler in schedulers:
            await scheduler.stop()
        for store in stores:
            store.close()


def test_check_reports_database_migrations_and_leader(pg_url: str, tmp_path: Path) -> None:
    store = Store(pg_url)
    store.locks.try_acquire(ROLE)
    store.execute(
        "INSERT INTO leader (role, holder, since, seen_at) VALUES (?, ?, ?, ?)", (ROLE, "host-a:123", 1.0, 2.0)
    )
    try:
        root = str(Path(__file__).resolve().parent.parent)
        env = {"PATH": os.environ.get("PATH", ""), "SWITCHBOARD_DB": pg_url, "PYTHONPATH": root}
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "check"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        out = done.stdout
        assert "Database: PostgreSQL 1" in out, out + done.stderr
        assert f"schema version {MIGRATIONS[-1].version}" in out and "up to date" in out
        assert "Scheduler leader:" in out and "none" not in out.split("Scheduler leader:")[1].splitlines()[0]
        password = pg_url.split("://", 1)[1].split("@")[0].split(":")[1]
        assert password not in out + done.stderr
    finally:
        store.close()


# -- several serve processes ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_one_of_three_replicas_mid_burst(pg_url: str, tmp_path: Path) -> None:
    """Webhooks spread over 3 replicas; one (the scheduler's leader) is killed a third of the way through; the
    senders retry what got no 2xx on the others. Every acknowledged call is posted exactly once, at most one
    post per second per channel, and another replica leads the scheduler within seconds."""
    events = 300
    slack = SlackSandbox(channel_interval=1.0)
    with LoopbackServer(slack.asgi(), name="slack") as slack_server:
        slack.base_url = slack_server.url
        store = Store(pg_url)
        for c in range(CHANNELS):
            set_group_route(store, f"g{c}", f"C0REPLICA{c}", by="U0ADMIN")
        env = replica_env(slack, slack_server.url, pg_url)
        replicas = [Replica(env, f"r{i}", tmp_path).start() for i in range(3)]
        leader = next(r for r in replicas if r.health()["scheduler"] == "leader")
        acked: set[int] = set()
        alive = list(replicas)
        lock = threading.Lock()

        def burst(numbers: range, sender: int) -> None:
            with httpx.Client(timeout=2) as client:
                for n in numbers:
                    for attempt in range(6):  # the provider retries what got no 2xx, on whichever replica answers
                        with lock:
                            target = alive[(n + attempt) % len(alive)]
                        try:
                            if client.get(f"{target.url}/hooks/avanser/call", params=params(n)).status_code == 200:
                                with lock:
                                    acked.add(n)
                                break
                        except httpx.HTTPError:
                            pass

        senders = [threading.Thread(target=burst, args=(range(s, events, 4), s)) for s in range(4)]
        try:
            for sender in senders:
                sender.start()
            wait_for(lambda: len(acked) >= events // 3, timeout=30, interval=0.005)
            with lock:
                alive.remove(leader)
            leader.kill()
            killed_at, killed = time.monotonic(), len(acked)
            for sender in senders:
                sender.join(60)
            assert len(acked) == events and 0 < killed < events
            new_leader = wait_for(
                lambda: next((r for r in alive if r.health()["scheduler"] == "leader"), None), timeout=30
            )
            assert new_leader is not None and time.monotonic() - killed_at < 30
            wait_for(lambda: all(v >= 1 for v in shown_counts(slack, events).values()), timeout=90, interval=0.25)
            time.sleep(2)  # anything doubled would show by now
            counts = shown_counts(slack, events)
            assert [n for n, v in counts.items() if v == 0] == []
            assert [n for n, v in counts.items() if v > 1] == []
            assert slack.peak_posts_per_second() <= 1
            assert store.execute("SELECT COUNT(*) FROM inbox WHERE status = 'new'").fetchone()[0] == 0
        finally:
            for replica in replicas:
                replica.stop()
            store.close()


def pg_control() -> tuple[list[str], str, str] | None:
    """How to restart the test PostgreSQL (set by tests/pgserver.py), or None for a server of your own."""
    data, bindir = os.environ.get("SWITCHBOARD_TEST_PG_DATA"), os.environ.get("SWITCHBOARD_TEST_PG_BIN")
    if not data or not bindir:
        return None
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return as_user, data, bindir


@pytest.mark.slow
def test_postgres_restart_mid_burst_answers_503_loses_nothing_and_recovers(pg_url: str, tmp_path: Path) -> None:
    control = pg_control()
    if control is None:
        pytest.skip("restarting PostgreSQL needs the server tests/pgserver.py started (SWITCHBOARD_TEST_PG_DATA)")
    as_user, data, bindir = control
    events = 200
    slack = SlackSandbox(channel_interval=1.0)
    with LoopbackServer(slack.asgi(), name="slack") as slack_server:
        slack.base_url = slack_server.url
        store = Store(pg_url)
        for c in range(CHANNELS):
            set_group_route(store, f"g{c}", f"C0RESTART{c}", by="U0ADMIN")
        store.close()
        env = replica_env(slack, slack_server.url, pg_url)
        replicas = [Replica(env, f"r{i}", tmp_path).start() for i in range(2)]
        acked: set[int] = set()
        statuses: dict[int, int] = {}
        down = threading.Event()

        def burst() -> None:
            with httpx.Client(timeout=3) as client:
                for n in range(events):
                    while True:  # the provider retries until it gets a 2xx
                        target = replicas[n % 2]
                        try:
                            status = client.get(f"{target.url}/hooks/avanser/call", params=params(n)).status_code
                        except httpx.HTTPError:
                            status = 0
                        statuses[status] = statuses.get(status, 0) + 1
                        if status == 200:
                            acked.add(n)
                            break
                        time.sleep(0.05)
                    time.sleep(0.01)

        sender = threading.Thread(target=burst)
        try:
            sender.start()
            wait_for(lambda: len(acked) >= events // 4, timeout=30, interval=0.005)
            subprocess.run(
                [*as_user, f"{bindir}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"], check=True, capture_output=True
            )
            down.set()
            time.sleep(2)
            during = dict(statuses)
            subprocess.run(
                [*as_user, f"{bindir}/pg_ctl", "-D", data, "-l", f"{data}/../log", "-w", "start"],
                check=True,
                capture_output=True,
            )
            sender.join(120)
            assert len(acked) == events
            assert during.get(503, 0) > 0 and during.get(500, 0) == 0
            wait_for(lambda: all(v >= 1 for v in shown_counts(slack, events).values()), timeout=90, interval=0.25)
            time.sleep(2)
            counts = shown_counts(slack, events)
            assert [n for n, v in counts.items() if v == 0] == [] and [n for n, v in counts.items() if v > 1] == []
            assert slack.peak_posts_per_second() <= 1
            wait_for(lambda: all(r.healthy() for r in replicas), timeout=30)
            assert sum(r.health()["scheduler"] == "leader" for r in replicas) == 1
        finally:
            down.set()
            for replica in replicas:
                replica.stop()


def test_the_database_password_never_reaches_the_log(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    from bot.logs import RedactSecrets

    password = pg_url.split("://", 1)[1].split("@")[0].split(":")[1]
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "could not reach %s", (pg_url,), None)
    RedactSecrets().filter(record)
    assert password not in record.getMessage() and "***" in record.getMessage()


def test_a_signed_request_replayed_to_another_replica_is_not_handled_again(pg_url: str, tmp_path: Path) -> None:
    from bot.sandbox.signing import signature_headers, slash_command_body

    slack = SlackSandbox()
    with LoopbackServer(slack.asgi(), name="slack") as slack_server:
        slack.base_url = slack_server.url
        env = replica_env(slack, slack_server.url, pg_url)
        replicas = [Replica(env, f"r{i}", tmp_path).start() for i in range(2)]
        try:
            body = slash_command_body(
                "/numbers",
                "help",
                user_id="U0REP",
                channel_id="C0SALES",
                response_url=slack.new_response_url(),
                trigger_id="1.T0SANDBOX.replay",
            )
            headers = {
                **signature_headers(slack.signing_secret, body),
                "Content-Type": "application/x-www-form-urlencoded",
            }
            first = httpx.post(f"{replicas[0].url}/slack/events", content=body, headers=headers, timeout=5)
            again = httpx.post(f"{replicas[1].url}/slack/events", content=body, headers=headers, timeout=5)
            assert first.status_code == 200 and "response_type" in first.text
            assert again.status_code == 200 and again.content == b""  # an ack, not handled a second time
        finally:
            for replica in replicas:
                replica.stop()
