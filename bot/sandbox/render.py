"""Show a Slack message or view as text in a terminal, roughly as Slack would draw it."""

from __future__ import annotations

import re
import textwrap
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

# Slack shows a date token in the reader's own zone; the sandbox's people are in Sydney (`bot.sandbox.slack`).
READER_ZONE = ZoneInfo("Australia/Sydney")
DATE_TOKEN = re.compile(r"<!date\^(\d+)\^([^|>]*)(?:\|[^>]*)?>")


def _date(match: re.Match[str]) -> str:
    at = datetime.fromtimestamp(int(match.group(1)), READER_ZONE)
    hour = at.strftime("%I").lstrip("0") or "12"
    time_of_day = f"{hour}:{at.strftime('%M')} {at.strftime('%p').lower()}"
    day = f"{at.strftime('%a')} {at.day} {at.strftime('%b')}"
    tokens = match.group(2)
    if "{time}" in tokens and "{date" not in tokens:
        return time_of_day
    if "{time}" not in tokens:
        return f"{day} {at.year}"
    return f"{day}, {time_of_day}"


def _text(obj: Any) -> str:
    if not isinstance(obj, dict):
        return ""
    text = str(obj.get("text", ""))
    if obj.get("type") == "mrkdwn":
        text = DATE_TOKEN.sub(_date, text)  # as a reader in Sydney sees it
        text = re.sub(r"<([^|>]+)\|([^>]+)>", r"\2", text)  # <url|label> -> label
        text = re.sub(r"<@([A-Z0-9]+)>", r"@\1", text)
        text = re.sub(r"<#([A-Z0-9]+)(\|[^>]*)?>", r"#\1", text)
        text = re.sub(r"\*([^*\n]+)\*", r"\1", text)  # *bold*: the terminal shows it plain
        text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return text


def _element(el: dict[str, Any]) -> str:
    kind = el.get("type")
    if kind == "button":
        return f"[ {_text(el.get('text'))} ]"
    if kind in ("static_select", "external_select", "users_select", "conversations_select"):
        return f"[ {_text(el.get('placeholder')) or 'choose'} ▾ ]"
    if kind == "overflow":
        return "[ ⋯ ]"
    return f"[{kind}]"


def render_blocks(blocks: list[dict[str, Any]], width: int = 78) -> str:
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            title = _text(block.get("text"))
            lines += [title, "=" * min(width, len(title))]
        elif kind == "section":
            if block.get("text"):
                for paragraph in _text(block["text"]).splitlines() or [""]:
                    lines += textwrap.wrap(paragraph, width, subsequent_indent="    ") or [""]
            for field in block.get("fields") or []:
                lines.append("  " + _text(field).replace("\n", " "))
            if block.get("accessory"):
                lines.append(" " * 4 + _element(block["accessory"]))
        elif kind == "context":
            lines.append("  " + "  ·  ".join(_text(e) or "[image]" for e in block.get("elements", [])))
        elif kind == "divider":
            lines.append("-" * width)
        elif kind == "actions":
            lines.append("  " + "  ".join(_element(e) for e in block.get("elements", [])))
        elif kind == "input":
            lines.append(f"  {_text(block.get('label'))}: {_element(block.get('element') or {})}")
        else:
            lines.append(f"[{kind}]")
    return "\n".join(lines)


def render_message(message: dict[str, Any], width: int = 78) -> str:
    """A message's blocks, or its text when it has none."""
    blocks = message.get("blocks")
    if blocks:
        return render_blocks(blocks, width)
    text = DATE_TOKEN.sub(_date, str(message.get("text", "")))
    return "\n".join(textwrap.fill(p, width) for p in text.splitlines())


def boxed(title: str, body: str, width: int = 80) -> str:
    inner = width - 4
    body = "\n".join(line for line in body.splitlines())
    top = f"┌─ {title} " + "─" * max(0, inner - len(title) - 1) + "┐"
    rows = []
    for line in body.splitlines() or [""]:
        for part in textwrap.wrap(line, inner, replace_whitespace=False, drop_whitespace=False) or [""]:
            rows.append(f"│ {part.ljust(inner)} │")
    return "\n".join([top, *rows, "└" + "─" * (width - 2) + "┘"])
