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

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from slack_sdk.errors import SlackApiError

from bot.domain import refresh
from bot.domain.routing import (
    OWNING_STATUSES,
    ROUTED_ELSEWHERE,
    RoutedElsewhere,
    alerts_channels,
    deliver,
    remember_thread,
    remove_route,
    route_for,
    route_options,
    routed_elsewhere,
    set_route,
    thread_root,
)
from bot.errors import FormErrors, UserError
from bot.inbox import Handler, store_event
from bot.phone import InvalidNumber, from_avanser, national, parse_number
from bot.settings import Settings
from bot.telco.avanser import (
    Account,
    AccountDetails,
    Acknowledgment,
    AvanserClient,
    CallRate,
    CallReporting,
    EmailReport,
    Feature,
    NumberRate,
    NumberRule,
    NumberType,
    Package,
    RequestRecord,
    SearchResult,
    ServiceConfig,
    ServiceDetail,
    ServiceRequest,
    ServiceUpdate,
    SmsReport,
    Template,
    TranscriptionRate,
)
from bot.telco.base import ProviderMaybeApplied, TelcoError
from bot.workspaces import current_team, enter_team, team_scope
from notifiers.events import AvanserRequestUpdate, Event
from notifiers.message import Message
from notifiers.provisioning import (
    approval_message,
    decided_message,
    render_request,
    render_request_update,
    request_key,
)
from notifiers.routes import route_option_words
from notifiers.text import mrkdwn

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

TemplateType = Literal["email", "sms"]
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
    configured_at: float | None = None
    live_via: str | None = None  # test_call | timer
    team_id: str = ""  # the workspace that asked for it


def load_request(
    services: Services, *, id: int | None = None, request_id: str | None = None, any_team: bool = False
) -> NumberRequest | None:
    """A request of this workspace by its row or AVANSER's request id; `any_team` for AVANSER's callback, which
    finds the request's workspace through it."""
    column, value = ("id", id) if id is not None else ("request_id", request_id)
    where, params = f"{column} = ?", [value]
    if not any_team:
        where, params = f"{where} AND team_id = ?", [value, current_team()]
    row = services.store.execute(
        "SELECT id, kind, custom_id, name, number, channel, requester, status, body, request_id, message_row,"
        " approval_row, decided_by, error, submitted_at, configured_at, live_via, team_id FROM number_requests"
        f" WHERE {where}",
        params,
    ).fetchone()
    if row is None:
        return None
    values = list(row)
    values[8] = json.loads(values[8])
    return NumberRequest(*values)


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
        approvals=services.workspace().approvals_channel,
        live_via=request.live_via,
    )
    services.outbox.update(request.message_row, text, blocks)
    refresh.changed(services, request.requester, admins=True)  # their Home lists it; admins' lists what waits


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
    if not admin and not services.workspace().approvals_channel:
        raise UserError(
            "Only Switchboard admins can do that here, and no approvals channel is set up. "
            "Ask an admin to set SWITCHBOARD_APPROVALS_CHANNEL."
        )
    if number and belongs_elsewhere(services, number):
        raise UserError(f"{national(number)} isn't one of your active tracking numbers.")
    custom_id = custom_id or new_custom_id()
    now = time.time()
    with services.store.transaction():
        cursor = services.store.execute(
            "INSERT INTO number_requests (kind, custom_id, name, number, channel, requester, status, body, created_at,"
            " updated_at, team_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (kind, custom_id, name, number, channel, requester, status, json.dumps(body), now, now, current_team()),
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
            approvals=services.workspace().approvals_channel,
        )
        _set(services, request, message_row=services.outbox.post(channel, text, blocks))
        services.store.audit(
            requester,
            f"number.{kind}.request",
            subject=number or name,
            detail=json.dumps({"custom_id": custom_id, "body": _without_secrets(body)}),
            team=current_team(),
        )
    return request


async def submit(services: Services, request_row: int, *, resume: bool = False) -> None:
    """Send the request to AVANSER (after approval, or at once for admins) and schedule the fallback poll."""
    request = load_request(services, id=request_row)
    if request is None or request.status not in ("submitting", "unclear"):
        return
    client = services.avanser
    if client is None:
        raise UserError("AVANSER isn't set up: an admin needs to add the AVANSER settings.")
    try:
        existing = await _already_sent(client, request) if resume or request.status == "unclear" else None
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
    except ProviderMaybeApplied as exc:
        # AVANSER may have taken it: never failed, never sent again blindly; look at its request list later.
        _set(services, request, status="unclear", error=str(exc))
        show_progress(services, request)
        services.scheduler.at(
            time.time() + services.settings.callback_wait,
            f"resume-request-{request.id}",
            resume_request,
            services,
            request.id,
        )
        return
    except TelcoError as exc:
        _set(services, request, status="failed", error=str(exc))
        services.store.audit(
            "AVANSER",
            f"number.{request.kind}.refused",
            subject=request.number or request.name,
            detail=json.dumps({"custom_id": request.custom_id, "error": exc.detail}),
            team=current_team(),
        )
        show_progress(services, request)
        return
    number = ack.service_e164 or request.number
    latest = load_request(services, id=request.id)
    if latest is not None and latest.status in ("configured", "completed", "failed"):
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
        team=current_team(),
    )
    show_progress(services, request)
    schedule_poll(services, request)


async def _already_sent(client: AvanserClient, request: NumberRequest) -> RequestRecord | None:
    """AVANSER's record of this request, when it took it without our seeing the answer."""
    if request.kind == "create":
        return await client.find_request(request.custom_id)
    if request.kind == "delete" and request.number:
        return await client.find_decommission(request.number)
    return None  # an update carries the whole change: sending it again changes nothing more


