"""A workspace's life with Switchboard: installed, its own settings, uninstalled, and purged after the retention.

With many workspaces (Slack's OAuth flow, `bot.oauth`), each workspace's admins set its admins, approvals
channel, alerts channel and caller ID in Slack (`/numbers settings`); the environment's values are the
defaults. `app_uninstalled` or `tokens_revoked` forgets its token and stops its jobs at once; its rows are
kept for SWITCHBOARD_RETENTION (in case it comes back) and then deleted by `purge_uninstalled`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING

import phonenumbers

from bot.domain import people
from bot.errors import UserError
from bot.store import TEAM_TABLES
from bot.workspaces import WorkspaceConfig, current_team, team_scope

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

PURGE_JOB = "purge-uninstalled-workspaces"
PURGE_EVERY = 6 * 3600.0


def may_configure(services: Services, user: str) -> WorkspaceConfig:
    """The workspace's settings, if `user` may change them (its admins and whoever installed Switchboard)."""
    config = services.workspace()
    if not config.is_admin(user):
        raise UserError("Only this workspace's Switchboard admins can change its settings.")
    return config


def save_settings(
    services: Services,
    user: str,
    *,
    admins: list[str],
    approvals_channel: str | None,
    alerts_channel: str | None,
    caller_id: str | None,
) -> WorkspaceConfig:
    """Change the workspace's settings; an empty value goes back to the environment's default."""
    config = may_configure(services, user)
    number = None
    if caller_id:
        try:
            parsed = phonenumbers.parse(caller_id, services.settings.country)
        except phonenumbers.NumberParseException:
            parsed = None
        if parsed is None or not phonenumbers.is_valid_number(parsed):
            raise UserError(f"{caller_id!r} isn't a phone number Switchboard can show as caller ID, e.g. +61290081596.")
        number = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    chosen = set(admins)
    if chosen and user not in chosen and user != config.installer:
        raise UserError("Keep yourself in the admin list, or you couldn't change these settings again.")
    team = current_team()
    updated = services.workspaces.update(
        team,
        user,
        admins=sorted(chosen),
        approvals_channel=approvals_channel or "",
        alerts_channel=alerts_channel or "",
        caller_id=number or "",
    )
    services.store.audit(user, "workspace.settings", subject=team or "-", detail=_describe(updated), team=team)
    return updated


def _describe(config: WorkspaceConfig) -> str:
    return json.dumps(
        {
            "admins": sorted(config.admins),
            "approvals_channel": config.approvals_channel,
            "alerts_channel": config.alerts_channel,
            "caller_id": config.caller_id,
        }
    )


async def installed(services: Services, team: str) -> None:
    """A workspace finished Slack's install flow (or installed again with a new token)."""
    services.workspaces.forget(team)
    with team_scope(team):
        services.store.audit("slack", "workspace.installed", subject=team, team=team)
        await people.learn_address(services)


def uninstalled(services: Services, team: str, why: str) -> bool:
    """The workspace removed Switchboard or revoked its bot token: no token, no jobs, nothing more sent.

    Its rows stay for SWITCHBOARD_RETENTION, then `purge_uninstalled` deletes them."""
    if services.installations is None or not team:
        return False
    forgotten = services.installations.uninstall(team)
    services.workspaces.forget(team)
    jobs = [str(r[0]) for r in services.store.execute("SELECT job_id FROM scheduled_jobs WHERE team_id = ?", (team,))]
    for job_id in jobs:
        services.scheduler.cancel(job_id)
    dropped = services.store.execute(
        "UPDATE outbox SET status = 'failed', error = ? WHERE team_id = ? AND status = 'pending'",
        (f"not sent: the workspace {why}", team),
    ).rowcount
    with team_scope(team):
        services.store.audit("slack", "workspace.uninstalled", subject=team, detail=json.dumps({"why": why}), team=team)
    log.info(
        "workspace %s %s: token forgotten, %d scheduled jobs stopped, %d unsent messages dropped; data kept %g days",
        team,
        why,
        len(jobs),
        dropped,
        services.settings.retention / 86400,
    )
    return forgotten


async def purge_uninstalled(services: Services) -> int:
    """Delete the rows of every workspace uninstalled longer than SWITCHBOARD_RETENTION ago; how many workspaces."""
    cutoff = time.time() - services.settings.retention
    teams = [
        str(r[0])
        for r in services.store.execute(
            "SELECT team_id FROM installations WHERE uninstalled_at IS NOT NULL AND uninstalled_at < ?", (cutoff,)
        )
    ]
    for team in teams:
        deleted = 0
        with services.store.transaction():
            for table in TEAM_TABLES:
                deleted += services.store.execute(f"DELETE FROM {table} WHERE team_id = ?", (team,)).rowcount
            services.store.execute("DELETE FROM workspace_settings WHERE team_id = ?", (team,))
            services.store.execute("DELETE FROM installations WHERE team_id = ?", (team,))
        services.workspaces.forget(team)
        log.info("workspace %s: purged %d rows, uninstalled longer than SWITCHBOARD_RETENTION ago", team, deleted)
    return len(teams)


async def schedule_purge(services: Services) -> None:
    """On the scheduler's leader: purge uninstalled workspaces now and every few hours."""
    if services.installations is not None:
        services.scheduler.every(PURGE_EVERY, PURGE_JOB, purge_uninstalled, services)
