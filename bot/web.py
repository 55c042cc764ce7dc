"""The ASGI app: Slack's requests, health, metrics and the telco webhooks, on one Starlette server.

    POST /slack/events   every Slack request (commands, interactivity, events), through Bolt
    GET  /healthz        200 {"ok": true, ...} while the store is writable, else 503
    GET  /metrics        Prometheus text
    /hooks/*             telco webhooks (bot.hooks)

With SLACK_APP_TOKEN set, the same Bolt app also connects to Slack in Socket Mode.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.domain import alerts, numbers, vn
from bot.hooks import hook_routes
from bot.services import Services
from bot.settings import Settings
from bot.slack_app import build_bolt_app

log = logging.getLogger(__name__)


def wire_domain(services: Services) -> None:
    """Each domain room's inbox handlers, and the jobs it rebuilds from SQLite when the app starts."""
    for room in (alerts, numbers, vn):
        for event_type, handler in room.inbox_handlers(services).items():
            services.inbox.on(event_type, handler)
    services.on_start(lambda: numbers.rebuild_polls(services))
    services.on_start(lambda: vn.rebuild(services))


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
        response = await handler.handle(request)
        services.metrics.slack_requests.labels(str(response.status_code)).inc()
        return response

    async def healthz(request: Request) -> Response:
        writable = services.store.writable()
        body = {
            "ok": writable,
            "store": "writable" if writable else "not writable",
            "schema_version": services.store.schema_version(),
            "outbox_pending": services.outbox.pending_count(),
            "uptime_s": round(time.time() - started, 1),
        }
        return JSONResponse(body, status_code=200 if writable else 503)

    async def metrics(request: Request) -> Response:
        unrouted = services.store.execute("SELECT COUNT(*) FROM inbox WHERE status = 'unrouted'").fetchone()
        services.metrics.inbox_unrouted.set(unrouted[0])
        services.metrics.outbox_pending.set(services.outbox.pending_count())
        return Response(services.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
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
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *hook_routes(services),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.services = services
    app.state.bolt = bolt
    return app
