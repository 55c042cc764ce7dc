"""`make bench`: Switchboard measured as a server, each figure beside a bare baseline from the same run.

Switchboard runs as its own process (`python -m bot.cli serve`, i.e. `switchboard serve`, at its shipped
log level) pinned to core 0 with `taskset`; wrk, this process and the Slack sandbox it hosts run on
core 1 (see bench/harness.py). Each Switchboard figure is taken between two runs of its baseline —
a bare Starlette endpoint that only verifies Slack's signature, or that does one SQLite insert with the
app store's pragmas — and its ratio is to their mean. Figures go to stdout and bench/results.json, and
the table in README.md ("Performance") is rewritten from them. A figure that misses its goal says so;
nothing here asserts.

wrk drives all the HTTP load. The Python generator (httpx) remains only for webhook → Slack latency:
one webhook at a time, each waiting until its message is seen in the Slack sandbox, which wrk can't.
The outbox and history-query figures are not HTTP load: they run in this process, as before.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    LOAD_CORE,
    SERVER_CORE,
    Group,
    Server,
    Wrk,
    WrkResult,
    callers_shown,
    calls_lua,
    machine,
    national_caller,
    on_core,
    pin_self_to_load_core,
    pinning,
    run_wrk,
    signed_commands_lua,
    spread_lua,
    wrk_path,
    wrk_version,
)
from bot.sandbox.avanser import SEED_CALL
from bot.sandbox.server import LoopbackServer
from bot.sandbox.slack import SlackSandbox
from bot.sandbox.stack import Stack

ROOT = Path(__file__).resolve().parent
README = ROOT.parent / "README.md"

# The seed's call-URI parameters (bench/faults.py uses them too); each request adds its own ids and caller.
CALL = {k: v for k, v in SEED_CALL.items() if k not in ("uniqueid", "callid", "ani")} | {"adname": "Bench ad"}
WEBHOOK_TOKEN = "bench"
ONE_CHANNEL = SEED_CALL["bnum"]  # the one-channel storm: every call to this tracking number
STORM_TRACKING = [f"+61-02900816{c:02d}" for c in range(10)]  # the 10-channel storm: one number per channel
SIGNED = 60_000  # pre-signed `/numbers help` requests per wrk run: more than one run sends (a repeat is a replay)

GOALS = {
    "ack": "≥ 0.5× req/s, p99 ≤ 2×",
    "ingest": "≥ 0.7× req/s, p99 ≤ 2×",
    "visible": "all visible ≤ 5 s after the last webhook, ≤ 1 post/s per channel",
    "storm": "all visible ≤ 5 s after the last, 0 lost, 0 doubled",
    "ack_storm": "p99 ≤ 2× the bare verifier's (1 connection)",
    "report": "≤ 200 ms",
}


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


# -- servers -------------------------------------------------------------------------------------------------


def start_app(
    name: str,
    tmp: str,
    slack: SlackSandbox,
    slack_url: str,
    *,
    routes: dict[str, str] | None = None,
    groups: dict[str, str] | None = None,
    db: str | None = None,
    cores: int | str = SERVER_CORE,
) -> Server:
    """`switchboard serve` on the server core, with routes written to its database before it starts."""
    from bot.domain.routing import set_group_route, set_route
    from bot.store import Store

    db = db or f"{tmp}/{name}.db"
    store = Store(db)
    for number, channel in (routes or {}).items():
        set_route(store, number.replace("-0", "", 1), channel, by="bench")
    for group, channel in (groups or {}).items():
        set_group_route(store, group, channel, by="bench")
    store.close()
    env = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "SLACK_API_URL": f"{slack_url}/api/",
        "SWITCHBOARD_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
        "SWITCHBOARD_DB": db,
        "SWITCHBOARD_ALERTS_CHANNEL": "C0ALERTS",
    }
    return Server(name, ["bot.cli", "serve", "--port", "{port}"], env, tmp, ready="/healthz", cores=cores)


def stored_callers(server_db: str) -> set[str]:
    """The callers of every call the app committed to its inbox (each was, or was about to be, acknowledged)."""
    conn = sqlite3.connect(f"file:{server_db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT payload FROM inbox WHERE source = 'avanser.call'").fetchall()
    finally:
        conn.close()
    return {national_caller(json.loads(p)["ani"]) for (p,) in rows if "0412" in json.loads(p).get("ani", "")}


def backlog(db: str) -> dict[str, int]:
    """What the app has yet to do: events not yet handled, Slack calls not yet made."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        events = conn.execute("SELECT COUNT(*) FROM inbox WHERE status = 'new'").fetchone()[0]
        posts = conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
    finally:
        conn.close()
    return {"inbox_unprocessed": int(events), "outbox_pending": int(posts)}


