"""The one place outside text is made safe for Slack: escaped for mrkdwn, cut to Block Kit's limits.

Slack reads `<…>` in a message's `text` and in every mrkdwn text object as markup: `<!channel>`,
`<!here>`, `<!subteam^…>` ping people, `<@U…>` / `<#C…>` mention, `<url|label>` shows `label` and
opens `url`. Slack's rule (docs.slack.dev/messaging/formatting-message-text, "Escaping text"):
replace `&`, `<` and `>` with `&amp;`, `&lt;` and `&gt;`; Slack shows them as the characters.

Every string a telco or a person sent (caller, SMS text, ad and number names, notes, provider error
sentences, template and account names) goes through `mrkdwn()` (or `escape()`) before it is put in
mrkdwn or a `text` fallback. Switchboard's own markup — mentions built from Slack's user and channel
ids, links from `link()` — is written around the escaped parts, never escaped itself: escape the
parts, never the finished string. plain_text objects (headers, buttons, options) are never read as
markup; `plain()` only cuts them to their limit.

Times: a time in a message (mrkdwn or `text`, including the App Home) is Slack's date token,
`<!date^EPOCH^{date_short_pretty} at {time}|fallback>` (`slack_date`), so each reader sees it in their
own zone; the fallback — shown only by clients that can't format it — is fixed (the event's own zone
when the provider gave one, else GMT). plain_text can't hold a token: there `zoned()` writes the time
in the viewer's zone (their `tz` from users.info).

Sizes: every outside field is cut with an ellipsis (`…`) to a bound that keeps each message inside
Block Kit's limits (docs.slack.dev/reference/block-kit), so a builder never raises and Slack never
refuses a message for its size; `truncate()` cuts an assembled mrkdwn string without splitting an
escape (`&amp;`) or a mention of ours.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from urllib.parse import quote, urlsplit

ELLIPSIS = "…"

# Block Kit limits (characters) this module cuts to.
SECTION = 3000  # section block text
CONTEXT = 2000  # a context element's text: well inside a text object's 3,000
HEADER = 150  # header block text (plain_text)
BUTTON = 75  # button text (plain_text), option text
CONFIRM_TITLE = 100
CONFIRM_TEXT = 300
TEXT = 4000  # a message's `text` fallback: the notification; Slack truncates at 40,000
VALUE = 2000  # a button's value

# What one outside field may take in a sentence: a name or a caller is read in a glance.
FIELD = 200
LINE = 500  # one line of a storm digest or a list
URL = 1000  # a link target; longer ones are left out (the sentence says so)


def escape(text: object) -> str:
    """`text` as mrkdwn shows it literally: `&` `<` `>` → `&amp;` `&lt;` `&gt;` (Slack's escaping rule)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut_escaped(text: str, limit: int) -> str:
    """Escape `text` and keep at most `limit` characters of the result, ending in `…` when cut."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    out: list[str] = []
    size = 0
    for char in text:
        piece = escape(char)
        if size + len(piece) > limit - len(ELLIPSIS):
            break
        out.append(piece)
        size += len(piece)
    return "".join(out).rstrip() + ELLIPSIS


def mrkdwn(text: object, limit: int = FIELD, *, lines: bool = False) -> str:
    """Outside text for mrkdwn or a `text` fallback: escaped, on one line (unless `lines`), at most `limit` chars.

    One line: a caller name or an ad name with line breaks can't forge a line of the alert."""
    raw = str(text if text is not None else "")
    if not lines:
        raw = " ".join(raw.split())
    return _cut_escaped(raw, limit)


def truncate(text: str, limit: int) -> str:
    """An assembled mrkdwn string (escaped parts and our own markup) cut to `limit` chars with `…`.

    The cut never ends inside an escape (`&am…`) or inside a `<…>` of ours (a mention or a link)."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - len(ELLIPSIS))]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    lt = cut.rfind("<")
    if lt != -1 and ">" not in cut[lt:]:
        cut = cut[:lt]
    return cut.rstrip() + ELLIPSIS


def plain(text: object, limit: int, *, empty: str = "—") -> str:
    """Text for a plain_text object (never read as markup): cut to `limit` with `…`, never empty."""
    raw = str(text if text is not None else "").strip()
    if not raw:
        return empty
    if len(raw) <= limit:
        return raw
    return raw[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


SAFE_URL_CHARS = "/:?#[]@!$&'()*+,;=%-._~"


def link(url: str | None, label: str) -> str | None:
    """`<url|label>` for an http(s) URL from outside, or None when it can't be a safe link.

    The label is ours (escaped anyway); the URL can't break out of the link: anything but the
    characters of a URL (`|`, `<`, `>`, spaces, quotes, control characters) is percent-encoded,
    and `&` is written `&amp;` as Slack asks. A URL longer than `URL` characters isn't linked."""
    if not url:
        return None
    raw = url.strip()
    try:
        parts = urlsplit(raw)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    target = quote(raw, safe=SAFE_URL_CHARS).replace("&", "&amp;")
    if len(target) > URL:
        return None
    return f"<{target}|{mrkdwn(label, FIELD)}>"


def shown_url(url: str | None, label: str) -> str:
    """A link to `url` labelled `label`, or — when it can't be one — the label and the address as text."""
    made = link(url, label)
    if made is not None:
        return made
    return f"{mrkdwn(label)}: {mrkdwn(url or '', FIELD)} (not linked: only short http(s) addresses are)"


BLANK_LINES = re.compile(r"\n{3,}")


def body(text: object, limit: int = SECTION, *, empty: str = "(empty message)") -> str:
    """A message body from outside (an SMS) for a plain_text object: as sent, blank runs squeezed, cut to `limit`."""
    raw = BLANK_LINES.sub("\n\n", str(text if text is not None else "").strip())
    return plain(raw, limit, empty=empty)


def chunks(lines: list[str], size: int, most: int) -> list[str]:
    """`lines` joined by newlines into at most `most` texts of at most `size` characters (each line ≤ `size`)."""
    out: list[str] = []
    current: list[str] = []
    length = 0
    for line in lines:
        if current and length + 1 + len(line) > size:
            out.append("\n".join(current))
            current, length = [], 0
            if len(out) == most:
                return out
        length += len(line) + (1 if current else 0)
        current.append(line)
    if current:
        out.append("\n".join(current))
    return out


# -- times ------------------------------------------------------------------------------------------

DATE_AT_TIME = "{date_short_pretty} at {time}"  # "Today at 2:05 PM", "Nov 22 at 9:00 AM"
DATE_ONLY = "{date_short}"  # "Feb 22, 2027"
TIME_ONLY = "{time}"


def fallback_time(epoch: float, tz: tzinfo | None = None, *, with_time: bool = True) -> str:
    """`Sun 22 Nov 2026, 11:29 pm` in `tz` (GMT when none is known): what a date token falls back to."""
    at = datetime.fromtimestamp(epoch, tz or UTC)
    day = f"{at.strftime('%a')} {at.day} {at.strftime('%b %Y')}"
    if not with_time:
        return day
    hour = at.strftime("%I").lstrip("0") or "12"
    zone = "" if tz is not None else " GMT"
    return f"{day}, {hour}:{at.strftime('%M')} {at.strftime('%p').lower()}{zone}"


def slack_date(epoch: float, tokens: str = DATE_AT_TIME, fallback: str | None = None) -> str:
    """A time every reader sees in their own zone: `<!date^EPOCH^tokens|fallback>` (mrkdwn and `text` only)."""
    shown = fallback if fallback is not None else fallback_time(epoch, with_time=tokens != DATE_ONLY)
    shown = mrkdwn(shown, 100).replace("|", "¦") or "—"  # a provider's words: escaped, one line, short
    return f"<!date^{int(epoch)}^{tokens}|{shown}>"


def zoned(epoch: float, tz: tzinfo | None, *, with_time: bool = True) -> str:
    """A time for plain_text (a modal's hint, a confirmation): in the viewer's zone, `tz` from users.info."""
    return fallback_time(epoch, tz, with_time=with_time)