async def resume_request(services: Services, request_row: int) -> None:
    """Look again at a request AVANSER gave no clear answer to (its request list first, never a blind resend)."""
    await submit(services, request_row, resume=True)


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
        team=current_team(),
    )
    show_progress(services, request)
    verdict = "approved" if approve else "rejected"
    services.outbox.post(
        request.requester,
        f"<@{admin}> {verdict} your request for “{mrkdwn(request.name)}”."
        + (" AVANSER is setting it up now." if approve else ""),
    )
    return request


def inbox_handlers(services: Services) -> dict[type[Event], Handler]:
    """The inbox handlers of this room, bound to `services`."""
    return {AvanserRequestUpdate: lambda inbox_id, event: on_request_update(services, inbox_id, event)}  # type: ignore[arg-type]


def on_request_update(services: Services, inbox_id: int, event: AvanserRequestUpdate) -> str:
    """AVANSER's callback: a request of ours edits its own message; anyone else's is posted where its number goes."""
    if finish(services, event.request_id, str(event.status), event.message, event.service_e164, event.custom_id):
        return "done"
    text, blocks = render_request_update(event)
    root = thread_root(services.store, request_key(event.request_id))
    if root is not None:
        enter_team(outbox_team(services, root))  # the edit is the message's workspace's
        services.outbox.update(root, text, blocks, dedup_key=f"inbox:{inbox_id}")
        return "done"
    route = route_for(services.store, alerts_channels(services), number=event.service_e164)
    if route is None:
        return "unrouted"
    enter_team(route.team)
    deliver(services.store, services.outbox, f"inbox:{inbox_id}", route.channel, Message(text=text, blocks=blocks))
    return "done"


def outbox_team(services: Services, row: int) -> str:
    """The workspace of an outbox row (a message Switchboard posted)."""
    found = services.store.execute("SELECT team_id FROM outbox WHERE id = ?", (row,)).fetchone()
    return str(found[0]) if found else ""


def finish(
    services: Services,
    request_id: str,
    status: str,
    message: str,
    service_number: str | None,
    custom_id: str | None = None,
) -> bool:
    """Apply AVANSER's final word (callback or poll) to a request Switchboard made; False if it isn't ours.

    From here on the work is the request's workspace's (its route, its messages)."""
    request = load_request(services, request_id=request_id, any_team=True)
    if request is None and custom_id:
        # The callback can beat the answer to our own POST (a slow or lost answer): match it by custom_id.
        row = services.store.execute("SELECT id FROM number_requests WHERE custom_id = ?", (custom_id,)).fetchone()
        request = load_request(services, id=row[0], any_team=True) if row else None
        if request is not None:
            _set(services, request, request_id=request_id)
    if request is None:
        return False
    enter_team(request.team_id)
    if request.status in ("configured", "completed", "failed"):
        return True
    number = service_number or request.number
    if status in DONE:
        if request.kind == "create" and number:  # seed 000: configured now, live at its test call
            _configured(services, request, number)
        else:
            _set(services, request, status="completed", number=number)
        if request.kind == "delete" and number:
            remove_route(services.store, number)
            remember_release(services, request, number)
    else:
        _set(services, request, status="failed", number=number, error=message or "AVANSER gave no reason")
    services.store.audit(
        "AVANSER",
        f"number.{request.kind}.{request.status}",
        subject=number,
        provider_ref=request_id,
        detail=json.dumps({"message": message}),
        team=current_team(),
    )
    show_progress(services, request)
    return True


# -- configured → live --------------------------------------------------------------------------------

DONE = ("completed", "pending_confirmation")  # "Request is completed, waiting to send confirmation" is done


def _configured(services: Services, request: NumberRequest, number: str) -> None:
    """AVANSER set the number up: its alerts are routed to the request's channel, threaded under its message,
    and it goes live at the test call, or once the propagation time has passed."""
    _set(services, request, status="configured", number=number, configured_at=time.time())
    try:
        set_route(services.store, number, request.channel, by=request.requester, name=request.name)
    except RoutedElsewhere:  # AVANSER gave us a number another workspace still routes: it keeps its route
        log.warning("number %s is configured for request %d but another workspace routes it", number, request.id)
    if request.message_row is not None:  # the number's calls thread under the request's message
        remember_thread(services.store, f"number:{number}", request.message_row)
    services.store.audit(
        "AVANSER",
        "route.set",
        subject=number,
        detail=json.dumps({"channel": request.channel}),
        provider_ref=request.request_id,
        team=current_team(),
    )
    schedule_live(services, request)


def schedule_live(services: Services, request: NumberRequest) -> None:
    at = (request.configured_at or time.time()) + services.settings.propagation
    services.scheduler.at(at, f"live-{request.id}", propagated, services, request.id)


async def propagated(services: Services, request_row: int) -> None:
    """Propagation time is up and no test call came (an account without that subscription): live anyway."""
    request = load_request(services, id=request_row)
    if request is not None and request.status == "configured":
        _go_live(services, request, "timer")


def test_call(services: Services, number: str | None) -> bool:
    """A call to a number that is configured but not live yet is AVANSER's automatic test call (seed 000):
    the number goes live and the call is said in its request's thread, not posted as a missed call."""
    if not number:
        return False
    row = services.store.execute(
        "SELECT id FROM number_requests WHERE number = ? AND kind = 'create' AND status IN ('pending', 'configured')"
        " ORDER BY id DESC LIMIT 1",
        (number,),
    ).fetchone()
    request = load_request(services, id=row[0], any_team=True) if row else None
    if request is None:
        return False
    enter_team(request.team_id)  # the call is the request's workspace's
    if request.status == "pending":  # the test call beat AVANSER's "completed": it is configured all the same
        _configured(services, request, number)
    _go_live(services, request, "test_call")
    if request.message_row is not None:
        services.outbox.post(
            request.channel,
            f"🧪 Test call received: {national(number)} answers calls — it is live.",
            thread_of=request.message_row,
            dedup_key=f"test-call:{request.id}",
        )
    return True


