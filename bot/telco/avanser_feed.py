"""AVANSER's data feed (seed 000): "the most recent data according to a predefined format", in CSV, JSON
or XML, behind HTTP Basic auth. Switchboard reads it to find calls whose call-URI webhook never came,
and the recordings (`call_has_audio`, `call_audio_url`) the call-URI doesn't carry.

    TelcoError (bot.telco.base)
     ├── ProviderUnavailable          the feed answered 5xx, or the connection broke mid-answer
     │    ├── ProviderUnreachable     no connection could be made
     │    └── ProviderTimeout         no complete answer within the timeout (a slow feed)
     ├── ProviderAuthFailed           401/403: AVANSER_FEED_USERNAME / AVANSER_FEED_PASSWORD are wrong
     ├── ProviderRateLimited          429
     └── ProviderBadResponse
          └── FeedMalformed           not CSV/JSON/XML of records, an unknown format, too big, or a 4xx

A pull never changes anything at AVANSER, so nothing here is ambiguous. One record that can't be read
(not an object, no id) doesn't fail the pull: it is left out and counted (`FeedPull.bad`).

**Format**: from the answer's Content-Type (`application/json`, `text/csv`, `application/xml` or
`text/xml`), else from the URL's extension (`.json`, `.csv`, `.xml`). JSON is a list of records (or an
object holding one list); CSV has a header row of field names; XML is a root element whose children are
records, each field a child element (`<calls><call><call_unique_id>…</call_unique_id>…</call></calls>`).
A document type declaration is refused (no entity expansion).

**Filters**: seed 000 says calls "can be reported by year, month, day but also calling number, call
status, custom_id and custom_group" and names no parameters. The client asks for one day at a time as
`?year=2020&month=05&day=26`; a feed that refuses those parameters (400/404/422) is read once without
any, and every record it gives is used (the seed's "most recent data").

`httpx` errors are translated here and do not leave this module.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from bot.telco.base import (
    ProviderAuthFailed,
    ProviderBadResponse,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    ProviderUnreachable,
)

log = logging.getLogger("switchboard.telco.avanser_feed")

NAME = "AVANSER's data feed"
Format = Literal["json", "csv", "xml"]
CONTENT_TYPES: dict[str, Format] = {
    "application/json": "json",
    "text/json": "json",
    "text/csv": "csv",
    "application/csv": "csv",
    "application/xml": "xml",
    "text/xml": "xml",
}
EXTENSIONS: dict[str, Format] = {".json": "json", ".csv": "csv", ".xml": "xml"}
MAX_BYTES = 32 * 1024 * 1024  # a busy account's day of calls is a few MB
FILTER_REFUSED = frozenset({400, 404, 422})


class FeedMalformed(ProviderBadResponse):
    """The feed answered something that is not a list of records in a format Switchboard reads."""


@dataclass
class FeedPull:
    """What one pull brought: the records (field → value, as the feed names them), and how many were unreadable."""

    records: list[dict[str, Any]] = field(default_factory=list)
    bad: int = 0
    format: Format | None = None
    filtered: bool = True  # False: the feed refused the day filter and was read whole
    requests: int = 0
    bytes: int = 0


class AvanserFeed:
    """One account's feed URL, read with GET (and Basic auth when a username is given)."""

    def __init__(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        *,
        timeout: float = 30.0,
        max_bytes: int = MAX_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.one_at_a_time = asyncio.Lock()  # held by whoever is pulling (bot.domain.feed)
        auth = httpx.BasicAuth(username, password or "") if username else None
        self.http = httpx.AsyncClient(
            auth=auth,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
            follow_redirects=False,
            headers={"Accept": "application/json, text/csv, application/xml;q=0.9", "User-Agent": "switchboard/0.1"},
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or self.url

    async def pull(self, days: Iterable[date]) -> FeedPull:
        """Every record of `days` (one request per day); the whole feed once if it refuses the day filter."""
        pulled = FeedPull()
        seen: set[str] = set()
        for day in days:
            params = {"year": f"{day.year:04d}", "month": f"{day.month:02d}", "day": f"{day.day:02d}"}
            try:
                part = await self._get(params)
            except _FilterRefused:
                log.info("%s refused the day filter; reading it without filters", NAME)
                part = await self._get({}, filtered=False)
                self._merge(pulled, part, seen)
                pulled.filtered = False
                return pulled
            self._merge(pulled, part, seen)
        return pulled

    @staticmethod
    def _merge(into: FeedPull, part: FeedPull, seen: set[str]) -> None:
        into.bad += part.bad
        into.format = part.format
        into.requests += 1
        into.bytes += part.bytes
        for record in part.records:
            key = str(record.get("call_unique_id") or record.get("call_id") or "") or json.dumps(record, sort_keys=True)
            if key not in seen:  # the same call on two days' pages (around midnight) counts once
                seen.add(key)
                into.records.append(record)

    async def _get(self, params: dict[str, str], *, filtered: bool = True) -> FeedPull:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout * 2):  # a feed that drips its answer is as bad as a silent one
                async with self.http.stream("GET", self.url, params=params) as response:
                    status = response.status_code
                    if status in (401, 403):
                        raise ProviderAuthFailed(
                            _auth_text(), provider=NAME, status=status, detail=f"GET {self.host}: HTTP {status}"
                        )
                    if status == 429:
                        raise ProviderRateLimited(_busy_text(), provider=NAME, status=429)
                    if status >= 500:
                        raise ProviderUnavailable(
                            _down_text(), provider=NAME, status=status, detail=f"GET {self.host}: HTTP {status}"
                        )
                    if filtered and params and status in FILTER_REFUSED:
                        raise _FilterRefused
                    if status >= 300:
                        raise FeedMalformed(
                            _bad_text(), provider=NAME, status=status, detail=f"GET {self.host}: HTTP {status}"
                        )
                    body = await self._read(response)
                    content_type = response.headers.get("content-type", "")
        except TimeoutError as exc:
            raise ProviderTimeout(
                _slow_text(self.timeout * 2), provider=NAME, detail=f"GET {self.host}: no complete answer"
            ) from exc
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ProviderUnreachable(_down_text(), provider=NAME, detail=f"GET {self.host}: {exc!r}") from exc
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(_slow_text(self.timeout), provider=NAME, detail=f"GET {self.host}: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(_down_text(), provider=NAME, detail=f"GET {self.host}: {exc!r}") from exc
        kind = feed_format(content_type, self.url)
        if kind is None:
            raise FeedMalformed(
                _bad_text(), provider=NAME, status=status, detail=f"unknown format (Content-Type {content_type!r})"
            )
        # Parsing a day of records takes a while: not on the event loop.
        records, bad = await asyncio.to_thread(parse_feed, body, kind)
        log.debug("%s: %d records (%d unreadable) in %.2f s", NAME, len(records), bad, time.monotonic() - started)
        return FeedPull(records=records, bad=bad, format=kind, filtered=filtered, bytes=len(body))

    async def _read(self, response: httpx.Response) -> bytes:
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise FeedMalformed(
                    _bad_text(), provider=NAME, status=response.status_code, detail=f"over {self.max_bytes} bytes"
                )
            chunks.append(chunk)
        return b"".join(chunks)


class _FilterRefused(Exception):
    """The feed answered 4xx to the day filter."""


def feed_format(content_type: str, url: str) -> Format | None:
    """json | csv | xml from the Content-Type, else from the URL's extension; None when neither says."""
    kind = CONTENT_TYPES.get(content_type.split(";")[0].strip().lower())
    if kind is not None:
        return kind
    path = urlsplit(url).path.lower()
    for extension, by_name in EXTENSIONS.items():
        if path.endswith(extension):
            return by_name
    return None


def parse_feed(body: bytes, kind: Format) -> tuple[list[dict[str, Any]], int]:
    """(records, how many were unreadable); FeedMalformed when the body as a whole isn't one of the formats."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedMalformed(_bad_text(), provider=NAME, detail="not UTF-8") from exc
    if kind == "json":
        items = _json_items(text)
    elif kind == "csv":
        items = _csv_items(text)
    else:
        items = _xml_items(text)
    records = [item for item in items if _readable(item)]
    return records, len(items) - len(records)


def _readable(item: Any) -> bool:
    """A record: an object with an id of the call (`call_unique_id`, else `call_id`)."""
    return isinstance(item, dict) and bool(str(item.get("call_unique_id") or item.get("call_id") or "").strip())


def _json_items(text: str) -> list[Any]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FeedMalformed(_bad_text(), provider=NAME, detail=f"not JSON: {text[:120]!r}") from exc
    if isinstance(data, dict):  # an object holding the list, e.g. {"calls": [...]}
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise FeedMalformed(_bad_text(), provider=NAME, detail="a JSON object without one list of records")
        data = lists[0]
    if not isinstance(data, list):
        raise FeedMalformed(_bad_text(), provider=NAME, detail="JSON that is not a list of records")
    return data


def _csv_items(text: str) -> list[Any]:
    if "\x00" in text:
        raise FeedMalformed(_bad_text(), provider=NAME, detail="CSV with NUL bytes")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = reader.fieldnames or []
        if not header or not any(name in ("call_unique_id", "call_id") for name in header):
            raise FeedMalformed(_bad_text(), provider=NAME, detail=f"CSV header without call ids: {header[:5]}")
        items: list[Any] = []
        for row in reader:
            if None in row or any(v is None for v in row.values()):  # more or fewer cells than the header
                items.append(None)
            else:
                items.append(dict(row))
        return items
    except csv.Error as exc:
        raise FeedMalformed(_bad_text(), provider=NAME, detail=f"not CSV: {exc}") from exc


def _xml_items(text: str) -> list[Any]:
    head = text[:4096].upper()
    if "<!DOCTYPE" in head or "<!ENTITY" in text.upper():
        raise FeedMalformed(_bad_text(), provider=NAME, detail="XML with a document type declaration")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise FeedMalformed(_bad_text(), provider=NAME, detail=f"not XML: {exc}") from exc
    items: list[Any] = []
    for element in root:
        if len(element) == 0:
            items.append(None)
            continue
        items.append({child.tag: (child.text or "").strip() for child in element})
    return items


def _down_text() -> str:
    return f"{NAME} isn't answering right now; it is read again at the next interval."


def _slow_text(seconds: float) -> str:
    return f"{NAME} took more than {seconds:g} s to answer; it is read again at the next interval."


def _busy_text() -> str:
    return f"{NAME} asked us to slow down; it is read again at the next interval."


def _auth_text() -> str:
    return f"{NAME} refused the credentials in AVANSER_FEED_USERNAME / AVANSER_FEED_PASSWORD."


def _bad_text() -> str:
    return f"{NAME} sent something that isn't a list of calls in CSV, JSON or XML."
