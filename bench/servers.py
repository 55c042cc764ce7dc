"""The servers `make bench` measures, each run as its own process: `python -m bench.servers KIND PORT`.

    app          Switchboard itself (create_app), Bolt with process_before_response (as shipped)
    app-default  the same, with Bolt's default async mode (acks polled every 10 ms)
    baseline     a bare Starlette endpoint that verifies the Slack signature with slack-sdk's
                 SignatureVerifier and answers — the floor for "ack a slash command"
    insert       a bare Starlette endpoint doing one SQLite insert (WAL, synchronous=NORMAL)

Settings for `app*` come from the environment (the bench points them at its Slack sandbox).
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
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
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
    if kind in ("app", "app-default"):
        from bot.settings import load_settings
        from bot.web import create_app

        app = create_app(load_settings(env_file=None), process_before_response=(kind == "app"))
    elif kind == "baseline":
        app = baseline_app(sys.argv[3])
    elif kind == "insert":
        app = insert_app(sys.argv[3])
    else:
        raise SystemExit(f"unknown server kind {kind!r}")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
