"""A route's options in words: `/numbers show`, `/numbers route`'s answer and the App Home say them alike."""

from __future__ import annotations

import re
from typing import Any

from notifiers.message import minutes_text
from notifiers.text import mrkdwn

KNOWN = ("report", "mask_callers", "escalate", "weekly_report")
OUR_MENTION = re.compile(r"<@[UW][A-Z0-9]+>|<!subteam\^[A-Z0-9]+>")  # as `/numbers route … escalate` stores it


def escalation_target_text(target: object) -> str:
    """A stored `escalate` option as mrkdwn: our own mention, or — anything else — escaped text."""
    text = str(target or "")
    return text if OUR_MENTION.fullmatch(text) else mrkdwn(text, 100)


def route_option_words(options: dict[str, Any], *, claim_within: float) -> list[str]:
    """`missed calls only`, `callers masked`, `unclaimed calls escalate to @casey after 15 min`, then any option
    another feature added (`weekly report: on`)."""
    words = [
        "all calls" if options.get("report") == "all" else "missed calls only",
        "callers masked" if options.get("mask_callers") else "callers shown",
    ]
    if claim_within:
        who = escalation_target_text(options["escalate"]) if options.get("escalate") else "whoever asked for it"
        words.append(f"unclaimed calls escalate to {who} after {minutes_text(claim_within)}")
    else:
        words.append("no escalation")
    if options.get("weekly_report"):
        words.append("a call report every Monday")
    for key, value in sorted(options.items()):
        if key in KNOWN:
            continue
        shown = "on" if value is True else "off" if value is False else mrkdwn(value, 100)
        words.append(f"{mrkdwn(key.replace('_', ' '), 50)}: {shown}")
    return words
