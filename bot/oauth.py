"""Installing Switchboard into many workspaces: Bolt's OAuth flow over Switchboard's own database.

With SLACK_CLIENT_ID and SLACK_CLIENT_SECRET set, Bolt serves

    GET /slack/install          the "Add to Slack" page: a fresh `state`, kept here and in a cookie
    GET /slack/oauth_redirect   Slack sends the installer back with a code: `oauth.v2.access` on
                                SLACK_API_URL, then the installation is saved here

and, for every request from Slack, finds the workspace's bot token here (`async_find_bot`).
`DatabaseInstallationStore` and `DatabaseStateStore` are slack-sdk's store interfaces over the
`installations` and `oauth_states` tables (SQLite or PostgreSQL, through `Store.aexecute`, which on
PostgreSQL doesn't hold the event loop); tokens are cached by `bot.workspaces.Installations`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from bot import workspaces
from bot.store import Store

log = logging.getLogger(__name__)

# The bot scopes the install asks for: manifest.yml's `oauth_config.scopes.bot` (a test keeps them equal).
BOT_SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",
    "im:write",
    "users:read",
    "users.profile:read",
    "channels:history",
    "groups:history",
    "im:history",
    "files:write",
    "channels:read",
    "groups:read",
)
STATE_SECONDS = 600  # an install started and not finished within 10 minutes starts again


class DatabaseInstallationStore(AsyncInstallationStore):
    """slack-sdk's installation store interface over `bot.workspaces.Installations` (bot tokens only)."""

    def __init__(
        self, installations: workspaces.Installations, on_installed: Callable[[str], Awaitable[None]] | None = None
    ) -> None:
        self.installations = installations
        self.on_installed = on_installed

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        await self._save(installation.to_bot(), installer=installation.user_id)

    async def async_save_bot(self, bot: Bot) -> None:
        """A bot saved alone (no installing user): the installer known so far stays the workspace's."""
        known = await self.installations.afind(bot.team_id or "")
        await self._save(bot, installer=known.installer if known else "")

    async def _save(self, bot: Bot, *, installer: str) -> None:
        if not bot.team_id or not bot.bot_token:
            # An org-wide (Enterprise Grid) install or one without a bot: Switchboard works per workspace.
            raise ValueError("Switchboard installs into one workspace at a time, with a bot token")
        await self.installations.asave(
            workspaces.Installation(
                team_id=bot.team_id,
                team_name=bot.team_name or "",
                bot_token=bot.bot_token,
                bot_user_id=bot.bot_user_id or "",
                bot_scopes=",".join(bot.bot_scopes or []),
                installer=installer,
                enterprise_id=bot.enterprise_id,
                installed_at=float(bot.installed_at or time.time()),
                raw={
                    "app_id": bot.app_id,
                    "bot_id": bot.bot_id,
                    "enterprise_name": bot.enterprise_name,
                    "is_enterprise_install": bool(bot.is_enterprise_install),
                },
            )
        )
        if self.on_installed is not None:
            await self.on_installed(bot.team_id)

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        found = await self.installations.afind(team_id or "")
        return Bot(**_fields(found), bot_id=_str(found.raw.get("bot_id")) or "") if found else None

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        found = await self.installations.afind(team_id or "")
        if found is None or (user_id is not None and user_id != found.installer):
            return None
        return Installation(**_fields(found), bot_id=_str(found.raw.get("bot_id")), user_id=found.installer)

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        self.installations.uninstall(team_id or "")

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        if user_id is None:
            self.installations.uninstall(team_id or "")


class DatabaseStateStore(AsyncOAuthStateStore):
    """The `state` of installs under way, each usable once, in the database (any replica can finish one)."""

    def __init__(self, store: Store, expiration_seconds: int = STATE_SECONDS) -> None:
        self.store = store
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = uuid.uuid4().hex
        now = time.time()
        await self.store.aexecute("DELETE FROM oauth_states WHERE expires_at < ?", (now,))
        await self.store.aexecute(
            "INSERT INTO oauth_states (state, expires_at) VALUES (?, ?)", (state, now + self.expiration_seconds)
        )
        return state

    async def async_consume(self, state: str) -> bool:
        cursor = await self.store.aexecute(
            "DELETE FROM oauth_states WHERE state = ? AND expires_at >= ?", (state, time.time())
        )
        if not cursor.rowcount:
            log.warning("an install came back with an unknown or expired state; refused")
        return bool(cursor.rowcount)


def _fields(found: workspaces.Installation) -> dict[str, Any]:
    """What slack-sdk's Bot and Installation both say of a saved installation."""
    return {
        "app_id": _str(found.raw.get("app_id")),
        "enterprise_id": found.enterprise_id,
        "team_id": found.team_id,
        "team_name": found.team_name,
        "bot_token": found.bot_token,
        "bot_user_id": found.bot_user_id,
        "bot_scopes": found.bot_scopes,
        "is_enterprise_install": False,
        "installed_at": found.installed_at,
    }


def _str(value: object) -> str | None:
    return str(value) if value else None
