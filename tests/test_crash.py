"""SIGKILL in the middle of a webhook burst: every acknowledged event is posted exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from bot.domain.routing import set_group_route
from bot.sandbox.server import LoopbackServer, free_socket
from bot.sandbox.slack import SlackSandbox
from bot.store import Store
from tests.helpers import AVANSER_CALL, wait_for

EVENTS = 400
CHANNELS = 4


def caller(n: int) -> str:
    return f"0410 2{n:05d}"[:4] + " " + f"2{n:05d}"[:3] + " " + f"{n:05d}"[2:]


class Server:
    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env, self.port = env, port
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        wait_for(self.healthy, timeout=30, interval=0.05)

    def healthy(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(20)


@pytest.mark.slow
@pytest.mark.both_backends
def test_sigkill_mid_burst_loses_nothing_and_doubles_nothing(tmp_path: Path, backend: str) -> None:
    slack = SlackSandbox(channel_interval=1.0)
    with LoopbackServer(slack.asgi(), name="slack") as slack_server:
        slack.base_url = slack_server.url
        db = backend  # a SQLite file, or a PostgreSQL schema of its own
        store = Store(db)  # the routes exist before the app starts, as they would in production
        for c in range(CHANNELS):
            set_group_route(store, f"g{c}", f"C0CRASH{c}", by="U0ADMIN")
        store.close()
        sock = free_socket()
        port = sock.getsockname()[1]
        sock.close()
        server = Server(
            {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "SLACK_BOT_TOKEN": slack.bot_token,
                "SLACK_SIGNING_SECRET": slack.signing_secret,
                "SLACK_API_URL": f"{slack_server.url}/api/",
                "SWITCHBOARD_DB": db,
                "SWITCHBOARD_PORT": str(port),
                "SWITCHBOARD_WEBHOOK_TOKEN": "crash-test",
                "SWITCHBOARD_ALERTS_CHANNEL": "C0ALERTS",
                "SWITCHBOARD_LOG_LEVEL": "WARNING",
            },
            port,
        )
        server.start()
        acked: set[int] = set()
        url = f"http://127.0.0.1:{port}/hooks/avanser/call"

        def burst(numbers: range) -> None:
            with httpx.Client(timeout=2) as client:
                for n in numbers:
                    params = {
                        **AVANSER_CALL,
                        "uniqueid": f"ECS-crash-{n}",
                        "ani": "+61-0" + caller(n).replace(" ", "")[1:],
                        "custom_group": f"g{n % CHANNELS}",
                        "token": "crash-test",
                    }
                    try:
                        if client.get(url, params=params).status_code == 200:
                            acked.add(n)
                    except httpx.HTTPError:
                        pass  # not acknowledged: the provider would send it again later

        sender = threading.Thread(target=burst, args=(range(EVENTS),))
        sender.start()
        wait_for(lambda: len(acked) >= EVENTS // 3, timeout=30, interval=0.005)
        server.kill()
        sender.join(60)
        killed_at = len(acked)
        server.start()
        burst(range(EVENTS))  # the provider retries what was not acknowledged (replays are deduplicated)
        try:

            def visible() -> list[str]:
                return [json.dumps(m, ensure_ascii=False) for m in slack.all_messages()]

            wait_for(lambda: all(any(caller(n) in m for m in visible()) for n in acked), timeout=60, interval=0.2)
            time.sleep(2)  # anything doubled would show up by now
        finally:
            server.stop()
        shown = visible()
        lost = [n for n in acked if not any(caller(n) in m for m in shown)]
        doubled = [n for n in range(EVENTS) if sum(caller(n) in m for m in shown) > 1]
        assert 0 < killed_at < EVENTS
        assert len(acked) == EVENTS
        assert lost == [] and doubled == []
        assert slack.peak_posts_per_second() <= 1
