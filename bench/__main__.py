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
from pathlib import Path
from typing import Any

import httpx

from bench.load import Result, run_load
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


def signed_commands(url: str, secret: str, response_url: str, count: int) -> list[tuple[str, dict[str, str]]]:
    out = []
    for i in range(count):
        body = slash_command_body(
            "/numbers",
            "help",
            user_id="U0REP",
            channel_id="C0SALES",
            response_url=response_url,
            trigger_id=f"{i}.bench",
        )
        out.append((body, {"Content-Type": "application/x-www-form-urlencoded", **signature_headers(secret, body)}))
    return out


def ack_bench(requests: int) -> dict[str, Any]:
    """Signed `/numbers help` against the app (both Bolt modes) and against the bare baseline."""
    slack = SlackSandbox()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, LoopbackServer(slack.asgi(), name="slack") as slack_server:
        slack.base_url = slack_server.url
        env = {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": slack.signing_secret,
            "SLACK_API_URL": f"{slack_server.url}/api/",
            "SWITCHBOARD_WEBHOOK_TOKEN": "bench",
        }
        for kind in ("baseline", "app", "app-default"):
            extra = (slack.signing_secret,) if kind == "baseline" else ()
            process, url = start_server(kind, {**env, "SWITCHBOARD_DB": f"{tmp}/{kind}.db"}, *extra)
            try:
                for concurrency in (1, 16):
                    bodies = signed_commands(
                        url, slack.signing_secret, slack.new_response_url(), requests + concurrency
                    )

                    def build(i: int, bodies=bodies, url=url) -> httpx.Request:
                        body, headers = bodies[i % len(bodies)]
                        return httpx.Request("POST", f"{url}/slack/events", content=body, headers=headers)

                    def ok(r: httpx.Response) -> bool:
                        return r.status_code == 200 and b"response_type" in r.content

                    result = asyncio.run(run_load(build, requests, concurrency, ok, timeout=120))
                    results[f"{kind}@{concurrency}"] = summarize(result)
            finally:
                stop_server(process)
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
    }
    print_report(report)
    (ROOT / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {ROOT / 'results.json'}")


if __name__ == "__main__":
    main()
