"""`make bench`: measurements with a baseline from the same run, printed and kept in bench/results.json.

Everything runs on loopback; each part is bounded in requests and seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.load import Result, run_load
from bot.sandbox.avanser import SEED_CALL
from bot.sandbox.server import LoopbackServer, free_socket
from bot.sandbox.signing import signature_headers, slash_command_body
from bot.sandbox.slack import SlackSandbox
from bot.sandbox.stack import Stack

ROOT = Path(__file__).resolve().parent


def start_server(kind: str, env: dict[str, str], *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.servers", kind, str(port), *extra],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/", timeout=0.5)
            return process, url
        except httpx.TransportError:
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"{kind} server exited: {stderr[-2000:]}") from None
            time.sleep(0.05)
    raise TimeoutError(f"{kind} server did not start")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def signed_commands(
    secret: str, new_response_url: Callable[[], str], count: int, text: str = "help"
) -> list[tuple[str, dict[str, str]]]:
    """Signed slash commands, each with its own response_url (Slack's take 5 posts each)."""
    out = []
    for i in range(count):
        body = slash_command_body(
            "/numbers",
            text,
            user_id="U0REP",
            channel_id="C0SALES",
            response_url=new_response_url(),
            trigger_id=f"{i}.bench",
        )
        out.append((body, {"Content-Type": "application/x-www-form-urlencoded", **signature_headers(secret, body)}))
    return out


def ack_bench(requests: int) -> dict[str, Any]:
    """Signed `/numbers help`, and `/numbers search mobile` whose AVANSER call takes 2 s, against the app (both
    Bolt modes), beside a bare endpoint that only verifies the signature."""
    slack = SlackSandbox()
    results: dict[str, Any] = {}
    # The slow AVANSER runs in a process of its own, like the app: in this process it would share the GIL
    # with the load generator and slow the measurement, not the app.
    providers = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "sandbox", "--provider-latency", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert providers.stdout is not None
    printed = [providers.stdout.readline() for _ in range(14)]
    provider_env = {
        k: v for k, v in (line.strip().split("=", 1) for line in printed if "=" in line) if k.startswith("AVANSER_")
    }
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer(slack.asgi(), name="slack") as slack_server:
        slack.base_url = slack_server.url
        env = {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": slack.signing_secret,
            "SLACK_API_URL": f"{slack_server.url}/api/",
            "SWITCHBOARD_WEBHOOK_TOKEN": "bench",
            "SWITCHBOARD_LOG_LEVEL": "ERROR",
            **provider_env,
        }
        plan = [
            ("baseline", "help", (1, 16)),
            ("app", "help", (1, 16)),
            ("app-default", "help", (1, 16)),
            ("app", "search mobile", (16,)),
        ]
        for kind, text, connections in plan:
            extra = (slack.signing_secret,) if kind == "baseline" else ()
            process, url = start_server(kind, {**env, "SWITCHBOARD_DB": f"{tmp}/{kind}-{len(results)}.db"}, *extra)
            try:
                for concurrency in connections:
                    bodies = signed_commands(slack.signing_secret, slack.new_response_url, requests + concurrency, text)

                    def build(i: int, bodies=bodies, url=url) -> httpx.Request:
                        body, headers = bodies[i % len(bodies)]
                        return httpx.Request("POST", f"{url}/slack/events", content=body, headers=headers)

                    def ok(r: httpx.Response) -> bool:
                        return r.status_code == 200 and b"response_type" in r.content

                    result = asyncio.run(run_load(build, requests, concurrency, ok, timeout=120))
                    label = kind if text == "help" else "app-slow-provider"
                    results[f"{label}@{concurrency}"] = summarize(result)
            finally:
                stop_server(process)
    stop_server(providers)  # type: ignore[arg-type]
    return results


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


CALL = {k: v for k, v in SEED_CALL.items() if k not in ("uniqueid", "callid", "ani")} | {"adname": "Bench ad"}


def caller(n: int) -> str:
    """A distinct AU mobile per event, as the seed writes it, and as Slack will show it."""
    digits = f"{n:06d}"
    return f"+61-0412{digits}", f"0412 {digits[:3]} {digits[3:]}"


class AppUnderTest:
    """Switchboard as a separate process against this process's Slack sandbox, with group routes seeded."""

    def __init__(self, tmp: str, slack: SlackSandbox, slack_url: str, groups: int) -> None:
        from bot.domain.routing import set_group_route
        from bot.store import Store

        db = f"{tmp}/app-{uuid.uuid4().hex[:6]}.db"
        store = Store(db)
        for g in range(groups):
            set_group_route(store, f"g{g}", f"C0G{g}", by="bench")
        store.close()
        self.env = {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": slack.signing_secret,
            "SLACK_API_URL": f"{slack_url}/api/",
            "SWITCHBOARD_WEBHOOK_TOKEN": "bench",
            "SWITCHBOARD_DB": db,
            "SWITCHBOARD_ALERTS_CHANNEL": "C0ALERTS",
            "SWITCHBOARD_LOG_LEVEL": "ERROR",
        }
        started = time.monotonic()
        self.process, self.url = start_server("app", self.env)
        self.startup_s = time.monotonic() - started

    def webhook(self, n: int, group: int | None) -> httpx.Request:
        ani, _ = caller(n)
        params = {**CALL, "uniqueid": f"ECS-bench-{n}", "callid": str(n), "ani": ani, "token": "bench"}
        if group is not None:
            params["custom_group"] = f"g{group}"
        return httpx.Request("GET", f"{self.url}/hooks/avanser/call", params=params)

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        stop_server(self.process)


def ingest_bench(requests: int) -> dict[str, Any]:
    """Call-URI webhooks (unique ids) at 16 connections, against a bare one-insert Starlette endpoint."""
    results: dict[str, Any] = {}
    slack = SlackSandbox()
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer(slack.asgi(), name="slack") as slack_server:
        slack.base_url = slack_server.url
        process, url = start_server("insert", {}, f"{tmp}/baseline.db")
        try:

            def build_base(i: int) -> httpx.Request:
                return httpx.Request("GET", f"{url}/hooks/avanser/call", params={**CALL, "uniqueid": f"b{i}"})

            base = asyncio.run(run_load(build_base, requests, 16, lambda r: r.status_code == 200, timeout=120))
            results["baseline"] = summarize(base)
        finally:
            stop_server(process)
        app = AppUnderTest(tmp, slack, slack_server.url, groups=10)
        try:
            result = asyncio.run(
                run_load(lambda i: app.webhook(i, i % 10), requests, 16, lambda r: r.status_code == 200, timeout=120)
            )
            results["app"] = summarize(result)
        finally:
            app.stop()
    return results


def latency_bench(samples: int) -> dict[str, Any]:
    """Webhook → message visible in the Slack sandbox, one at a time, each to a quiet channel."""
    slack = SlackSandbox(channel_interval=1.0)
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer(slack.asgi(), name="slack") as slack_server:
        slack.base_url = slack_server.url
        app = AppUnderTest(tmp, slack, slack_server.url, groups=samples)
        latencies = []
        try:
            with httpx.Client(timeout=10) as client:
                for n in range(samples):
                    request = app.webhook(n, n)
                    start = time.perf_counter()
                    client.send(request)
                    while not slack.channel_messages(f"C0G{n}"):
                        time.sleep(0.0005)
                    latencies.append((time.perf_counter() - start) * 1000)
        finally:
            app.stop()
    latencies.sort()
    return {
        "samples": samples,
        "p50_ms": round(latencies[len(latencies) // 2], 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 2),
    }


def storm_bench(events: int, channels: int, seconds: float) -> dict[str, Any]:
    """`events` missed calls over `channels` channels within `seconds`, Slack enforcing 1 post/s per channel."""
    slack = SlackSandbox(channel_interval=1.0)
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer(slack.asgi(), name="slack") as slack_server:
        slack.base_url = slack_server.url
        app = AppUnderTest(tmp, slack, slack_server.url, groups=channels)
        rss_idle = app.rss_mb()
        acked = 0
        try:
            with httpx.Client(timeout=10) as client:
                start = time.monotonic()
                for n in range(events):
                    due = start + n * seconds / events
                    if time.monotonic() < due:
                        time.sleep(due - time.monotonic())
                    if client.send(app.webhook(n, n % channels)).status_code == 200:
                        acked += 1
                last_webhook = time.monotonic()
            wanted = [caller(n)[1] for n in range(events)]

            def shown() -> list[str]:
                return [json.dumps(m, ensure_ascii=False) for m in slack.all_messages()]

            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                texts = shown()
                if all(any(w in t for t in texts) for w in wanted):
                    break
                time.sleep(0.2)
            visible_after = time.monotonic() - last_webhook
            time.sleep(1.5)
            texts = shown()
            counts = [sum(w in t for t in texts) for w in wanted]
            rss_after = app.rss_mb()
        finally:
            app.stop()
    return {
        "events": events,
        "channels": channels,
        "sent_over_s": round(last_webhook - start, 2),
        "acked": acked,
        "all_visible_after_s": round(visible_after, 2),
        "peak_posts_per_s_per_channel": slack.peak_posts_per_second(),
        "messages": len(slack.all_messages()),
        "lost": counts.count(0),
        "duplicated": sum(1 for c in counts if c > 1),
        "rss_idle_mb": round(rss_idle, 1),
        "rss_after_mb": round(rss_after, 1),
        "startup_s": round(app.startup_s, 2),
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


def summarize(result: Result) -> dict[str, Any]:
    return {
        "requests": result.requests,
        "errors": result.errors,
        "rps": round(result.rps, 1),
        "p50_ms": round(result.p50, 2),
        "p99_ms": round(result.p99, 2),
    }


def print_report(report: dict[str, Any]) -> None:
    print(f"\nSwitchboard bench — {report['machine']}, {report['date']}\n")
    ack = report["ack"]
    print("Ack: signed `/numbers help`, requests per run:", ack["baseline@1"]["requests"])
    print(f"{'server':<34}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'vs baseline':>22}")
    for kind, label in (
        ("baseline", "bare Starlette + SignatureVerifier"),
        ("app", "Switchboard (as shipped)"),
        ("app-default", "Switchboard, Bolt default mode"),
    ):
        for concurrency in (1, 16):
            row = ack[f"{kind}@{concurrency}"]
            base = ack[f"baseline@{concurrency}"]
            ratio = (
                ""
                if kind == "baseline"
                else (f"{row['rps'] / base['rps']:.2f}× rps, {row['p99_ms'] / base['p99_ms']:.2f}× p99")
            )
            print(
                f"{label:<34}{concurrency:>6}{row['rps']:>10.1f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{ratio:>22}"
            )
    ingest = report["ingest"]
    base, app = ingest["baseline"], ingest["app"]
    print(f"\nIngest: AVANSER call-URI webhooks, 16 connections, {app['requests']} requests")
    print(
        f"{'bare Starlette + one SQLite insert':<34}{16:>6}{base['rps']:>10.1f}"
        f"{base['p50_ms']:>9.2f}{base['p99_ms']:>9.2f}"
    )
    print(
        f"{'Switchboard /hooks/avanser/call':<34}{16:>6}{app['rps']:>10.1f}{app['p50_ms']:>9.2f}{app['p99_ms']:>9.2f}"
        f"{app['rps'] / base['rps']:>10.2f}× rps"
    )
    latency = report["latency"]
    print(
        f"\nLatency, webhook → message visible in Slack (unloaded, {latency['samples']} samples): "
        f"p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms"
    )
    storm = report["storm"]
    print(
        f"\nStorm: {storm['events']} missed calls over {storm['channels']} channels in {storm['sent_over_s']} s "
        f"({storm['acked']} acknowledged), Slack enforcing 1 post/s per channel: every call visible "
        f"{storm['all_visible_after_s']} s after the last webhook, in {storm['messages']} messages; peak "
        f"{storm['peak_posts_per_s_per_channel']} post/s per channel; lost {storm['lost']}, duplicated "
        f"{storm['duplicated']}"
    )
    print(
        f"Footprint: RSS {storm['rss_idle_mb']} MB idle, {storm['rss_after_mb']} MB after the storm; "
        f"start to /healthz 200 in {storm['startup_s']} s"
    )
    slow = ack.get("app-slow-provider@16")
    if slow:
        base = ack["baseline@16"]
        print(
            f"{'`/numbers search` (AVANSER takes 2 s)':<34}{16:>6}{slow['rps']:>10.1f}{slow['p50_ms']:>9.2f}"
            f"{slow['p99_ms']:>9.2f}{slow['rps'] / base['rps']:>10.2f}× rps"
        )
    query = report.get("query")
    if query:
        print(
            f"\nHistory query (a caller's last tracking number, for /call) over {query['rows']:,} alerts: "
            f"p50 {query['p50_ms']} ms, p99 {query['p99_ms']} ms with the shipped index "
            f"(without it: p50 {query['without_index_p50_ms']} ms); database {query['db_mb']} MB"
        )
    out = report["outbox"]
    print(
        f"\nOutbox against a sandbox enforcing 1 post/s per channel: {out['delivered']}/{out['messages']} "
        f"delivered over {out['seconds']} s = {out['messages_per_s']} msg/s "
        f"({out['per_channel_per_s']} per channel per s); peak {out['peak_posts_per_s_per_channel']} post/s "
        f"in any channel; {out['sandbox_429s']} × 429"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="small counts, to check the bench itself runs")
    args = parser.parse_args()
    requests = 200 if args.quick else args.requests
    report = {
        "id": uuid.uuid4().hex[:8],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "ack": ack_bench(requests),
        "outbox": outbox_bench(10, 3 if args.quick else 10),
        "ingest": ingest_bench(300 if args.quick else 2000),
        "latency": latency_bench(20 if args.quick else 100),
        "query": query_bench(50_000 if args.quick else 1_000_000),
        "storm": storm_bench(100 if args.quick else 1000, 10, 2 if args.quick else 10),
    }
    print_report(report)
    (ROOT / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {ROOT / 'results.json'}")


if __name__ == "__main__":
    main()
