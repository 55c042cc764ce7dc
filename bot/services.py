"""What a running Switchboard holds: settings, store, Slack clients, outbox, background tasks.

Built by `Services.create(settings)` (no network), started and stopped by the web app's lifespan.
Command families receive it in `register(app, services)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import UserError, correlation_id, unexpected_failure_text
from bot.inbox import InboxProcessor
from bot.metrics import Metrics
from bot.outbox import HOME_EVERY, Outbox
from bot.scheduler import Scheduler
from bot.settings import Settings
from bot.store import Store, StoreBusy
from bot.telco.avanser import AvanserClient
from bot.telco.avanser_feed import AvanserFeed
from bot.telco.dtl import DtlClient
from bot.telco.exotel import ExotelClient
from bot.workspaces import Installations, TeamClients, WorkspaceConfig, Workspaces, current_team

log = logging.getLogger(__name__)

OnFailure = Callable[[str], object]

# A scheduled job that met a database locked by another process runs again this much later.
STORE_BUSY_RETRY_S = 2.0
STORE_BUSY_TEXT = "Switchboard's database was busy, so that may not have finished. Try again in a moment."


class PatientScheduler(Scheduler):
    """The scheduler, except that a job that meets a locked store (`StoreBusy`) is run again, not lost.

    The store gives up on a lock after 200 ms so the event loop never stalls (and answers `StoreUnavailable`,
    a `StoreBusy`, while PostgreSQL restarts); a one-shot job (a lease ending, a request poll) would
    otherwise be gone until the next leader rebuilt it.
    """

    async def _run(self, job_id: str, func: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        try:
            await func(*args)
        except StoreBusy:
            log.warning("job %s met a locked database; running it again in %g s", job_id, STORE_BUSY_RETRY_S)
            try:
                self.at(time.time() + STORE_BUSY_RETRY_S, job_id, func, *args)
            except sqlite3.Error:  # the database can't take the job either: keep it in memory meanwhile
                self._add(
                    time.time() + STORE_BUSY_RETRY_S, job_id, self._run_in_memory, job_id, func, args, current_team()
                )


def provider_clients(
    settings: Settings,
) -> tuple[AvanserClient | None, ExotelClient | None, DtlClient | None]:
    """A client for each provider whose settings are complete."""
    avanser = exotel = dtl = None
    if settings.avanser_configured:
        assert settings.avanser_username and settings.avanser_password
        avanser = AvanserClient(
            settings.avanser_api_url, settings.avanser_username, settings.avanser_password.get_secret_value()
        )
    if settings.exotel_configured:
        assert settings.exotel_account_sid and settings.exotel_api_key and settings.exotel_api_token
        exotel = ExotelClient(
            settings.exotel_api_url,
            settings.exotel_account_sid,
            settings.exotel_api_key,
            settings.exotel_api_token.get_secret_value(),
        )
    if settings.dtl_configured:
        assert settings.dtl_api_url and settings.dtl_username and settings.dtl_password
        dtl = DtlClient(settings.dtl_api_url, settings.dtl_username, settings.dtl_password.get_secret_value())
    return avanser, exotel, dtl


def feed_client(settings: Settings) -> AvanserFeed | None:
    """The data feed's reader when AVANSER_FEED_URL is set."""
    if not settings.avanser_feed_url:
        return None
    password = settings.avanser_feed_password.get_secret_value() if settings.avanser_feed_password else None
    return AvanserFeed(settings.avanser_feed_url, settings.avanser_feed_username, password)


