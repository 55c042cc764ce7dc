"""Whose App Home to publish again when something it shows changes.

A person's Home (`bot.domain.home`) shows their virtual numbers, their tracking numbers and the
missed calls waiting on them, their phone, and — for admins — the requests waiting for approval.
The rooms that change those things call `changed` (a person, or admins too) or `number_changed`
(whoever asked for the number, and the admins). Only people who have opened their Home are
published to; the outbox publishes each at most every `home_every` seconds and renders the Home
when it sends it, so a burst of changes costs one `views.publish`.

This room imports no other room: every room may call it without a cycle.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from bot.workspaces import current_team

if TYPE_CHECKING:
    from bot.services import Services


def opened(services: Services, user: str) -> None:
    """The person opened their Home: remember them (and in which workspace) and publish it (now, unless it was
    published moments ago)."""
    services.store.execute(
        "INSERT INTO home_viewers (user_id, opened_at, team_id) VALUES (?, ?, ?)"
        " ON CONFLICT(user_id) DO UPDATE SET opened_at = excluded.opened_at, team_id = excluded.team_id",
        (user, time.time(), current_team()),
    )
    services.outbox.publish_home(user)


def changed(services: Services, *users: str | None, admins: bool = False) -> None:
    """Publish again (debounced) the Homes of `users`, and every admin's of this workspace with `admins`, who have
    opened theirs here."""
    wanted = {u for u in users if u} | (set(services.workspace().admins) if admins else set())
    for user in viewers(services, wanted):
        services.outbox.publish_home(user)


def number_changed(services: Services, number: str | None) -> None:
    """Tracking number `number` changed (a call, a claim, its route): its requester's and admins' Homes."""
    row = (
        services.store.execute(
            "SELECT requester FROM number_requests WHERE number = ? AND kind = 'create'"
            " AND status IN ('configured', 'completed') AND team_id = ? ORDER BY id DESC LIMIT 1",
            (number, current_team()),
        ).fetchone()
        if number
        else None
    )
    changed(services, row[0] if row else None, admins=True)


def viewers(services: Services, users: Iterable[str]) -> list[str]:
    """Those of `users` who have opened their Home in this workspace."""
    wanted = sorted(set(users))
    if not wanted:
        return []
    marks = ", ".join("?" for _ in wanted)
    rows = services.store.execute(
        f"SELECT user_id FROM home_viewers WHERE user_id IN ({marks}) AND team_id = ?", (*wanted, current_team())
    )
    return [str(r[0]) for r in rows.fetchall()]
