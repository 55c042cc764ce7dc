"""Markup in Slack messages that Switchboard did not mean to make: what an attacker's text would render as.

Slack reads `<…>` in a message's `text` and in every mrkdwn text object as markup
(docs.slack.dev/messaging/formatting-message-text): `<!channel>`, `<!here>`, `<!everyone>`,
`<!subteam^…>` ping people, `<@U…>` / `<#C…>` mention a person or a channel, `<url|label>` shows
`label` and opens `url`. plain_text objects are never read that way. `injections()` lists the markup
in messages that Switchboard's own rendering never makes:

- any `<!…>` special mention (Switchboard never pings a channel or a group) but its own date tokens,
  `<!date^EPOCH^{tokens}|fallback>` (a time each reader sees in their own zone),
- a `<@…>` or `<#…>` whose id is not in the allowlist the caller gives (the people and channels the
  scenario's own messages mention),
- a link whose label looks like an address on another host than the link's target (a disguised
  link), or whose target is not http(s).

The tests count it ("injections rendered") and the fault report can reuse it on any Slack sandbox.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

TOKEN = re.compile(r"<([^<>\n]*)>")
DATE_TOKEN = re.compile(r"!date\^\d+\^(?:\{[a-z_]+\}| at |, )+(?:\|[^|<>]*)?")  # Switchboard's own times
URLISH = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?([a-z0-9-]+\.)+[a-z]{2,}(?:[:/?#]\S*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Injection:
    """One piece of markup that isn't Switchboard's: where it was and what it was."""

    channel: str
    where: str  # "text" or a JSON-pointer-like path into the blocks
    markup: str  # the `<…>` token as Slack would read it
    why: str


def mrkdwn_texts(message: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, text) for every string Slack reads as mrkdwn in a message: its `text` and mrkdwn objects."""
    if isinstance(message.get("text"), str):
        yield "text", message["text"]

    def walk(node: Any, path: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
                yield path, node["text"]
            for key, value in node.items():
                yield from walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from walk(value, f"{path}/{i}")

    yield from walk(message.get("blocks") or [], "/blocks")


def _host(url: str) -> str:
    try:
        return (urlsplit(url if "://" in url else f"http://{url}").hostname or "").lower()
    except ValueError:
        return ""


def judge(token: str, users: frozenset[str], channels: frozenset[str]) -> str | None:
    """Why the markup `<token>` isn't Switchboard's, or None when it is."""
    if token.startswith("!"):
        return None if DATE_TOKEN.fullmatch(token) else "special mention"
    if token.startswith("@"):
        user = token[1:].split("|", 1)[0]
        return None if user in users else f"mention of {user}, not in the allowlist"
    if token.startswith("#"):
        channel = token[1:].split("|", 1)[0]
        return None if channel in channels else f"channel {channel}, not in the allowlist"
    target, _, label = token.partition("|")
    scheme = target.split(":", 1)[0].lower()
    if scheme not in ("http", "https"):
        return f"link to a {scheme or 'schemeless'} target"
    label = label.strip()
    if label and URLISH.match(label) and _host(label) != _host(target):
        return f"disguised link: shows {_host(label)}, opens {_host(target)}"
    return None


def injections(
    messages: Iterable[dict[str, Any]], *, users: Iterable[str] = (), channels: Iterable[str] = ()
) -> list[Injection]:
    """Every piece of markup in `messages` (as the Slack sandbox stores them) that isn't Switchboard's own."""
    allowed_users, allowed_channels = frozenset(users), frozenset(channels)
    found = []
    for message in messages:
        channel = str(message.get("channel", ""))
        for where, text in mrkdwn_texts(message):
            for match in TOKEN.finditer(text):
                why = judge(match.group(1), allowed_users, allowed_channels)
                if why is not None:
                    found.append(Injection(channel, where, match.group(0), why))
    return found
