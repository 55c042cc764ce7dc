"""Where an event goes, and how it gets there.

Routes: a number's own route (`/numbers route`), then its AVANSER custom_group's, then
SWITCHBOARD_ALERTS_CHANNEL. Threads: a key (`request:<id>`, `allocation:<greenvn_id>`,
`sms:<number>:<sender>`, `number:<e164>`) names the outbox row whose message later events reply
under. Delivery (`deliver`): during a storm (a new alert would wait more than STORM_DELAY seconds behind
the posts already queued for its channel) an alert becomes one line of the channel's storm digest —
an insert, whatever the digest's size; the digest message is rendered from its lines when the
outbox sends it (at most one post or edit per send slot). Otherwise a message is posted in its
thread when one is registered in the same channel, else in the channel. Nothing is dropped; the
digest lists every alert.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.errors import UserError
from bot.outbox import Outbox
from bot.store import Store
from bot.workspaces import current_team
from notifiers import message
from notifiers.digest import DIGEST_CAPACITY, DIGEST_SECONDS
from notifiers.message import Message, ReportLevel
from notifiers.text import LINE, truncate

if TYPE_CHECKING:
    from bot.services import Services

STORM_DELAY = 3.0  # seconds a new alert would wait behind the channel's queue before a digest takes over
OWNING_STATUSES = "('configured', 'completed')"  # a number request's states that make the number its workspace's
ROUTED_ELSEWHERE = "That number is routed by another workspace; ask its admins to unroute it first."


class RoutedElsewhere(UserError):
    """The number's calls already go to another workspace."""


@dataclass(frozen=True)
class Route(message.Route):
    """A route, and whose it is: the workspace an event on its number belongs to ("" in single-workspace mode)."""

    team: str = ""


# The default channel of a workspace: a fixed one (tests, single-workspace callers) or looked up by team.
DefaultChannel = str | None | Callable[[str], str | None]


def alerts_channels(services: Services) -> Callable[[str], str | None]:
    """The alerts channel of a number without a route: its workspace's own (SWITCHBOARD_ALERTS_CHANNEL by default)."""
    return lambda team: services.workspaces.config(team).alerts_channel


def route_for(
    store: Store, default_channel: DefaultChannel, *, number: str | None, custom_group: str | None = None
) -> Route | None:
    """The route of an event on `number` (E.164), whichever workspace's it is: a webhook finds its workspace here.
    None when nothing, not even a default, applies."""
    if number:
        row = store.execute("SELECT channel, name, options, team_id FROM routes WHERE number = ?", (number,)).fetchone()
        if row:
            options = json.loads(row[2] or "{}")
            return Route(
                channel=row[0],
                name=row[1],
                report=options.get("report", "missed"),
                mask_callers=bool(options.get("mask_callers")),
                via="number",
                escalate=options.get("escalate") or None,
                team=str(row[3]),
            )
    if custom_group:
        row = store.execute(
            "SELECT channel, team_id FROM group_routes WHERE custom_group = ?", (custom_group,)
        ).fetchone()
        if row:
            return Route(channel=row[0], via="group", team=str(row[1]))
    team = team_of_number(store, number)
    channel = default_channel(team) if callable(default_channel) else default_channel
    if channel:
        return Route(channel=channel, via="default", team=team)
    return None


def team_of_number(store: Store, number: str | None) -> str:
    """The workspace a number without a route of its own belongs to: its latest request's, else its latest
    allocation's (a virtual number); "" when Switchboard doesn't know it."""
    if not number:
        return ""
    row = store.execute(  # a request AVANSER carried out: asking for a number doesn't make it anyone's
        f"SELECT team_id FROM number_requests WHERE number = ? AND status IN {OWNING_STATUSES}"
        " ORDER BY id DESC LIMIT 1",
        (number,),
    ).fetchone()
    if row is None:
        row = store.execute(
            "SELECT team_id FROM allocations WHERE green_vn = ? ORDER BY id DESC LIMIT 1", (number,)
        ).fetchone()
    return str(row[0]) if row else ""


def routed_elsewhere(store: Store, number: str) -> bool:
    """Another workspace routes `number` (numbers are unique, so one route per number, whoever's it is)."""
    row = store.execute("SELECT team_id FROM routes WHERE number = ?", (number,)).fetchone()
    return row is not None and str(row[0]) != current_team()


def routed_channel(store: Store, number: str | None) -> str | None:
    """The channel of `number`'s own route in this workspace, if it has one."""
    row = store.execute(
        "SELECT channel FROM routes WHERE number = ? AND team_id = ?", (number, current_team())
    ).fetchone()
    return str(row[0]) if row else None


