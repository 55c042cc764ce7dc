"""Alerts: a call or text on one of our numbers becomes a message in its route's channel, with Claim and Call back.

    provider ─▶ /hooks/* ─▶ inbox ─▶ on_avanser_call / on_avanser_sms / on_exotel_call / on_verification
                                         │ route_for (routing) · render_* (notifiers) · an `alerts` row
                                         ▼
                                      deliver (routing) ─▶ outbox ─▶ Slack

An alert row keeps the full caller number even when the channel shows it masked, and who claimed it
or called back; `claim` and `call_back` change it and edit the alert's message in place.

Escalation: a missed call or voicemail still unclaimed SWITCHBOARD_CLAIM_WITHIN after it arrived gets
one reply in its thread mentioning the route's `escalate` person or group (else whoever asked for the
number), and its message says "unclaimed for 15 min". With SWITCHBOARD_BUSINESS_HOURS, an escalation
that falls due outside them waits for the next opening time. The alert row is the truth: `escalate_at`
(due, cleared by a claim, a call back or the escalation) and `escalated_at` (set once, by an UPDATE
that also checks nobody claimed it), so it fires at most once and never after a claim; the APScheduler
jobs are rebuilt from those columns at start (`rebuild_escalations`).

Claim and Call back come from the alert's own channel, or from the App Home of someone who may see the
number's calls there (an admin, or whoever asked for the number): `channel=None` means the Home.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from bot.domain import calls, feed, numbers, refresh, reports, vn
from bot.domain.routing import (
    Delivered,
    Route,
    alerts_channels,
    deliver,
    digest_if_storming,
    route_for,
    team_of_number,
    thread_channel,
    thread_root,
)
from bot.errors import UserError
from bot.inbox import Handler
from bot.workspaces import current_team, enter_team, team_scope
from notifiers.allocations import render_allocation_call, render_verification
from notifiers.calls import (
    call_summary,
    kind_of,
    recording_link_reply,
    recording_not_attached,
    recording_title,
    render_call,
    voicemail_title,
    wanted,
)
from notifiers.events import (
    AvanserCall,
    AvanserRecording,
    AvanserSms,
    Event,
    ExotelCall,
    ExotelVerification,
    exotel_number,
    parse_event,
)
from notifiers.fallback import render_fallback
from notifiers.message import AlertState, Message, minutes_text
from notifiers.sms import render_sms, sms_summary, thread_key

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


def inbox_handlers(services: Services) -> dict[type[Event], Handler]:
    """The inbox handlers of this room, bound to `services`."""
    return {
        AvanserCall: lambda inbox_id, event: on_avanser_call(services, inbox_id, event),  # type: ignore[arg-type]
        AvanserRecording: lambda inbox_id, event: on_avanser_recording(services, inbox_id, event),  # type: ignore[arg-type]
        AvanserSms: lambda inbox_id, event: on_avanser_sms(services, inbox_id, event),  # type: ignore[arg-type]
        ExotelCall: lambda inbox_id, event: on_exotel_call(services, inbox_id, event),  # type: ignore[arg-type]
        ExotelVerification: lambda inbox_id, event: on_verification(services, inbox_id, event),  # type: ignore[arg-type]
    }


def _route(services: Services, number: str | None, custom_group: str | None = None) -> Route | None:
    return route_for(services.store, alerts_channels(services), number=number, custom_group=custom_group)


def _new_alert(
    services: Services,
    inbox_id: int,
    channel: str,
    kind: str,
    caller: str | None,
    tracking: str | None,
    digest: int | None = None,
    at: float | None = None,
) -> AlertState:
    now = time.time() if at is None else at
    cursor = services.store.execute(
        "INSERT INTO alerts (inbox_id, channel, kind, caller, tracking, digest_id, created_at, team_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (inbox_id, channel, kind, caller, tracking, digest, now, current_team()),
    )
    return AlertState(id=int(cursor.lastrowid or 0), created_at=now)


def _rendered(render: Callable[[], Message], event: Event, state: AlertState) -> Message:
    """The event's message, or — when it can't be built — the essentials in plain text (never nothing)."""
    try:
        return render()
    except Exception:
        log.exception("could not build the message of %s %s; posting the essentials instead", event.source, state.id)
        return render_fallback(event, state)


def _into_digest(services: Services, channel: str, line: Callable[[], str]) -> int | None:
    """During a storm in `channel`: the alert becomes one line of its digest (O(1)); its id, else None."""

    def safe_line() -> str:
        try:
            return line()
        except Exception:
            log.exception("could not build an alert's digest line; a plain one instead")
            return "An alert arrived; its line couldn't be built"

    return digest_if_storming(services.store, services.outbox, channel, safe_line)


def _post(services: Services, inbox_id: int, channel: str, message: Message, alert: int, *, digest: bool) -> Delivered:
    delivered = deliver(services.store, services.outbox, f"inbox:{inbox_id}", channel, message, digest=digest)
    services.store.execute(
        "UPDATE alerts SET outbox_id = ?, digest_id = ? WHERE id = ?", (delivered.row, delivered.digest, alert)
    )
    return delivered


ESCALATED_KINDS = ("missed", "abandoned", "busy", "unanswered", "voicemail")


def on_avanser_call(services: Services, inbox_id: int, event: AvanserCall) -> str:
    if numbers.test_call(services, event.tracking_e164):
        return "done"  # AVANSER's automatic test call of a new number: said in its thread, not an alert
    route = _route(services, event.tracking_e164, event.custom_group)
    # The call is the workspace's whose route it is (or whose number, unrouted), before any row is written.
    enter_team(route.team if route is not None else team_of_number(services.store, event.tracking_e164))
    reports.record_call(services.store, inbox_id, event)  # every call counts in /numbers report, answered too
    if event.from_feed and feed.too_old(event):
        return "skipped"  # recovered a day late: history (in reports), not an alert
    kind = kind_of(event)
    if route is None:
        return "unrouted"
    if not wanted(event, route):
        return "skipped"
    digest = _into_digest(services, route.channel, lambda: call_summary(event, route))
    state = _new_alert(services, inbox_id, route.channel, kind, event.caller_e164, event.tracking_e164, digest)
    if kind in ESCALATED_KINDS:
        schedule_escalation(services, state, event.tracking_e164, route)
        refresh.number_changed(services, event.tracking_e164)
    if digest is not None:
        return "done"  # a storm: one line of the channel's digest, no message of its own (and no file)
    message = _rendered(lambda: render_call(event, route, state), event, state)
    delivered = _post(services, inbox_id, route.channel, message, state.id, digest=False)
    recording = event.recording_url
    if delivered.row is not None and event.is_voicemail and services.settings.recording_allowed(recording):
        assert recording is not None
        services.outbox.attach_file(
            delivered.row,
            recording,
            f"voicemail-{event.dedup_key()}.mp3",
            voicemail_title(event, route),
            hosts=services.settings.recording_hosts,
            max_bytes=services.settings.recording_max_bytes,
            unattached=recording_not_attached(),
            dedup_key=f"inbox:{inbox_id}:recording",
        )
    return "done"


class CallNotHandledYet(Exception):
    """The call of a recording is still waiting in the inbox: the recording is tried again after it."""


def on_avanser_recording(services: Services, inbox_id: int, event: AvanserRecording) -> str:
    """The data feed has the recording of a call already handled: in its alert's thread, once."""
    row = services.store.execute(
        "SELECT id, status, payload FROM inbox WHERE dedup_key = ?", (f"{AvanserCall.source}:{event.dedup_key()}",)
    ).fetchone()
    if row is None:
        return "skipped"
    if row[1] == "new":
        raise CallNotHandledYet(f"inbox event {row[0]} (the call) is not handled yet")
    call_inbox, call = int(row[0]), parse_event(AvanserCall.source, json.loads(row[2]))
    assert isinstance(call, AvanserCall)
    reports.recording_arrived(services.store, event.dedup_key())
    alert = services.store.execute(
        "SELECT a.id, a.channel, COALESCE(a.outbox_id, d.outbox_id), a.team_id FROM alerts a"
        " LEFT JOIN digests d ON d.id = a.digest_id WHERE a.inbox_id = ?",
        (call_inbox,),
    ).fetchone()
    if call.recording_url or alert is None or alert[2] is None:
        return "skipped"  # its alert had it already, or the call has no alert (answered, unrouted, a test call)
    alert_id, channel, root = int(alert[0]), str(alert[1]), int(alert[2])
    enter_team(str(alert[3]))  # the recording is its alert's workspace's
    route = _route(services, event.tracking_e164, event.custom_group) or Route(channel=channel)
    if event.is_voicemail:
        services.store.execute("UPDATE alerts SET kind = 'voicemail' WHERE id = ?", (alert_id,))
    url, key = event.recording_url, f"inbox:{call_inbox}:recording"  # the call's own key: once per call
    if services.settings.recording_allowed(url):
        services.outbox.attach_file(
            root,
            url,
            f"{'voicemail' if event.is_voicemail else 'recording'}-{event.dedup_key()}.mp3",
            recording_title(event, route),
            hosts=services.settings.recording_hosts,
            max_bytes=services.settings.recording_max_bytes,
            unattached=recording_not_attached(),
            dedup_key=key,
        )
    else:
        services.outbox.post(channel, recording_link_reply(event, route), dedup_key=key, thread_of=root)
    return "done"


