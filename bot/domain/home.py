"""The App Home's dashboard: what one person sees on Switchboard's Home tab, read from SQLite.

`view_for` is what the outbox calls when it sends a person's `views.publish` (registered by
`bot.web.wire_domain`), so the Home always shows the moment it is sent; `bot.domain.refresh` says
when to publish again. Nothing here calls a provider or Slack: a Home is a few indexed queries.

Who sees what: everyone their own virtual numbers and phone; the tracking numbers they asked for (admins:
every number Switchboard routes or made) with the unclaimed missed calls of the last 24 hours on them;
admins also the requests waiting for approval.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from bot.domain import numbers, people, phones, vn
from bot.domain.alerts import ESCALATED_KINDS
from bot.workspaces import current_team, team_scope
from notifiers.events import AvanserCall, parse_event
from notifiers.home import (
    MAX_ALLOCATIONS,
    MAX_APPROVALS,
    MAX_CALLS,
    MAX_NUMBERS,
    Dashboard,
    HomeAllocation,
    HomeApproval,
    HomeCall,
    HomeNumber,
    render_home,
)

if TYPE_CHECKING:
    from bot.services import Services

WAITING_WINDOW = 86400.0  # missed calls of the last 24 hours


def view_for(services: Services, user: str) -> dict[str, Any]:
    """`user`'s App Home view, as things are now: of the workspace at hand, else the one they last opened it in
    (the outbox renders a Home when it sends it, outside any request)."""
    with team_scope(current_team() or viewer_team(services, user)):
        return render_home(dashboard(services, user))


def viewer_team(services: Services, user: str) -> str:
    """The workspace `user` last opened their Home in ("" if never)."""
    row = services.store.execute("SELECT team_id FROM home_viewers WHERE user_id = ?", (user,)).fetchone()
    return str(row[0]) if row else ""


def dashboard(services: Services, user: str) -> Dashboard:
    """Everything `user`'s Home shows, read from SQLite."""
    now = time.time()
    admin = services.is_admin(user)
    board = Dashboard(user=user, admin=admin, now=now, claim_within=services.settings.claim_within)
    owned = vn.owned(services, user)
    board.allocations_total = len(owned)
    board.allocations = [
        HomeAllocation(
            a.id,
            a.green_vn,
            list(a.parties.get("aparty_numbers") or []),
            list(a.parties.get("bparty_numbers") or []),
            a.usage,
            a.masked,
            a.expires_at,
        )
        for a in owned[:MAX_ALLOCATIONS]
    ]
    mine = tracking_numbers(services, user, admin)
    board.numbers_total = len(mine)
    start = start_of_day(now, people.cached_timezone(services, user) or _team_zone(services))
    board.numbers = [_number(services, number, requester, start) for number, requester in mine[:MAX_NUMBERS]]
    board.calls, board.calls_total = waiting_calls(services, [number for number, _ in mine], now)
    board.phone = phones.registered_phone(services, user)
    if admin:
        board.approvals, board.approvals_total = waiting_approvals(services)
        board.approvals_channel = services.workspace().approvals_channel
    return board


def _team_zone(services: Services) -> tzinfo:
    hours = services.settings.business_hours
    return hours.tz if hours is not None else UTC


