"""Call reports → Slack: per-number counts as a message, calls per day (answered vs missed) as a PNG chart.

"Is this ad working?": for each tracking number, its calls, how many were answered and missed, the
missed rate and the busiest hour, over the last N days; days and hours are the calls' own (the time
zone AVANSER reported each call in). `chart_png` draws with matplotlib's Agg canvas — no display, no
browser, no service — and is meant to run in a worker thread (the caller's `asyncio.to_thread`).
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from datetime import date
from typing import Any

from slack_sdk.models.blocks import ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from bot.phone import national
from notifiers.text import HEADER, SECTION, TEXT, chunks, mrkdwn, plain, truncate

MOST_NUMBERS = 40  # numbers listed in one message; the rest are counted in the totals
ANSWERED_COLOUR = "#2a9d8f"
MISSED_COLOUR = "#e63946"
_DRAWING = threading.Lock()  # matplotlib's font cache and text layout are shared by every figure


@dataclass(frozen=True)
class NumberStats:
    """One tracking number's calls over the report's days."""

    number: str | None  # E.164 (None: the calls' number couldn't be read)
    name: str | None
    calls: int
    answered: int
    hours: tuple[int, ...] = (0,) * 24  # calls per hour of the day, 0-23

    @property
    def missed(self) -> int:
        return self.calls - self.answered

    @property
    def missed_rate(self) -> float:
        return self.missed / self.calls if self.calls else 0.0

    @property
    def busiest_hour(self) -> int | None:
        """The hour of the day with the most calls (the earliest of a tie); None without calls."""
        if not self.calls:
            return None
        return max(range(24), key=lambda h: (self.hours[h], -h))


@dataclass(frozen=True)
class DayCount:
    day: date
    calls: int
    answered: int

    @property
    def missed(self) -> int:
        return self.calls - self.answered


@dataclass(frozen=True)
class CallReport:
    number: str | None  # the one number asked about; None: all numbers
    days: int
    first_day: date
    last_day: date
    numbers: tuple[NumberStats, ...]  # most calls first
    per_day: tuple[DayCount, ...]  # every day of the window, oldest first, days without calls included

    @property
    def calls(self) -> int:
        return sum(n.calls for n in self.numbers)

    @property
    def answered(self) -> int:
        return sum(n.answered for n in self.numbers)

    @property
    def missed(self) -> int:
        return self.calls - self.answered


def hour_text(hour: int | None) -> str:
    return "—" if hour is None else f"{hour:02d}:00–{(hour + 1) % 24:02d}:00"


def rate_text(rate: float) -> str:
    return f"{rate * 100:.0f} %"


def day_text(day: date) -> str:
    return f"{day.strftime('%a')} {day.day} {day.strftime('%b')}"


def scope_text(report: CallReport, name: str | None = None) -> str:
    """`all numbers` or `Spring sale ad (02) 9008 1596` (plain: the caller escapes for its medium)."""
    if report.number is None:
        return "all numbers"
    shown = national(report.number)
    return f"{name} {shown}" if name else shown


def title(report: CallReport) -> str:
    name = report.numbers[0].name if report.number and report.numbers else None
    span = f"{day_text(report.first_day)} – {day_text(report.last_day)}"
    return f"Calls, last {report.days} day{'s' if report.days != 1 else ''} ({span}) — {scope_text(report, name)}"


def number_line(stats: NumberStats) -> str:
    shown = national(stats.number) if stats.number else "an unreadable number"
    who = f"*{mrkdwn(stats.name)}* · {shown}" if stats.name else f"*{shown}*"
    if not stats.calls:
        return f"{who} — no calls"
    return (
        f"{who} — *{stats.calls:,}* call{'s' if stats.calls != 1 else ''}: {stats.answered:,} answered, "
        f"{stats.missed:,} missed ({rate_text(stats.missed_rate)}) · busiest {hour_text(stats.busiest_hour)}"
    )


def render_report(report: CallReport, *, intro: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(text, blocks): the totals, then one line per number (most calls first)."""
    heading = title(report)
    total = _total(report)
    text = truncate(f"{mrkdwn(heading, HEADER)} — {total}", TEXT)
    blocks: list[Any] = []
    if intro:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(intro, SECTION))))
    blocks.append(HeaderBlock(text=plain(f"📊 {heading}", HEADER)))
    if not report.calls:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="No calls in these days.")))
    else:
        lines = [number_line(n) for n in report.numbers[:MOST_NUMBERS]]
        left = len(report.numbers) - MOST_NUMBERS
        if left > 0:
            lines.append(f"… and {left:,} more number{'s' if left != 1 else ''} (in the totals)")
        for part in chunks(lines, SECTION, 5):
            blocks.append(SectionBlock(text=MarkdownTextObject(text=part)))
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"All together: {total}")]))
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text="Missed = not answered (missed, abandoned, busy, unanswered, voicemail). "
                    "Days and hours are the calls' own, as AVANSER reported them."
                )
            ]
        )
    )
    return text, [b.to_dict() for b in blocks]


def report_summary(report: CallReport) -> str:
    """The report as a file's comment (mrkdwn, no blocks): the heading, a line per number, the totals."""
    lines = [f"📊 *{mrkdwn(title(report), HEADER)}*"]
    lines += [number_line(n) for n in report.numbers[:MOST_NUMBERS]] or ["No calls in these days."]
    if report.number is None and report.calls:
        lines.append(f"All together: {_total(report)}")
    return truncate("\n".join(lines), TEXT)


def _total(report: CallReport) -> str:
    rate = report.missed / report.calls if report.calls else 0.0
    return (
        f"{report.calls:,} call{'s' if report.calls != 1 else ''}: {report.answered:,} answered, "
        f"{report.missed:,} missed ({rate_text(rate)})"
    )


def chart_title(report: CallReport) -> str:
    return plain(f"Calls per day — {title(report)}", 250)


def chart_png(report: CallReport) -> bytes:
    """Calls per day, answered (bottom) and missed (on top), as a PNG. Blocking: run it in a thread."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    days = report.per_day
    labels = [f"{d.day.day} {d.day.strftime('%b')}" for d in days]
    answered = [d.answered for d in days]
    missed = [d.missed for d in days]
    with _DRAWING:
        figure = Figure(figsize=(max(6.5, min(11.0, 0.25 * len(days) + 4)), 4.0), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        positions = list(range(len(days)))
        axes.bar(positions, answered, color=ANSWERED_COLOUR, label="answered")
        axes.bar(positions, missed, bottom=answered, color=MISSED_COLOUR, label="missed")
        step = max(1, len(days) // 15)
        rotate = len(days) > 10
        axes.set_xticks(
            positions[::step], labels[::step], rotation=45 if rotate else 0, ha="right" if rotate else "center"
        )
        axes.set_ylabel("calls")
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(title(report).replace("$", r"\$"), fontsize=10)  # "$" would start mathtext
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        axes.spines[["top", "right"]].set_visible(False)
        # Fixed margins (tight_layout measures every label first: a third of the drawing's time).
        width = figure.get_figwidth()
        figure.subplots_adjust(left=0.6 / width, right=1 - 1.2 / width, bottom=0.22 if rotate else 0.12, top=0.9)
        out = io.BytesIO()
        figure.savefig(out, format="png")
    return out.getvalue()
