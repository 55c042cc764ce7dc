"""`/numbers report`: "is this ad working?" — counts checked against the calls placed, a chart, weekly reports."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.domain.feed import pull_feed
from bot.domain.reports import ReportQuery, call_report, parse_report_args, week_of, weekly_reports
from bot.errors import UserError
from bot.sandbox.stack import ADMIN, Stack
from notifiers.reports import CallReport, DayCount, NumberStats, chart_png, render_report
from tests.helpers import on_app, wait_for

AD, OTHER, QUIET = "+61290081596", "+61290081597", "+61290081598"
ZONE = 10 * 3600  # the sandbox's calls are stamped +10:00


def test_report_arguments() -> None:
    assert parse_report_args("", "AU") == ReportQuery(None, 7)
    assert parse_report_args("all 30d", "AU") == ReportQuery(None, 30)
    assert parse_report_args("02 9008 1596", "AU") == ReportQuery(AD, 7)
    assert parse_report_args("+61 2 9008 1596 14d", "AU") == ReportQuery(AD, 14)
    assert parse_report_args("3 days", "AU") == ReportQuery(None, 3)
    for bad in ("all 0d", "all 400d", "banana", "02 9008 1596 banana"):
        with pytest.raises(UserError):
            parse_report_args(bad, "AU")


def test_busiest_hour_and_rates() -> None:
    hours = [0] * 24
    hours[10], hours[14] = 3, 3
    stats = NumberStats(AD, "Ad", 6, 2, tuple(hours))
    assert (stats.missed, round(stats.missed_rate, 3), stats.busiest_hour) == (4, 0.667, 10)  # a tie: the earliest
    assert NumberStats(AD, None, 0, 0).busiest_hour is None


def test_the_chart_is_a_png_of_every_day() -> None:
    days = tuple(DayCount(date(2026, 11, d), d, d // 2) for d in range(1, 31))
    report = CallReport(None, 30, date(2026, 11, 1), date(2026, 11, 30), (NumberStats(AD, "$ale ad", 465, 225),), days)
    png = chart_png(report)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    text, _ = render_report(report)
    assert "465 calls: 225 answered, 240 missed (52 %)" in text


def place(stack: Stack, calls: list[tuple[str, int, str, float, bool]]) -> None:
    """(tracking, caller n, status, at, webhook sent) for each call."""
    for i, (number, n, status, at, sent) in enumerate(calls):
        stack.avanser.place_call(
            number, f"+614123{n:05d}", status=status, uniqueid=f"ECS-r-{i}", at=at, duration=30, send=sent
        )


def expected(calls: list[tuple[str, int, str, float, bool]], number: str) -> dict[str, Any]:
    """What the report must say about `number`, counted here from the calls placed."""
    mine = [c for c in calls if c[0] == number]
    answered = sum(1 for c in mine if c[2] == "avanser_answered_call")
    hours = Counter(time.gmtime(c[3] + ZONE).tm_hour for c in mine)
    busiest = max(range(24), key=lambda h: (hours[h], -h))
    return {"calls": len(mine), "answered": answered, "missed": len(mine) - answered, "busiest": busiest}


def test_the_report_counts_every_call_webhook_or_feed(tmp_path: Path) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, feed="json", SWITCHBOARD_ALERTS_CHANNEL="C0ALERTS") as stack:
        wait_for(lambda: on_app(stack, lambda s: s.store.execute("SELECT 1 FROM feed_state").fetchone()))
        for number, name in ((AD, "Spring sale ad"), (OTHER, "Radio ad")):
            stack.avanser.register_service(number, name, stack.call_uri())
        now = time.time()
        statuses = ["avanser_missed_call", "avanser_answered_call", "avanser_busy_call", "avanser_answered_call"]
        calls = [
            (AD if i % 3 else OTHER, i, statuses[i % 4], now - (i % 5) * 86400 - (i % 7) * 3600, i % 10 != 0)
            for i in range(40)
        ]
        place(stack, calls)
        assert stack.on_app(pull_feed(stack.services)).recovered == 4  # every 10th webhook was lost
        wait_for(lambda: on_app(stack, lambda s: s.store.execute("SELECT COUNT(*) FROM calls").fetchone()[0]) == 40)
        answer, url = stack.slack.command(stack.url, "/numbers", "report all 7d", user_id="U0REP", channel_id="C0SALES")
        assert answer.json()["text"] == "Counting calls: all numbers, last 7 days…"
        reply = wait_for(lambda: stack.slack.responses_to(url))[0]  # type: ignore[index]
        text = json.dumps(reply["blocks"], ensure_ascii=False)
        for number, name in ((AD, "Spring sale ad"), (OTHER, "Radio ad")):
            want = expected(calls, number)
            line = re.search(rf"\*{name}\* · [^—]+ — \*(\d+)\* calls: (\d+) answered, (\d+) missed \((\d+) %\)", text)
            assert line is not None, text
            assert [int(g) for g in line.groups()[:3]] == [want["calls"], want["answered"], want["missed"]]
            assert int(line.group(4)) == round(100 * want["missed"] / want["calls"])
            assert f"busiest {want['busiest']:02d}:00–" in text.split(f"*{name}*")[1].split("\\n")[0]
        assert "All together: 40 calls: 20 answered, 20 missed (50 %)" in text
        # The chart, uploaded to the conversation the report was asked from.
        stack.drain(10)
        [shared] = [m for m in stack.slack.channel_messages("C0SALES") if m.get("files")]
        assert shared["files"][0]["name"].startswith("calls-all-") and shared["files"][0]["name"].endswith(".png")
        assert "asked for by <@U0REP>" in shared["text"]
        [upload] = [u for u in stack.slack.uploads.values() if u["filename"].endswith(".png")]
        assert upload["content"].startswith(b"\x89PNG")
        # Per day: the same counts as the calls placed, day by day in the calls' own zone.
        report = stack.on_app(_report(stack, None, 7))
        per_day = Counter(datetime.fromtimestamp(c[3] + ZONE, UTC).date() for c in calls)
        assert {d.day: d.calls for d in report.per_day if d.calls} == dict(per_day)
        assert sum(d.answered for d in report.per_day) == 20
        # One number, and a number with no calls.
        one = stack.on_app(_report(stack, OTHER, 7))
        assert [(n.number, n.calls) for n in one.numbers] == [(OTHER, expected(calls, OTHER)["calls"])]
        quiet = stack.on_app(_report(stack, QUIET, 7))
        assert [(n.number, n.calls) for n in quiet.numbers] == [(QUIET, 0)]
        _, url = stack.slack.command(stack.url, "/numbers", "report 02 9008 1598", channel_id="C0SALES")
        assert "No calls in these days." in json.dumps(wait_for(lambda: stack.slack.responses_to(url)))


async def _report(stack: Stack, number: str | None, days: int) -> CallReport:
    assert stack.services is not None
    return call_report(stack.services.store, number, days)


def test_a_route_asks_for_a_weekly_report(tmp_path: Path) -> None:
    with Stack(tmp_path, outbox_channel_interval=0) as stack:
        stack.avanser.register_service(AD, "Spring sale ad", stack.call_uri())
        answer, url = stack.slack.command(
            stack.url, "/numbers", "route 02 9008 1596 <#C0WEEKLY|weekly> weekly-report", user_id=ADMIN
        )
        assert answer.status_code == 200
        said = wait_for(lambda: stack.slack.responses_to(url))[0]["text"]  # type: ignore[index]
        assert said.startswith(
            "Calls and texts to (02) 9008 1596 will be posted in <#C0WEEKLY>. "
            "Every Monday, last week's call report for it is posted there too.\nIts route: "
        )
        _, monday = week_of(datetime.now(UTC))
        tuesday = (monday + timedelta(days=1, hours=2)).timestamp()
        place(stack, [(AD, 1, "avanser_missed_call", tuesday, True), (AD, 2, "avanser_answered_call", tuesday, True)])
        wait_for(lambda: len(stack.slack.channel_messages("C0WEEKLY")) == 1)
        assert stack.on_app(_weekly(stack, time.time())) == 0  # asked for this week: the first report is next Monday
        next_monday = (monday + timedelta(days=7, hours=1)).timestamp()
        assert stack.on_app(_weekly(stack, next_monday)) == 1
        assert stack.on_app(_weekly(stack, next_monday + 60)) == 0  # once a week
        stack.drain(10)
        [report] = [m for m in stack.slack.channel_messages("C0WEEKLY") if m.get("files")]
        assert "*Spring sale ad* · (02) 9008 1596 — *2* calls: 1 answered, 1 missed (50 %)" in report["text"]
        assert report["thread_ts"] is None
        # A restart rebuilds the Monday job; the week's report isn't posted again.
        stack.stop_app()
        stack.start_app()
        assert "weekly-reports" in stack.on_app(_jobs(stack))
        assert stack.on_app(_weekly(stack, next_monday + 120)) == 0
        # And it can be switched off.
        _, url = stack.slack.command(
            stack.url, "/numbers", "route 02 9008 1596 <#C0WEEKLY|weekly> no-weekly-report", user_id=ADMIN
        )
        assert "No weekly report" in wait_for(lambda: stack.slack.responses_to(url))[0]["text"]  # type: ignore[index]


async def _weekly(stack: Stack, now: float) -> int:
    assert stack.services is not None
    return await weekly_reports(stack.services, now)


async def _jobs(stack: Stack) -> list[str]:
    assert stack.services is not None
    return stack.services.scheduler.pending()


def test_a_report_with_markup_in_a_numbers_name_is_shown_as_text() -> None:
    from bot.sandbox.blockkit import check_blocks
    from bot.sandbox.markup import injections
    from notifiers.reports import report_summary
    from tests.test_escaping import ATTACK, assert_shown_as_text

    stats = tuple(NumberStats(f"+6129008{1500 + i}", ATTACK * 3, 10 + i, i) for i in range(60))
    days = tuple(DayCount(date(2026, 11, d), 3, 1) for d in range(1, 8))
    report = CallReport(None, 7, date(2026, 11, 1), date(2026, 11, 7), stats, days)
    text, blocks = render_report(report)
    assert check_blocks(blocks) == [] and len(text) <= 4000
    found = [{"text": text, "blocks": blocks}, {"text": report_summary(report), "blocks": []}]
    one = CallReport(stats[0].number, 7, report.first_day, report.last_day, stats[:1], days)
    found.append({"text": render_report(one)[0], "blocks": render_report(one)[1]})
    assert_shown_as_text(found)
    assert injections(found) == []
    assert chart_png(one).startswith(b"\x89PNG")  # the name in the chart's title is text, not mathtext or markup
