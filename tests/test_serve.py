"""`switchboard serve` as a user runs it: a subprocess on a real port, with Slack played by the sandbox."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.sandbox.server import LoopbackServer, free_socket
from bot.sandbox.slack import SlackSandbox

ROOT = Path(__file__).resolve().parent.parent


def raw(port: int, request: bytes) -> bytes:
    """Send `request` on a raw socket and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        return data


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
            "PYTHONPATH": str(ROOT),  # this checkout, not whichever one the venv was installed from
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
            # serve's own limits: a head over 64 KB, a declared body over the cap, both refused unread.
            huge_head = raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 100_000 + b"\r\n\r\n")
            assert huge_head.startswith(b"HTTP/1.1 431 ")
            too_big = raw(port, b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 52428800\r\n\r\n")
            assert too_big.startswith(b"HTTP/1.1 413 ")
        finally:
            process.send_signal(signal.SIGINT)
            output, _ = process.communicate(timeout=20)
        assert process.returncode == 0, output
        assert "Switchboard listening on" in output
        assert output.count("SWITCHBOARD_METRICS_TOKEN is not set") == 1
        assert slack.bot_token not in output and "hook-secret-value" not in output
