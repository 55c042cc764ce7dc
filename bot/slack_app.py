"""The Bolt app factory: one AsyncApp, each command family registering its own listeners.

process_before_response=True: Bolt's default async mode polls for the ack every 10 ms
(`asyncio_runner.py`), which costs ~10 ms per request; with this flag the HTTP answer is the ack
itself, so listeners ack at once and hand slow work to `services.tasks`.

Over HTTP, a request reaches Bolt only after `bot.guard` has capped its size, checked its signature
on the raw bytes and refused replays; Bolt checks the signature again. When the store is locked by
another process (`StoreBusy`, after at most its short busy timeout), an event is answered 503 so
Slack sends it again later, and a command or click is told so in a sentence — never a 3 s hang.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncApp
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest

import commands
from bot.domain import workspace
from bot.errors import UserError, correlation_id, unexpected_failure_text
from bot.oauth import BOT_SCOPES, DatabaseInstallationStore, DatabaseStateStore
from bot.services import Services
from bot.store import StoreBusy
from bot.workspaces import enter_team
from commands import alerts, home, workspaces

log = logging.getLogger(__name__)


class OncePerEvent(AsyncMiddleware):
    """Slack retries an event whose ack it didn't see in time; do its work only the first time.

    A plain middleware (no argument injection) costs every other request one `body.get`."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse | None:
        body = req.body
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id:
            try:
                cursor = self.services.store.execute(
                    "INSERT OR IGNORE INTO slack_events (event_id, received_at) VALUES (?, ?)", (event_id, time.time())
                )
            except StoreBusy:
                log.warning("event %s not recorded: the store is locked; Slack will send it again", event_id)
                return BoltResponse(status=503, body="")
            if cursor.rowcount == 0:
                log.info("event %s already handled; ignoring Slack's retry", event_id)
                return BoltResponse(status=200, body="")
        return await next()


NOT_ENABLED = (
    "Switchboard is installed in this workspace but not switched on yet: whoever runs Switchboard enables each"
    " workspace (and picks its AVANSER account). Ask them to run `switchboard workspace {team} --enable`."
)
UNINSTALL_EVENTS = frozenset({"app_uninstalled", "tokens_revoked"})


class InWorkspace(AsyncMiddleware):
    """Many workspaces: the rest of the request — its listener, its background tasks, the rows it writes, the
    outbox messages it queues and the Slack calls it makes — is that workspace's (`bot.workspaces`).

    Bolt runs its middleware one after another, not nested, so the team is entered for the rest of the request's
    task; `bot.web` runs each request inside `team_scope(None)`, which ends it with the request.

    Anyone may install a publicly distributed app, and Switchboard spends its operator's telco money: a workspace
    the operator hasn't enabled is told so, and nothing it asks is done."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse | None:
        team = req.context.team_id or ""
        enter_team(team)
        body = req.body
        if (body.get("event") or {}).get("type") in UNINSTALL_EVENTS:
            return await next()
        assert self.services.installations is not None
        installation = await self.services.installations.afind(team)
        if installation is not None and installation.enabled_at is None:
            log.info("workspace %s is installed but not enabled: its %s was not handled", team, body.get("type"))
            text = NOT_ENABLED.format(team=team)
            return refusal(self.services, body, text)
        return await next()


def oauth_settings(services: Services) -> AsyncOAuthSettings | None:
    """Slack's OAuth install flow over Switchboard's database, when SLACK_CLIENT_ID/SECRET are set."""
    settings, installations = services.settings, services.installations
    if not settings.many_workspaces or installations is None:
        return None
    assert settings.slack_client_id and settings.slack_client_secret

    async def on_installed(team: str) -> None:
        await workspace.installed(services, team)

    public = (settings.public_url or "").rstrip("/")
    return AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret.get_secret_value(),
        scopes=list(BOT_SCOPES),
        redirect_uri=f"{public}/slack/oauth_redirect" if public else None,
        # Slack's "Add to Slack" page is on the same host as its Web API (slack.com, or the sandbox).
        authorization_url=settings.slack_api_url.removesuffix("/").removesuffix("/api") + "/oauth/v2/authorize",
        installation_store=DatabaseInstallationStore(installations, on_installed),
        installation_store_bot_only=True,
        state_store=DatabaseStateStore(services.store),
    )


def build_bolt_app(services: Services, *, process_before_response: bool = True) -> AsyncApp:
    """The Bolt app; `process_before_response=False` exists only to measure Bolt's default mode."""
    settings = services.settings
    app = AsyncApp(
        name="switchboard",
        # The token comes from the client (services.slack_default, none with many workspaces: Bolt then finds each
        # workspace's in the installation store); the client also carries SLACK_API_URL.
        signing_secret=(settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None),
        client=services.slack_default,
        oauth_settings=oauth_settings(services),
        user_facing_authorize_error_message=(
            "Switchboard isn't installed in this workspace (or was removed). Ask an admin to add it again."
        ),
        process_before_response=process_before_response,
        logger=logging.getLogger("switchboard.bolt"),
        # bot/guard.py has already checked the signature on the raw bytes before anything parsed them
        # (Socket Mode requests carry none): Bolt checking it again costs every ack for nothing.
        request_verification_enabled=False,
        # Not needed on the ack path: ssl_check pings come only for Slack-side URL checks of slash
        # commands (Bolt answers them anyway when enabled), and Switchboard has no workflow functions.
        ssl_check_enabled=True,
        attaching_function_token_enabled=False,
    )

    app.use(OncePerEvent(services))
    if services.installations is not None:
        app.use(InWorkspace(services))

    for module in commands.MODULES:
        module.register(app, services)
    home.register(app, services)
    alerts.register(app, services)
    workspaces.register(app, services)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any], respond: Any) -> BoltResponse:
        """One place for failures: a refusal is shown as it is; anything else gets a reference."""
        if isinstance(error, UserError):
            text = str(error)
        elif isinstance(error, StoreBusy):
            ref = correlation_id()
            log.warning("listener gave up [ref %s]: the store is locked by another connection", ref)
            text = (
                "Switchboard's database is busy right now, so that may not have been done. "
                f"Try again in a moment (reference `{ref}`)."
            )
        else:
            ref = correlation_id()
            log.error(
                "listener failed [ref %s] for %s from user %s",
                ref,
                body.get("command") or body.get("type"),
                body.get("user_id") or (body.get("user") or {}).get("id"),
                exc_info=error,
            )
            text = unexpected_failure_text(ref)
        return refusal(services, body, text)

    return app


def refusal(services: Services, body: dict[str, Any], text: str) -> BoltResponse:
    """Tell the person `text` instead of doing what they asked: a slash command's HTTP answer is shown to them;
    anything else with a response_url is answered there (through the outbox); an event is just acknowledged."""
    if body.get("command"):
        return BoltResponse(
            status=200,
            body={"response_type": "ephemeral", "text": text},
            headers={"content-type": "application/json;charset=utf-8"},
        )
    url = body.get("response_url") or ((body.get("response_urls") or [{}])[0]).get("response_url")
    if url:
        services.outbox.respond(url, {"response_type": "ephemeral", "text": text})
    return BoltResponse(status=200, body="")
