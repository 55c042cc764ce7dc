"""Call reports: every call counted once (webhooks and the data feed), "is this ad working?" per number.

    on_avanser_call (alerts) ─▶ record_call ─▶ `calls` row + one upsert of `call_days` (number, day: 24 hours)
    /numbers report ─▶ parse_report_args ─▶ build_report (SQL, then the chart in a worker thread)
                    ─▶ the counts to the person, the chart uploaded to the conversation (outbox)
    every Monday 00:00 UTC ─▶ weekly_reports ─▶ each route with `weekly-report`: last week's report in its channel

A report reads `call_days`, never the calls themselves: at most numbers × days rows (each with its
calls per hour of the day in 24 columns), whatever the number of calls (`make bench` measures a 30-day
report over 1,000,000 calls). Days and hours are the calls' own: the time zone AVANSER stamped each
call with (`tzdate`); "today" is the day in the zone of the latest call.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from bot.domain.routing import weekly_report_routes
from bot.errors import UserError
from bot.phone import national, parse_number
from bot.store import Store
from bot.workspaces import current_team, team_scope
from notifiers.calls import kind_of
from notifiers.events import AvanserCall
from notifiers.reports import (
    MOST_NUMBERS,
    CallReport,
    DayCount,
    NumberStats,
    chart_png,
    chart_title,
    render_report,
    report_summary,
)

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

DEFAULT_DAYS = 7
MOST_DAYS = 366
WEEKLY_JOB = "weekly-reports"
HOURS = tuple(f"h{h:02d}" for h in range(24))  # call_days' columns: calls per hour of the day
DAYS = re.compile(r"(?:^|\s)(\d+)\s*(?:d|days?)\s*$", re.I)


# -- every call, counted once ------------------------------------------------------------------------


def call_time(event: AvanserCall, received_at: float | None = None) -> datetime:
    """When the call started, in the time zone AVANSER reported it in (UTC when it gave none)."""
    at = event.at
    if at is None:
        return datetime.fromtimestamp(received_at if received_at is not None else time.time(), UTC)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def record_call(store: Store, inbox_id: int, event: AvanserCall, received_at: float | None = None) -> bool:
    """Count one call in `calls` (as this workspace's) and `call_days` (answered ones too); False when it was counted
    before."""
    at = call_time(event, received_at)
    status = kind_of(event)
    answered = int(status == "answered")
    day, hour = at.date().isoformat(), at.hour
    offset = int((at.utcoffset() or timedelta()).total_seconds() // 60)
    cursor = store.execute(
        "INSERT OR IGNORE INTO calls (call_key, inbox_id, tracking, name, caller, status, answered, started_at,"
        " local_day, local_hour, utc_offset, duration, via, team_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.dedup_key(),
            inbox_id,
            event.tracking_e164,
            event.adname or None,
            event.caller_e164,
            status,
            answered,
            at.timestamp(),
            day,
            hour,
            offset,
            event.duration,
            "feed" if event.from_feed else "call_uri",
            current_team(),
        ),
    )
    if not cursor.rowcount:
        return False
    column = HOURS[hour]  # one of 24 fixed names, never text from outside
    store.execute(
        f"INSERT INTO call_days (team_id, tracking, local_day, calls, answered, {column}) VALUES (?, ?, ?, 1, ?, 1)"
        # The table's own columns named in full: PostgreSQL reads a bare `calls` as ambiguous here.
        f" ON CONFLICT (team_id, tracking, local_day) DO UPDATE SET calls = call_days.calls + 1,"
        f" answered = call_days.answered + excluded.answered, {column} = call_days.{column} + 1",
        (current_team(), event.tracking_e164 or "", day, answered),
    )
    return True


def recording_arrived(store: Store, call_key: str) -> None:
    """A call not answered whose recording came later (the data feed) was a voicemail."""
    store.execute("UPDATE calls SET status = 'voicemail' WHERE call_key = ? AND answered = 0", (call_key,))


def rebuild_stats(store: Store) -> int:
    """Recount `call_days` from `calls` (after a bulk load); returns the number of rows it has."""
    per_hour = ", ".join(f"SUM(local_hour = {h})" for h in range(24))
    with store.transaction():
        store.execute("DELETE FROM call_days")
        store.execute(
            f"INSERT INTO call_days (team_id, tracking, local_day, calls, answered, {', '.join(HOURS)})"
            f" SELECT team_id, COALESCE(tracking, ''), local_day, COUNT(*), SUM(answered), {per_hour} FROM calls"
            " GROUP BY 1, 2, 3"
        )
    return int(store.execute("SELECT COUNT(*) FROM call_days").fetchone()[0])


# -- reports ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportQuery:
    number: str | None  # E.164; None: every number
    days: int = DEFAULT_DAYS

    def describe(self) -> str:
        which = national(self.number) if self.number else "all numbers"
        return f"{which}, last {self.days} day{'s' if self.days != 1 else ''}"


def parse_report_args(text: str, country: str) -> ReportQuery:
    """`[<number>|all] [<N>d]`: all numbers and 7 days unless said otherwise."""
    days, rest = DEFAULT_DAYS, text.strip()
    span = DAYS.search(rest)
    if span is not None:
        days, rest = int(span.group(1)), rest[: span.start()].strip()
        if not 1 <= days <= MOST_DAYS:
            raise UserError(f"A report covers 1 to {MOST_DAYS} days, e.g. `/numbers report all 30d`.")
    if rest.lower() in ("", "all"):
        return ReportQuery(None, days)
    try:
        return ReportQuery(parse_number(rest, country), days)
    except UserError:
        raise UserError(
            f"“{rest}” isn't a number I can report on. Try `/numbers report 02 9008 1596 30d` or `/numbers report all`."
        ) from None


def report_today(store: Store, now: float | None = None, *, team: str | None = None) -> date:
    """Today in the time zone of the latest call (of workspace `team`, when given; UTC when there is none)."""
    if team is not None:
        row = store.execute(
            "SELECT utc_offset FROM calls WHERE team_id = ? ORDER BY id DESC LIMIT 1", (team,)
        ).fetchone()
    else:
        row = store.execute("SELECT utc_offset FROM calls ORDER BY id DESC LIMIT 1").fetchone()
    offset = timedelta(minutes=int(row[0])) if row else timedelta()
    return (datetime.fromtimestamp(now if now is not None else time.time(), UTC) + offset).date()


def call_report(
    store: Store, number: str | None, days: int, *, last_day: date | None = None, team: str | None = None
) -> CallReport:
    """The counts of `number` (or every number) over the `days` days ending `last_day` (default: today).

    With `team` (many workspaces), only the numbers whose calls were that workspace's: another's number counts
    nothing, as a number that had no calls. None (single-workspace mode) counts every number."""
    last = last_day or report_today(store, team=team)
    first = last - timedelta(days=days - 1)
    # Only the workspace's counts (another's number counts nothing here); in single-workspace mode every row is
    # the one workspace's (""). The key's order — workspace, number, day — serves a number's report directly.
    where = "team_id = ?" + (" AND tracking = ?" if number is not None else "") + " AND local_day BETWEEN ? AND ?"
    params = [team or "", *([number] if number is not None else []), first.isoformat(), last.isoformat()]
    hours: dict[str, list[int]] = {}
    answered: dict[str, int] = {}
    for tracking, took, *counts in store.execute(
        f"SELECT tracking, SUM(answered), {', '.join(f'SUM({h})' for h in HOURS)} FROM call_days WHERE {where}"
        " GROUP BY tracking",
        tuple(params),
    ):
        hours[tracking] = [int(c) for c in counts]
        answered[tracking] = int(took)
    by_day = {
        str(day): (int(calls), int(took))
        for day, calls, took in store.execute(
            f"SELECT local_day, SUM(calls), SUM(answered) FROM call_days WHERE {where} GROUP BY local_day",
            tuple(params),
        )
    }
    if number is not None and number not in hours:
        hours[number] = [0] * 24
    stats = [
        NumberStats(tracking or None, None, sum(counts), answered.get(tracking, 0), tuple(counts))
        for tracking, counts in hours.items()
    ]
    stats.sort(key=lambda s: (-s.calls, s.number or ""))
    # Names only for the numbers the message lists (the rest are in the totals).
    stats[:MOST_NUMBERS] = [replace(s, name=_name_of(store, s.number or "", team)) for s in stats[:MOST_NUMBERS]]
    per_day = []
    for i in range(days):
        day = first + timedelta(days=i)
        calls, took = by_day.get(day.isoformat(), (0, 0))
        per_day.append(DayCount(day, calls, took))
    return CallReport(number, days, first, last, tuple(stats), tuple(per_day))


def _name_of(store: Store, tracking: str, team: str | None = None) -> str | None:
    """The number's name: its route's, else the latest name AVANSER gave with a call (of workspace `team`, if
    given: never another workspace's name for a number)."""
    mine = " AND team_id = ?" if team is not None else ""
    extra: tuple[str, ...] = (team,) if team is not None else ()
    row = store.execute(
        f"SELECT name FROM routes WHERE number = ? AND name IS NOT NULL{mine}", (tracking, *extra)
    ).fetchone()
    if row and row[0]:
        return str(row[0])
    row = store.execute(
        f"SELECT name FROM calls WHERE tracking = ? AND name IS NOT NULL{mine} ORDER BY started_at DESC LIMIT 1",
        (tracking, *extra),
    ).fetchone()
    return str(row[0]) if row and row[0] else None


@dataclass(frozen=True)
class MadeReport:
    report: CallReport
    chart: bytes


async def build_report(services: Services, query: ReportQuery, *, last_day: date | None = None) -> MadeReport:
    """The counts (SQLite, a few ms) and their chart (drawn in a worker thread, off the event loop): this
    workspace's numbers only (with one workspace, every number: all its rows are that workspace's anyway, and the
    report need not read `calls`)."""
    team = current_team() if services.installations is not None else None
    report = call_report(services.store, query.number, query.days, last_day=last_day, team=team)
    chart = await asyncio.to_thread(chart_png, report)
    return MadeReport(report, chart)


def chart_name(report: CallReport) -> str:
    which = report.number.lstrip("+") if report.number else "all"
    return f"calls-{which}-{report.first_day.isoformat()}-to-{report.last_day.isoformat()}.png"


def share_chart(services: Services, channel: str, user: str, made: MadeReport) -> int:
    """Upload the report's chart to the conversation it was asked from."""
    comment = f"📊 Calls per day, answered and missed — asked for by <@{user}>"
    name, title = chart_name(made.report), chart_title(made.report)
    return services.outbox.upload(channel, made.chart, name, title, comment=comment)


async def report_for(services: Services, user: str, channel: str, query: ReportQuery) -> tuple[str, list[dict]]:
    """`/numbers report`: the counts for the person (text, blocks); the chart goes to the conversation."""
    made = await build_report(services, query)
    share_chart(services, channel, user, made)
    return render_report(made.report)


# -- the weekly report of a route -----------------------------------------------------------------------


def week_of(moment: datetime) -> tuple[str, datetime]:
    """(ISO week like `2026-W47`, that week's Monday 00:00 UTC)."""
    moment = moment.astimezone(UTC)
    monday = (moment - timedelta(days=moment.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}", monday


async def weekly_reports(services: Services, now: float | None = None) -> int:
    """Post last week's report in the channel of every route that asks for one, once per route and week, each as its
    workspace's (its counts, its token).

    A route whose weekly report was asked for after this week's Monday 00:00 UTC starts next week."""
    moment = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    week, monday = week_of(moment)
    posted = 0
    for number, channel, changed_at, team in weekly_report_routes(services.store):
        if changed_at > monday.timestamp() or _posted(services.store, number, week):
            continue
        with team_scope(team):
            made = await build_report(services, ReportQuery(number, 7), last_day=monday.date() - timedelta(days=1))
        with services.store.transaction(), team_scope(team):
            if _posted(services.store, number, week):
                continue
            services.outbox.upload(
                channel,
                made.chart,
                chart_name(made.report),
                chart_title(made.report),
                comment=report_summary(made.report),
                dedup_key=f"weekly:{number}:{week}",
            )
            services.store.execute(
                "INSERT INTO weekly_reports (number, week, channel, posted_at) VALUES (?, ?, ?, ?)",
                (number, week, channel, time.time()),
            )
        posted += 1
    if posted:
        log.info("weekly reports: %d posted for %s", posted, week)
    return posted


def _posted(store: Store, number: str, week: str) -> bool:
    row = store.execute("SELECT 1 FROM weekly_reports WHERE number = ? AND week = ?", (number, week)).fetchone()
    return row is not None


async def schedule_weekly(services: Services) -> None:
    """At start: the Monday job, and this week's reports if a stopped Switchboard missed them."""
    services.scheduler.weekly(WEEKLY_JOB, weekly_reports, services)
    await weekly_reports(services)