def route_options(store: Store, number: str) -> dict[str, Any]:
    """The options of `number`'s own route in this workspace (report, mask_callers, escalate, …); {} without one."""
    row = store.execute(
        "SELECT options FROM routes WHERE number = ? AND team_id = ?", (number, current_team())
    ).fetchone()
    return dict(json.loads(row[0] or "{}")) if row else {}


def routed_channels(store: Store) -> dict[str, str]:
    """Every number's own route in this workspace: number → channel."""
    rows = store.execute("SELECT number, channel FROM routes WHERE team_id = ?", (current_team(),)).fetchall()
    return {str(n): str(c) for n, c in rows}


def set_route(
    store: Store,
    number: str,
    channel: str,
    *,
    by: str,
    name: str | None = None,
    report: ReportLevel | None = None,
    mask_callers: bool | None = None,
    weekly_report: bool | None = None,
    options: dict[str, Any] | None = None,
) -> None:
    """Send `number`'s events to `channel`, as this workspace's; options not given keep their current value (a None
    in `options` removes that option). RoutedElsewhere when another workspace routes the number."""
    team = current_team()
    row = store.execute("SELECT name, options, team_id FROM routes WHERE number = ?", (number,)).fetchone()
    if row is not None and str(row[2]) != team:
        raise RoutedElsewhere(ROUTED_ELSEWHERE)
    stored: dict[str, Any] = json.loads(row[1]) if row else {}
    given = dict(options or {})
    if report is not None:
        given["report"] = report
    if mask_callers is not None:
        given["mask_callers"] = mask_callers
    if weekly_report is not None:
        given["weekly_report"] = weekly_report
    for key, value in given.items():
        if value is None:
            stored.pop(key, None)
        else:
            stored[key] = value
    store.execute(
        "INSERT INTO routes (number, channel, name, options, updated_by, updated_at, team_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(number) DO UPDATE SET channel = excluded.channel, name = excluded.name,"
        " options = excluded.options, updated_by = excluded.updated_by, updated_at = excluded.updated_at"
        " WHERE routes.team_id = excluded.team_id",  # never another workspace's, even in a race with the check above
        (
            number,
            channel,
            name if name is not None else (row[0] if row else None),
            json.dumps(stored),
            by,
            time.time(),
            team,
        ),
    )


def weekly_report_routes(store: Store) -> list[tuple[str, str, float, str]]:
    """(number, channel, when its route last changed, its workspace) of every route, in every workspace, that asks
    for a weekly report."""
    rows = store.execute("SELECT number, channel, options, updated_at, team_id FROM routes ORDER BY number").fetchall()
    return [
        (str(r[0]), str(r[1]), float(r[3]), str(r[4])) for r in rows if json.loads(r[2] or "{}").get("weekly_report")
    ]


def remove_route(store: Store, number: str) -> None:
    """Forget `number`'s route, if it is this workspace's."""
    store.execute("DELETE FROM routes WHERE number = ? AND team_id = ?", (number, current_team()))


def set_group_route(store: Store, custom_group: str, channel: str, *, by: str) -> None:
    """Send the events of AVANSER custom_group `custom_group` to `channel`, as this workspace's."""
    store.execute(
        "INSERT INTO group_routes (custom_group, channel, updated_by, updated_at, team_id) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT(custom_group) DO UPDATE SET channel = excluded.channel, updated_by = excluded.updated_by,"
        " updated_at = excluded.updated_at WHERE group_routes.team_id = excluded.team_id",
        (custom_group, channel, by, time.time(), current_team()),
    )


# -- threads ----------------------------------------------------------------------------------------


def thread_root(store: Store, *keys: str) -> int | None:
    """The outbox row registered under the first of `keys` that has one."""
    for key in keys:
        row = store.execute("SELECT outbox_id FROM threads WHERE key = ?", (key,)).fetchone()
        if row:
            return int(row[0])
    return None


def remember_thread(store: Store, key: str, outbox_id: int) -> None:
    store.execute(
        "INSERT OR IGNORE INTO threads (key, outbox_id, created_at) VALUES (?, ?, ?)",
        (key, outbox_id, time.time()),
    )


def thread_channel(store: Store, *keys: str) -> str | None:
    """The channel of the first registered thread among `keys`."""
    root = thread_root(store, *keys) if keys else None
    if root is None:
        return None
    row = store.execute("SELECT channel FROM outbox WHERE id = ?", (root,)).fetchone()
    return str(row[0]) if row else None


