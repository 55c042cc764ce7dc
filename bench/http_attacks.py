"""The HTTP attacks of issue 12, run against `switchboard serve` as a separate process, as figures.

    python -m bench.http_attacks [--tree DIR] [--quick]

`make faults` runs `http_attacks()` as one of its checks. `--tree` serves another checkout's code (e.g.
an older commit unpacked with `git archive`) so the same attacks give the figures before a change.
Every attack is bounded in time: a slow client still held after `HOLD_CAP` seconds counts as "held".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bot.sandbox.server import LoopbackServer, free_socket
from bot.sandbox.signing import signature_headers, slash_command_body
from bot.sandbox.slack import SlackSandbox

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
HOLD_CAP = 30.0
TOKEN = "attack-webhook-token"
METRICS_TOKEN = "attack-metrics-token"
CALL = {
    "clientid": "6999",
    "callid": "1",
    "uniqueid": "u-1",
    "bnum": "+61-0290081596",
    "ani": "+61-0412345678",
    "callstatus": "avanser_missed_call",
    "duration": "0",
    "tzdate": "2016-04-12 10:10:10",
}


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _read_status(sock: socket.socket) -> int:
    data = b""
    with contextlib.suppress(OSError):
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0


def flood(port: int, size: int, *, chunked: bool = False, headers: str = "", path: str = "/slack/events") -> int:
    """POST `size` bytes as fast as the server takes them; the status it answered (0: none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n{headers}{framing}\r\n\r\n".encode())
        piece = b"a=" + b"x" * (65536 - 2)
        with contextlib.suppress(OSError):
            for _ in range(size // len(piece)):
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        return _read_status(sock)


def held_for(port: int, head: bytes, drip: bytes) -> float:
    """Send `head`, then one byte of `drip` a second; seconds until the server lets go (capped)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        started = time.monotonic()
        sock.sendall(head)
        sock.settimeout(1)
        i = 0
        while time.monotonic() - started < HOLD_CAP:
            try:
                if not sock.recv(4096):
                    break
                break  # an answer (408) is letting go too
            except TimeoutError:
                pass
            except OSError:
                break
            try:
                sock.sendall(drip[i % len(drip) : i % len(drip) + 1])
            except OSError:
                break
            i += 1
        return round(time.monotonic() - started, 1)


class Served:
    """`python -m bot.cli serve` from `tree`, with Slack played by the sandbox."""

    def __init__(self, tree: Path, workdir: Path, **settings: str) -> None:
        self.slack = SlackSandbox()
        self.slack_server = LoopbackServer(self.slack.asgi(), name="slack").start()
        self.slack.base_url = self.slack_server.url
        sock = free_socket()
        self.port = sock.getsockname()[1]
        sock.close()
        self.db = workdir / "attacks.db"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(tree),
            "SLACK_BOT_TOKEN": self.slack.bot_token,
            "SLACK_SIGNING_SECRET": self.slack.signing_secret,
            "SLACK_API_URL": f"{self.slack_server.url}/api/",
            "SWITCHBOARD_DB": str(self.db),
            "SWITCHBOARD_PORT": str(self.port),
            "SWITCHBOARD_WEBHOOK_TOKEN": TOKEN,
            "SWITCHBOARD_LOG_LEVEL": "ERROR",
            **settings,
        }
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve"],
            env=env,
            cwd=tree,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError("switchboard serve did not start")

    def alive(self) -> bool:
        """The app still answers a signed /numbers help."""
        with contextlib.suppress(httpx.HTTPError):
            return self.slack.command(self.url, "/numbers", "help")[0].status_code == 200
        return False

    def stop(self) -> None:
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(15)
        if self.process.poll() is None:
            self.process.kill()
        self.slack_server.stop()


def oversize(served: Served, size_mb: int) -> dict[str, Any]:
    pid = served.process.pid
    before = rss_mb(pid)
    guessed = "".join(f"{k}: {v}\r\n" for k, v in signature_headers("guess", "x").items())
    with ThreadPoolExecutor(4) as pool:
        declared = list(pool.map(lambda _: flood(served.port, size_mb * MB), range(4)))
        chunked = list(pool.map(lambda _: flood(served.port, size_mb * MB, chunked=True, headers=guessed), range(4)))
        hooks = list(pool.map(lambda _: flood(served.port, 4 * MB, path=f"/hooks/exotel/call?token={TOKEN}"), range(4)))
    time.sleep(0.5)
    return {
        "attack": f"4 × {size_mb} MB unsigned POSTs to /slack/events (declared and chunked), 4 × 4 MB to a hook",
        "statuses": sorted(set(declared + chunked + hooks)),
        "rss_mb": f"{before} -> {rss_mb(pid)} (peak {rss_mb(pid, 'VmHWM')})",
        "rss_growth_mb": round(rss_mb(pid) - before, 1),
        "still_answers": served.alive(),
    }


def slow_clients(served: Served) -> dict[str, Any]:
    body_head = b"POST /hooks/exotel/call?token=%s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" % TOKEN.encode()
    with ThreadPoolExecutor(2) as pool:
        body = pool.submit(held_for, served.port, body_head, b"x")
        head = pool.submit(held_for, served.port, b"GET /healthz HTTP/1.1\r\n", b"X-A: b\r\n")
        return {
            "attack": "headers then a body dripped 1 byte/s; a head dripped 1 byte/s",
            "body_drip_held_s": body.result(),
            "head_drip_held_s": head.result(),
            "cap_s": HOLD_CAP,
        }


def deep_json(served: Served) -> dict[str, Any]:
    statuses = {}
    for depth in (200_000, 30_000):
        body = b"[" * depth + b"]" * depth
        answer = httpx.post(f"{served.url}/hooks/exotel/call", params={"token": TOKEN}, content=body, timeout=30)
        statuses[f"depth_{depth}"] = answer.status_code
    return {"attack": "JSON arrays nested 200,000 and 30,000 deep to /hooks/exotel/call", **statuses}


def replays(served: Served) -> dict[str, Any]:
    body = slash_command_body(
        "/numbers", "help", user_id="U0REP", channel_id="C0SALES", response_url="https://x", trigger_id="t1"
    )
    headers = {
        **signature_headers(served.slack.signing_secret, body),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    answers = [httpx.post(f"{served.url}/slack/events", content=body, headers=headers) for _ in range(3)]
    return {
        "attack": "the same signed /numbers help sent 3× within its 5 minutes",
        "statuses": [a.status_code for a in answers],
        "processed": sum(1 for a in answers if a.content),
    }


def held_lock(served: Served, seconds: float = 6.0) -> dict[str, Any]:
    held = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(served.db, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)

    def hook(n: int) -> tuple[float, int]:
        started = time.monotonic()
        try:
            status = httpx.get(
                f"{served.url}/hooks/avanser/call",
                params={**CALL, "uniqueid": f"lock-{n}", "token": TOKEN},
                timeout=20,
            ).status_code
        except httpx.HTTPError:
            status = 0
        return time.monotonic() - started, status

    def ack(_: int) -> tuple[float, int]:
        started = time.monotonic()
        status = served.slack.command(served.url, "/numbers", "help")[0].status_code
        return time.monotonic() - started, status

    def healthz() -> tuple[float, int]:
        started = time.monotonic()
        return time.monotonic() - started, httpx.get(f"{served.url}/healthz", timeout=20).status_code

    with ThreadPoolExecutor(16) as pool:
        hook_futures = [pool.submit(hook, n) for n in range(10)]
        time.sleep(0.3)  # the webhooks are in; now the acks and a health check arrive
        ack_futures = [pool.submit(ack, n) for n in range(5)]
        health_future = pool.submit(healthz)
        hooks = [f.result() for f in hook_futures]
        acks = [f.result() for f in ack_futures]
        health = health_future.result()[1]
    holder.join()
    again = [hook(n)[1] for n in range(10)]
    with sqlite3.connect(served.db) as conn:
        stored = conn.execute("SELECT COUNT(*) FROM inbox WHERE dedup_key LIKE '%lock-%'").fetchone()[0]
    return {
        "attack": f"another connection holds BEGIN IMMEDIATE {seconds:g} s; meanwhile 10 webhooks, 5 /numbers help",
        "ack_max_s": round(max(t for t, _ in acks), 2),
        "ack_statuses": sorted({s for _, s in acks}),
        "webhook_statuses": sorted({s for _, s in hooks}),
        "webhook_max_s": round(max(t for t, _ in hooks), 2),
        "healthz_during": health,
        "resent_after": sorted(set(again)),
        "stored_after": stored,
    }


def metrics(served: Served) -> dict[str, Any]:
    anyone = httpx.get(f"{served.url}/metrics").status_code
    bearer = httpx.get(f"{served.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).status_code
    return {"attack": "GET /metrics without the token", "anyone": anyone, "with_token": bearer}


def http_attacks(quick: bool = False, tree: Path = ROOT) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        served = Served(tree, Path(tmp), SWITCHBOARD_METRICS_TOKEN=METRICS_TOKEN)
        try:
            parts = {
                "oversize": oversize(served, 10 if quick else 50),
                "slow": slow_clients(served),
                "deep_json": deep_json(served),
                "replay": replays(served),
                "lock": held_lock(served),
                "metrics": metrics(served),
            }
        finally:
            served.stop()
    o, s, d, r, lk, m = parts.values()
    passed = (
        set(o["statuses"]) <= {401, 413}
        and o["rss_growth_mb"] < 30
        and o["still_answers"]
        and s["body_drip_held_s"] <= 12
        and s["head_drip_held_s"] <= 12
        and d["depth_200000"] in (400, 413)
        and d["depth_30000"] == 400
        and r["processed"] == 1
        and lk["ack_max_s"] < 1
        and lk["webhook_statuses"] == [503]
        and lk["resent_after"] == [200]
        and lk["stored_after"] == 10
        and m["anyone"] == 401
        and m["with_token"] == 200
    )
    return {"name": "HTTP attacks on switchboard serve (issue 12)", **parts, "pass": passed}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http_attacks")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose code `serve` runs")
    parser.add_argument("--quick", action="store_true", help="10 MB floods instead of 50 MB")
    args = parser.parse_args()
    result = http_attacks(args.quick, args.tree.resolve())
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["pass"] else 1)


if __name__ == "__main__":
    main()