class BackgroundTasks:
    """Work that runs after an ack. Holds a reference to every task (asyncio keeps only weak ones)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def spawn(
        self, coro: Coroutine[Any, Any, Any], *, name: str, tell_user: OnFailure | None = None
    ) -> asyncio.Task[Any] | None:
        """Run `coro` in the background; a failure is logged and, if given, told to the user.

        Safe from another thread (the inbox worker's, on PostgreSQL): the task is then started on the app's
        event loop, and None is returned."""
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            if self._loop is None:
                raise
            # The task runs in this thread's context (its workspace, `bot.workspaces`), not the loop's.
            context = contextvars.copy_context()
            self._loop.call_soon_threadsafe(self._start, coro, name, tell_user, context)
            return None
        return self._start(coro, name, tell_user)

    def _start(
        self,
        coro: Coroutine[Any, Any, Any],
        name: str,
        tell_user: OnFailure | None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[Any]:
        task = asyncio.create_task(self._guard(coro, name, tell_user), name=name, context=context)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @staticmethod
    async def _guard(coro: Awaitable[Any], name: str, tell_user: OnFailure | None) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except UserError as exc:
            if tell_user is not None:
                tell_user(str(exc))
        except StoreBusy:
            log.warning("background task %s gave up: the database is locked by another connection", name)
            if tell_user is not None:
                with contextlib.suppress(StoreBusy):  # telling them goes through the store too
                    tell_user(STORE_BUSY_TEXT)
        except Exception:
            ref = correlation_id()
            log.exception("background task %s failed [ref %s]", name, ref)
            if tell_user is not None:
                tell_user(unexpected_failure_text(ref))

    def __len__(self) -> int:
        return len(self._tasks)

    async def wait(self, timeout: float = 10.0) -> None:
        """Wait for the tasks running now (tests and shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass
class Services:
    settings: Settings
    store: Store
    metrics: Metrics
    slack_default: AsyncWebClient  # SLACK_BOT_TOKEN's client (no token with many workspaces); carries SLACK_API_URL
    outbox: Outbox
    avanser: AvanserClient | None = None  # None: AVANSER is not configured
    exotel: ExotelClient | None = None
    dtl: DtlClient | None = None
    feed: AvanserFeed | None = None  # None: AVANSER_FEED_URL is not set
    tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    scheduler: Scheduler = field(default_factory=PatientScheduler)
    inbox: InboxProcessor = field(init=False)
    timezones: dict[str, tuple[str, float]] = field(default_factory=dict)  # user → (tz from users.info, until)
    workspace_urls: dict[str, str] = field(default_factory=dict)  # team → `https://team.slack.com/` (auth.test)
    installations: Installations | None = None  # many workspaces: who installed Switchboard, with which token
    workspaces: Workspaces = field(init=False)
    team_clients: TeamClients | None = None  # many workspaces: a client per workspace token
    _starters: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _session: aiohttp.ClientSession | None = None
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @classmethod
    def create(cls, settings: Settings, *, channel_interval: float = 1.05, home_every: float = HOME_EVERY) -> Services:
        """Open the store and build the clients; nothing is sent until `start()`."""
        store = Store(settings.db)
        metrics = Metrics()
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
        slack = AsyncWebClient(token=token, base_url=settings.slack_api_url, timeout=10)
        # The outbox owns retries and rate limits, so its client retries nothing by itself.
        sender = AsyncWebClient(token=token, base_url=settings.slack_api_url, timeout=10, retry_handlers=[])
        outbox = Outbox(store, sender, metrics, channel_interval=channel_interval, home_every=home_every)
        services = cls(settings=settings, store=store, metrics=metrics, slack_default=slack, outbox=outbox)
        if settings.many_workspaces:
            services.installations = Installations(store)
            services.team_clients = TeamClients(slack, services.installations.bot_token)
            outbox.team_clients = TeamClients(sender, services.installations.bot_token)
        services.workspaces = Workspaces(
            store,
            WorkspaceConfig(
                team_id="",
                admins=settings.admins,
                approvals_channel=settings.approvals_channel,
                alerts_channel=settings.alerts_channel,
                caller_id=settings.caller_id,
                avanser_account=None,
            ),
            services.installations,
        )
        services.inbox = InboxProcessor(store, metrics)
        services.scheduler.bind(store, services)
        services.avanser, services.exotel, services.dtl = provider_clients(settings)
        services.feed = feed_client(settings)
        if services.avanser is not None and settings.many_workspaces:
            # One AVANSER user, an account per workspace (the operator's `switchboard workspace T… --avanser-account
            # N`): each call runs in it, and a workspace without one makes none.
            services.avanser.account_for = services.workspace_account
        for client in (services.avanser, services.exotel, services.dtl, services.feed):
            if client is not None:
                services.on_stop(client.aclose)
        return services

    @property
    def slack(self) -> AsyncWebClient:
        """The Slack client for calls that cannot wait in the outbox (views.open, users.info), with the token of the
        workspace the work at hand belongs to (`bot.workspaces.current_team()`)."""
        team = current_team()
        if not team or self.team_clients is None:
            return self.slack_default
        client = self.team_clients.get(team)
        if client is None:
            raise UserError("Switchboard isn't installed in this workspace any more: ask an admin to add it again.")
        return client

    def workspace(self) -> WorkspaceConfig:
        """The settings of the workspace the work at hand belongs to (its own, over the environment's)."""
        return self.workspaces.config(current_team())

    @property
    def workspace_url(self) -> str | None:
        return self.workspace_urls.get(current_team())

    def workspace_account(self) -> int:
        """The AVANSER account of the workspace at hand (many workspaces), or a sentence saying it has none."""
        account = self.workspace().avanser_account
        if account is None:
            raise UserError(
                "This workspace has no AVANSER account yet: ask whoever runs Switchboard to assign one"
                f" (`switchboard workspace {current_team() or '<team id>'} --avanser-account <id>`)."
            )
        return account

    def is_admin(self, user_id: str) -> bool:
        return self.workspace().is_admin(user_id)

    def on_start(self, starter: Callable[[], Awaitable[None]]) -> None:
        """Register something to run when this process takes the scheduler's lead — at start with SQLite, when
        a replica becomes the leader on PostgreSQL (rebuilding scheduler jobs from the database)."""
        self._starters.append(starter)

    def on_stop(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Register something to close when the app stops (a provider client, a scheduler)."""
        self._closers.append(closer)

    async def start(self) -> None:
        await self.store.open_async()
        # One aiohttp session for every Slack call: slack-sdk opens a new one per call otherwise.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64), timeout=aiohttp.ClientTimeout(total=15)
        )
        self.slack_default.session = self._session
        self.outbox.client.session = self._session
        await self.outbox.start(self._session)
        await self.inbox.start()
        for starter in self._starters:
            self.scheduler.on_lead(starter)
        await self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self.inbox.stop()
        await self.outbox.stop()
        await self.tasks.cancel_all()
        for closer in reversed(self._closers):
            try:
                await closer()
            except Exception:
                log.exception("closing %r failed", closer)
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.store.close_async()
        self.store.close()