def start_of_day(now: float, tz: tzinfo) -> float:
    local = datetime.fromtimestamp(now, tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def tracking_numbers(services: Services, user: str, admin: bool) -> list[tuple[str, str | None]]:
    """(number, who asked for it) of the numbers `user` asked for through Switchboard and still has — admins: every
    number with a route or made through Switchboard — in number order; this workspace's only."""
    team = current_team()
    made = services.store.execute(
        "SELECT r.number, r.requester FROM number_requests r WHERE r.kind = 'create' AND r.team_id = ?"
        " AND r.status IN ('configured', 'completed') AND r.number IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM released_numbers x WHERE x.number = r.number AND x.released_at > r.created_at)"
        + ("" if admin else " AND r.requester = ?")
        + " ORDER BY r.id",
        (team,) if admin else (team, user),
    ).fetchall()
    found: dict[str, str | None] = {str(n): str(r) for n, r in made}
    if admin:
        for (number,) in services.store.execute(
            "SELECT number FROM routes WHERE team_id = ? ORDER BY number", (team,)
        ).fetchall():
            found.setdefault(str(number), None)
    return sorted(found.items())


def _number(services: Services, number: str, requester: str | None, today: float) -> HomeNumber:
    route = services.store.execute("SELECT channel, name, options FROM routes WHERE number = ?", (number,)).fetchone()
    counts = services.store.execute(  # every call, answered ones and the data feed's too (bot.domain.reports)
        "SELECT COUNT(*), COALESCE(SUM(answered = 0), 0) FROM calls WHERE tracking = ? AND started_at >= ?",
        (number, today),
    ).fetchone()
    name = route[1] if route and route[1] else _requested_name(services, number)
    return HomeNumber(
        number=number,
        name=name,
        channel=str(route[0]) if route else None,
        options=json.loads(route[2] or "{}") if route else {},
        calls_today=int(counts[0]),
        missed_today=int(counts[1]),
        thread=_thread_link(services, number),
        requester=requester,
    )


def _requested_name(services: Services, number: str) -> str | None:
    row = services.store.execute(
        "SELECT name FROM number_requests WHERE number = ? AND kind = 'create' AND team_id = ?"
        " ORDER BY id DESC LIMIT 1",
        (number, current_team()),
    ).fetchone()
    return str(row[0]) if row else None


def _thread_link(services: Services, number: str) -> str | None:
    """A link to the message the number's calls reply under (its request's message), once it is posted."""
    row = services.store.execute(
        "SELECT o.posted_channel, o.ts FROM threads t JOIN outbox o ON o.id = t.outbox_id"
        " WHERE t.key = ? AND o.status = 'sent'",
        (f"number:{number}",),
    ).fetchone()
    return people.message_link(services, str(row[0]), str(row[1])) if row and row[0] and row[1] else None


def waiting_calls(services: Services, tracking: list[str], now: float) -> tuple[list[HomeCall], int]:
    """This workspace's unclaimed missed calls and voicemails of the last 24 hours on `tracking`, newest first, and
    how many."""
    if not tracking:
        return [], 0
    marks = ", ".join("?" for _ in tracking)
    kinds = ", ".join("?" for _ in ESCALATED_KINDS)
    where = (
        f" FROM alerts a WHERE a.tracking IN ({marks}) AND a.kind IN ({kinds}) AND a.created_at > ?"
        " AND a.claimed_by IS NULL AND a.called_back_by IS NULL AND a.team_id = ?"
    )
    params = (*tracking, *ESCALATED_KINDS, now - WAITING_WINDOW, current_team())
    total = int(services.store.execute("SELECT COUNT(*)" + where, params).fetchone()[0])
    rows = services.store.execute(
        "SELECT a.id, a.kind, a.caller, a.tracking, a.created_at, a.channel, i.source, i.payload"
        + where.replace("FROM alerts a", "FROM alerts a JOIN inbox i ON i.id = a.inbox_id")
        + " ORDER BY a.id DESC LIMIT ?",
        (*params, MAX_CALLS),
    ).fetchall()
    calls = []
    for alert_id, kind, caller, number, created_at, channel, source, payload in rows:
        route = services.store.execute("SELECT name, options FROM routes WHERE number = ?", (number,)).fetchone()
        options = json.loads(route[1] or "{}") if route else {}
        event = parse_event(source, json.loads(payload))
        raw = event.ani if isinstance(event, AvanserCall) else ""
        name = (event.adname if isinstance(event, AvanserCall) else "") or (route[0] if route else None)
        calls.append(
            HomeCall(
                alert_id=int(alert_id),
                kind=str(kind),
                caller=caller,
                caller_raw=raw,
                masked=bool(options.get("mask_callers")),
                number=number,
                name=name,
                at=float(created_at),
                channel=str(channel),
            )
        )
    return calls, total


def waiting_approvals(services: Services) -> tuple[list[HomeApproval], int]:
    """This workspace's requests waiting for an admin's approval, oldest first, with their cost, and how many."""
    rows = services.store.execute(
        "SELECT id, cost FROM number_requests WHERE status = 'awaiting_approval' AND team_id = ? ORDER BY id",
        (current_team(),),
    ).fetchall()
    shown = []
    for request_id, cost in rows[:MAX_APPROVALS]:
        request = numbers.load_request(services, id=int(request_id))
        if request is None:
            continue
        what, details = numbers.summary(request)
        shown.append(HomeApproval(request.id, request.requester, what, details, cost))
    return shown, len(rows)