def _go_live(services: Services, request: NumberRequest, via: str) -> None:
    _set(services, request, status="completed", live_via=via)
    services.scheduler.cancel(f"live-{request.id}")
    services.store.audit(
        "AVANSER", "number.create.live", subject=request.number, detail=json.dumps({"via": via}), team=current_team()
    )
    show_progress(services, request)


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
    if record is None or record.request_status not in (*DONE, "failed", "reported"):
        schedule_poll(services, request, after=services.settings.callback_wait)
        return
    status = "completed" if record.request_status in DONE else "failed"
    payload = {
        "request_id": record.id,
        "status": status,
        "custom_id": record.custom_id,
        "message": record.message or "",
        "service_number": record.service_number,
        "answer_point": record.answer_point,
        "via": "poll",
    }
    # The poll's finding goes through the inbox, exactly as a callback would.
    _, new = store_event(services.store, "avanser.request", f"{record.id}:{status}", payload)
    if new:
        log.info("AVANSER request %s is %s (found by polling; no callback came)", record.id, status)
        services.inbox.wake()
        return
    # The callback came while its request id wasn't known here yet (an answer lost on the way back), so it
    # was taken for someone else's: settle this request with what AVANSER says now.
    with services.store.transaction():
        number = from_avanser(record.service_number) if record.service_number else None
        finish(services, record.id, status, record.message or "", number, record.custom_id)


IN_FLIGHT_S = 60.0  # several replicas: a submission younger than this may still be on its way to AVANSER


async def rebuild_polls(services: Services) -> None:
    """At start: a poll for every request still waiting for AVANSER (SQLite is the truth), each as its workspace's."""
    rows = services.store.execute("SELECT id, team_id FROM number_requests WHERE status = 'pending'").fetchall()
    for row_id, team in rows:
        with team_scope(team):
            request = load_request(services, id=row_id)
            if request is not None:
                schedule_poll(services, request)
    configured = services.store.execute(
        "SELECT id, team_id FROM number_requests WHERE status = 'configured'"
    ).fetchall()
    for row_id, team in configured:
        with team_scope(team):
            request = load_request(services, id=row_id)
            if request is not None:
                schedule_live(services, request)
    stuck = services.store.execute(
        "SELECT id, updated_at, team_id FROM number_requests WHERE status IN ('submitting', 'unclear')"
    ).fetchall()
    for row_id, updated_at, team in stuck:  # approved (or an admin's) but the process stopped before AVANSER answered
        with team_scope(team):  # the task started here keeps the workspace (a task copies its context)
            if services.store.shared and updated_at > time.time() - IN_FLIGHT_S:
                # A new leader, and another replica may be sending it this moment: look once that would be over.
                at = updated_at + IN_FLIGHT_S
                services.scheduler.at(at, f"resume-request-{row_id}", resume_request, services, row_id)
            else:
                services.tasks.spawn(submit(services, row_id, resume=True), name=f"submit request {row_id}")


# -- the provider and Switchboard's own webhooks -------------------------------------------------------


def avanser_client(services: Services) -> AvanserClient:
    """The AVANSER client, or a sentence saying it isn't set up."""
    if services.avanser is None:
        raise UserError("AVANSER isn't set up: an admin needs to add the AVANSER settings.")
    return services.avanser


# Seed 000's call-URI template: every documented parameter as AVANSER's tag, custom_id=[[tag]] and
# custom_group=[[curl]] as written there; recording_url=__URL__ is the documented call tag for the
# recording (an email/SMS tag in seed 001: when AVANSER doesn't fill it here it stays literal and counts
# as absent). Tags left literal are ignored by the webhook; values AVANSER appends instead are read too.
CALL_URI_TAGS = (
    "&".join(
        f"{name}=[[{tag}]]"
        for name, tag in (
            *((p, p) for p in ("clientid", "callid", "uniqueid", "bnum", "adname", "target", "targetname", "ani")),
            *((p, p) for p in ("tzdate", "duration", "callstatus", "callcode", "clocation", "cstate", "ccountry")),
            ("custom_id", "tag"),
            ("custom_group", "curl"),
        )
    )
    + "&recording_url=__URL__"
)


def hook_urls(settings: Settings) -> dict[str, str]:
    """call_uri, sms_forward_uri and callback_uri: Switchboard's own webhooks, never typed by users."""
    if not settings.public_url or settings.webhook_token is None:
        raise UserError(
            "AVANSER couldn't reach Switchboard: an admin needs to set SWITCHBOARD_PUBLIC_URL and "
            "SWITCHBOARD_WEBHOOK_TOKEN first.",
            field="name",
        )
    base = settings.public_url.rstrip("/")
    token = f"token={settings.webhook_token.get_secret_value()}"
    return {
        "call_uri": f"{base}/hooks/avanser/call?{token}&{CALL_URI_TAGS}",
        "sms_forward_uri": f"{base}/hooks/avanser/sms?{token}",
        "callback_uri": f"{base}/hooks/avanser/request?{token}",
    }


def parse_number_arg(services: Services, text: str) -> str:
    """The number a sub-command is about, E.164."""
    if not text.strip():
        raise UserError("Which number? For example `/numbers show 02 9008 1596`.")
    return parse_number(text, services.settings.country)


async def find_service(services: Services, number: str) -> ServiceDetail:
    """The active tracking number `number` (E.164) as AVANSER has it — never another workspace's: one that is
    gets the same answer as a number that isn't there."""
    if belongs_elsewhere(services, number):
        raise UserError(f"{national(number)} isn't one of your active tracking numbers.")
    for service in await avanser_client(services).list_services():
        if service.e164 == number:
            return service
    raise UserError(f"{national(number)} isn't one of your active tracking numbers.")