def on_avanser_sms(services: Services, inbox_id: int, event: AvanserSms) -> str:
    route = _route(services, event.tracking_e164)
    if route is None:
        return "unrouted"
    enter_team(route.team)
    first = thread_root(services.store, thread_key(event)) is None
    received = time.time()
    digest = _into_digest(services, route.channel, lambda: sms_summary(event, route, received)) if first else None
    state = _new_alert(
        services, inbox_id, route.channel, "sms", event.sender_e164, event.tracking_e164, digest, received
    )
    if digest is not None:
        return "done"
    message = _rendered(lambda: render_sms(event, route, state, first=first), event, state)
    _post(services, inbox_id, route.channel, message, state.id, digest=False)
    return "done"


def _allocation_route(services: Services, greenvn: str | None, greenvn_id: str | None) -> Route | None:
    """The route of a virtual number's events; masked when the allocation was made `masked`."""
    route = _route(services, exotel_number(greenvn))
    if route is not None and vn.is_masked(services, greenvn_id, exotel_number(greenvn)):
        return replace(route, mask_callers=True, escalate=None)
    return route


def enter_allocation_team(services: Services, greenvn: str | None, greenvn_id: str | None, route: Route | None) -> None:
    """A virtual number's event is its allocation's workspace's (else its route's), from here to the event's end."""
    team = vn.team_of(services, greenvn_id, exotel_number(greenvn))
    enter_team(team if team is not None else (route.team if route is not None else ""))