# -- delivery ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivered:
    row: int | None  # the outbox row that posts the message; None when it went into a digest
    digest: int | None = None  # the digest it went into


def deliver(
    store: Store, outbox: Outbox, key: str, channel: str, message: Message, *, digest: bool = False
) -> Delivered:
    """Queue `message` for `channel` under dedup key `key`: in a storm digest, in its thread, or in the channel."""
    if digest and storming(store, outbox, channel):
        return Delivered(None, add_to_digest(store, outbox, channel, message.summary or message.text))
    root = thread_root(store, *message.thread_keys) if message.thread_keys else None
    if root is not None:
        root_channel = str(store.execute("SELECT channel FROM outbox WHERE id = ?", (root,)).fetchone()[0])
        if root_channel == channel:  # else the number was routed elsewhere since: post there, not in the old thread
            extra = {"reply_broadcast": True} if message.broadcast else {}
            return Delivered(outbox.post(channel, message.text, message.blocks, dedup_key=key, thread_of=root, **extra))
    row = outbox.post(channel, message.text, message.blocks, dedup_key=key)
    if message.starts_thread:
        remember_thread(store, message.starts_thread, row)
    return Delivered(row)


# -- storms: O(1) per alert ---------------------------------------------------------------------------


def _open_digest(store: Store, channel: str) -> tuple[int, int, int, int | None] | None:
    """(id, its post's outbox row, chars used, its pending edit's row) of the channel's open digest."""
    row = store.execute(
        "SELECT id, outbox_id, chars, update_row FROM digests WHERE channel = ? AND team_id = ? AND opened_at > ?"
        " ORDER BY id DESC LIMIT 1",
        (channel, current_team(), time.time() - DIGEST_SECONDS),
    ).fetchone()
    return (int(row[0]), int(row[1]), int(row[2]), row[3]) if row else None


def storming(store: Store, outbox: Outbox, channel: str) -> bool:
    """A digest is open in the channel, or a new post would wait STORM_DELAY seconds behind the queued ones."""
    if _open_digest(store, channel) is not None:
        return True
    waiting = store.execute(
        "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND channel = ? AND method = 'chat.postMessage'",
        (channel,),
    ).fetchone()[0]
    return int(waiting) * outbox.channel_interval >= STORM_DELAY


def digest_if_storming(store: Store, outbox: Outbox, channel: str, line: Callable[[], str]) -> int | None:
    """During a storm in `channel`, add `line()` to its digest and return the digest's id; else None.

    One lookup of the open digest, one insert, one counter: O(1) whatever the storm's size."""
    current = _open_digest(store, channel)
    if current is None and not storming(store, outbox, channel):
        return None
    return add_to_digest(store, outbox, channel, line(), current=current)


def add_to_digest(
    store: Store, outbox: Outbox, channel: str, line: str, *, current: tuple[int, int, int, int | None] | None = None
) -> int:
    """Append one line to the channel's open digest (or open one): an insert and a counter, whatever its size.

    The digest's message is rendered from its lines when the outbox sends it; at most one edit of it waits
    in the outbox at a time, so Slack sees at most one post or edit per send slot."""
    line = truncate(line, LINE)
    current = current or _open_digest(store, channel)
    if current is not None and current[2] + len(line) + 1 <= DIGEST_CAPACITY:
        digest_id, post_row, _chars, update_row = current
        store.execute("INSERT INTO digest_lines (digest_id, line) VALUES (?, ?)", (digest_id, line))
        store.execute(
            "UPDATE digests SET line_count = line_count + 1, chars = chars + ? WHERE id = ?", (len(line) + 1, digest_id)
        )
        if not outbox.any_pending(post_row, update_row):
            edit = outbox.update(post_row, "", None, digest=digest_id)
            store.execute("UPDATE digests SET update_row = ? WHERE id = ?", (edit, digest_id))
        return digest_id
    post_row = outbox.post(channel, "", None, digest=0)  # the digest's id is filled in below, in the same transaction
    cursor = store.execute(
        "INSERT INTO digests (channel, outbox_id, opened_at, lines, line_count, chars, team_id)"
        " VALUES (?, ?, ?, '[]', 1, ?, ?)",
        (channel, post_row, time.time(), len(line) + 1, current_team()),
    )
    digest_id = int(cursor.lastrowid or 0)
    store.execute("INSERT INTO digest_lines (digest_id, line) VALUES (?, ?)", (digest_id, line))
    outbox.render_as_digest(post_row, digest_id)
    return digest_id
