"""Which Slack workspace the work at hand belongs to, and that workspace's bot token.

Switchboard serves one workspace with `SLACK_BOT_TOKEN`, or many installed through Slack's OAuth
flow (`SLACK_CLIENT_ID` / `SLACK_CLIENT_SECRET`). Every entry point says whose work it is — a Slack
request by its team id, a webhook by its number's route, a job by its row — with `team_scope(team)`;
what runs inside reads it with `current_team()`: the outbox stamps each row with it and sends the
row with that workspace's token, the Slack client calls made at once use it, and the domain keeps
each workspace's rows and settings apart. "" is the one workspace of single-workspace mode.

`Installations` is the installation store (a table of the Switchboard database, SQLite or
PostgreSQL): Bolt's OAuth flow writes it (`bot.oauth`), token lookups read it (cached).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.store import Store

log = logging.getLogger(__name__)

TOKEN_CACHE_S = 60.0

_team: contextvars.ContextVar[str] = contextvars.ContextVar("switchboard_team", default="")


def current_team() -> str:
    """The workspace the work at hand belongs to ("" in single-workspace mode)."""
    return _team.get()


@contextlib.contextmanager
def team_scope(team: str | None) -> Iterator[str]:
    """Do the work inside as `team`'s (its rows stamped, its token used)."""
    token = _team.set(team or "")
    try:
        yield team or ""
    finally:
        _team.reset(token)


def enter_team(team: str | None) -> None:
    """Set the workspace for the rest of the current task or event (its context ends with it)."""
    _team.set(team or "")


@dataclass(frozen=True)
class Installation:
    team_id: str
    team_name: str
    bot_token: str
    bot_user_id: str
    bot_scopes: str
    installer: str
    enterprise_id: str | None
    installed_at: float
    raw: dict[str, object]
    enabled_at: float | None = None  # when the operator enabled it (`switchboard workspace T… --enable`)