def on_exotel_call(services: Services, inbox_id: int, event: ExotelCall) -> str:
    route = _allocation_route(services, event.greenvn, event.greenvn_id)
    enter_allocation_team(services, event.greenvn, event.greenvn_id, route)
    keys = render_allocation_call(event, route or Route(channel=""), AlertState(id=0)).thread_keys
    channel = thread_channel(services.store, *keys) or (route.channel if route else None)
    if channel is None:
        return "unrouted"
    masked = vn.is_masked(services, event.greenvn_id, exotel_number(event.greenvn))
    caller, number = exotel_number(event.caller), exotel_number(event.greenvn)
    state = _new_alert(services, inbox_id, channel, "allocation_call", caller, number)
    shown = route or Route(channel=channel, mask_callers=masked)
    message = _rendered(lambda: render_allocation_call(event, shown, state), event, state)
    _post(services, inbox_id, channel, message, state.id, digest=False)
    return "done"


def on_verification(services: Services, inbox_id: int, event: ExotelVerification) -> str:
    route = _allocation_route(services, event.greenvn, event.greenvn_id)
    enter_allocation_team(services, event.greenvn, event.greenvn_id, route)
    masked = vn.is_masked(services, event.greenvn_id, exotel_number(event.greenvn))
    message = render_verification(event, route or Route(channel="", mask_callers=masked))
    channel = thread_channel(services.store, *message.thread_keys) or (route.channel if route else None)
    if channel is None:
        return "unrouted"
    deliver(services.store, services.outbox, f"inbox:{inbox_id}", channel, message)
    return "done"