def belongs_elsewhere(services: Services, number: str) -> bool:
    """Another workspace routes `number`, or got it last through a request AVANSER carried out."""
    if routed_elsewhere(services.store, number):
        return True
    row = services.store.execute(
        f"SELECT team_id FROM number_requests WHERE number = ? AND status IN {OWNING_STATUSES}"
        " ORDER BY id DESC LIMIT 1",
        (number,),
    ).fetchone()
    mine = services.store.execute(
        "SELECT 1 FROM routes WHERE number = ? AND team_id = ?", (number, current_team())
    ).fetchone()
    return row is not None and str(row[0]) != current_team() and mine is None


def may_request(services: Services, user: str) -> None:
    """Admins request directly; anyone else needs an approvals channel to wait in."""
    if not services.is_admin(user) and not services.workspace().approvals_channel:
        raise UserError(
            "Only Switchboard admins can do that here, and no approvals channel is set up. "
            "Ask an admin to set SWITCHBOARD_APPROVALS_CHANNEL.",
            field="name",
        )


# -- forms: what a person typed → a request AVANSER accepts -------------------------------------------


EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# What each service type uses (seed 001's service schema and its three examples).
TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    "transfer": ("answer_point", "answer_point_name", "record_call", "call_greeting", "call_whisper", "voicemail"),
    "voicemail": ("answer_point_name", "voicemail"),
    "prompt": ("answer_point_name", "call_greeting"),
}
SERVICE_FIELDS = {"type", *TYPE_FIELDS["transfer"]}
REPORTING_FIELDS = {
    "report",
    "email_to",
    "email_cc",
    "email_bcc",
    "email_subject",
    "email_template",
    "sms_mobile",
    "sms_id",
    "sms_template",
}
FORM_FIELDS = ("name", *sorted(SERVICE_FIELDS - {"record_call"}), *sorted(REPORTING_FIELDS))


def _addresses(values: dict[str, Any], key: str, errors: dict[str, str]) -> list[str]:
    listed = [r.strip() for r in (values.get(key) or "").split(",") if r.strip()]
    bad = [r for r in listed if not EMAIL.match(r)]
    if bad:
        errors[key] = f"“{bad[0]}” isn't an email address."
    return listed


def _reporting(values: dict[str, Any], errors: dict[str, str], country: str) -> CallReporting:
    """Call reports: the email (to, cc, bcc, subject, an email template) and the SMS (mobile, sender id, an
    SMS template) — seed 001 types templates, so each report names its own."""
    email = sms = None
    recipients = _addresses(values, "email_to", errors)
    cc, bcc = _addresses(values, "email_cc", errors), _addresses(values, "email_bcc", errors)
    if (cc or bcc) and not recipients and "email_to" not in errors:
        errors["email_to"] = "Give the address the reports go to; cc and bcc are copies of it."
    if recipients and "email_to" not in errors:
        if not values.get("email_subject"):
            errors["email_subject"] = "Give the report emails a subject."
        email = EmailReport(
            subject=values.get("email_subject") or "",
            email_to=recipients,
            email_cc=cc or None,
            email_bcc=bcc or None,
            template=values.get("email_template") or None,
        )
    if values.get("sms_mobile"):
        sms_id = values.get("sms_id") or None
        if sms_id and (len(sms_id) > 11 or not re.fullmatch(r"[A-Za-z0-9 ]+", sms_id)):
            errors["sms_id"] = "An SMS sender id is up to 11 letters, digits or spaces."
        try:
            mobile = parse_number(values["sms_mobile"], country)
            sms = SmsReport(mobile=mobile, sms_id=sms_id, template=values.get("sms_template") or None)
        except InvalidNumber as exc:
            errors["sms_mobile"] = str(exc)
    elif values.get("sms_id") or values.get("sms_template"):
        errors["sms_mobile"] = "Give the mobile the SMS reports go to."
    return CallReporting(report=values.get("report") or "none", email=email, sms=sms)


def service_from_form(values: dict[str, Any], errors: dict[str, str], country: str) -> ServiceConfig:
    """What calls do, from the form — only the fields its type uses; problems go into `errors` by input name."""
    kind: Literal["transfer", "voicemail", "prompt"] = (
        values["type"] if values.get("type") in ("transfer", "voicemail", "prompt") else "transfer"
    )
    used = TYPE_FIELDS[kind]
    answer_point = None
    if "answer_point" in used and values.get("answer_point"):
        try:
            answer_point = parse_number(values["answer_point"], country)
        except InvalidNumber as exc:
            errors["answer_point"] = str(exc)
    elif kind == "transfer":
        errors["answer_point"] = "A transfer needs the phone its calls go to."
    for key in ("call_greeting", "call_whisper", "voicemail"):
        value = values.get(key)
        if key in used and value and not re.match(r"^https?://\S+$", value):
            errors[key] = "Give a web address starting with http:// or https://."

    def field(key: str) -> Any:
        return (values.get(key) or None) if key in used else None

    return ServiceConfig(
        type=kind,
        answer_point=answer_point,
        answer_point_name=field("answer_point_name"),
        record_call=("yes" in (values.get("record_call") or [])) if kind == "transfer" else None,
        call_greeting=field("call_greeting"),
        call_whisper=field("call_whisper"),
        voicemail=field("voicemail"),
        call_reporting=_reporting(values, errors, country),
    )


def _rule(values: dict[str, Any], errors: dict[str, str], country: str) -> tuple[NumberRule, str | None]:
    text = values.get("number") or "mobile"
    try:
        query = parse_search(text, country)
    except BadSearch as exc:
        errors["number"] = str(exc).split("\n")[0]
        return NumberRule(search_type="number_type", number_type="MOBILE"), None
    rule = query.rule()
    problem = rule.problem()
    if problem:
        errors["number"] = problem
    return rule, query.number if query.kind == "number" else None


