"""Tracking numbers: search grammar, and the life of a request (new, change, release) in SQLite.

    awaiting_approval ──approve──▶ submitting ──AVANSER ack──▶ pending ──callback or poll──▶ completed
            │                           │                                                   └──────▶ failed
            └──reject──▶ rejected       └──AVANSER refused──▶ failed

A request is a row of `number_requests` first; its progress message in the channel it was asked
from is edited at every step (`render_request` in notifiers/provisioning.py). The AVANSER
callback-URI drives it to the end; when none arrives within SWITCHBOARD_CALLBACK_WAIT seconds, a
scheduler job polls the request list and feeds the final status into the inbox, as the callback
would have — the inbox's dedup key makes the two count once. Nothing here imports slack_bolt.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from bot.errors import UserError
from bot.phone import InvalidNumber, national, parse_number
from bot.routing import remember_thread, set_route
from bot.telco.avanser import (
    Acknowledgment,
    AvanserClient,
    NumberRule,
    NumberType,
    SearchResult,
    ServiceRequest,
    ServiceUpdate,
)
from bot.telco.base import TelcoError
from notifiers.provisioning import render_request, request_key

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

NUMBER_TYPES: dict[str, NumberType] = {"mobile": "MOBILE", "geo": "GEO", "tollfree": "TOLLFREE", "freecall": "FREECALL"}
SEARCH_USAGE = (
    "Search with `/numbers search mobile` (or geo, tollfree, freecall), `/numbers search near <address> "
    "[radius <km>]`, `/numbers search at <lat>,<lng> [radius <km>]`, `/numbers search prefix <number>` or "
    "`/numbers search szu <name>`; add `in <country>` for another country."
)


class BadSearch(UserError):
    """The search words could not be read."""


@dataclass(frozen=True)
class SearchQuery:
    kind: Literal["type", "near", "at", "prefix", "szu", "number"]
    country: str
    number_type: NumberType | None = None
    address: str | None = None
    lat: float | None = None
    lng: float | None = None
    radius: float = 20
    number: str | None = None  # E.164
    szu: str | None = None

    def describe(self) -> str:
        if self.kind == "type":
            return f"{(self.number_type or '').lower()} numbers in {self.country}"
        if self.kind == "near":
            return f"numbers within {self.radius:g} km of {self.address}"
        if self.kind == "at":
            return f"numbers within {self.radius:g} km of {self.lat}, {self.lng}"
        if self.kind in ("prefix", "number"):
            return f"numbers like {national(self.number or '')}"
        return f"numbers in the {self.szu} zone"

    def rule(self) -> NumberRule:
        """The same search as an AVANSER `service_number` rule, for a new-service request."""
        if self.kind == "type":
            return NumberRule(search_type="number_type", country=self.country, number_type=self.number_type)
        if self.kind == "near":
            return NumberRule(search_type="location", country=self.country, location=self.address, radius=self.radius)
        if self.kind == "at":
            return NumberRule(
                search_type="coordinates", country=self.country, lat=self.lat, lng=self.lng, radius=self.radius
            )
        if self.kind in ("prefix", "number"):
            return NumberRule(search_type=self.kind, country=self.country, number=self.number)
        return NumberRule(search_type="szu", country=self.country, szu=self.szu)


def parse_search(text: str, default_country: str) -> SearchQuery:
    """Read `mobile`, `near 150 Elizabeth St Sydney radius 5 in AU`, `at -33.86,151.2`, `prefix 0290`, `szu perth`,
    or a plain number (the exact number wanted)."""
    words = text.split()
    country = default_country
    radius: float = 20
    if len(words) >= 2 and words[-2].lower() == "in":
        country = words[-1].upper()
        words = words[:-2]
        if len(country) != 2 or not country.isalpha():
            raise BadSearch(f"“{country}” isn't a country code; use two letters such as AU.")
    if len(words) >= 2 and words[-2].lower() == "radius":
        try:
            radius = float(words[-1].lower().removesuffix("km"))
        except ValueError:
            raise BadSearch(f"“{words[-1]}” isn't a radius in km.") from None
        if not 0 < radius <= 500:
            raise BadSearch("The radius must be between 1 and 500 km.")
        words = words[:-2]
    if not words:
        raise BadSearch(SEARCH_USAGE)
    head, rest = words[0].lower(), " ".join(words[1:]).strip()
    if head in NUMBER_TYPES and not rest:
        return SearchQuery("type", country, number_type=NUMBER_TYPES[head])
    if head == "near" and rest:
        return SearchQuery("near", country, address=rest, radius=radius)
    if head == "at" and rest:
        match = re.fullmatch(r"(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)", rest)
        if not match or not (-90 <= float(match.group(1)) <= 90 and -180 <= float(match.group(2)) <= 180):
            raise BadSearch(f"“{rest}” isn't a latitude,longitude pair such as -33.87,151.21.")
        return SearchQuery("at", country, lat=float(match.group(1)), lng=float(match.group(2)), radius=radius)
    if head == "prefix" and rest:
        return SearchQuery("prefix", country, number=_number(rest, country))
    if head == "szu" and rest:
        if country != "AU":
            raise BadSearch("SZU searches are for Australian numbers only.")
        return SearchQuery("szu", country, szu=rest.lower())
    try:
        return SearchQuery("number", country, number=parse_number(" ".join(words), country))
    except InvalidNumber:
        raise BadSearch(SEARCH_USAGE) from None


def _number(text: str, country: str) -> str:
    try:
        return parse_number(text, country)
    except InvalidNumber:
        digits = re.sub(r"\D", "", text)
        if len(digits) >= 4:  # a prefix need not be a whole number: pad it to one AVANSER can match
            padded = (digits + "0" * 12)[: max(len(digits), 10)]
            try:
                return parse_number(padded, country)
            except InvalidNumber:
                pass
        raise BadSearch(f"“{text}” isn't a number or the start of one.") from None


async def run_search(client: AvanserClient, query: SearchQuery) -> SearchResult:
    if query.kind == "type":
        assert query.number_type is not None
        return await client.search_by_type(query.country, query.number_type)
    if query.kind == "near":
        return await client.search_by_location(query.country, query.address or "", query.radius)
    if query.kind == "at":
        return await client.search_by_coordinates(query.country, query.lat or 0, query.lng or 0, query.radius)
    if query.kind in ("prefix", "number"):
        return await client.search_by_prefix(query.country, query.number or "")
    return await client.search_by_szu(query.szu or "")


# -- requests -----------------------------------------------------------------------------------


@dataclass
class NumberRequest:
    id: int
    kind: str
    custom_id: str
    name: str
    number: str | None
    channel: str
    requester: str
    status: str
    body: dict[str, Any]
    request_id: str | None
    message_row: int | None
    approval_row: int | None
    decided_by: str | None
    error: str | None
    submitted_at: float | None


def load_request(services: Services, *, id: int | None = None, request_id: str | None = None) -> NumberRequest | None:
    column, value = ("id", id) if id is not None else ("request_id", request_id)
    row = services.store.execute(
        "SELECT id, kind, custom_id, name, number, channel, requester, status, body, request_id, message_row,"
        f" approval_row, decided_by, error, submitted_at FROM number_requests WHERE {column} = ?",
        (value,),
    ).fetchone()
    if row is None:
        return None
    return NumberRequest(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        json.loads(row[8]),
        row[9],
        row[10],
        row[11],
        row[12],
        row[13],
        row[14],
    )


def _set(services: Services, request: NumberRequest, **changes: Any) -> None:
    for key, value in changes.items():
        setattr(request, key, value)
    columns = ", ".join(f"{k} = ?" for k in changes)
    services.store.execute(
        f"UPDATE number_requests SET {columns}, updated_at = ? WHERE id = ?",
        (*changes.values(), time.time(), request.id),
    )


def show_progress(services: Services, request: NumberRequest) -> None:
    """Edit the request's progress message to its current state."""
    if request.message_row is None:
        return
    text, blocks = render_request(
        request.kind,
        request.status,
        name=request.name,
        number=request.number,
        channel=request.channel,
        requester=request.requester,
        request_id=request.request_id,
        decided_by=request.decided_by,
        error=request.error,
        approvals=services.settings.approvals_channel,
    )
    services.outbox.update(request.message_row, text, blocks)