def wait_visible(
    slack: SlackSandbox, wanted: set[str], since: float, limit: float, db: str, channels: set[str]
) -> dict[str, Any]:
    """Wait until Slack shows every wanted caller (in a message or a digest line); then count doubles. A call
    not shown is lost only if the app has nothing left to do; otherwise it is still on its way."""
    deadline = since + limit
    visible_after = None
    while True:
        shown = callers_shown(slack.all_messages())
        if wanted <= shown.keys():
            visible_after = time.monotonic() - since
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    time.sleep(1.5)  # anything posted twice would show by now
    messages = [m for m in slack.all_messages() if m["channel"] in channels]
    shown = callers_shown(messages)
    left = backlog(db)
    missing = sum(1 for w in wanted if w not in shown)
    return {
        "calls": len(wanted),
        "all_visible_after_s": None if visible_after is None else round(visible_after, 2),
        "waited_up_to_s": limit,
        "not_visible": missing,
        "backlog_at_end": left,
        "lost": missing if not any(left.values()) else None,  # None: unknown, the app was still at work
        "doubled": sum(1 for w in wanted if shown.get(w, 0) > 1),
        "messages": len(messages),
        "peak_posts_per_s_per_channel": max((slack.peak_posts_per_second(c) for c in channels), default=0),
        "slack_429s": slack.rate_limited,
    }