# -- what people do about an alert ---------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    state: AlertState
    event: Event
    channel: str
    outbox_id: int | None
    caller: str | None
    tracking: str | None
    kind: str = ""
    digest_id: int | None = None


def load_alert(services: Services, alert_id: int) -> Alert | None:
    """An alert of this workspace, its event, its channel and its message row (None when unknown here)."""
    row = services.store.execute(
        "SELECT a.id, a.claimed_by, a.claimed_at, a.called_back_by, a.called_back_at, i.source, i.payload,"
        " a.channel, a.outbox_id, a.caller, a.tracking, a.created_at, a.escalated_at, a.kind, a.digest_id"
        " FROM alerts a JOIN inbox i ON i.id = a.inbox_id WHERE a.id = ? AND a.team_id = ?",
        (alert_id, current_team()),
    ).fetchone()
    if row is None:
        return None
    state = AlertState(
        id=row[0],
        claimed_by=row[1],
        claimed_at=row[2],
        called_back_by=row[3],
        called_back_at=row[4],
        created_at=row[11],
        escalated_at=row[12],
    )
    event = parse_event(row[5], json.loads(row[6]))
    return Alert(state, event, str(row[7]), row[8], row[9], row[10], str(row[13]), row[14])


def render_alert(services: Services, alert: Alert) -> Message | None:
    """The alert's message as it should look now (after a claim or a call back)."""
    default, event, channel = alerts_channels(services), alert.event, alert.channel
    if isinstance(event, AvanserCall):
        route = route_for(services.store, default, number=event.tracking_e164, custom_group=event.custom_group)
        return render_call(event, route or Route(channel=channel), alert.state)
    if isinstance(event, AvanserSms):
        route = route_for(services.store, default, number=event.tracking_e164)
        return render_sms(event, route or Route(channel=channel), alert.state, first=True)
    if isinstance(event, ExotelCall):
        route = _allocation_route(services, event.greenvn, event.greenvn_id)
        masked = vn.is_masked(services, event.greenvn_id, exotel_number(event.greenvn))
        return render_allocation_call(event, route or Route(channel=channel, mask_callers=masked), alert.state)
    return None


def refresh_alert(services: Services, alert_id: int) -> None:
    """Queue an edit of the alert's message to show who claimed or called back."""
    alert = load_alert(services, alert_id)
    message = render_alert(services, alert) if alert is not None else None
    if alert is not None and message is not None and alert.outbox_id is not None:  # not inside a storm digest
        services.outbox.update(alert.outbox_id, message.text, message.blocks)


def alert_in(services: Services, alert_id: int, channel: str | None, user: str = "") -> Alert:
    """The alert, if it was posted in `channel` — where the click came from — or, with `channel` None (a click on
    the App Home), if `user` may see that number's calls on their Home: an admin or whoever asked for the number."""
    alert = load_alert(services, alert_id)
    if channel is None:
        if alert is None or not may_see_on_home(services, alert.tracking, user):
            raise UserError("Only Switchboard admins and whoever asked for that number can take its calls from here.")
        return alert
    if alert is None or channel not in (alert.channel, _posted_channel(services, alert)):
        raise UserError("I can't find that alert in this conversation.")
    return alert


