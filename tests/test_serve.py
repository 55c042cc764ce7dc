"""`switchboard serve` as a user runs it: a subprocess on a real port, with Slack played by the sandbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.sandbox.server import LoopbackServer, free_socket
from bot.sandbox.slack import SlackSandbox


@pytest.mark.slow
def test_serve_starts_answers_healthz_and_slack(tmp_path: Path) -> None:
    slack = SlackSandbox()
    with LoopbackServer(slack.asgi(), name="slack") as slack_server:
        slack.base_url = slack_server.url
        sock = free_socket()
        port = sock.getsockname()[1]
        sock.close()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": slack.signing_secret,
            "SLACK_API_URL": f"{slack_server.url}/api/",
            "SWITCHBOARD_DB": str(tmp_path / "serve.db"),
            "SWITCHBOARD_PORT": str(port),
            "SWITCHBOARD_WEBHOOK_TOKEN": "hook-secret-value",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            health = None
            while time.monotonic() < deadline:
                try:
                    health = httpx.get(f"{url}/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            assert health is not None, "serve did not answer /healthz within 30 s"
            assert health.status_code == 200
            assert health.json()["ok"] is True and health.json()["store"] == "writable"
            answer, _ = slack.command(url, "/numbers", "help")
            assert answer.status_code == 200 and answer.json()["text"].startswith("/numbers")
            refused = httpx.get(f"{url}/hooks/avanser/call", params={"uniqueid": "u1", "token": "hook-secret-valuX"})
            assert refused.status_code == 401
            assert (tmp_path / "serve.db").exists()
        finally:
            process.send_signal(signal.SIGINT)
            output, _ = process.communicate(timeout=20)
        assert process.returncode == 0, output
        assert "Switchboard listening on" in output
        assert slack.bot_token not in output and "hook-secret-value" not in output
