"""The bare baselines `make bench` measures Switchboard against: `python -m bench.servers KIND PORT ARG`.

    baseline     a bare Starlette endpoint that verifies the Slack signature with slack-sdk's
                 SignatureVerifier and answers — the floor for "ack a slash command" (ARG: signing secret)
    insert       a bare Starlette endpoint doing one SQLite insert, with the app store's pragmas (busy_timeout,
                 WAL, synchronous=NORMAL, foreign_keys) — the floor for "ingest a webhook" (ARG: database path)

Both run under uvicorn with its defaults, as `switchboard serve` runs the app itself (which the bench
starts as `python -m bot.cli serve`).
"""

from __future__ import annotations

import sqlite3
import sys
import time

import uvicorn
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.store import BUSY_TIMEOUT_MS


def baseline_app(signing_secret: str) -> Starlette:
    verifier = SignatureVerifier(signing_secret)

    async def events(request: Request) -> Response:
        body = (await request.body()).decode()
        if not verifier.is_valid_request(body, dict(request.headers)):
            return Response(status_code=401)
        return JSONResponse({"response_type": "ephemeral", "text": "ok"})

    return Starlette(routes=[Route("/slack/events", events, methods=["POST"])])


def insert_app(path: str) -> Starlette:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, key TEXT UNIQUE, payload TEXT, at REAL)")

    async def hook(request: Request) -> Response:
        params = dict(request.query_params)
        conn.execute(
            "INSERT OR IGNORE INTO events (key, payload, at) VALUES (?, ?, ?)",
            (params.get("uniqueid"), repr(params), time.time()),
        )
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/hooks/avanser/call", hook, methods=["GET"])])


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "baseline":
        app = baseline_app(sys.argv[3])
    elif kind == "insert":
        app = insert_app(sys.argv[3])
    else:
        raise SystemExit(f"unknown server kind {kind!r}")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