def may_see_on_home(services: Services, number: str | None, user: str) -> bool:
    """The App Home shows a number's waiting calls to admins and to whoever asked for the number."""
    if services.is_admin(user):
        return True
    return bool(number) and numbers.requester_of(services, str(number)) == user


def _posted_channel(services: Services, alert: Alert) -> str | None:
    if alert.outbox_id is None:
        return None
    row = services.store.execute("SELECT posted_channel FROM outbox WHERE id = ?", (alert.outbox_id,)).fetchone()
    return str(row[0]) if row and row[0] else None


def claim(services: Services, alert_id: int, user_id: str, channel: str | None) -> str | None:
    """Mark the alert as handled by `user_id` and edit its message; who claimed it first, if someone else did.

    `channel` is where the click came from; None for the App Home."""
    alert = alert_in(services, alert_id, channel, user_id)
    cursor = services.store.execute(
        "UPDATE alerts SET claimed_by = ?, claimed_at = ?, escalate_at = NULL WHERE id = ? AND team_id = ?"
        " AND claimed_by IS NULL",
        (user_id, time.time(), alert_id, current_team()),
    )
    if cursor.rowcount == 0:
        row = services.store.execute(
            "SELECT claimed_by FROM alerts WHERE id = ? AND team_id = ?", (alert_id, current_team())
        ).fetchone()
        if row is None:
            raise UserError("I can't find that alert any more.")
        return str(row[0]) if row[0] != user_id else None
    services.store.audit(user_id, "alert.claim", subject=str(alert_id), team=current_team())
    services.scheduler.cancel(f"escalate-{alert_id}")
    refresh_alert(services, alert_id)
    refresh.number_changed(services, alert.tracking)
    return None


async def call_back(
    services: Services, alert_id: int, user_id: str, channel: str | None
) -> tuple[calls.PlacedCall, bool]:
    """Ring the clicker, then the caller of the alert, showing the number the caller had called.

    Returns the call and whether the alert's channel sees callers masked (then so does the answer).
    `channel` is where the click came from; None for the App Home."""
    alert = alert_in(services, alert_id, channel, user_id)
    if not alert.caller:
        raise UserError("The caller withheld their number, so I can't call them back.")
    placed = await calls.place_call(
        services, requester=user_id, customer_text=alert.caller, tracking=alert.tracking, via="alert"
    )
    services.store.execute(
        "UPDATE alerts SET called_back_by = ?, called_back_at = ?, escalate_at = NULL WHERE id = ? AND team_id = ?",
        (user_id, time.time(), alert_id, current_team()),
    )
    services.scheduler.cancel(f"escalate-{alert_id}")
    refresh_alert(services, alert_id)
    refresh.number_changed(services, alert.tracking)
    message_route = _route_of(services, alert)
    return placed, bool(message_route and message_route.mask_callers)


def _route_of(services: Services, alert: Alert) -> Route | None:
    event = alert.event
    if isinstance(event, AvanserCall | AvanserSms):
        group = event.custom_group if isinstance(event, AvanserCall) else None
        return route_for(services.store, None, number=event.tracking_e164, custom_group=group)
    if isinstance(event, ExotelCall):
        return _allocation_route(services, event.greenvn, event.greenvn_id)
    return None


# -- escalation of unclaimed calls -----------------------------------------------------------------------


def escalation_target(services: Services, number: str | None, route: Route | None) -> str | None:
    """Who hears of an unclaimed call: the route's `escalate` (a person or a group), else the number's requester."""
    if route is not None and route.escalate:
        return route.escalate
    requester = numbers.requester_of(services, number) if number else None
    return f"<@{requester}>" if requester else None


def escalation_due(services: Services, created_at: float) -> float | None:
    """When an alert made at `created_at` escalates: the window later, or the next opening time after it."""
    window = services.settings.claim_within
    if not window:
        return None
    due = created_at + window
    hours = services.settings.business_hours
    return hours.next_open(due) if hours is not None else due