@dataclass(frozen=True)
class NewNumber:
    """A checked request form: what AVANSER will be asked for, and where its progress and alerts go."""

    request: ServiceRequest
    number: str | None  # the number picked, when one was
    rule: NumberRule
    channel: str


def check_new_number(services: Services, user: str, values: dict[str, Any], channel: str) -> NewNumber:
    """The new-number form's values, checked before the form closes (FormErrors by input otherwise)."""
    may_request(services, user)
    urls = hook_urls(services.settings)
    errors: dict[str, str] = {}
    country = services.settings.country
    rule, number = _rule(values, errors, country)
    config = service_from_form(values, errors, country)
    custom_id = values.get("custom_id") or None
    if custom_id and len(custom_id) > 50:
        errors["custom_id"] = "At most 50 characters."
    if errors:
        raise FormErrors(errors)
    request = ServiceRequest(
        name=values["name"],
        custom_id=custom_id or new_custom_id(),
        service_number=rule,
        service=config,
        custom_group=values.get("custom_group") or None,
        **urls,
    )
    return NewNumber(request, number, rule, values.get("channel") or channel or user)


def request_new_number(services: Services, user: str, checked: NewNumber) -> NumberRequest:
    """Record a checked new-number request and send it on (to AVANSER, or to the approvers)."""
    created = create_request(
        services,
        kind="create",
        name=checked.request.name,
        number=checked.number,
        channel=checked.channel,
        requester=user,
        body=checked.request.model_dump(mode="json", exclude_none=True),
        custom_id=checked.request.custom_id,
    )
    send_on(services, created.id, checked.rule)
    return created


def form_values_of(service: ServiceDetail) -> dict[str, Any]:
    """A tracking number's settings as the edit form shows them."""
    config, reporting = service.service, service.reporting
    email = reporting.email if reporting else None
    sms = reporting.sms if reporting else None
    return {
        "name": service.name,
        "type": config.type,
        "answer_point": national(config.answer_point) if config.answer_point else None,
        "answer_point_name": config.answer_point_name,
        "record_call": config.record_call,
        "call_greeting": config.call_greeting,
        "call_whisper": config.call_whisper,
        "voicemail": config.voicemail,
        "report": reporting.report if reporting else "none",
        "email_to": ", ".join(email.email_to) if email else None,
        "email_cc": ", ".join(email.email_cc or []) if email else None,
        "email_bcc": ", ".join(email.email_bcc or []) if email else None,
        "email_subject": email.subject if email else None,
        "email_template": email.template if email else None,
        "sms_mobile": national(sms.mobile) if sms else None,
        "sms_id": sms.sms_id if sms else None,
        "sms_template": sms.template if sms else None,
    }


def changed_fields(values: dict[str, Any], before: dict[str, Any], country: str) -> set[str]:
    """The inputs whose value differs from what the form showed (spacing in a number is not a change)."""

    def same(key: str) -> bool:
        new, old = values.get(key) or None, before.get(key) or None
        if key in ("answer_point", "sms_mobile") and new and old:
            try:
                return parse_number(new, country) == parse_number(old, country)
            except InvalidNumber:
                return False
        return bool(new == old)

    changed = {k for k in FORM_FIELDS if not same(k)}
    if ("yes" in (values.get("record_call") or [])) != bool(before.get("record_call")):
        changed.add("record_call")
    return changed


def check_edit(services: Services, user: str, values: dict[str, Any], before: dict[str, Any]) -> ServiceUpdate:
    """The edit form's values as an update that sends only what changed (FormErrors otherwise)."""
    may_request(services, user)
    errors: dict[str, str] = {}
    config = service_from_form(values, errors, services.settings.country)
    if errors:
        raise FormErrors(errors)
    changed = changed_fields(values, before, services.settings.country)
    if not changed:
        raise UserError("Nothing was changed.", field="name")
    service_fields = SERVICE_FIELDS & changed
    return ServiceUpdate(
        name=values["name"] if "name" in changed else None,
        service=ServiceConfig(**{k: getattr(config, k) for k in service_fields}) if service_fields else None,
        call_reporting=config.call_reporting if changed & REPORTING_FIELDS else None,
    )


def request_change(
    services: Services, user: str, number: str, name: str, update: ServiceUpdate, channel: str
) -> NumberRequest:
    created = create_request(
        services,
        kind="update",
        name=name,
        number=number,
        channel=channel or user,
        requester=user,
        body=update.model_dump(mode="json", exclude_none=True),
    )
    send_on(services, created.id, None)
    return created


def request_release(services: Services, user: str, number: str, name: str, channel: str) -> NumberRequest:
    may_request(services, user)
    created = create_request(
        services, kind="delete", name=name, number=number, channel=channel or user, requester=user, body={}
    )
    send_on(services, created.id, None)
    return created


# -- approvals ------------------------------------------------------------------------------------------


async def cost_of(services: Services, rule: NumberRule) -> str:
    """What the number will cost, from the account's number rates, or a plain "unknown"."""
    try:
        return (await avanser_client(services).number_cost(rule)).sentence()
    except TelcoError:
        return "Cost: unknown — AVANSER's number rates couldn't be fetched just now."


def describe_rule(rule: NumberRule, number: str | None) -> str:
    """The number asked for, as mrkdwn: what the requester typed (an address, a zone) is escaped."""
    if number:
        return national(number)
    return {
        "number_type": f"any {mrkdwn(str(rule.number_type).lower())} number",
        "szu": f"a number in the {mrkdwn(rule.szu)} zone",
        "location": f"a number near {mrkdwn(rule.location)}",
        "coordinates": f"a number near {rule.lat}, {rule.lng}",
        "prefix": f"a number like {mrkdwn(national(rule.number or ''))}",
    }.get(rule.search_type, "a number")


