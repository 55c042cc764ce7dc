"""Where an event goes: the number's route, then its custom_group's, then SWITCHBOARD_ALERTS_CHANNEL.

Also the registry of message threads: a key (`request:<id>`, `allocation:<greenvn_id>`,
`sms:<number>:<sender>`) names the outbox row whose message later events reply under or update.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Literal

from bot.store import Store

ReportLevel = Literal["missed", "all"]


@dataclass(frozen=True)
class Route:
    channel: str
    name: str | None = None  # the tracking number's friendly name
    report: ReportLevel = "missed"  # "all": answered calls are posted too
    mask_callers: bool = False  # show only the last 3 digits of callers in the channel
    via: Literal["number", "group", "default"] = "number"


def route_for(
    store: Store, default_channel: str | None, *, number: str | None, custom_group: str | None = None
) -> Route | None:
    """The route of an event on `number` (E.164); None when nothing, not even a default, applies."""
    if number:
        row = store.execute("SELECT channel, name, options FROM routes WHERE number = ?", (number,)).fetchone()
        if row:
            options = json.loads(row[2] or "{}")
            return Route(
                channel=row[0],
                name=row[1],
                report=options.get("report", "missed"),
                mask_callers=bool(options.get("mask_callers")),
                via="number",
            )
    if custom_group:
        row = store.execute("SELECT channel FROM group_routes WHERE custom_group = ?", (custom_group,)).fetchone()
        if row:
            return Route(channel=row[0], via="group")
    if default_channel:
        return Route(channel=default_channel, via="default")
    return None


def set_route(
    store: Store,
    number: str,
    channel: str,
    *,
    by: str,
    name: str | None = None,
    report: ReportLevel | None = None,
    mask_callers: bool | None = None,
) -> None:
    """Send `number`'s events to `channel`; options not given keep their current value."""
    row = store.execute("SELECT name, options FROM routes WHERE number = ?", (number,)).fetchone()
    options = json.loads(row[1]) if row else {}
    if report is not None:
        options["report"] = report
    if mask_callers is not None:
        options["mask_callers"] = mask_callers
    store.execute(
        "INSERT INTO routes (number, channel, name, options, updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(number) DO UPDATE SET channel = excluded.channel, name = excluded.name,"
        " options = excluded.options, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        (
            number,
            channel,
            name if name is not None else (row[0] if row else None),
            json.dumps(options),
            by,
            time.time(),
        ),
    )


def set_group_route(store: Store, custom_group: str, channel: str, *, by: str) -> None:
    store.execute(
        "INSERT INTO group_routes (custom_group, channel, updated_by, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(custom_group) DO UPDATE SET channel = excluded.channel, updated_by = excluded.updated_by,"
        " updated_at = excluded.updated_at",
        (custom_group, channel, by, time.time()),
    )


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
