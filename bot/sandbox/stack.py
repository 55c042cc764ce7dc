"""Switchboard and its stand-ins, all on loopback: what the demo, the tests and `make bench` run.

    with Stack(tmp_path) as stack:
        answer, response_url = stack.slack.command(stack.url, "/numbers", "help")

The app is configured with nothing from the environment or `.env`: every setting is given here.
"""

from __future__ import annotations

import html
import re
import secrets
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import httpx

from bot.outbox import HOME_EVERY
from bot.sandbox.avanser import AvanserSandbox
from bot.sandbox.dtl import DtlSandbox
from bot.sandbox.exotel import ExotelSandbox
from bot.sandbox.server import LoopbackServer
from bot.sandbox.slack import SlackSandbox, manifest_scopes
from bot.services import Services
from bot.settings import Settings, load_settings
from bot.web import create_app

ADMIN = "U0ADMIN"


class Stack:
    def __init__(
        self,
        workdir: Path | str | None = None,
        *,
        slack_channel_interval: float | None = None,
        outbox_channel_interval: float = 1.05,
        home_every: float = HOME_EVERY,
        slack_scopes: Iterable[str] | None = None,
        feed: str | None = None,
        many_workspaces: bool = False,
        **settings: Any,
    ) -> None:
        self._tmp = None if workdir is not None else tempfile.TemporaryDirectory(prefix="switchboard-")
        self.workdir = Path(workdir if workdir is not None else self._tmp.name)  # type: ignore[union-attr]
        # The bot token gets what installing the repo's manifest.yml grants, unless a test says otherwise.
        scopes = manifest_scopes() if slack_scopes is None else slack_scopes
        self.slack = SlackSandbox(channel_interval=slack_channel_interval, scopes=scopes)
        self.avanser = AvanserSandbox()
        self.exotel = ExotelSandbox()
        self.dtl = DtlSandbox()
        self.provider_servers: list[LoopbackServer] = []
        self.webhook_token = secrets.token_urlsafe(16)
        self.outbox_channel_interval = outbox_channel_interval
        self.home_every = home_every
        self.extra_settings = settings
        self.many_workspaces = many_workspaces  # SLACK_CLIENT_ID/SECRET: workspaces installed with `install()`
        self.feed = feed  # "json" | "csv" | "xml" | "" (/feed/calls): read the AVANSER sandbox's data feed
        self.slack_server: LoopbackServer | None = None
        self.app_server: LoopbackServer | None = None
        self.services: Services | None = None
        self.settings: Settings | None = None

    def start(self) -> Stack:
        self.slack_server = LoopbackServer(self.slack.asgi(), name="slack-sandbox").start()
        self.slack.base_url = self.slack_server.url
        for name, sandbox in (("avanser", self.avanser), ("exotel", self.exotel), ("dtl", self.dtl)):
            server = LoopbackServer(sandbox.asgi(), name=f"{name}-sandbox").start()
            sandbox.base_url = server.url
            self.provider_servers.append(server)
        self.start_app()
        return self

    def start_app(self) -> None:
        """Start (or restart) Switchboard itself against the running sandboxes and the same database."""
        assert self.slack_server is not None
        values: dict[str, Any] = {
            "SLACK_BOT_TOKEN": self.slack.bot_token,
            "SLACK_SIGNING_SECRET": self.slack.signing_secret,
            "SLACK_APP_TOKEN": None,
            "SLACK_API_URL": f"{self.slack_server.url}/api/",
            "SWITCHBOARD_DB": str(self.workdir / "switchboard.db"),
            "SWITCHBOARD_WEBHOOK_TOKEN": self.webhook_token,
            "SWITCHBOARD_ADMINS": ADMIN,
            "SWITCHBOARD_ALERTS_CHANNEL": "C0ALERTS",
            "SWITCHBOARD_APPROVALS_CHANNEL": "C0APPROVALS",
            "SWITCHBOARD_COUNTRY": "AU",
            "AVANSER_API_URL": f"{self.avanser.base_url}/v1/",
            "AVANSER_USERNAME": self.avanser.username,
            "AVANSER_PASSWORD": self.avanser.password,
            "EXOTEL_API_URL": f"{self.exotel.base_url}/v1/",
            "EXOTEL_ACCOUNT_SID": self.exotel.account_sid,
            "EXOTEL_API_KEY": self.exotel.username,
            "EXOTEL_API_TOKEN": self.exotel.password,
            "DTL_API_URL": self.dtl.base_url,
            "DTL_USERNAME": self.dtl.username,
            "DTL_PASSWORD": self.dtl.password,
        }
        if self.feed is not None:
            values["AVANSER_FEED_URL"] = self.avanser.feed_url(self.feed or None)
            values["AVANSER_FEED_USERNAME"] = self.avanser.feed_username
            values["AVANSER_FEED_PASSWORD"] = self.avanser.feed_password
        if self.many_workspaces:  # installed through Slack's OAuth flow (`install`), no SLACK_BOT_TOKEN
            values.update(
                SLACK_BOT_TOKEN=None, SLACK_CLIENT_ID=self.slack.client_id, SLACK_CLIENT_SECRET=self.slack.client_secret
            )
        values.update(self.extra_settings)
        self.settings = load_settings(env_file=None, **values)
        self.services = Services.create(
            self.settings, channel_interval=self.outbox_channel_interval, home_every=self.home_every
        )
        app = create_app(self.settings, self.services)
        self.app_server = LoopbackServer(app, name="switchboard").start()
        self.settings = self.settings.model_copy(update={"public_url": self.app_server.url})
        self.services.settings = self.settings
        self.slack.redirect_urls = [f"{self.app_server.url}/slack/oauth_redirect"]
        token = f"token={self.webhook_token}"
        self.exotel.event_urls = {
            kind: f"{self.app_server.url}/hooks/exotel/{kind}?{token}"
            for kind in ("call", "deallocation", "verification")
        }

    def install(self, team_id: str, *, installer: str = "U0INSTALLER", name: str = "") -> httpx.Response:
        """Install Switchboard into workspace `team_id` as a browser would: the app's "Add to Slack" page, Slack's
        authorize page (Allow), back to the app's redirect with the code; returns the app's last answer."""
        with httpx.Client(timeout=10) as browser:
            page = browser.get(f"{self.url}/slack/install")
            page.raise_for_status()
            link = re.search(r'href="([^"]*oauth/v2/authorize[^"]*)"', page.text)
            assert link is not None, f"no Add to Slack link on the install page: {page.text[:300]}"
            chosen = urlencode({"team": team_id, "user": installer, "team_name": name})
            allow = browser.get(f"{html.unescape(link.group(1))}&{chosen}")
            assert allow.status_code == 302, allow.text
            # Bolt's state cookie is `Secure`: a browser sends it back over https only, the sandbox is http.
            cookie = page.headers.get("set-cookie", "").split(";")[0]
            return browser.get(allow.headers["location"], headers={"cookie": cookie})

    def call_uri(self) -> str:
        """The call-URI a tracking number registered by a test reports its calls to (with the webhook token)."""
        return f"{self.url}/hooks/avanser/call?token={self.webhook_token}"

    def stop_app(self) -> None:
        if self.app_server is not None:
            self.app_server.stop()
            self.app_server = None

    @property
    def url(self) -> str:
        assert self.app_server is not None
        return self.app_server.url

    def hook_url(self, path: str) -> str:
        return f"{self.url}{path}"

    def on_app(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the app's event loop (where its store and outbox live)."""
        assert self.app_server is not None
        return self.app_server.call(coro, timeout)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until the app's background work is done and its outbox is empty."""
        assert self.services is not None
        services = self.services

        async def settle() -> bool:
            await services.tasks.wait(timeout)
            return await services.outbox.drain(timeout)

        return bool(self.on_app(settle(), timeout + 5))

    def stop(self) -> None:
        servers = [s for s in (self.app_server, self.slack_server, *self.provider_servers) if s is not None]
        for server in servers:  # uvicorn takes ~0.2 s to wind down: let them all do it at once
            server.request_stop()
        self.stop_app()
        if self.slack_server is not None:
            self.slack_server.stop()
            self.slack_server = None
        for server in self.provider_servers:
            server.stop()
        self.provider_servers.clear()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
