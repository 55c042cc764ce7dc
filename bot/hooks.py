"""Telco webhooks: authenticate, commit to the inbox with a dedup key, then answer 2xx.

Nothing slow happens before the answer: one SQLite insert. A replay of an event the inbox already
holds answers 200 and stores nothing. A request without the right `SWITCHBOARD_WEBHOOK_TOKEN`
(as `?token=` or the password of HTTP Basic auth, compared in constant time) gets 401 and nothing
is stored. A payload that cannot be an event of its route gets 400 with the reason, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.services import Services

log = logging.getLogger(__name__)


class MalformedEvent(ValueError):
    """The payload cannot be an event of this route; the message says why."""


def _first(payload: dict[str, Any], *names: str) -> str:
    for name in names:
        value = payload.get(name)
        if value not in (None, ""):
            return str(value)
    raise MalformedEvent(f"missing {' or '.join(names)}")


def _digest(payload: dict[str, Any], *names: str) -> str:
    """A stable key for events the provider gives no id of their own (SMS, PIN verification)."""
    if not any(payload.get(n) not in (None, "") for n in names):
        raise MalformedEvent(f"missing {', '.join(names)}")
    canonical = json.dumps([payload.get(n) for n in names], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _avanser_request_key(p: dict[str, Any]) -> str:
    # One request reports each status once; completed after failed is a new event.
    return f"{_first(p, 'request_id')}:{_first(p, 'status')}"


def _exotel_verification_key(p: dict[str, Any]) -> str:
    # The failure event carries call_sid; the success event does not (seed 002).
    if p.get("call_sid"):
        return f"failed:{p['call_sid']}"
    return "ok:" + _digest(p, "connection_id", "greenvn_id", "caller", "pin")


@dataclass(frozen=True)
class Hook:
    path: str
    method: str  # GET: query parameters; POST: a JSON object
    source: str
    key: Callable[[dict[str, Any]], str]


HOOKS: tuple[Hook, ...] = (
    Hook("/hooks/avanser/request", "POST", "avanser.request", _avanser_request_key),
    Hook("/hooks/avanser/call", "GET", "avanser.call", lambda p: _first(p, "uniqueid", "callid")),
    Hook(
        "/hooks/avanser/sms",
        "GET",
        "avanser.sms",
        lambda p: _digest(p, "clientId", "to", "from", "date", "txt"),
    ),
    Hook("/hooks/exotel/call", "POST", "exotel.call", lambda p: _first(p, "call_sid")),
    Hook(
        "/hooks/exotel/deallocation",
        "POST",
        "exotel.deallocation",
        lambda p: f"{_first(p, 'greenvn_id')}:{_first(p, 'connection_id')}",
    ),
    Hook("/hooks/exotel/verification", "POST", "exotel.verification", _exotel_verification_key),
)


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
        return {k: v for k, v in request.query_params.multi_items() if k != "token"}
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEvent(f"body is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(body, dict):
        raise MalformedEvent("body must be a JSON object")
    return body


def store_event(services: Services, source: str, dedup_key: str, payload: dict[str, Any]) -> tuple[int, bool]:
    """Commit one event to the inbox; (row id, True) when new, (existing id, False) for a replay."""
    cursor = services.store.execute(
        "INSERT OR IGNORE INTO inbox (source, dedup_key, payload, received_at) VALUES (?, ?, ?, ?)",
        (source, f"{source}:{dedup_key}", json.dumps(payload, separators=(",", ":")), time.time()),
    )
    if cursor.rowcount:
        return int(cursor.lastrowid or 0), True
    row = services.store.execute(
        "SELECT id FROM inbox WHERE dedup_key = ?", (f"{source}:{dedup_key}",)
    ).fetchone()
    return int(row[0]), False


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
                key = hook.key(payload)
            except MalformedEvent as exc:
                log.warning("webhook %s rejected: %s", hook.path, exc)
                metrics.labels(hook.source, "malformed").inc()
                return JSONResponse(
                    {"ok": False, "error": f"malformed {hook.source} event: {exc}"}, status_code=400
                )
            row_id, new = store_event(services, hook.source, key, payload)
            metrics.labels(hook.source, "stored" if new else "duplicate").inc()
            (services.metrics.inbox_events if new else services.metrics.inbox_duplicates).labels(
                hook.source
            ).inc()
            return JSONResponse({"ok": True, "id": row_id, "duplicate": not new})

        return receive

    return [Route(h.path, endpoint(h), methods=[h.method]) for h in HOOKS]
