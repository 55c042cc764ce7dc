"""The inbox processor: stored telco events → routed, rendered Slack messages in the outbox.

Each event is handled in one SQLite transaction: its outbox rows (keyed by the inbox id, so a
retry cannot add a second), its alert row and thread registrations, and its own status
(done / skipped / unrouted). A crash before the commit leaves the event 'new' and it is handled
after the restart; a crash after it leaves the outbox to deliver. So every acknowledged webhook
becomes exactly one message, or one line of a storm digest.

Storms: when a new alert would wait more than STORM_DELAY seconds behind the posts already queued
for its channel (Slack allows about one a second), it and the alerts after it are gathered into
one digest message, edited in place as they arrive, instead of queueing a post each. Nothing is
dropped; the digest lists every alert.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING

from bot.leases import on_deallocated
from bot.numbers import finish
from bot.routing import Route, remember_thread, route_for, thread_root
from bot.worker import Worker
from notifiers.allocations import render_allocation_call, render_deallocation, render_verification
from notifiers.calls import kind_of, render_call, wanted
from notifiers.digest import DIGEST_SECONDS, fits, render_digest
from notifiers.events import (
    AvanserCall,
    AvanserRequestUpdate,
    AvanserSms,
    Event,
    ExotelCall,
    ExotelDeallocation,
    ExotelVerification,
    exotel_number,
    parse_event,
)
from notifiers.message import AlertState, Message
from notifiers.provisioning import render_request_update, request_key
from notifiers.sms import render_sms, thread_key

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

STORM_DELAY = 3.0  # seconds a new alert would wait behind the channel's queue before a digest takes over


class InboxProcessor(Worker):
    name = "inbox-processor"

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.store = services.store
        self.outbox = services.outbox

    async def start(self) -> None:
        await self.start_loop()

    async def stop(self) -> None:
        await self.stop_loop()

    def step(self) -> float:
        return 0.0 if self.process_pending() else 1.0

    def process_pending(self, limit: int = 100) -> int:
        rows = self.store.execute(
            "SELECT id, source, payload FROM inbox WHERE status = 'new' ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        for inbox_id, source, payload in rows:
            self.process_one(inbox_id, source, payload)
        return len(rows)

    def process_one(self, inbox_id: int, source: str, payload: str) -> None:
        try:
            event = parse_event(source, json.loads(payload))
            with self.store.transaction():
                status = self._handle(inbox_id, event)
                self.store.execute(
                    "UPDATE inbox SET status = ?, processed_at = ? WHERE id = ?",
                    (status, time.time(), inbox_id),
                )
            if status == "unrouted":
                log.warning(
                    "inbox: event %d (%s) has no route and no SWITCHBOARD_ALERTS_CHANNEL; kept, not posted",
                    inbox_id,
                    source,
                )
        except Exception as exc:
            log.exception("inbox: event %d (%s) could not be handled; marked failed", inbox_id, source)
            self.store.execute(
                "UPDATE inbox SET status = 'failed', error = ?, processed_at = ? WHERE id = ?",
                (f"{type(exc).__name__}: {exc}"[:500], time.time(), inbox_id),
            )

    # -- handling one event (inside the transaction) ----------------------------------------------

    def _route(self, number: str | None, custom_group: str | None = None) -> Route | None:
        return route_for(self.store, self.services.settings.alerts_channel, number=number, custom_group=custom_group)

    def _handle(self, inbox_id: int, event: Event) -> str:
        if isinstance(event, AvanserCall):
            route = self._route(event.tracking_e164, event.custom_group)
            if route is None:
                return "unrouted"
            if not wanted(event, route):
                return "skipped"
            state = self._new_alert(inbox_id, route.channel, kind_of(event), event.caller_e164, event.tracking_e164)
            message = render_call(event, route, state)
            row = self._deliver(inbox_id, route.channel, message, alert=state.id, digest=True)
            if row is not None and event.is_voicemail and self.services.settings.recording_allowed(event.recording_url):
                assert event.recording_url is not None
                self.outbox.attach_file(
                    row,
                    event.recording_url,
                    f"voicemail-{event.dedup_key()}.mp3",
                    f"Voicemail — {message.text}",
                    dedup_key=f"inbox:{inbox_id}:recording",
                )
            return "done"
        if isinstance(event, AvanserSms):
            route = self._route(event.tracking_e164)
            if route is None:
                return "unrouted"
            first = thread_root(self.store, thread_key(event)) is None
            state = self._new_alert(inbox_id, route.channel, "sms", event.sender_e164, event.tracking_e164)
            self._deliver(
                inbox_id,
                route.channel,
                render_sms(event, route, state, first=first),
                alert=state.id,
                digest=first,
            )
            return "done"
        if isinstance(event, AvanserRequestUpdate):
            if finish(
                self.services, event.request_id, str(event.status), event.message, event.service_e164, event.custom_id
            ):
                return "done"  # a request Switchboard made: its own message shows the outcome
            text, blocks = render_request_update(event)
            root = thread_root(self.store, request_key(event.request_id))
            if root is not None:
                self.outbox.update(root, text, blocks, dedup_key=f"inbox:{inbox_id}")
                return "done"
            route = self._route(event.service_e164)
            if route is None:
                return "unrouted"
            self._deliver(inbox_id, route.channel, Message(text=text, blocks=blocks))
            return "done"
        if isinstance(event, ExotelCall):
            route = self._allocation_route(event.greenvn)
            message = render_allocation_call(event, route or Route(channel=""), AlertState(id=0))
            channel = self._thread_channel(message.thread_keys) or (route.channel if route else None)
            if channel is None:
                return "unrouted"
            state = self._new_alert(
                inbox_id,
                channel,
                "allocation_call",
                exotel_number(event.caller),
                exotel_number(event.greenvn),
            )
            message = render_allocation_call(event, route or Route(channel=channel), state)
            self._deliver(inbox_id, channel, message, alert=state.id)
            return "done"
        if isinstance(event, ExotelDeallocation) and on_deallocated(self.services, event.greenvn_id):
            return "done"  # a lease of Switchboard's: it closed the lease and said so in its thread
        if isinstance(event, ExotelVerification | ExotelDeallocation):
            route = self._allocation_route(event.greenvn)
            message = (
                render_verification(event, route or Route(channel=""))
                if isinstance(event, ExotelVerification)
                else render_deallocation(event)
            )
            channel = self._thread_channel(message.thread_keys) or (route.channel if route else None)
            if channel is None:
                return "unrouted"
            self._deliver(inbox_id, channel, message)
            return "done"
        raise TypeError(f"no notifier for {type(event).__name__}")

    def _allocation_route(self, greenvn: str | None) -> Route | None:
        return self._route(exotel_number(greenvn))

    def _thread_channel(self, keys: tuple[str, ...]) -> str | None:
        root = thread_root(self.store, *keys) if keys else None
        if root is None:
            return None
        row = self.store.execute("SELECT channel FROM outbox WHERE id = ?", (root,)).fetchone()
        return str(row[0]) if row else None

    def _new_alert(
        self, inbox_id: int, channel: str, kind: str, caller: str | None, tracking: str | None
    ) -> AlertState:
        cursor = self.store.execute(
            "INSERT INTO alerts (inbox_id, channel, kind, caller, tracking, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (inbox_id, channel, kind, caller, tracking, time.time()),
        )
        return AlertState(id=int(cursor.lastrowid or 0))

    def _deliver(
        self, inbox_id: int, channel: str, message: Message, *, alert: int | None = None, digest: bool = False
    ) -> int | None:
        """Queue the message (or add it to a storm digest); its outbox row, None inside a digest."""
        key = f"inbox:{inbox_id}"
        root = thread_root(self.store, *message.thread_keys) if message.thread_keys else None
        root_channel = None
        if root is not None:
            root_channel = str(self.store.execute("SELECT channel FROM outbox WHERE id = ?", (root,)).fetchone()[0])
            if root_channel != channel:
                root = None  # the number was routed elsewhere since: post there, not in the old thread
        if root is not None and root_channel is not None:
            extra = {"reply_broadcast": True} if message.broadcast else {}
            row = self.outbox.post(root_channel, message.text, message.blocks, dedup_key=key, thread_of=root, **extra)
        elif digest and self._storming(channel):
            digest_id = self._add_to_digest(channel, message.summary or message.text)
            if alert is not None:
                self.store.execute("UPDATE alerts SET digest_id = ? WHERE id = ?", (digest_id, alert))
            return None
        else:
            row = self.outbox.post(channel, message.text, message.blocks, dedup_key=key)
            if message.starts_thread:
                remember_thread(self.store, message.starts_thread, row)
        if alert is not None:
            self.store.execute("UPDATE alerts SET outbox_id = ? WHERE id = ?", (row, alert))
        return row

    # -- storms --------------------------------------------------------------------------------

    def _open_digest(self, channel: str) -> tuple[int, int, list[str]] | None:
        row = self.store.execute(
            "SELECT id, outbox_id, lines FROM digests WHERE channel = ? AND opened_at > ? ORDER BY id DESC LIMIT 1",
            (channel, time.time() - DIGEST_SECONDS),
        ).fetchone()
        return (int(row[0]), int(row[1]), json.loads(row[2])) if row else None

    def _storming(self, channel: str) -> bool:
        if self._open_digest(channel) is not None:
            return True
        waiting = self.store.execute(
            "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND channel = ? AND method = 'chat.postMessage'",
            (channel,),
        ).fetchone()[0]
        return int(waiting) * self.outbox.channel_interval >= STORM_DELAY

    def _add_to_digest(self, channel: str, line: str) -> int:
        current = self._open_digest(channel)
        if current is not None:
            digest_id, outbox_id, lines = current
            lines.append(line)
            if fits(lines):
                title, blocks = render_digest(lines)
                self.store.execute("UPDATE digests SET lines = ? WHERE id = ?", (json.dumps(lines), digest_id))
                self.outbox.update(outbox_id, title, blocks)
                return digest_id
        title, blocks = render_digest([line])
        outbox_id = self.outbox.post(channel, title, blocks)
        cursor = self.store.execute(
            "INSERT INTO digests (channel, outbox_id, opened_at, lines) VALUES (?, ?, ?, ?)",
            (channel, outbox_id, time.time(), json.dumps([line])),
        )
        return int(cursor.lastrowid or 0)


def load_alert(services: Services, alert_id: int) -> tuple[AlertState, Event, str, int | None] | None:
    """An alert's state, its event, its channel and its message row (None when unknown)."""
    row = services.store.execute(
        "SELECT a.id, a.claimed_by, a.claimed_at, a.called_back_by, a.called_back_at, i.source, i.payload,"
        " a.channel, a.outbox_id FROM alerts a JOIN inbox i ON i.id = a.inbox_id WHERE a.id = ?",
        (alert_id,),
    ).fetchone()
    if row is None:
        return None
    state = AlertState(id=row[0], claimed_by=row[1], claimed_at=row[2], called_back_by=row[3], called_back_at=row[4])
    return state, parse_event(row[5], json.loads(row[6])), str(row[7]), row[8]


def render_alert(services: Services, alert_id: int) -> tuple[Message, int | None] | None:
    """The alert's message as it should look now (after a claim or a call back), and its outbox row."""
    loaded = load_alert(services, alert_id)
    if loaded is None:
        return None
    state, event, channel, outbox_id = loaded
    default = services.settings.alerts_channel
    message: Message
    if isinstance(event, AvanserCall):
        route = route_for(services.store, default, number=event.tracking_e164, custom_group=event.custom_group)
        message = render_call(event, route or Route(channel=channel), state)
    elif isinstance(event, AvanserSms):
        route = route_for(services.store, default, number=event.tracking_e164)
        message = render_sms(event, route or Route(channel=channel), state, first=True)
    elif isinstance(event, ExotelCall):
        route = route_for(services.store, default, number=exotel_number(event.greenvn))
        message = render_allocation_call(event, route or Route(channel=channel), state)
    else:
        return None
    return message, outbox_id