def summary(request: NumberRequest) -> tuple[str, list[str]]:
    """What a request asks for, in the words an approver reads: mrkdwn, the requester's words escaped."""
    shown = national(request.number) if request.number else None
    name = mrkdwn(request.name)
    if request.kind == "create":
        rule = NumberRule.model_validate(request.body["service_number"])
        service = request.body.get("service") or {}
        target = f" → {national(service['answer_point'])}" if service.get("answer_point") else ""
        return f"a tracking number “{name}”", [
            f"Number: {describe_rule(rule, request.number)}",
            f"Type: {mrkdwn(service.get('type', '?'))}{target}",
            f"Alerts in <#{request.channel}>",
        ]
    if request.kind == "update":
        changing = sorted(request.body.get("service", {}).keys() | (request.body.keys() - {"service"}))
        return f"a change to “{name}” ({shown})", [f"Changing: {mrkdwn(', '.join(changing).replace('_', ' '))}"]
    return f"the release of {shown} (“{name}”)", ["The number goes back to AVANSER; this can't be undone."]


def send_on(services: Services, request_row: int, rule: NumberRule | None) -> None:
    """Admins' requests go to AVANSER now; anyone else's wait in the approvals channel with their cost."""
    request = load_request(services, id=request_row)
    assert request is not None
    if request.status == "submitting":
        services.tasks.spawn(submit(services, request_row), name="submit number request")
        return
    approvals = services.workspace().approvals_channel
    assert approvals is not None

    async def ask() -> None:
        cost = (
            await cost_of(services, rule) if rule is not None else "Releasing or changing a number costs nothing extra."
        )
        what, details = summary(request)
        text, blocks = approval_message(request_row, request.requester, what, details, cost)
        _set(services, request, approval_row=services.outbox.post(approvals, text, blocks), cost=cost)
        refresh.changed(services, admins=True)  # admins' Homes list what waits for them, with its cost

    services.tasks.spawn(ask(), name="ask for approval")


def decide_and_send(services: Services, request_row: int, admin: str, approve: bool) -> NumberRequest:
    """An admin's decision: the approval message shows it, and an approved request goes to AVANSER."""
    request = decide(services, request_row, admin, approve)
    if request.approval_row is not None:
        what, details = summary(request)
        services.outbox.update(
            request.approval_row,
            f"{'Approved' if approve else 'Rejected'}: {what}",
            decided_message(request.requester, what, details, admin, approve),
        )
    if approve:
        services.tasks.spawn(submit(services, request.id), name="submit approved request")
    return request


# -- templates and accounts -------------------------------------------------------------------------------


async def saved_templates(services: Services) -> list[Template] | None:
    """AVANSER's saved report templates (each typed email or sms); None when they can't be read just now."""
    try:
        return await avanser_client(services).list_templates()
    except TelcoError as exc:
        log.warning("could not list AVANSER's templates for a form: %s", exc.detail)
        return None


def may_administer(services: Services, user: str, what: str) -> None:
    if not services.is_admin(user):
        raise UserError(f"Only Switchboard admins can {what}.", field="name")


async def delete_template(services: Services, user: str, name: str, country: str, type: TemplateType) -> None:
    may_administer(services, user, "delete report templates")
    await avanser_client(services).delete_template(name, country=country, type=type)
    services.store.audit(user, "template.delete", subject=name, team=current_team())


def check_template(services: Services, user: str, values: dict[str, Any]) -> tuple[str, str, str, TemplateType]:
    """(name, content, country, type) of the template form, checked before it closes."""
    may_administer(services, user, "change templates")
    country = (values.get("country") or "").upper()
    if len(country) != 2:
        raise UserError("Use a two-letter country code such as AU.", field="country")
    kind: TemplateType = "sms" if values.get("type") == "sms" else "email"
    return values["name"], values["content"], country, kind


async def save_template(
    services: Services, user: str, name: str, content: str, country: str, type: TemplateType
) -> None:
    await avanser_client(services).save_template(name, content, country=country, type=type)
    services.store.audit(user, "template.save", subject=name, team=current_team())


async def switch_account(services: Services, user: str, account: int) -> None:
    """Work in another AVANSER account (admins). With many workspaces sharing one AVANSER user, a workspace
    switches only between the accounts its operator gave it (`switchboard workspace T… --avanser-account …`):
    another client's account is never within reach."""
    may_administer(services, user, "switch the AVANSER account")
    if services.installations is not None:
        config = services.workspace()
        if account not in config.avanser_accounts:
            mine = ", ".join(str(a) for a in sorted(config.avanser_accounts)) or "none yet"
            raise UserError(
                f"Account {account} isn't one of this workspace's AVANSER accounts ({mine}); whoever runs"
                " Switchboard decides which are."
            )
        services.workspaces.update(current_team(), user, avanser_account=account)
    else:
        await avanser_client(services).switch_account(account)
    services.store.audit(user, "account.switch", subject=str(account), team=current_team())


async def accounts(services: Services) -> tuple[list[Account], int | None]:
    """The accounts this AVANSER user may act for, and the one selected now; with many workspaces, only the
    workspace's own and the one it works in."""
    client = avanser_client(services)
    listed = await client.list_accounts()
    if services.installations is not None:
        config = services.workspace()
        return [a for a in listed if a.account_id in config.avanser_accounts], config.avanser_account
    return listed, client.last_transaction.account_id if client.last_transaction else None


SECRET_KEYS = re.compile(r"password|secret|authorization|api_key|token", re.I)


def scrub(value: Any, secrets: list[str]) -> Any:
    """A body as it may be shown: Switchboard's webhook token (in the URLs it registered), credentials and
    any field named like a secret are replaced by ••••."""
    if isinstance(value, dict):
        return {k: "••••" if SECRET_KEYS.search(str(k)) else scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "••••")
        return re.sub(r"(?i)((?:token|password|secret)=)[^&\s\"']+", r"\1••••", value)
    return value