def _without_secrets(body: dict[str, Any]) -> dict[str, Any]:
    """The request as audited: the webhook URLs carry SWITCHBOARD_WEBHOOK_TOKEN, so they are left out."""
    return {k: v for k, v in body.items() if k not in ("call_uri", "sms_forward_uri", "callback_uri")}


def new_custom_id() -> str:
    return f"sb-{uuid.uuid4().hex[:12]}"


def create_request(
    services: Services,
    *,
    kind: Literal["create", "update", "delete"],
    name: str,
    number: str | None,
    channel: str,
    requester: str,
    body: dict[str, Any],
    custom_id: str | None = None,
) -> NumberRequest:
    """Store the request and post its progress message; admins' requests go straight to AVANSER."""
    admin = services.is_admin(requester)
    status = "submitting" if admin else "awaiting_approval"
    if not admin and not services.settings.approvals_channel:
        raise UserError(
            "Only Switchboard admins can do that here, and no approvals channel is set up. "
            "Ask an admin to set SWITCHBOARD_APPROVALS_CHANNEL."
        )
    custom_id = custom_id or new_custom_id()
    now = time.time()
    with services.store.transaction():
        cursor = services.store.execute(
            "INSERT INTO number_requests (kind, custom_id, name, number, channel, requester, status, body, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (kind, custom_id, name, number, channel, requester, status, json.dumps(body), now, now),
        )
        request = load_request(services, id=int(cursor.lastrowid or 0))
        assert request is not None
        text, blocks = render_request(
            kind,
            status,
            name=name,
            number=number,
            channel=channel,
            requester=requester,
            approvals=services.settings.approvals_channel,
        )
        _set(services, request, message_row=services.outbox.post(channel, text, blocks))
        services.store.audit(
            requester,
            f"number.{kind}.request",
            subject=number or name,
            detail=json.dumps({"custom_id": custom_id, "body": _without_secrets(body)}),
        )
    return request