def sandwich(
    baseline: Callable[[int], WrkResult], app: Callable[[], WrkResult]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Baseline, Switchboard, baseline again; the ratio is to the baselines' mean."""
    before = baseline(0)
    measured = app()
    after = baseline(1)
    base_rps = statistics.mean([before.rps, after.rps])
    base_p99 = statistics.mean([before.p99_ms, after.p99_ms])
    per_cpu = [r.per_cpu_s for r in (before, after) if r.per_cpu_s]
    ratios = {
        "baseline_rps": round(base_rps, 1),
        "baseline_p99_ms": round(base_p99, 2),
        "ratio_rps": round(measured.rps / base_rps, 3) if base_rps else None,
        "ratio_p99": round(measured.p99_ms / base_p99, 2) if base_p99 else None,
        # The same ratio per second of server CPU: what neighbours on a shared machine disturb least.
        "ratio_per_server_cpu_s": (
            round(measured.per_cpu_s / statistics.mean(per_cpu), 3) if per_cpu and measured.per_cpu_s else None
        ),
    }
    return {"baseline_before": before.summary(), "app": measured.summary(), "baseline_after": after.summary()}, ratios


# -- ack -----------------------------------------------------------------------------------------------------


def ack_bench(tmp: str, seconds: float) -> dict[str, Any]:
    """Signed `/numbers help` at 1 and 16 connections against the bare SignatureVerifier."""
    slack = SlackSandbox()
    results: dict[str, Any] = {}
    with LoopbackServer(slack.asgi(), name="slack") as slack_server:
        slack.base_url = slack_server.url
        verifier = Server("verifier", ["bench.servers", "baseline", "{port}", slack.signing_secret], {}, tmp)
        app = start_app("ack", tmp, slack, slack_server.url)
        try:

            def script() -> str:  # signed now: Slack's 5-minute window starts at each run
                return signed_commands_lua(slack.signing_secret, slack.new_response_url(), SIGNED)

            for server in (verifier, app):  # warm up: imports, Bolt's first auth.test, connections
                run_wrk(server.url, script(), connections=16, seconds=1, scriptdir=tmp, server=server)
            for connections in (1, 16):

                def on(server: Server, connections: int = connections) -> WrkResult:
                    return run_wrk(
                        server.url, script(), connections=connections, seconds=seconds, scriptdir=tmp, server=server
                    )

                runs, ratios = sandwich(lambda _: on(verifier), lambda: on(app))
                met = ratios["ratio_rps"] >= 0.5 and ratios["ratio_p99"] <= 2
                results[str(connections)] = {**runs, **ratios, "goal": GOALS["ack"], "met": met}
        finally:
            app.stop()
            verifier.stop()
    return results


# -- ingest: a one-channel storm -----------------------------------------------------------------------------


def ingest_bench(tmp: str, seconds: float, visible_limit: float) -> dict[str, Any]:
    """Call-URI webhooks at 16 connections, all to one tracking number (one channel), against a bare insert;
    then whether Slack shows every call, within its per-channel rate."""
    slack = SlackSandbox(channel_interval=1.0)
    params = {k: v for k, v in CALL.items() if k != "bnum"}
    with LoopbackServer(slack.asgi(), name="slack") as slack_server:
        slack.base_url = slack_server.url
        insert = Server("insert", ["bench.servers", "insert", "{port}", f"{tmp}/insert.db"], {}, tmp)
        visibility: dict[str, Any] = {}

        def baseline(i: int) -> WrkResult:
            script = calls_lua(params, WEBHOOK_TOKEN, [ONE_CHANNEL], offset=(i + 1) * 1_000_000)
            return run_wrk(insert.url, script, connections=16, seconds=seconds, scriptdir=tmp, server=insert)

        def switchboard() -> WrkResult:
            app = start_app("ingest", tmp, slack, slack_server.url, routes={ONE_CHANNEL: "C0STORM"})
            try:
                script = calls_lua(params, WEBHOOK_TOKEN, [ONE_CHANNEL])
                result = run_wrk(app.url, script, connections=16, seconds=seconds, scriptdir=tmp, server=app)
                wanted = stored_callers(f"{tmp}/ingest.db")
                visibility.update(
                    wait_visible(slack, wanted, result.ended_at, visible_limit, f"{tmp}/ingest.db", {"C0STORM"})
                )
                visibility["acknowledged"] = result.good
            finally:
                app.stop()  # before the second baseline run: a backlog would compete with it
            return result

        try:
            runs, ratios = sandwich(baseline, switchboard)
        finally:
            insert.stop()
    met = ratios["ratio_rps"] >= 0.7 and ratios["ratio_p99"] <= 2
    visible_met = (
        visibility["all_visible_after_s"] is not None
        and visibility["all_visible_after_s"] <= 5
        and visibility["not_visible"] == 0
        and visibility["peak_posts_per_s_per_channel"] <= 1
    )
    return {
        **runs,
        **ratios,
        "goal": GOALS["ingest"],
        "met": met,
        "visibility": {**visibility, "goal": GOALS["visible"], "met": visible_met},
    }


# -- several replicas: PostgreSQL, and SQLite for comparison -------------------------------------------------

REPLICA_CONNECTIONS = 18  # divisible by 1, 2 and 3: wrk runs one thread per replica


def replicas_bench(tmp: str, seconds: float) -> dict[str, Any]:
    """Call-URI ingest (the one-channel storm's webhooks) with 1, 2 and 3 `switchboard serve` replicas sharing one
    database: PostgreSQL (started here from Debian's package, durable defaults: fsync and synchronous commit on),
    then SQLite for comparison. wrk runs one thread per replica (each keeps to one replica, as a load balancer
    spreads connections). Twice: replicas and PostgreSQL on the server core only (as every other figure), then
    free to use both cores (wrk and the Slack sandbox still on core 1: the nearest this machine comes to replicas
    with cores of their own)."""
    out: dict[str, Any] = {"connections": REPLICA_CONNECTIONS, "seconds": seconds}
    for placement, cores in (("one_core", str(SERVER_CORE)), ("two_cores", f"{SERVER_CORE},{LOAD_CORE}")):
        out[placement] = _replicas_on(tmp, seconds, cores)
        out[placement]["cores"] = cores
    for placement in ("one_core", "two_cores"):
        pg = out[placement].get("postgresql", {})
        if "1" in pg and "3" in pg and pg["1"]["rps"]:
            out[placement]["postgresql_3_vs_1"] = round(pg["3"]["rps"] / pg["1"]["rps"], 2)
    ratio = out["two_cores"].get("postgresql_3_vs_1")
    if ratio is not None:
        out["met"] = ratio >= 2
    return out


def _ack_under_ingest(tmp: str, slack: SlackSandbox, slack_url: str, db: str, cores: str, seconds: float) -> Any:
    """Signed `/numbers help` on 1 connection while 17 connections of webhooks hit the same replica: how long
    an ack waits while the store is busy (on PostgreSQL: round trips, the async pool, the inbox's thread)."""
    app = start_app("ack-under-ingest", tmp, slack, slack_url, routes={ONE_CHANNEL: "C0STORM"}, db=db, cores=cores)
    params = {k: v for k, v in CALL.items() if k != "bnum"}
    try:
        storm = Wrk(
            app.url,
            calls_lua(params, WEBHOOK_TOKEN, [ONE_CHANNEL], offset=700_000_000),
            connections=REPLICA_CONNECTIONS - 1,
            seconds=seconds,
            scriptdir=tmp,
        )
        acks = run_wrk(
            app.url,
            signed_commands_lua(slack.signing_secret, slack.new_response_url(), SIGNED),
            connections=1,
            seconds=seconds,
            scriptdir=tmp,
        )
        storm.result()
    finally:
        app.stop()
    return acks.summary()


def _replicas_on(tmp: str, seconds: float, cores: str) -> dict[str, Any]:
    from bot.store import Store
    from tests.pgserver import PgServer, Unavailable, new_schema

    out: dict[str, Any] = {"postgresql": {}, "sqlite": {}}
    try:
        pg: PgServer | None = PgServer(durable=True, prefix=on_core(cores)).start()
        assert pg is not None
        out["postgresql_version"] = pg.bin.parent.name
    except Unavailable as exc:
        pg = None
        out["postgresql_skipped"] = str(exc)
        print(f"bench: PostgreSQL replicas skipped: {exc}", file=sys.stderr)
    slack = SlackSandbox(channel_interval=1.0)
    params = {k: v for k, v in CALL.items() if k != "bnum"}
    try:
        with LoopbackServer(slack.asgi(), name="slack") as slack_server:
            slack.base_url = slack_server.url
            for kind in ("postgresql", "sqlite"):
                if kind == "postgresql" and pg is None:
                    continue
                for n in (1, 2, 3):
                    db = new_schema(pg.url) if pg is not None and kind == "postgresql" else f"{tmp}/replicas-{n}.db"
                    if kind == "sqlite":
                        with contextlib.suppress(FileNotFoundError):
                            for suffix in ("", "-wal", "-shm"):
                                os.unlink(db + suffix)
                    replicas = [
                        start_app(
                            f"{kind}-{n}-{i}",
                            tmp,
                            slack,
                            slack_server.url,
                            routes={ONE_CHANNEL: "C0STORM"},
                            db=db,
                            cores=cores,
                        )
                        for i in range(n)
                    ]
                    group = Group(replicas, pg.pids if pg is not None and kind == "postgresql" else None)
                    urls = [r.url for r in replicas]
                    try:
                        warm = calls_lua(params, WEBHOOK_TOKEN, [ONE_CHANNEL], offset=900_000_000) + spread_lua(urls)
                        run_wrk(urls[0], warm, connections=REPLICA_CONNECTIONS, seconds=1, scriptdir=tmp, threads=n)
                        script = calls_lua(params, WEBHOOK_TOKEN, [ONE_CHANNEL], offset=n * 100_000_000)
                        result = run_wrk(
                            urls[0],
                            script + spread_lua(urls),
                            connections=REPLICA_CONNECTIONS,
                            seconds=seconds,
                            scriptdir=tmp,
                            server=group,
                            threads=n,
                        )
                    finally:
                        for replica in replicas:
                            replica.stop()
                    if n == 1 and "," not in cores:
                        fresh = new_schema(pg.url) if pg is not None and kind == "postgresql" else f"{tmp}/ack.db"
                        ack = _ack_under_ingest(tmp, slack, slack_server.url, fresh, cores, seconds)
                        out[kind]["ack_under_ingest"] = ack
                    store = Store(db)
                    stored = int(store.execute("SELECT COUNT(*) FROM inbox").fetchone()[0])
                    handled = int(store.execute("SELECT COUNT(*) FROM inbox WHERE status != 'new'").fetchone()[0])
                    store.close()
                    out[kind][str(n)] = {
                        **result.summary(),
                        "stored_events": stored,
                        "handled_events": handled,
                        "refused": result.errors["bad_answer"],
                    }
    finally:
        if pg is not None:
            pg.stop()
    return out


# -- the 10-channel storm, the ack during it, latency and footprint ------------------------------------------


def storm_bench(
    tmp: str, events: int, channels: int, seconds: float, latency_samples: int, visible_limit: float, use_wrk: bool
) -> dict[str, Any]:
    """One fresh Switchboard: footprint and webhook → Slack latency while idle, then `events` calls over
    `channels` channels in `seconds` (wrk, rate-limited) with a second wrk acking `/numbers help` meanwhile."""
    slack = SlackSandbox(channel_interval=1.0)
    out: dict[str, Any] = {}
    with LoopbackServer(slack.asgi(), name="slack") as slack_server:
        slack.base_url = slack_server.url
        app = start_app(
            "storm",
            tmp,
            slack,
            slack_server.url,
            routes={STORM_TRACKING[c]: f"C0S{c}" for c in range(channels)},
            groups={f"g{n}": f"C0L{n}" for n in range(latency_samples)},
        )
        try:
            out["footprint"] = {"startup_s": round(app.startup_s, 2), "rss_idle_mb": round(app.rss_mb(), 1)}
            out["latency"] = latency_bench(app, slack, latency_samples)
            if use_wrk:
                params = {k: v for k, v in CALL.items() if k != "bnum"}
                storm_script = calls_lua(
                    params, WEBHOOK_TOKEN, STORM_TRACKING[:channels], quota=events, rate=events / seconds
                )
                ack_script = signed_commands_lua(slack.signing_secret, slack.new_response_url(), SIGNED)
                cap = seconds * 4  # a server too slow for the schedule gets more time to take the calls, not forever
                storm = Wrk(app.url, storm_script, connections=16, seconds=cap, scriptdir=tmp, server=app)
                ack = Wrk(app.url, ack_script, connections=1, seconds=cap + visible_limit + 10, scriptdir=tmp)
                storm.quota_done.wait(cap + 5)
                storm.stop()
                sent = storm.result()
                wanted = stored_callers(f"{tmp}/storm.db") - {caller(n)[1] for n in range(latency_samples)}
                visibility = wait_visible(
                    slack, wanted, sent.ended_at, visible_limit, f"{tmp}/storm.db", {f"C0S{c}" for c in range(channels)}
                )
                ack.stop()
                acked = ack.result()
                visible_met = (
                    visibility["all_visible_after_s"] is not None
                    and visibility["all_visible_after_s"] <= 5
                    and visibility["not_visible"] == 0
                    and visibility["doubled"] == 0
                    and sent.good == events
                )
                out["storm"] = {
                    "events": events,
                    "channels": channels,
                    "scheduled_over_s": seconds,
                    "sent_over_s": round(sent.seconds, 2),
                    "webhooks": sent.summary(),
                    "acknowledged": sent.good,
                    **visibility,
                    "goal": GOALS["storm"],
                    "met": visible_met,
                }
                out["ack_during_storm"] = acked.summary()
                out["footprint"]["rss_after_storm_mb"] = round(app.rss_mb(), 1)
        finally:
            app.stop()
    return out


def caller(n: int) -> tuple[str, str]:
    """Latency samples' callers (0412 9nn nnn), apart from wrk's (a counter from 1)."""
    digits = f"{900_000 + n:06d}"
    return f"+61-0412{digits}", f"0412 {digits[:3]} {digits[3:]}"


def latency_bench(app: Server, slack: SlackSandbox, samples: int) -> dict[str, Any]:
    """Webhook → message visible in the Slack sandbox, one at a time, each to a quiet channel. The Python
    generator: each request waits on Slack, which wrk can't."""
    latencies = []
    with httpx.Client(timeout=10) as client:
        for n in range(samples):
            ani, _ = caller(n)
            params = {**CALL, "uniqueid": f"ECS-latency-{n}", "callid": str(n), "ani": ani, "custom_group": f"g{n}"}
            request = httpx.Request("GET", f"{app.url}/hooks/avanser/call", params={**params, "token": WEBHOOK_TOKEN})
            start = time.perf_counter()
            client.send(request)
            deadline = time.monotonic() + 10
            while not slack.channel_messages(f"C0L{n}") and time.monotonic() < deadline:
                time.sleep(0.0005)
            latencies.append((time.perf_counter() - start) * 1000)
    latencies.sort()
    return {
        "samples": samples,
        "generator": "python (httpx), one at a time",
        "p50_ms": round(latencies[len(latencies) // 2], 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 2),
    }


# -- in-process figures (unchanged) --------------------------------------------------------------------------


def outbox_bench(channels: int, per_channel: int) -> dict[str, Any]:
    """Deliver channels×per_channel posts against a sandbox enforcing 1 post/s per channel."""
    with Stack(slack_channel_interval=1.0) as stack:
        assert stack.services is not None
        outbox = stack.services.outbox

        async def queue() -> float:
            for n in range(per_channel):
                for c in range(channels):
                    outbox.post(f"C0BENCH{c}", f"alert {n}")
            return time.monotonic()

        start = stack.on_app(queue())
        stack.drain(per_channel * 3 + 10)
        seconds = time.monotonic() - start
        delivered = sum(len(stack.slack.channel_messages(f"C0BENCH{c}")) for c in range(channels))
        return {
            "messages": channels * per_channel,
            "delivered": delivered,
            "seconds": round(seconds, 2),
            "messages_per_s": round(delivered / seconds, 2),
            "per_channel_per_s": round(delivered / seconds / channels, 3),
            "peak_posts_per_s_per_channel": stack.slack.peak_posts_per_second(),
            "sandbox_429s": stack.slack.rate_limited,
        }


def query_bench(rows: int, lookups: int = 200) -> dict[str, Any]:
    """The busiest read the app runs against history (the number a caller last called, for /call's caller ID),
    over `rows` synthetic alerts in a real store, with the shipped index and without it."""
    import random

    from bot.domain.calls import number_they_called
    from bot.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"{tmp}/history.db")
        store.execute("PRAGMA foreign_keys = OFF")  # synthetic alerts have no inbox rows behind them
        now = time.time()
        store.execute(
            "INSERT INTO inbox (id, source, dedup_key, payload, received_at) VALUES (1, 'bench', 'b', '{}', 0)"
        )
        store.execute("BEGIN")
        batch = []
        for i in range(rows):
            batch.append((i + 1, i + 2, "C0BENCH", "missed", f"+61412{i % 900_000:06d}", f"+61290{i % 5000:06d}", now))
            if len(batch) == 50_000:
                store.conn.executemany(
                    "INSERT INTO alerts (id, inbox_id, channel, kind, caller, tracking, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    batch,
                )
                batch = []
        if batch:
            store.conn.executemany(
                "INSERT INTO alerts (id, inbox_id, channel, kind, caller, tracking, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                batch,
            )
        store.execute("COMMIT")

        class _S:  # the two attributes number_they_called reads
            def __init__(self, store: Store) -> None:
                self.store = store

        services: Any = _S(store)
        callers = [f"+61412{random.randrange(900_000):06d}" for _ in range(lookups)]

        def timed() -> list[float]:
            out = []
            for c in callers:
                start = time.perf_counter()
                number_they_called(services, c)
                out.append((time.perf_counter() - start) * 1000)
            return sorted(out)

        indexed = timed()
        store.execute("DROP INDEX alerts_caller")
        unindexed = timed()[: max(1, lookups // 20)]  # a full scan each: a few are enough
        size_mb = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp)) / 1e6
        store.close()
    return {
        "rows": rows,
        "lookups": lookups,
        "p50_ms": round(indexed[len(indexed) // 2], 3),
        "p99_ms": round(indexed[int(0.99 * len(indexed))], 3),
        "without_index_p50_ms": round(unindexed[len(unindexed) // 2], 1),
        "db_mb": round(size_mb, 1),
    }


def report_bench(calls: int, numbers: int, days: int = 30, runs: int = 15) -> dict[str, Any]:
    """`/numbers report all 30d` over `calls` calls to `numbers` tracking numbers spread over the last `days` days,
    in a real store: its SQL as the command runs it (`call_report`), and the same counts from the calls themselves
    (no `call_days`) for comparison. The chart is drawn in a worker thread and not counted here."""
    import random
    from datetime import UTC, datetime

    from bot.domain.reports import call_report, rebuild_stats
    from bot.store import Store

    rng = random.Random(15)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"{tmp}/calls.db")
        now = time.time()
        store.execute("BEGIN")
        batch: list[tuple[Any, ...]] = []
        insert = (
            "INSERT INTO calls (call_key, tracking, name, status, answered, started_at, local_day, local_hour,"
            " utc_offset, duration, via) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 600, 30, 'call_uri')"
        )
        for i in range(calls):
            at = now - rng.random() * (days - 1) * 86400  # all inside the report's 30 local days
            local = datetime.fromtimestamp(at + 36000, UTC)
            answered = rng.random() < 0.6
            tracking = f"+6129{i % numbers:07d}"
            batch.append(
                (
                    f"B{i}",
                    tracking,
                    f"Ad {i % numbers}",
                    "answered" if answered else "missed",
                    int(answered),
                    at,
                    local.date().isoformat(),
                    local.hour,
                )
            )
            if len(batch) == 50_000:
                store.conn.executemany(insert, batch)
                batch = []
        if batch:
            store.conn.executemany(insert, batch)
        store.execute("COMMIT")
        cells = rebuild_stats(store)

        def timed(run: Callable[[], Any], n: int) -> list[float]:
            out = []
            for _ in range(n):
                start = time.perf_counter()
                run()
                out.append((time.perf_counter() - start) * 1000)
            return sorted(out)

        report = call_report(store, None, days)
        assert report.calls == calls, (report.calls, calls)  # every call is in the window
        from notifiers.reports import chart_png

        chart_png(report)  # matplotlib's first import and font cache: once per process
        chart = timed(lambda: chart_png(report), 5)
        with_stats = timed(lambda: call_report(store, None, days), runs)
        one_number = timed(lambda: call_report(store, "+61290000007", days), runs)
        first = report.first_day.isoformat()
        raw = timed(
            lambda: store.execute(
                "SELECT tracking, local_hour, COUNT(*), SUM(answered) FROM calls WHERE local_day >= ?"
                " GROUP BY tracking, local_hour",
                (first,),
            ).fetchall(),
            3,
        )
        store.close()
    p50, p99 = with_stats[len(with_stats) // 2], with_stats[-1]
    return {
        "calls": calls,
        "numbers": numbers,
        "days": days,
        "stats_rows": cells,
        "runs": runs,
        "p50_ms": round(p50, 1),
        "max_ms": round(p99, 1),
        "one_number_p50_ms": round(one_number[len(one_number) // 2], 2),
        "from_calls_p50_ms": round(raw[len(raw) // 2], 0),
        "chart_p50_ms": round(chart[len(chart) // 2], 0),
        "goal": GOALS["report"],
        "met": p99 <= 200,
    }


# -- the report ----------------------------------------------------------------------------------------------


def _num(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def _verdict(met: bool | None) -> str:
    return "" if met is None else ("met" if met else "MISSES GOAL")


def _load(run: dict[str, Any]) -> str:
    return f"{_num(run['rps'])} req/s, p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms"


def _visible(v: dict[str, Any]) -> str:
    after = v["all_visible_after_s"]
    if after is not None:
        seen = f"all visible {after} s after the last webhook"
    else:
        seen = f"{v['not_visible']:,} NOT visible {v['waited_up_to_s']} s after the last webhook"
    if v["lost"] is not None:
        fate = f"lost {v['lost']}"
    else:
        left = v["backlog_at_end"]
        fate = (
            f"app still busy ({left['inbox_unprocessed']:,} events unhandled, {left['outbox_pending']:,} posts queued)"
        )
    return (
        f"{v['calls']:,} calls: {seen}, in {v['messages']} messages; {fate}, doubled {v['doubled']}; "
        f"peak {v['peak_posts_per_s_per_channel']} post/s per channel, {v['slack_429s']} × 429"
    )


def _ratio(figure: dict[str, Any]) -> str:
    text = f"{figure['ratio_rps']:.2f}× req/s, {figure['ratio_p99']:.2f}× p99"
    if figure.get("ratio_per_server_cpu_s") is not None:
        text += f" ({figure['ratio_per_server_cpu_s']:.2f}× per server CPU-second)"
    return text


def _core(run: dict[str, Any]) -> str:
    return "" if run.get("server_cpu") is None else f" ({run['server_cpu']:.0%} of its core)"


def rows(report: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(what, Switchboard, baseline, ratio, goal, met) — for stdout and the README."""
    out = []
    for connections, figure in report.get("ack", {}).items():
        out.append(
            (
                f"signed `/numbers help`, {connections} connection{'s' if connections != '1' else ''}",
                _load(figure["app"]) + _core(figure["app"]),
                f"bare Starlette + `SignatureVerifier`: {_num(figure['baseline_rps'])} req/s, "
                f"p99 {figure['baseline_p99_ms']} ms",
                _ratio(figure),
                figure["goal"],
                _verdict(figure["met"]),
            )
        )
    ingest = report.get("ingest")
    if ingest:
        app = ingest["app"]
        out.append(
            (
                "call-URI webhooks, 16 connections, all to one tracking number (a one-channel storm), "
                f"{app['seconds']:.0f} s",
                _load(app) + _core(app),
                f"bare Starlette + one SQLite insert: {_num(ingest['baseline_rps'])} req/s, "
                f"p99 {ingest['baseline_p99_ms']} ms",
                _ratio(ingest),
                ingest["goal"],
                _verdict(ingest["met"]),
            )
        )
        v = ingest["visibility"]
        out.append(
            ("the same storm in Slack (1 post/s per channel)", _visible(v), "", "", v["goal"], _verdict(v["met"]))
        )
    replicas = report.get("replicas")
    if replicas:
        for placement, where in (("one_core", "replicas and PostgreSQL on core 0"), ("two_cores", "on both cores")):
            figure = replicas.get(placement, {})
            pg, lite = figure.get("postgresql", {}), figure.get("sqlite", {})
            for n in ("1", "2", "3"):
                if n not in pg and n not in lite:
                    continue
                cells = []
                if n in pg:
                    per_cpu = f", {pg[n]['per_server_cpu_s']:,} per CPU-second" if pg[n].get("per_server_cpu_s") else ""
                    cpu = f" ({pg[n]['server_cpu']:.0%} CPU{per_cpu})" if pg[n].get("server_cpu") is not None else ""
                    cells.append(f"PostgreSQL: {_load(pg[n])}{cpu}")
                elif "postgresql_skipped" in figure:
                    cells.append(f"PostgreSQL: skipped ({figure['postgresql_skipped']})")
                if n in lite:
                    refused = f", {lite[n]['refused']:,} answered 503" if lite[n]["refused"] else ""
                    cells.append(f"SQLite: {_load(lite[n])}{refused}")
                ratio = f"PostgreSQL {pg[n]['rps'] / pg['1']['rps']:.2f}× one replica" if n in pg and "1" in pg else ""
                goal, met = "", ""
                if n == "3" and placement == "two_cores" and "met" in replicas:
                    goal, met = "PostgreSQL, 3 replicas ≥ 2× one", _verdict(replicas["met"])
                if n == "1" and placement == "one_core" and ("ack_under_ingest" in pg or "ack_under_ingest" in lite):
                    acks = [
                        f"{name}: {_load(fig['ack_under_ingest'])}"
                        for name, fig in (("PostgreSQL", pg), ("SQLite", lite))
                        if "ack_under_ingest" in fig
                    ]
                    out.append(
                        (
                            "signed `/numbers help` on 1 connection while 17 connections of webhooks hit the same "
                            "replica (one core)",
                            "; ".join(acks),
                            "",
                            "",
                            "",
                            "",
                        )
                    )
                out.append(
                    (
                        f"call-URI webhooks (one-channel storm), {n} replica{'s' if n != '1' else ''} on one database, "
                        f"{where} ({replicas['connections']} connections, {replicas['seconds']:.0f} s)",
                        "; ".join(cells),
                        "",
                        ratio,
                        goal,
                        met,
                    )
                )
    storm = report.get("storm", {}).get("storm")
    if storm:
        out.append(
            (
                f"{storm['events']:,} calls over {storm['channels']} channels, scheduled over "
                f"{storm['scheduled_over_s']:.0f} s (wrk, rate-limited)",
                f"sent over {storm['sent_over_s']} s, {storm['acknowledged']:,} of {storm['events']:,} acknowledged "
                f"(p99 {storm['webhooks']['p99_ms']} ms); " + _visible(storm),
                "",
                "",
                storm["goal"],
                _verdict(storm["met"]),
            )
        )
        during = report["storm"]["ack_during_storm"]
        base = report.get("ack", {}).get("1")
        ratio, met = "", None
        if base:
            ratio = f"{during['p99_ms'] / base['baseline_p99_ms']:.2f}× p99"
            met = during["p99_ms"] <= 2 * base["baseline_p99_ms"]
        out.append(
            (
                "signed `/numbers help` on 1 connection while that storm is processed",
                _load(during),
                f"bare verifier, 1 connection: p99 {base['baseline_p99_ms']} ms" if base else "",
                ratio,
                GOALS["ack_storm"],
                _verdict(met),
            )
        )
    latency = report.get("storm", {}).get("latency")
    if latency:
        out.append(
            (
                f"webhook → message visible in Slack, unloaded ({latency['samples']} one at a time, Python client)",
                f"p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms",
                "",
                "",
                "",
                "",
            )
        )
    outbox = report.get("outbox")
    if outbox:
        out.append(
            (
                "outbox against 1 post/s per channel",
                f"{outbox['delivered']}/{outbox['messages']} in {outbox['seconds']} s: "
                f"{outbox['per_channel_per_s']} posts/s per channel, {outbox['sandbox_429s']} × 429",
                "",
                "",
                "",
                "",
            )
        )
    query = report.get("query")
    if query:
        out.append(
            (
                f"history query (a caller's last tracking number, for `/call`) over {query['rows']:,} alerts",
                f"p50 {query['p50_ms']} ms, p99 {query['p99_ms']} ms with the shipped index",
                f"without it: p50 {query['without_index_p50_ms']} ms",
                "",
                "",
                "",
            )
        )
    for figure in report.get("reports", []):
        out.append(
            (
                f"`/numbers report all {figure['days']}d` over {figure['calls']:,} calls (all in those days) to "
                f"{figure['numbers']:,} numbers",
                f"p50 {figure['p50_ms']} ms, slowest of {figure['runs']} {figure['max_ms']} ms "
                f"({figure['stats_rows']:,} `call_days` rows); one number: p50 {figure['one_number_p50_ms']} ms; "
                f"the chart then takes {figure.get('chart_p50_ms', '?')} ms in a worker thread",
                f"the same counts from the calls themselves: p50 {figure['from_calls_p50_ms']:,.0f} ms",
                "",
                figure["goal"],
                _verdict(figure["met"]),
            )
        )
    footprint = report.get("storm", {}).get("footprint")
    if footprint:
        after = footprint.get("rss_after_storm_mb")
        out.append(
            (
                "footprint",
                f"RSS {footprint['rss_idle_mb']} MB idle"
                + (f", {after} MB after the storm" if after is not None else "")
                + f"; start to `/healthz` {footprint['startup_s']} s",
                "",
                "",
                "",
                "",
            )
        )
    return out


def method_text(report: dict[str, Any]) -> str:
    m, how = report["machine"], report["method"]
    return (
        f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['date']} (load average at start "
        f"{m['loadavg_at_start'][0]}); {how['generator']}; {how['pinning']}; baselines in the same run, "
        f"before and after each Switchboard figure (ratio to their mean)"
    )


def print_report(report: dict[str, Any]) -> None:
    print(f"\nSwitchboard bench — {method_text(report)}\n")
    for what, value, base, ratio, goal, met in rows(report):
        print(f"• {what}\n    Switchboard: {value}")
        if base:
            print(f"    baseline:    {base}")
        if ratio:
            print(f"    ratio:       {ratio}")
        if goal:
            print(f"    goal:        {goal} — {met}")
    for note in report["method"]["notes"]:
        print(f"\nNote: {note}")


def readme_table(report: dict[str, Any]) -> str:
    notes = [n for n in report["method"]["notes"] if n.startswith("the /numbers report")]
    lines = [
        f"Last run: {method_text(report)}. Took {report['duration_s']:.0f} s."
        + "".join(f" Note: {n[:1].upper()}{n[1:]}." for n in notes),
        "",
        "| what | Switchboard | baseline (same run) | ratio | goal | met? |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows(report):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return "\n".join(lines)


def update_readme(report: dict[str, Any]) -> None:
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    text = README.read_text()
    if start not in text or end not in text:
        print(f"README.md has no {start} … {end} markers: its table was not updated")
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    README.write_text(f"{head}{start}\n{readme_table(report)}\n{end}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--quick", action="store_true", help="short runs, to check the bench itself works")
    parser.add_argument("--no-readme", action="store_true", help="don't rewrite README.md's table")
    parser.add_argument("--readme-only", action="store_true", help="rewrite README.md's table from results.json")
    parser.add_argument(
        "--reports-only",
        action="store_true",
        help="run only the /numbers report figures and add them to results.json (the rest kept, and said so)",
    )
    parser.add_argument("--only", choices=["replicas"], help="run only this part (results.json is not written)")
    args = parser.parse_args()
    if args.only == "replicas":
        pin_self_to_load_core()
        with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as tmp:
            figure = replicas_bench(tmp, 3 if args.quick else 8)
        print(json.dumps(figure, indent=2))
        for row in rows({"replicas": figure}):
            print(" | ".join(row))
        return
    if args.readme_only:
        update_readme(json.loads((ROOT / "results.json").read_text()))
        return
    if args.reports_only:
        kept = json.loads((ROOT / "results.json").read_text())
        kept["reports"] = [report_bench(1_000_000, n) for n in (100, 1000)]
        m = machine()
        kept["method"]["notes"] = [n for n in kept["method"]["notes"] if not n.startswith("the /numbers report")]
        kept["method"]["notes"].append(
            f"the /numbers report figures come from a later, in-process run ({m['date']}, load average at start "
            f"{m['loadavg_at_start'][0]}); the others from the run above"
        )
        print_report(kept)
        (ROOT / "results.json").write_text(json.dumps(kept, indent=2, ensure_ascii=False) + "\n")
        if not args.no_readme:
            update_readme(kept)
        return
    began = time.monotonic()
    pin_self_to_load_core()
    quick = args.quick
    notes = []
    if not pinning():
        notes.append("server and load could not be pinned to separate cores (taskset missing or one core)")
    use_wrk = wrk_path() is not None
    if not use_wrk:
        notes.append(
            "wrk is not installed (`sudo apt-get install wrk`): ack, ingest and storm figures were skipped, not faked"
        )
        print("bench: " + notes[-1], file=sys.stderr)
    notes.append(
        "webhook → Slack latency uses the Python generator (httpx, one request at a time): each request waits "
        "until Slack shows its message, which wrk can't express. Outbox, history query and report run in-process."
    )
    report: dict[str, Any] = {
        "id": uuid.uuid4().hex[:8],
        "machine": machine(),
        "method": {
            "generator": f"{wrk_version().split(' [')[0]}, 1 thread, Lua-scripted" if use_wrk else "none (no wrk)",
            "pinning": (
                "Switchboard (`switchboard serve`) and baselines on core 0, wrk and the Slack sandbox on core 1 "
                "(taskset)"
                if pinning()
                else "unpinned"
            ),
            "server": "python -m bot.cli serve (uvicorn defaults, shipped log level)",
            "ack_seconds": 2 if quick else 5,
            "ingest_seconds": 3 if quick else 8,
            "signed_requests_per_run": SIGNED,
            "notes": notes,
        },
    }
    visible_limit = 30 if quick else 60
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as tmp:
        if use_wrk:
            report["ack"] = ack_bench(tmp, report["method"]["ack_seconds"])
            report["ingest"] = ingest_bench(tmp, report["method"]["ingest_seconds"], visible_limit)
            report["replicas"] = replicas_bench(tmp, report["method"]["ingest_seconds"])
        report["storm"] = storm_bench(
            tmp,
            events=1000 if quick else 10_000,
            channels=10,
            seconds=2 if quick else 10,
            latency_samples=20 if quick else 100,
            visible_limit=visible_limit,
            use_wrk=use_wrk,
        )
    report["outbox"] = outbox_bench(10, 3 if quick else 10)
    report["query"] = query_bench(50_000 if quick else 1_000_000)
    report["reports"] = [report_bench(50_000 if quick else 1_000_000, n) for n in (100, 1000)]
    report["duration_s"] = round(time.monotonic() - began, 1)
    print_report(report)
    (ROOT / "results.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten to {ROOT / 'results.json'} in {report['duration_s']:.0f} s")
    if not args.no_readme and not quick:
        update_readme(report)


if __name__ == "__main__":
    main()