async def request_details(services: Services, user: str, request_id: str) -> dict[str, Any]:
    """What AVANSER holds of a request — the body it received, its acknowledgment, the callback it sent —
    without Switchboard's webhook token or credentials (admins)."""
    may_administer(services, user, "see a request's details")
    client = avanser_client(services)

    async def body(call: Callable[[str], Awaitable[Any]]) -> Any:
        try:
            return await call(request_id)
        except TelcoError as exc:
            log.warning("AVANSER request %s body: %s", request_id, exc.detail)
            return None

    sent, acknowledged, callback = await asyncio.gather(
        body(client.request_body), body(client.acknowledgment_body), body(client.callback_body)
    )
    settings = services.settings
    secrets = [s.get_secret_value() for s in (settings.webhook_token, settings.avanser_password) if s is not None]
    return scrub(
        {"Request (as AVANSER received it)": sent, "Acknowledgment": acknowledged, "Callback": callback},
        [s for s in secrets if s],
    )


@dataclass(frozen=True)
class AccountOverview:
    """What seed 001 tells about the selected account; a part AVANSER didn't answer is None."""

    accounts: list[Account]
    current: int | None
    details: list[AccountDetails] | None
    packages: list[Package] | None
    number_rates: list[NumberRate] | None
    call_rates: list[CallRate] | None
    transcription_rates: list[TranscriptionRate] | None
    features: list[Feature] | None


async def account_overview(services: Services, user: str) -> AccountOverview:
    """The selected account's details, packages, rates and features, asked of AVANSER at once (admins)."""
    may_administer(services, user, "see the AVANSER account")
    client = avanser_client(services)
    listed, current = await accounts(services)

    async def part(call: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await call()
        except TelcoError as exc:
            log.warning("AVANSER account overview: %s", exc.detail)
            return None

    parts = await asyncio.gather(
        part(client.account_details),
        part(client.packages),
        part(client.number_rates),
        part(client.call_rates),
        part(client.transcription_rates),
        part(client.features),
    )
    return AccountOverview(listed, current, *parts)


def requester_of(services: Services, number: str) -> str | None:
    """Who in this workspace asked for `number` through Switchboard (its completed new-number request)."""
    row = services.store.execute(
        "SELECT requester FROM number_requests WHERE number = ? AND kind = 'create' AND status = 'completed'"
        " AND team_id = ? ORDER BY id DESC LIMIT 1",
        (number, current_team()),
    ).fetchone()
    return str(row[0]) if row else None


def may_route(services: Services, user: str, number: str) -> None:
    """Moving a number's alerts (full caller numbers) is for admins and the number's requester — of the workspace
    that routes it, if one does."""
    if routed_elsewhere(services.store, number):
        raise RoutedElsewhere(ROUTED_ELSEWHERE)
    if not services.is_admin(user) and requester_of(services, number) != user:
        raise UserError(
            f"Only Switchboard admins or whoever asked for {national(number)} can choose where its calls are posted."
        )


async def route_number(services: Services, user: str, change: RouteChange) -> dict[str, Any]:
    """Send a number's calls and texts to a channel from now on, with the options given (the others keep their
    value): only ours, only where Switchboard can post. Returns the route's options now."""
    number, channel = change.number, change.channel
    may_route(services, user, number)
    await find_service(services, number)  # one of this account's tracking numbers, not any number at all
    await check_can_post(services, channel)
    set_route(services.store, number, channel, by=user, options=change.options)
    services.store.audit(
        user,
        "route.set",
        subject=number,
        detail=json.dumps({"channel": channel, "options": change.options}),
        team=current_team(),
    )
    refresh.number_changed(services, number)
    return route_options(services.store, number)


def routed_text(change: RouteChange, options: dict[str, Any], claim_within: float) -> str:
    """What `/numbers route` answers once the route is set: where, what the words given do, and how it is now."""
    text = f"Calls and texts to {national(change.number)} will be posted in <#{change.channel}>."
    if change.options.get("weekly_report") is True:
        text += " Every Monday, last week's call report for it is posted there too."
    elif change.options.get("weekly_report") is False:
        text += " No weekly report is posted for it."
    return text + "\nIts route: " + " · ".join(route_option_words(options, claim_within=claim_within)) + "."


# -- /numbers route's grammar ----------------------------------------------------------------------------

ROUTE_USAGE = (
    "Try `/numbers route <number> #channel [all-calls|missed-only] [masked|unmasked] "
    "[escalate @person-or-@group] [weekly-report|no-weekly-report]`; options you leave out keep their value."
)
# The words after the number and the channel: word → (route option, value). A new option is one more entry.
ROUTE_WORDS: dict[str, tuple[str, Any]] = {
    "all-calls": ("report", "all"),
    "missed-only": ("report", "missed"),
    "masked": ("mask_callers", True),
    "unmasked": ("mask_callers", False),
    "weekly-report": ("weekly_report", True),  # last week's report in the channel every Monday (bot.domain.reports)
    "no-weekly-report": ("weekly_report", False),
}
ROUTE_TOKENS = re.compile(r"<[^<>]*>|[^\s<>]+")
CHANNEL_MENTION = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^<>]*)?>")
USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>")
GROUP_MENTION = re.compile(r"<!subteam\^([A-Z0-9]+)(?:\|[^<>]*)?>")
NUMBER_WORD = re.compile(r"[+\d().-]+")


def _escalate_to(word: str) -> tuple[str, Any]:
    """`escalate @casey` (Slack sends `<@U…|casey>`), `escalate @sales` (`<!subteam^S…|@sales>`), or `escalate
    requester` (back to whoever asked for the number)."""
    if match := USER_MENTION.fullmatch(word):
        return "escalate", f"<@{match[1]}>"
    if match := GROUP_MENTION.fullmatch(word):
        return "escalate", f"<!subteam^{match[1]}>"
    if word.lower() in ("requester", "default"):
        return "escalate", None  # the option is removed: the number's requester again
    raise UserError(
        f"“{mrkdwn(word, 100)}” isn't a person or a group Slack knows: `escalate @casey` or `escalate @sales-team` "
        "(or `escalate requester`)."
    )


