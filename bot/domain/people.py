"""People as Slack knows them: each person's time zone (users.info `tz`, cached) and the workspace's address.

Times in messages are Slack date tokens, which every reader sees in their own zone; plain_text (a
modal's hint, a confirmation) can't hold one, so it is written in the viewer's zone from here.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.workspaces import current_team, team_scope

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

TZ_TTL = 6 * 3600.0  # a person's zone is asked of Slack again after this (they travel)
TZ_RETRY = 300.0  # after Slack couldn't say


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def cached_timezone(services: Services, user: str) -> ZoneInfo | None:
    """The person's zone if it is known already (no Slack call)."""
    cached = services.timezones.get(user)
    return _zone(cached[0]) if cached else None


async def timezone(services: Services, user: str) -> ZoneInfo | None:
    """The person's zone (users.info `tz`), cached for TZ_TTL; None when Slack can't say."""
    cached = services.timezones.get(user)
    if cached is not None and cached[1] > time.time():
        return _zone(cached[0])
    try:
        answer = await services.slack.users_info(user=user)
        name = str((answer.get("user") or {}).get("tz") or "")
    except Exception as exc:  # Slack unreachable or refusing: plain-text times stay in GMT, nothing else changes
        log.warning("users.info %s failed (%s); times in plain text stay in GMT", user, type(exc).__name__)
        services.timezones[user] = (cached[0] if cached else "", time.time() + TZ_RETRY)
        return _zone(cached[0]) if cached else None
    services.timezones[user] = (name, time.time() + TZ_TTL)
    return _zone(name)


async def learn_workspace(services: Services) -> None:
    """At start: each workspace's address (auth.test), so the App Home can link to a number's thread."""
    teams = services.installations.installed() if services.installations is not None else [""]
    for team in teams:
        with team_scope(team):
            await learn_address(services)


async def learn_address(services: Services) -> None:
    """The address of the workspace the work at hand belongs to (auth.test with its token)."""
    team = current_team()
    try:
        answer = await services.slack.auth_test()
    except Exception as exc:  # links fall back to the channel; nothing else depends on it
        log.warning("auth.test failed for workspace %r (%s); its App Home links to channels", team, type(exc).__name__)
        return
    url = str(answer.get("url") or "")
    if url.startswith("https://") or url.startswith("http://"):
        services.workspace_urls[team] = url


def message_link(services: Services, channel: str, ts: str) -> str | None:
    """A message's permalink (`https://team.slack.com/archives/C…/p…`), when the workspace's address is known."""
    if not services.workspace_url or not ts:
        return None
    return f"{services.workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