async def submit(services: Services, request_row: int, *, resume: bool = False) -> None:
    """Send the request to AVANSER (after approval, or at once for admins) and schedule the fallback poll."""
    request = load_request(services, id=request_row)
    if request is None or request.status != "submitting":
        return
    client = services.avanser
    if client is None:
        raise UserError("AVANSER isn't set up: an admin needs to add the AVANSER settings.")
    try:
        existing = await client.find_request(request.custom_id) if resume else None
        if existing is not None:  # the process stopped after AVANSER took it: never send it twice
            ack = Acknowledgment(
                request_id=existing.id, message=existing.message or "", service_number=existing.service_number
            )
        elif request.kind == "create":
            ack = await client.request_service(ServiceRequest.model_validate(request.body))
        elif request.kind == "update":
            assert request.number is not None
            ack = await client.update_service(request.number, ServiceUpdate.model_validate(request.body))
        else:
            assert request.number is not None
            ack = await client.decommission_service(request.number)
    except TelcoError as exc:
        _set(services, request, status="failed", error=str(exc))
        services.store.audit(
            "AVANSER",
            f"number.{request.kind}.refused",
            subject=request.number or request.name,
            detail=json.dumps({"custom_id": request.custom_id, "error": exc.detail}),
        )
        show_progress(services, request)
        return
    number = ack.service_e164 or request.number
    latest = load_request(services, id=request.id)
    if latest is not None and latest.status in ("completed", "failed"):
        return  # AVANSER's callback came before its answer to the request, and already settled it
    _set(services, request, status="pending", request_id=ack.request_id, number=number, submitted_at=time.time())
    if request.message_row is not None:
        remember_thread(services.store, request_key(ack.request_id), request.message_row)
    services.store.audit(
        request.requester,
        f"number.{request.kind}.submitted",
        subject=number or request.name,
        provider_ref=ack.request_id,
        detail=json.dumps({"custom_id": request.custom_id}),
    )
    show_progress(services, request)
    schedule_poll(services, request)


def decide(services: Services, request_row: int, admin: str, approve: bool) -> NumberRequest:
    """An admin's decision on a waiting request; UserError when it is not theirs to make or already made."""
    if not services.is_admin(admin):
        raise UserError("Only Switchboard admins can approve or reject number requests.")
    request = load_request(services, id=request_row)
    if request is None:
        raise UserError("I can't find that request any more.")
    if request.status != "awaiting_approval":
        who = f" by <@{request.decided_by}>" if request.decided_by else ""
        raise UserError(f"That request was already decided{who}.")
    _set(services, request, status="submitting" if approve else "rejected", decided_by=admin)
    services.store.audit(
        admin,
        "number.approve" if approve else "number.reject",
        subject=request.number or request.name,
        detail=json.dumps({"custom_id": request.custom_id}),
    )
    show_progress(services, request)
    verdict = "approved" if approve else "rejected"
    services.outbox.post(
        request.requester,
        f"<@{admin}> {verdict} your request for “{request.name}”."
        + (" AVANSER is setting it up now." if approve else ""),
    )
    return request