class Installations:
    """Installed workspaces and their bot tokens, in the Switchboard database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # team → (bot token, cached until, the installation); another replica's uninstall is seen within a minute
        self._tokens: dict[str, tuple[str | None, float, Installation | None]] = {}

    _SAVE = (
        "INSERT INTO installations (team_id, team_name, bot_token, bot_user_id, bot_scopes, installer,"
        " enterprise_id, installed_at, uninstalled_at, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)"
        " ON CONFLICT(team_id) DO UPDATE SET team_name = excluded.team_name, bot_token = excluded.bot_token,"
        " bot_user_id = excluded.bot_user_id, bot_scopes = excluded.bot_scopes, installer = excluded.installer,"
        " enterprise_id = excluded.enterprise_id, installed_at = excluded.installed_at, uninstalled_at = NULL,"
        " raw = excluded.raw"
    )
    _FIND = (
        "SELECT team_id, team_name, bot_token, bot_user_id, bot_scopes, installer, enterprise_id, installed_at,"
        " raw, enabled_at FROM installations WHERE team_id = ? AND uninstalled_at IS NULL"
    )

    async def asave(self, installation: Installation) -> None:
        """Save a workspace's installation (a new install, or installing again: the newer token wins)."""
        await self.store.aexecute(
            self._SAVE,
            (
                installation.team_id,
                installation.team_name,
                installation.bot_token,
                installation.bot_user_id,
                installation.bot_scopes,
                installation.installer,
                installation.enterprise_id,
                installation.installed_at,
                json.dumps(installation.raw),
            ),
        )
        self._tokens.pop(installation.team_id, None)
        log.info("workspace %s (%s) installed Switchboard", installation.team_id, installation.team_name)

    def find(self, team_id: str) -> Installation | None:
        return _installation(self.store.execute(self._FIND, (team_id,)).fetchone())

    async def afind(self, team_id: str) -> Installation | None:
        """`find` for Bolt's authorization of each request: from the token cache when it can."""
        cached = self._tokens.get(team_id)
        if cached is not None and cached[1] > time.monotonic() and cached[2] is not None:
            return cached[2]
        cursor = await self.store.aexecute(self._FIND, (team_id,))
        found = _installation(cursor.fetchone())
        self._tokens[team_id] = (found.bot_token if found else None, time.monotonic() + TOKEN_CACHE_S, found)
        return found

    def bot_token(self, team_id: str) -> str | None:
        """The workspace's bot token (cached for a minute), None when it isn't installed."""
        cached = self._tokens.get(team_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        found = self.find(team_id)
        token = found.bot_token if found else None
        self._tokens[team_id] = (token, time.monotonic() + TOKEN_CACHE_S, found)
        return token

    def uninstall(self, team_id: str) -> bool:
        """The workspace removed Switchboard (or revoked its token): forget the token, keep the data for now."""
        cursor = self.store.execute(
            "UPDATE installations SET bot_token = '', uninstalled_at = ? WHERE team_id = ? AND uninstalled_at IS NULL",
            (time.time(), team_id),
        )
        self._tokens.pop(team_id, None)
        if cursor.rowcount:
            log.info("workspace %s uninstalled Switchboard; its data is kept for SWITCHBOARD_RETENTION", team_id)
        return bool(cursor.rowcount)

    def forget(self, team_id: str) -> None:
        """Read the workspace's installation again next time (someone else changed it)."""
        self._tokens.pop(team_id, None)

    def enable(self, team_id: str, enabled: bool) -> bool:
        """The operator lets the workspace use Switchboard (or stops it); False when it isn't installed."""
        cursor = self.store.execute(
            "UPDATE installations SET enabled_at = ? WHERE team_id = ? AND uninstalled_at IS NULL",
            (time.time() if enabled else None, team_id),
        )
        self._tokens.pop(team_id, None)
        return bool(cursor.rowcount)

    def everything(self) -> list[tuple[str, str, str, float, float | None, float | None]]:
        """(team id, name, installer, installed at, enabled at, uninstalled at) of every workspace, for the operator."""
        rows = self.store.execute(
            "SELECT team_id, team_name, installer, installed_at, enabled_at, uninstalled_at FROM installations"
            " ORDER BY installed_at"
        ).fetchall()
        return [(str(r[0]), str(r[1]), str(r[2]), float(r[3]), r[4], r[5]) for r in rows]

    def installed(self) -> list[str]:
        return [str(r[0]) for r in self.store.execute("SELECT team_id FROM installations WHERE uninstalled_at IS NULL")]


class TeamClients:
    """A Slack client per workspace, made like `base` (its API URL, timeout and retry handlers) with the
    workspace's bot token, sharing `base`'s HTTP session."""

    def __init__(self, base: AsyncWebClient, tokens: Callable[[str], str | None]) -> None:
        self.base = base
        self.tokens = tokens
        self._clients: dict[str, AsyncWebClient] = {}

    def get(self, team: str) -> AsyncWebClient | None:
        """The workspace's client; None when it has no installation (or nothing says whose the work is)."""
        token = self.tokens(team) if team else None
        if not token:
            return None
        client = self._clients.get(team)
        if client is None or client.token != token:  # installed again: a new token
            client = AsyncWebClient(
                token=token,
                base_url=self.base.base_url,
                timeout=self.base.timeout,
                retry_handlers=list(self.base.retry_handlers),
            )
            self._clients[team] = client
        client.session = self.base.session
        return client


def _installation(row: Any) -> Installation | None:
    if row is None:
        return None
    return Installation(
        team_id=row[0],
        team_name=row[1],
        bot_token=row[2],
        bot_user_id=row[3],
        bot_scopes=row[4],
        installer=row[5],
        enterprise_id=row[6],
        installed_at=float(row[7]),
        raw=json.loads(row[8] or "{}"),
        enabled_at=float(row[9]) if row[9] is not None else None,
    )


# -- each workspace's own settings -------------------------------------------------------------------


@dataclass(frozen=True)
class WorkspaceConfig:
    """What a workspace's admins set in Slack (`/numbers settings`), the environment's values where they didn't."""

    team_id: str
    admins: frozenset[str]  # SWITCHBOARD_ADMINS, or the workspace's own list; its installer always counts
    approvals_channel: str | None
    alerts_channel: str | None
    caller_id: str | None
    avanser_account: int | None  # the AVANSER account it works in now (None: none, with many workspaces)
    installer: str | None = None
    avanser_accounts: frozenset[int] = frozenset()  # the accounts the operator lets it switch between

    def is_admin(self, user: str) -> bool:
        return user in self.admins or (bool(self.installer) and user == self.installer)


EDITABLE = ("admins", "approvals_channel", "alerts_channel", "caller_id", "avanser_account")


class Workspaces:
    """Each workspace's settings over the environment's defaults (cached; a change clears the cache)."""

    def __init__(self, store: Store, defaults: WorkspaceConfig, installations: Installations | None) -> None:
        self.store = store
        self.defaults = defaults
        self.installations = installations
        # team → (its settings, until): another replica's change, or the operator's (`switchboard workspace`),
        # is seen within TOKEN_CACHE_S
        self._cache: dict[str, tuple[WorkspaceConfig, float]] = {}

    def config(self, team: str) -> WorkspaceConfig:
        cached = self._cache.get(team)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        config = replace(self.defaults, team_id=team)
        row = self.store.execute(
            "SELECT admins, approvals_channel, alerts_channel, caller_id, avanser_account, avanser_accounts"
            " FROM workspace_settings"
            " WHERE team_id = ?",
            (team,),
        ).fetchone()
        if row is not None:
            config = replace(
                config,
                admins=frozenset(json.loads(row[0])) if row[0] is not None else config.admins,
                approvals_channel=row[1] if row[1] is not None else config.approvals_channel,
                alerts_channel=row[2] if row[2] is not None else config.alerts_channel,
                caller_id=row[3] if row[3] is not None else config.caller_id,
                avanser_account=int(row[4]) if row[4] is not None else config.avanser_account,
                avanser_accounts=frozenset(int(a) for a in json.loads(row[5] or "[]")),
            )
        if team and self.installations is not None:
            installation = self.installations.find(team)
            config = replace(config, installer=installation.installer if installation else None)
        self._cache[team] = (config, time.monotonic() + TOKEN_CACHE_S)
        return config

    def update(self, team: str, user: str, **changes: Any) -> WorkspaceConfig:
        """Set some of the workspace's settings; a value of "" (or an empty admin list) goes back to the default."""
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise ValueError(f"not a workspace setting: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "admins":
                values[name] = json.dumps(sorted(value)) if value else None
            else:
                values[name] = value if value not in ("", None) else None
        self.store.execute(
            "INSERT INTO workspace_settings (team_id, updated_by, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT(team_id) DO UPDATE SET updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            (team, user, time.time()),
        )
        for name, value in values.items():
            self.store.execute(f"UPDATE workspace_settings SET {name} = ? WHERE team_id = ?", (value, team))
        self._cache.pop(team, None)
        log.info("workspace %s settings changed by %s: %s", team or "(single)", user, ", ".join(sorted(values)))
        return self.config(team)

    def forget(self, team: str) -> None:
        self._cache.pop(team, None)