# Words that take the next word as their value: word → what it means.
ROUTE_VALUES: dict[str, Callable[[str], tuple[str, Any]]] = {"escalate": _escalate_to}


@dataclass(frozen=True)
class RouteChange:
    """`/numbers route` as typed: the number (E.164), the channel, and the options given (None removes one)."""

    number: str
    channel: str
    options: dict[str, Any]


def parse_route(text: str, country: str) -> RouteChange:
    """`02 9008 1596 <#C…|sales> all-calls masked escalate <@U…|casey>` (Slack escapes mentions in commands)."""
    tokens = ROUTE_TOKENS.findall(text)
    channel: str | None = None
    options: dict[str, Any] = {}
    number_words: list[str] = []
    while tokens:
        token = tokens.pop(0)
        word = token.lower()
        if match := CHANNEL_MENTION.fullmatch(token):
            if channel is not None and channel != match[1]:
                raise UserError(f"Give one channel. {ROUTE_USAGE}")
            channel = match[1]
            continue
        if word in ROUTE_WORDS:
            key, value = ROUTE_WORDS[word]
        elif word in ROUTE_VALUES:
            if not tokens:
                raise UserError(f"`{word}` needs a value. {ROUTE_USAGE}")
            key, value = ROUTE_VALUES[word](tokens.pop(0))
        elif NUMBER_WORD.fullmatch(token) and not options:
            number_words.append(token)
            continue
        else:
            raise UserError(f"I don't understand “{mrkdwn(token, 100)}”. {ROUTE_USAGE}")
        if key in options and options[key] != value:
            raise UserError(f"`{word}` contradicts another word you gave. {ROUTE_USAGE}")
        options[key] = value
    if channel is None:
        raise UserError("Which channel? For example `/numbers route 02 9008 1596 #sales`.")
    if not number_words:
        raise UserError("Which number? For example `/numbers route 02 9008 1596 #sales`.")
    try:
        number = parse_number(" ".join(number_words), country)
    except InvalidNumber as exc:
        raise UserError(str(exc)) from None
    return RouteChange(number, channel, options)


# -- released numbers -------------------------------------------------------------------------------------

QUARANTINE_MONTHS = (3, 6)  # seed 000: a released number is quarantined for three to six months


@dataclass(frozen=True)
class Released:
    """A number released through Switchboard."""

    number: str
    name: str | None
    released_at: float
    released_by: str

    @property
    def quarantine(self) -> tuple[float, float]:
        return quarantine_until(self.released_at)


def add_months(epoch: float, months: int) -> float:
    """The same day (or the month's last) `months` calendar months later, at the same time of day (GMT)."""
    at = datetime.fromtimestamp(epoch, UTC)
    index = at.month - 1 + months
    year, month = at.year + index // 12, index % 12 + 1
    following = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    last_day = (following - datetime(year, month, 1, tzinfo=UTC)).days
    return at.replace(year=year, month=month, day=min(at.day, last_day)).timestamp()


def quarantine_until(released_at: float) -> tuple[float, float]:
    """About when AVANSER may give the number to someone else: released + 3 months … + 6 months."""
    return add_months(released_at, QUARANTINE_MONTHS[0]), add_months(released_at, QUARANTINE_MONTHS[1])


def remember_release(services: Services, request: NumberRequest, number: str) -> None:
    services.store.execute(
        "INSERT OR IGNORE INTO released_numbers (number, name, released_at, released_by, request_row, team_id)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (number, request.name, time.time(), request.requester, request.id, request.team_id),
    )


def released_numbers(services: Services, limit: int = 100) -> tuple[list[Released], int]:
    """Numbers this workspace released through Switchboard, newest first (at most `limit`), and how many there are."""
    team = current_team()
    rows = services.store.execute(
        "SELECT number, name, released_at, released_by FROM released_numbers WHERE team_id = ?"
        " ORDER BY released_at DESC, id DESC LIMIT ?",
        (team, limit),
    ).fetchall()
    total = services.store.execute("SELECT COUNT(*) FROM released_numbers WHERE team_id = ?", (team,)).fetchone()[0]
    return [Released(str(r[0]), r[1], float(r[2]), str(r[3])) for r in rows], int(total)


def released_record(services: Services, number: str) -> Released | None:
    """The latest release of `number` through Switchboard by this workspace, if any."""
    row = services.store.execute(
        "SELECT number, name, released_at, released_by FROM released_numbers WHERE number = ? AND team_id = ?"
        " ORDER BY released_at DESC LIMIT 1",
        (number, current_team()),
    ).fetchone()
    return Released(str(row[0]), row[1], float(row[2]), str(row[3])) if row else None


async def show_number(services: Services, number: str) -> ServiceDetail | Released:
    """An active tracking number as AVANSER has it, or — once released through Switchboard — its release."""
    try:
        return await find_service(services, number)
    except UserError:
        released = released_record(services, number)
        if released is None:
            raise
        return released


async def check_can_post(services: Services, channel: str) -> None:
    """The bot can post in `channel`: a member, or a public channel (chat:write.public), not archived."""
    try:
        info = (await services.slack.conversations_info(channel=channel)).get("channel") or {}
    except SlackApiError as exc:
        error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
        log.warning("conversations.info %s failed: %s", channel, error)
        raise UserError(f"I can't see <#{channel}>. Invite @Switchboard to it first, then try again.") from None
    if info.get("is_archived"):
        raise UserError(f"<#{channel}> is archived, so nothing can be posted there.")
    if info.get("is_private") and not info.get("is_member"):
        raise UserError(f"<#{channel}> is private: invite @Switchboard to it first, then try again.")