def schedule_escalation(services: Services, state: AlertState, number: str | None, route: Route) -> None:
    """Mark a new missed call or voicemail to escalate when unclaimed, and make its job."""
    if escalation_target(services, number, route) is None:
        return  # nobody to ask (a group or default route, and no requester): the channel sees it as ever
    due = escalation_due(services, state.created_at or time.time())
    if due is None:
        return
    services.store.execute("UPDATE alerts SET escalate_at = ? WHERE id = ?", (due, state.id))
    services.scheduler.at(due, f"escalate-{state.id}", escalate, services, state.id)


async def escalate(services: Services, alert_id: int) -> bool:
    """Say once, in the alert's thread, that it is still unclaimed; True when it was said now."""
    row = services.store.execute(  # the job runs as the workspace that scheduled it: the alert's
        "SELECT escalate_at FROM alerts WHERE id = ? AND team_id = ?", (alert_id, current_team())
    ).fetchone()
    if row is None or row[0] is None:
        return False  # claimed, called back or escalated since the job was made
    now = time.time()
    hours = services.settings.business_hours
    if hours is not None and not hours.is_open(now):  # e.g. rebuilt at start during the night: wait for opening
        opening = hours.next_open(now)
        services.store.execute("UPDATE alerts SET escalate_at = ? WHERE id = ?", (opening, alert_id))
        services.scheduler.at(opening, f"escalate-{alert_id}", escalate, services, alert_id)
        return False
    with services.store.transaction():
        taken = services.store.execute(
            "UPDATE alerts SET escalated_at = ?, escalate_at = NULL WHERE id = ? AND escalated_at IS NULL"
            " AND claimed_by IS NULL AND called_back_by IS NULL",
            (now, alert_id),
        )
        if not taken.rowcount:
            return False
        alert = load_alert(services, alert_id)
        assert alert is not None
        target = escalation_target(services, alert.tracking, _route_of(services, alert))
        _say_unclaimed(services, alert, target, now)
        refresh_alert(services, alert_id)
        services.store.audit(
            "Switchboard",
            "alert.escalate",
            subject=str(alert_id),
            detail=json.dumps({"to": target}),
            team=current_team(),
        )
    return True


def _say_unclaimed(services: Services, alert: Alert, target: str | None, now: float) -> None:
    waited = minutes_text(now - (alert.state.created_at or now))
    what = "voicemail" if alert.kind == "voicemail" else "call"
    root = alert.outbox_id
    summary = ""
    if root is None and alert.digest_id is not None:  # inside a storm digest: reply under the digest, say which
        digest = services.store.execute("SELECT outbox_id FROM digests WHERE id = ?", (alert.digest_id,)).fetchone()
        root = int(digest[0]) if digest else None
        route = _route_of(services, alert)
        if isinstance(alert.event, AvanserCall):
            summary = f"\n{call_summary(alert.event, route or Route(channel=alert.channel))}"
    who = f"{target} " if target else ""
    text = (
        f"⏰ {who}this {what} has been unclaimed for {waited}. Can you take it? Claim it (or call back) so the "
        f"team knows it's handled.{summary}"
    )
    services.outbox.post(alert.channel, text, thread_of=root, dedup_key=f"escalate:{alert.state.id}")


async def rebuild_escalations(services: Services) -> None:
    """At start: a job for every alert still waiting to escalate (SQLite is the truth), each its workspace's."""
    rows = services.store.execute(
        "SELECT id, escalate_at, team_id FROM alerts WHERE escalate_at IS NOT NULL AND escalated_at IS NULL"
        " AND claimed_by IS NULL AND called_back_by IS NULL"
    ).fetchall()
    for alert_id, due, team in rows:
        with team_scope(team):
            services.scheduler.at(float(due), f"escalate-{alert_id}", escalate, services, int(alert_id))
