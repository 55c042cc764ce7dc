"""Telco webhooks: authenticate, commit to the inbox with a dedup key, then answer 2xx.

Nothing slow happens before the answer: one SQLite insert. A replay of an event the inbox already
holds answers 200 and stores nothing. A request without the right `SWITCHBOARD_WEBHOOK_TOKEN`
(as `?token=` or the password of HTTP Basic auth, compared in constant time) gets 401 and nothing
is stored. A payload that cannot be an event of its route gets 400 with the reason, never a 500
(JSON nested deeper than `MAX_DEPTH` included). When the insert can't be committed (another
process holds the database's lock, the disk is full) the answer is 503 with `Retry-After`: 2xx
only ever follows a committed row. Bodies over 64 KB or slower than 10 s never get here (bot.guard).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.inbox import store_event_async
from bot.services import Services
from notifiers.events import (
    AvanserCall,
    AvanserRequestUpdate,
    AvanserSms,
    Event,
    ExotelCall,
    ExotelDeallocation,
    ExotelVerification,
    is_placeholder,
    parse_event,
)

log = logging.getLogger(__name__)

MAX_DEPTH = 32  # the seeds' payloads nest 2 deep


class MalformedEvent(ValueError):
    """The payload cannot be an event of this route; the message says why."""


@dataclass(frozen=True)
class Hook:
    path: str
    method: str  # GET: query parameters; POST: a JSON object
    event: type[Event]

    @property
    def source(self) -> str:
        return self.event.source


HOOKS: tuple[Hook, ...] = (
    Hook("/hooks/avanser/request", "POST", AvanserRequestUpdate),
    Hook("/hooks/avanser/call", "GET", AvanserCall),
    Hook("/hooks/avanser/sms", "GET", AvanserSms),
    Hook("/hooks/exotel/call", "POST", ExotelCall),
    Hook("/hooks/exotel/deallocation", "POST", ExotelDeallocation),
    Hook("/hooks/exotel/verification", "POST", ExotelVerification),
)


def _reason(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "payload"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(
            f"{message}" if error.get("type") == "value_error" and not error.get("loc") else f"{where}: {message}"
        )
    return "; ".join(problems)


def presented_token(request: Request) -> str | None:
    """The token a webhook carries: `?token=`, or the password of HTTP Basic auth."""
    token = request.query_params.get("token")
    if token:
        return token
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def token_ok(services: Services, request: Request) -> bool:
    expected = services.settings.webhook_token
    given = presented_token(request)
    if expected is None or not expected.get_secret_value() or given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


async def _payload(hook: Hook, request: Request) -> dict[str, Any]:
    if hook.method == "GET":
        # A parameter may come twice: our registered template's tag left literal, and the value AVANSER
        # appended after it. The value wins over the tag, whichever comes first.
        params: dict[str, Any] = {}
        for key, value in request.query_params.multi_items():
            if key != "token" and (key not in params or is_placeholder(params[key]) or not is_placeholder(value)):
                params[key] = value
        return params
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEvent(f"body is not JSON ({exc.__class__.__name__})") from None
    except RecursionError:
        raise MalformedEvent(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    if not isinstance(body, dict):
        raise MalformedEvent("body must be a JSON object")
    # Fewer brackets than the limit can't nest past it; otherwise measure without recursing.
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and nesting(body) > MAX_DEPTH:
        raise MalformedEvent(f"JSON nested deeper than {MAX_DEPTH} levels")
    return body


def nesting(value: Any) -> int:
    """How deep lists and objects nest in a parsed JSON value (iteratively: no recursion to run out of)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def hook_routes(services: Services) -> list[Route]:
    warned: list[bool] = []

    def endpoint(hook: Hook) -> Callable[[Request], Any]:
        async def receive(request: Request) -> Response:
            metrics = services.metrics.hook_requests
            if not token_ok(services, request):
                if services.settings.webhook_token is None and not warned:
                    warned.append(True)
                    log.warning("webhooks are refused: SWITCHBOARD_WEBHOOK_TOKEN is not set")
                log.warning(
                    "webhook %s refused: missing or wrong token (from %s)",
                    hook.path,
                    request.client.host if request.client else "?",
                )
                metrics.labels(hook.source, "unauthorized").inc()
                return JSONResponse(
                    {"ok": False, "error": "unauthorized"},
                    status_code=401,
                    headers={"WWW-Authenticate": 'Basic realm="switchboard"'},
                )
            try:
                payload = await _payload(hook, request)
                key = parse_event(hook.source, payload).dedup_key()
            except ValidationError as exc:
                reason = _reason(exc)
                log.warning("webhook %s rejected: %s", hook.path, reason)
                metrics.labels(hook.source, "malformed").inc()
                return JSONResponse({"ok": False, "error": f"malformed {hook.source} event: {reason}"}, status_code=400)
            except (MalformedEvent, ValueError) as exc:
                log.warning("webhook %s rejected: %s", hook.path, exc)
                metrics.labels(hook.source, "malformed").inc()
                return JSONResponse({"ok": False, "error": f"malformed {hook.source} event: {exc}"}, status_code=400)
            try:
                row_id, new = await store_event_async(services.store, hook.source, key, payload)
            except sqlite3.DatabaseError as exc:  # locked by another process, unreachable, disk full, read-only
                log.warning("webhook %s not stored (%s): answered 503 so it is sent again", hook.path, exc)
                metrics.labels(hook.source, "unavailable").inc()
                return JSONResponse(
                    {"ok": False, "error": "the event could not be stored right now; send it again"},
                    status_code=503,
                    headers={"Retry-After": "1"},
                )
            if new:
                services.inbox.wake()
            metrics.labels(hook.source, "stored" if new else "duplicate").inc()
            (services.metrics.inbox_events if new else services.metrics.inbox_duplicates).labels(hook.source).inc()
            return JSONResponse({"ok": True, "id": row_id, "duplicate": not new})

        return receive

    return [Route(h.path, endpoint(h), methods=[h.method]) for h in HOOKS]
