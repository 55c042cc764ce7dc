"""The ASGI app: Slack's requests, health, metrics and the telco webhooks, on one Starlette server.

    POST /slack/events   every Slack request (commands, interactivity, events), through Bolt
    GET  /slack/install  with SLACK_CLIENT_ID/SECRET: the "Add to Slack" page (Bolt's OAuth flow, bot.oauth)
    GET  /slack/oauth_redirect   where Slack sends the installer back: the install is completed and saved
    GET  /healthz        200 {"ok": true, ...} after committing a write to the store, else 503
    GET  /metrics        Prometheus text; with SWITCHBOARD_METRICS_TOKEN, only for `Bearer <token>`
    /hooks/*             telco webhooks (bot.hooks)

Every request passes `bot.guard.Guard` first: body caps, a body deadline, Slack's signature and
replays are checked there, before any route reads or parses anything.

With SLACK_APP_TOKEN set, the same Bolt app also connects to Slack in Socket Mode.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.domain import alerts, feed, home, numbers, people, reports, vn, workspace
from bot.guard import Guard
from bot.hooks import HOOKS, hook_routes
from bot.services import Services
from bot.settings import Settings
from bot.slack_app import build_bolt_app
from bot.workspaces import team_scope

log = logging.getLogger(__name__)


def wire_domain(services: Services) -> None:
    """Each domain room's inbox handlers, the jobs it rebuilds from SQLite when the app starts, and the App Home's
    renderer (the outbox renders a person's Home when it sends it)."""
    for room in (alerts, numbers, vn):
        for event_type, handler in room.inbox_handlers(services).items():
            services.inbox.on(event_type, handler)
    services.outbox.home_renderer = lambda user: home.view_for(services, user)
    services.on_start(lambda: numbers.rebuild_polls(services))
    services.on_start(lambda: vn.rebuild(services))
    services.on_start(lambda: alerts.rebuild_escalations(services))
    services.on_start(lambda: people.learn_workspace(services))
    services.on_start(lambda: feed.schedule(services))
    services.on_start(lambda: reports.schedule_weekly(services))
    services.on_start(lambda: workspace.schedule_purge(services))


def shared_replays(services: Services) -> Callable[[str, float], Awaitable[bool]]:
    """Several replicas: a signed Slack request replayed to another replica is refused there too (the signature
    is recorded in the shared database until it expires). If the database can't say, the local check stands."""
    calls = 0

    async def first_time(signature: str, expires: float) -> bool:
        nonlocal calls
        calls += 1
        try:
            if calls % 200 == 0:
                await services.store.aexecute("DELETE FROM slack_signatures WHERE expires_at < ?", (time.time(),))
            cursor = await services.store.aexecute(
                "INSERT OR IGNORE INTO slack_signatures (signature, expires_at) VALUES (?, ?)", (signature, expires)
            )
        except sqlite3.Error as exc:
            log.warning("replay check: the database could not be asked (%s); this replica's own check stands", exc)
            return True
        return bool(cursor.rowcount)

    return first_time


def create_app(
    settings: Settings, services: Services | None = None, *, process_before_response: bool = True
) -> Starlette:
    """Build the whole web app; the store is opened now, network clients start with the server."""
    services = services or Services.create(settings)
    wire_domain(services)
    bolt = build_bolt_app(services, process_before_response=process_before_response)
    handler = AsyncSlackRequestHandler(bolt)
    started = time.time()

    async def slack_events(request: Request) -> Response:
        # Many workspaces: Bolt's middleware enters the request's workspace; it ends with the request.
        with team_scope(None):
            response = await handler.handle(request)
        services.metrics.slack_requests.labels(str(response.status_code)).inc()
        return response

    async def slack_install(request: Request) -> Response:
        if bolt.oauth_flow is None:
            return JSONResponse(
                {
                    "ok": False,
                    "error": "Switchboard serves one workspace: SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are not set",
                },
                status_code=404,
            )
        return await handler.handle(request)

    async def healthz(request: Request) -> Response:
        problem = services.store.write_problem()
        writable = problem is None
        body = {
            "ok": writable,
            "store": "writable" if writable else f"not writable: {problem}",
            "schema_version": services.store.schema_version() if writable else None,
            "outbox_pending": services.outbox.pending_count() if writable else None,
            "database": services.store.kind,
            "replica": services.scheduler.identity,
            "scheduler": "leader" if services.scheduler.leading else "follower",
            "uptime_s": round(time.time() - started, 1),
        }
        return JSONResponse(body, status_code=200 if writable else 503)

    metrics_token = (settings.metrics_token.get_secret_value() if settings.metrics_token else "").encode() or None

    async def metrics(request: Request) -> Response:
        if metrics_token is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), metrics_token):
                return JSONResponse(
                    {"ok": False, "error": "unauthorized"},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="switchboard metrics"'},
                )
        unrouted = services.store.execute("SELECT COUNT(*) FROM inbox WHERE status = 'unrouted'").fetchone()
        services.metrics.inbox_unrouted.set(unrouted[0])
        services.metrics.outbox_pending.set(services.outbox.pending_count())
        return Response(services.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if metrics_token is None:
            log.warning("SWITCHBOARD_METRICS_TOKEN is not set: /metrics answers anyone who can reach this port")
        await services.start()
        socket_mode = None
        if settings.slack_app_token is not None:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            socket_mode = AsyncSocketModeHandler(bolt, settings.slack_app_token.get_secret_value())
            await socket_mode.connect_async()
            log.info("connected to Slack in Socket Mode")
        try:
            yield
        finally:
            if socket_mode is not None:
                await socket_mode.close_async()
            await services.stop()

    routes = [
        Route("/slack/events", slack_events, methods=["POST"]),
        Route("/slack/install", slack_install, methods=["GET"]),
        Route("/slack/oauth_redirect", slack_install, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *hook_routes(services),
    ]
    hook_sources = {hook.path: hook.source for hook in HOOKS}

    def refused(path: str, status: int, reason: str) -> None:
        """Count what the guard refused, on the metrics its route already has (unknown paths not counted)."""
        if path.startswith("/slack/"):
            services.metrics.slack_requests.labels("replay" if status == 200 else str(status)).inc()
        elif path in hook_sources:
            services.metrics.hook_requests.labels(hook_sources[path], f"refused_{status}").inc()

    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    guard = Middleware(
        Guard,
        signing_secret=secret,
        on_refused=refused,
        shared_replays=shared_replays(services) if services.store.shared else None,
    )
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[guard])
    app.state.services = services
    app.state.bolt = bolt
    return app