def finish(
    services: Services,
    request_id: str,
    status: str,
    message: str,
    service_number: str | None,
    custom_id: str | None = None,
) -> bool:
    """Apply AVANSER's final word (callback or poll) to a request Switchboard made; False if it isn't ours."""
    request = load_request(services, request_id=request_id)
    if request is None and custom_id:
        # The callback can beat the answer to our own POST (a slow or lost answer): match it by custom_id.
        row = services.store.execute("SELECT id FROM number_requests WHERE custom_id = ?", (custom_id,)).fetchone()
        request = load_request(services, id=row[0]) if row else None
        if request is not None:
            _set(services, request, request_id=request_id)
    if request is None:
        return False
    if request.status in ("completed", "failed"):
        return True
    number = service_number or request.number
    if status == "completed":
        _set(services, request, status="completed", number=number)
        if request.kind == "create" and number:
            set_route(services.store, number, request.channel, by=request.requester, name=request.name)
            if request.message_row is not None:  # the number's calls thread under the request's message
                remember_thread(services.store, f"number:{number}", request.message_row)
            services.store.audit(
                "AVANSER",
                "route.set",
                subject=number,
                detail=json.dumps({"channel": request.channel}),
                provider_ref=request_id,
            )
        if request.kind == "delete" and number:
            services.store.execute("DELETE FROM routes WHERE number = ?", (number,))
    else:
        _set(services, request, status="failed", number=number, error=message or "AVANSER gave no reason")
    services.store.audit(
        "AVANSER",
        f"number.{request.kind}.{request.status}",
        subject=number,
        provider_ref=request_id,
        detail=json.dumps({"message": message}),
    )
    show_progress(services, request)
    return True


# -- the fallback poll ------------------------------------------------------------------------------


def schedule_poll(services: Services, request: NumberRequest, *, after: float | None = None) -> None:
    wait = services.settings.callback_wait if after is None else after
    start = max(time.time(), (request.submitted_at or time.time()) + wait) if after is None else time.time() + wait
    services.scheduler.at(start, f"poll-request-{request.id}", poll_request, services, request.id)


async def poll_request(services: Services, request_row: int) -> None:
    """No callback came: ask AVANSER for the request's status, and record a final one like a callback."""
    request = load_request(services, id=request_row)
    if request is None or request.status != "pending" or request.request_id is None or services.avanser is None:
        return
    try:
        records = await services.avanser.list_requests()
    except TelcoError as exc:
        log.warning("polling AVANSER request %s failed (%s); trying again later", request.request_id, exc.detail)
        schedule_poll(services, request, after=services.settings.callback_wait)
        return
    record = next((r for r in records if r.id == request.request_id), None)
    if record is None or record.request_status not in ("completed", "failed", "reported"):
        schedule_poll(services, request, after=services.settings.callback_wait)
        return
    status = "completed" if record.request_status == "completed" else "failed"
    from bot.hooks import store_event  # the poll's finding goes through the inbox, exactly as a callback

    payload = {
        "request_id": record.id,
        "status": status,
        "custom_id": record.custom_id,
        "message": record.message or "",
        "service_number": record.service_number,
        "answer_point": record.answer_point,
        "via": "poll",
    }
    _, new = store_event(services, "avanser.request", f"{record.id}:{status}", payload)
    if new:
        log.info("AVANSER request %s is %s (found by polling; no callback came)", record.id, status)
        services.inbox.wake()


async def rebuild_polls(services: Services) -> None:
    """At start: a poll for every request still waiting for AVANSER (SQLite is the truth)."""
    rows = services.store.execute("SELECT id FROM number_requests WHERE status = 'pending'").fetchall()
    for (row_id,) in rows:
        request = load_request(services, id=row_id)
        if request is not None:
            schedule_poll(services, request)
    stuck = services.store.execute("SELECT id FROM number_requests WHERE status = 'submitting'").fetchall()
    for (row_id,) in stuck:  # approved (or an admin's) but the process stopped before AVANSER answered
        services.tasks.spawn(submit(services, row_id, resume=True), name=f"submit request {row_id}")
