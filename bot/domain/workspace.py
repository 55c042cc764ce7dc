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
from bot.domain.routing import routed_channel, team_of_number
from bot.errors import UserError
from bot.phone import national
from bot.store import TEAM_TABLES, Store
from bot.workspaces import Installations, WorkspaceConfig, current_team, team_scope
from notifiers.text import mrkdwn

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

OPERATOR = "operator"  # the audit's actor for `switchboard workspace`
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
            raise UserError(
                f"“{mrkdwn(caller_id, 40)}” isn't a phone number Switchboard can show as caller ID, e.g. +61290081596."
            )
        number = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        ours = number == services.settings.caller_id or routed_channel(services.store, number) is not None
        if not ours and team_of_number(services.store, number) != current_team():
            # People trust the number that rings them: only one of this workspace's own (or the operator's).
            raise UserError(
                f"{national(number)} isn't one of this workspace's tracking numbers, so it can't be the caller ID."
            )
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


# -- the operator's side (`switchboard workspace`) ---------------------------------------------------------


def operate(
    store: Store,
    team: str,
    *,
    enable: bool | None = None,
    avanser_accounts: list[int] | None = None,
    adopt: bool = False,
) -> list[str]:
    """What whoever runs Switchboard decides for an installed workspace: whether it may use Switchboard (it spends
    the operator's telco accounts); which AVANSER accounts are its own — the first is used, `/numbers accounts`
    switches between them, and no account is two workspaces'; and — once, when moving from one workspace to
    many — taking over the rows written before there were workspaces (""). Returns what was done, a sentence each."""
    installations = Installations(store)
    if installations.find(team) is None:
        raise UserError(f"{team} hasn't installed Switchboard (or removed it): `switchboard workspace` lists them.")
    done: list[str] = []
    with store.transaction():
        if avanser_accounts:
            others = store.execute(
                "SELECT team_id, avanser_account, avanser_accounts FROM workspace_settings WHERE team_id != ?", (team,)
            ).fetchall()
            for other, current, allowed in others:
                taken = sorted(set(avanser_accounts) & ({current} | set(json.loads(allowed or "[]"))))
                if taken:
                    raise UserError(
                        f"AVANSER account {taken[0]} is already {other}'s: each workspace has accounts of its own."
                    )
            store.execute(
                "INSERT INTO workspace_settings (team_id, avanser_account, avanser_accounts, updated_by, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(team_id) DO UPDATE SET avanser_account = excluded.avanser_account,"
                " avanser_accounts = excluded.avanser_accounts, updated_by = excluded.updated_by,"
                " updated_at = excluded.updated_at",
                (team, avanser_accounts[0], json.dumps(avanser_accounts), OPERATOR, time.time()),
            )
            listed = ", ".join(str(a) for a in avanser_accounts)
            done.append(f"{team} works in AVANSER account {avanser_accounts[0]} (its accounts: {listed}).")
        if adopt:
            moved = sum(
                store.execute(f"UPDATE {table} SET team_id = ? WHERE team_id = ''", (team,)).rowcount
                for table in TEAM_TABLES
            )
            done.append(f"{team} took over {moved} rows written before there were several workspaces.")
        if enable is not None:
            installations.enable(team, enable)
            done.append(f"{team} is {'enabled' if enable else 'disabled'}.")
        for sentence in done:
            store.audit(OPERATOR, "workspace.operate", subject=team, detail=json.dumps({"done": sentence}), team=team)
    for sentence in done:
        log.info("operator: %s", sentence)
    return done


async def installed(services: Services, team: str) -> None:
    """A workspace finished Slack's install flow (or installed again with a new token)."""
    services.workspaces.forget(team)
    with team_scope(team):
        services.store.audit("slack", "workspace.installed", subject=team, team=team)
        await people.learn_address(services)
    found = services.installations.find(team) if services.installations else None
    if found is not None and found.enabled_at is None:
        log.warning(
            "workspace %s (%s) installed Switchboard and waits for you: `switchboard workspace %s --enable"
            " --avanser-account <id>` lets it work",
            team,
            found.team_name,
            team,
        )


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
                if table == "digests":  # a digest's lines go with it
                    services.store.execute(
                        "DELETE FROM digest_lines WHERE digest_id IN (SELECT id FROM digests WHERE team_id = ?)",
                        (team,),
                    )
                if table == "outbox":  # threads are keyed by their root message, which is the workspace's
                    services.store.execute(
                        "DELETE FROM threads WHERE outbox_id IN (SELECT id FROM outbox WHERE team_id = ?)", (team,)
                    )
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
