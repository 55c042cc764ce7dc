"""Virtual-number allocations (Exotel GreenVN) and their leases, owned by Switchboard.

An allocation is a row of `allocations`; its message in the channel is the root of a thread
(`allocation:<greenvn_id>`) where its calls, PIN checks and its end are posted. Switchboard owns
the lease: a reminder goes to the owner SWITCHBOARD_VN_REMINDER before expiry (a day before, for
leases longer than 3 days), and at expiry Switchboard releases the number. Exotel's own
deallocation policy is set to the lease plus SAFETY_NET, in case Switchboard is down for long; a
deallocation event from Exotel ends the lease here too.

Jobs live in the scheduler only; SQLite is the truth: `rebuild` re-creates them at start, releases
what expired while the app was down, and sends a reminder that came due (once: `reminded_at`).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.domain import refresh as home
from bot.domain.routing import alerts_channels, deliver, remember_thread, route_for, thread_channel
from bot.errors import UserError
from bot.inbox import Handler
from bot.phone import InvalidNumber, national, parse_number
from bot.telco.base import TelcoError
from bot.telco.exotel import (
    REGIONS,
    AllocationRequest,
    ExotelAlreadyDeleted,
    ExotelClient,
    ExotelDuplicate,
    ExotelMaybeCreated,
    InvalidPin,
    PartiesUpdate,
    Preferences,
)
from bot.telco.exotel import Allocation as ExotelAllocation
from bot.telco.exotel import parse_pins as exotel_parse_pins
from bot.workspaces import current_team, enter_team, team_scope
from notifiers.allocations import render_allocation, render_deallocation, render_reminder
from notifiers.events import Event, ExotelDeallocation, exotel_number
from notifiers.text import mrkdwn, slack_date

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

SAFETY_NET = 7 * 86400.0  # Exotel releases the number this long after the lease at the latest
LONG_LEASE = 3 * 86400.0
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
INDIA = "IN"  # Exotel Lead Assist numbers are Indian: numbers typed without + are read as Indian


def parse_duration(text: str) -> float:
    """`45m`, `2h`, `3d` (or `30s`) in seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text.lower())
    if not match:
        raise UserError(
            f"“{text}” isn't a duration; use minutes, hours or days such as 45m, 2h or 3d.", field="duration"
        )
    seconds = float(match.group(1)) * UNITS[match.group(2)]
    if not 1 <= seconds <= 90 * 86400:
        raise UserError("A virtual number can be kept for between a minute and 90 days.", field="duration")
    return seconds


def parse_numbers(text: str, side: str, *, field: str | None = None) -> list[str]:
    """Comma- or space-separated phone numbers (Indian when typed without +), E.164, no repeats."""
    numbers = []
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        try:
            numbers.append(parse_number(part, INDIA))
        except InvalidNumber as exc:
            raise UserError(f"{side}: {exc}", field=field) from None
    if not numbers:
        raise UserError(f"{side}: give at least one phone number.", field=field)
    if len(set(numbers)) < len(numbers):
        raise UserError(f"{side}: the same number is listed twice.", field=field)
    return numbers


def parse_pins(text: str, side: str, *, field: str | None = None) -> list[int]:
    """PINs as typed ("1234, 5678"): positive whole numbers; one starting with 0 is refused, not changed."""
    try:
        return exotel_parse_pins(text, side)
    except InvalidPin as exc:
        raise UserError(str(exc), field=field) from None


@dataclass
class AllocationPlan:
    """What a person asked for, checked, before Exotel is called."""

    aparty: list[str]
    bparty: list[str]
    usage: str = "twoway"
    duration: float = 2 * 3600
    apins: list[int] = field(default_factory=list)
    bpins: list[int] = field(default_factory=list)
    greenvn: str | None = None
    region: str | None = None
    pin_code: str | None = None
    number_type: str | None = None
    strict: bool | None = None  # Exotel's strictness: None leaves Exotel's default (not strict)
    flow_id: str | None = None
    masked: bool = False

    def check(self) -> None:
        overlap = set(self.aparty) & set(self.bparty)
        if overlap:  # Exotel code 14, caught before Exotel is called
            raise UserError(
                f"{national(next(iter(overlap)))} is on both sides; a virtual number connects two "
                "different sets of people.",
                field="bparty",
            )
        if self.region and self.region not in REGIONS:
            raise UserError(
                f"“{self.region}” isn't a region Exotel offers; use one of {', '.join(REGIONS)}.", field="region"
            )
        if self.pin_code and not self.pin_code.isdigit():
            raise UserError(f"“{self.pin_code}” isn't a pin code (six digits, e.g. 560001).", field="pin_code")

    def request(self, connection_id: str) -> AllocationRequest:
        prefs = Preferences(greenvn=self.greenvn, region=self.region, pin_code=self.pin_code, type=self.number_type)  # type: ignore[arg-type]
        return AllocationRequest(
            connection_id=connection_id,
            aparty_numbers=self.aparty,
            bparty_numbers=self.bparty,
            usage="oneway" if self.usage == "oneway" else "twoway",
            aparty_pins=self.apins or None,
            bparty_pins=self.bpins or None,
            strictness=self.strict,
            preferences=prefs if prefs.model_dump(exclude_none=True) else None,
            deallocation_duration=f"{int(self.duration + SAFETY_NET)}s",
            flow_id=self.flow_id,
        )


QUICK_USAGE = (
    "Try `/vn +919176226528,+911234567891 to +918136966620 twoway for 2h pin 1234`. After the numbers: "
    "oneway|twoway, for <duration>, pin <a-pins>, bpin <b-pins>, vn <number>, region <code>, "
    "pincode <code>, mobile|landline, strict|flexible, flow <id>, masked."
)


def parse_quick(text: str) -> AllocationPlan:
    """`<a-numbers> to <b-numbers> [oneway|twoway] [for 2h] [pin 1234] [bpin 5678] [vn +91…] [region KA]
    [pincode 560001] [mobile|landline] [strict|flexible] [flow <id>] [masked]`."""
    head, sep, tail = text.partition(" to ")
    if not sep:
        raise UserError(QUICK_USAGE)
    words = tail.split()
    b_words: list[str] = []
    while words and (re.fullmatch(r"\+?[\d,()-]+", words[0]) or words[0] == ","):
        b_words.append(words.pop(0))
    plan = AllocationPlan(aparty=parse_numbers(head, "a-party"), bparty=parse_numbers(" ".join(b_words), "b-party"))
    while words:
        word = words.pop(0).lower()
        value = (
            words.pop(0)
            if word in ("for", "pin", "apin", "bpin", "vn", "region", "pincode", "flow") and words
            else None
        )
        if word in ("oneway", "twoway"):
            plan.usage = word
        elif word in ("mobile", "landline"):
            plan.number_type = word
        elif word in ("strict", "flexible"):
            plan.strict = word == "strict"
        elif word == "masked":
            plan.masked = True
        elif word == "for" and value:
            plan.duration = parse_duration(value)
        elif word in ("pin", "apin") and value:
            plan.apins = parse_pins(value, "a-party PIN")
        elif word == "bpin" and value:
            plan.bpins = parse_pins(value, "b-party PIN")
        elif word == "vn" and value:
            plan.greenvn = parse_numbers(value, "virtual number")[0]
        elif word == "region" and value:
            plan.region = value.upper()
        elif word == "pincode" and value:
            plan.pin_code = value
        elif word == "flow" and value:
            plan.flow_id = value
        else:
            raise UserError(f"I don't understand “{word}”. {QUICK_USAGE}")
    plan.check()
    return plan


# -- the rows -----------------------------------------------------------------------------------------


@dataclass
class Allocation:
    id: int
    connection_id: str
    greenvn_id: str | None
    green_vn: str | None
    parties: dict[str, Any]
    usage: str
    owner: str
    channel: str
    masked: bool
    message_row: int | None
    expires_at: float
    provider_expires_at: float | None
    reminder_at: float | None
    reminded_at: float | None
    state: str


COLUMNS = (
    "id, connection_id, greenvn_id, green_vn, parties, usage, owner, channel, masked, message_row, expires_at,"
    " provider_expires_at, reminder_at, reminded_at, state"
)


def _row(row: Any) -> Allocation:
    return Allocation(
        row[0],
        row[1],
        row[2],
        row[3],
        json.loads(row[4]),
        row[5],
        row[6],
        row[7],
        bool(row[8]),
        row[9],
        row[10],
        row[11],
        row[12],
        row[13],
        row[14],
    )


def get(services: Services, ref: str) -> Allocation:
    """An allocation of this workspace by its short id or its virtual number."""
    ref = ref.strip().lstrip("#")
    team = current_team()
    if ref.isdigit() and len(ref) < 9:
        row = services.store.execute(
            f"SELECT {COLUMNS} FROM allocations WHERE id = ? AND team_id = ?", (int(ref), team)
        ).fetchone()
    else:
        try:
            number = parse_number(ref, INDIA)
        except InvalidNumber:
            raise UserError(f"“{ref}” isn't an allocation id or a virtual number; see `/vn list`.") from None
        row = services.store.execute(
            f"SELECT {COLUMNS} FROM allocations WHERE green_vn = ? AND team_id = ? ORDER BY id DESC LIMIT 1",
            (number, team),
        ).fetchone()
    if row is None:
        raise UserError(f"There's no virtual number “{ref}”; see `/vn list`.")
    return _row(row)


def ends_at(services: Services, allocation_id: int) -> float | None:
    """When an active lease ends now; None when there is no such active allocation."""
    row = services.store.execute(
        "SELECT expires_at FROM allocations WHERE id = ? AND state = 'active' AND team_id = ?",
        (allocation_id, current_team()),
    ).fetchone()
    return float(row[0]) if row else None


def unconfirmed(services: Services, user: str, *, everyone: bool = False) -> int:
    """How many of the person's (or everyone's in this workspace) allocations wait for `reconcile`."""
    query = "SELECT COUNT(*) FROM allocations WHERE state = 'unconfirmed' AND team_id = ?"
    query += "" if everyone else " AND owner = ?"
    params = (current_team(),) if everyone else (current_team(), user)
    return int(services.store.execute(query, params).fetchone()[0])


def owned(services: Services, user: str, *, everyone: bool = False) -> list[Allocation]:
    """The person's (or everyone's in this workspace) active allocations, the first to end first."""
    query = f"SELECT {COLUMNS} FROM allocations WHERE state = 'active' AND team_id = ?"
    params: tuple[Any, ...] = (current_team(),)
    if not everyone:
        query += " AND owner = ?"
        params = (*params, user)
    return [_row(r) for r in services.store.execute(query + " ORDER BY expires_at", params).fetchall()]


def _save(services: Services, allocation: Allocation, **changes: Any) -> None:
    for key, value in changes.items():
        setattr(allocation, key, value)
    stored = {k: json.dumps(v) if k == "parties" else v for k, v in changes.items()}
    columns = ", ".join(f"{k} = ?" for k in stored)
    services.store.execute(
        f"UPDATE allocations SET {columns}, updated_at = ? WHERE id = ?", (*stored.values(), time.time(), allocation.id)
    )


def is_masked(services: Services, greenvn_id: str | None, green_vn: str | None) -> bool:
    """Whether the allocation behind a virtual number shows its callers masked."""
    row = services.store.execute(
        "SELECT masked FROM allocations WHERE greenvn_id = ? OR green_vn = ? ORDER BY id DESC LIMIT 1",
        (greenvn_id or "", green_vn or ""),
    ).fetchone()
    return bool(row and row[0])


def team_of(services: Services, greenvn_id: str | None, green_vn: str | None) -> str | None:
    """The workspace of the allocation behind a virtual number (Exotel's events find it here); None if not ours."""
    row = services.store.execute(
        "SELECT team_id FROM allocations WHERE greenvn_id = ? OR green_vn = ? ORDER BY id DESC LIMIT 1",
        (greenvn_id or "", green_vn or ""),
    ).fetchone()
    return str(row[0]) if row else None


def may_view(services: Services, allocation: Allocation, user: str) -> None:
    """Who an allocation connects is for its owner and admins."""
    if allocation.owner != user and not services.is_admin(user):
        raise UserError(f"Only <@{allocation.owner}> (who set it up) or an admin can see that virtual number.")


def may_manage(services: Services, allocation: Allocation, user: str) -> None:
    if allocation.owner != user and not services.is_admin(user):
        raise UserError(f"Only <@{allocation.owner}> (who set it up) or an admin can change that virtual number.")


def refresh(services: Services, allocation: Allocation) -> None:
    """Edit the allocation's message to its current state (and publish its owner's App Home again)."""
    home.changed(services, allocation.owner)
    if allocation.message_row is None:
        return
    services.outbox.update(allocation.message_row, *rendered(allocation))


def rendered(allocation: Allocation) -> tuple[str, list[dict[str, Any]]]:
    """The allocation's message as it should look now."""
    return render_allocation(
        allocation.id,
        allocation.green_vn,
        allocation.parties,
        allocation.usage,
        allocation.owner,
        allocation.expires_at,
        allocation.state,
        allocation.masked,
    )


def reminder_time(expires_at: float, starts_at: float, lead: float) -> float:
    lease = expires_at - starts_at
    return expires_at - (86400.0 if lease > LONG_LEASE else min(lead, lease / 2))


# -- lifecycle --------------------------------------------------------------------------------------------


def exotel_client(services: Services) -> ExotelClient:
    """The Exotel client, or a sentence saying it isn't set up."""
    if services.exotel is None:
        raise UserError("Exotel isn't set up: an admin needs to add the Exotel settings.")
    return services.exotel


async def allocate(services: Services, plan: AllocationPlan, owner: str, channel: str) -> Allocation:
    """Ask Exotel for a GreenVN, record the lease, post its message, schedule its reminder and end.

    When Exotel gives no clear answer the allocation is kept 'unconfirmed' (and the person is told it
    may exist); `reconcile` settles it on their next `/vn list`."""
    connection_id = f"sb-{uuid.uuid4().hex[:16]}"
    request = plan.request(connection_id)
    try:
        result = await exotel_client(services).allocate(request)
    except ExotelMaybeCreated:
        _insert(services, plan, owner, channel, request, state="unconfirmed")
        raise
    return _activate(services, _insert(services, plan, owner, channel, request, state="pending"), result)


def _insert(
    services: Services, plan: AllocationPlan, owner: str, channel: str, request: AllocationRequest, *, state: str
) -> Allocation:
    now = time.time()
    expires = now + plan.duration
    parties = {"aparty_numbers": plan.aparty, "bparty_numbers": plan.bparty, "aparty_pins": plan.apins}
    parties["bparty_pins"] = plan.bpins
    cursor = services.store.execute(
        "INSERT INTO allocations (connection_id, parties, usage, owner, channel, masked, expires_at,"
        " provider_expires_at, reminder_at, state, request, created_at, updated_at, team_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            request.connection_id,
            json.dumps(parties),
            plan.usage,
            owner,
            channel,
            int(plan.masked),
            expires,
            expires + SAFETY_NET,
            reminder_time(expires, now, services.settings.vn_reminder),
            state,
            request.model_dump_json(),
            now,
            now,
            current_team(),
        ),
    )
    return get(services, str(cursor.lastrowid))


def _activate(services: Services, allocation: Allocation, result: ExotelAllocation) -> Allocation:
    """Exotel made it: the lease starts, its message is posted, its reminder and end are scheduled."""
    parties = dict(allocation.parties)
    parties["aparty_numbers"] = result.aparty_numbers or parties["aparty_numbers"]
    parties["bparty_numbers"] = result.bparty_numbers or parties["bparty_numbers"]
    with services.store.transaction():
        _save(
            services,
            allocation,
            greenvn_id=result.greenvn_id,
            green_vn=result.green_vn,
            parties=parties,
            state="active",
        )
        row = services.outbox.post(allocation.channel, *rendered(allocation))
        _save(services, allocation, message_row=row)
        home.changed(services, allocation.owner)
        remember_thread(services.store, f"allocation:{result.greenvn_id}", row)
        if result.green_vn:
            remember_thread(services.store, f"allocation-number:{result.green_vn}", row)
        services.store.audit(
            allocation.owner,
            "vn.allocate",
            subject=result.green_vn,
            provider_ref=result.greenvn_id,
            detail=json.dumps(
                {
                    "connection_id": allocation.connection_id,
                    "usage": allocation.usage,
                    "expires_at": allocation.expires_at,
                }
            ),
            team=current_team(),
        )
    schedule(services, allocation)
    return allocation


async def reconcile(services: Services, user: str, *, everyone: bool = False) -> list[str]:
    """Settle allocations whose creation got no clear answer: the same connection_id is sent again, and
    Exotel either makes it now or says it already exists (code 18). Returns a sentence per allocation settled."""
    query = f"SELECT {COLUMNS} FROM allocations WHERE state = 'unconfirmed' AND team_id = ?"
    query += "" if everyone else " AND owner = ?"
    params = (current_team(),) if everyone else (current_team(), user)
    rows = [_row(r) for r in services.store.execute(query, params).fetchall()]
    said = []
    for allocation in rows:
        raw = services.store.execute("SELECT request FROM allocations WHERE id = ?", (allocation.id,)).fetchone()[0]
        try:
            result = await exotel_client(services).allocate(AllocationRequest.model_validate_json(raw))
        except ExotelDuplicate:
            _save(services, allocation, state="orphaned")
            said.append(
                f"#{allocation.id} was created at Exotel, but Exotel never said which number it got; Exotel releases "
                f"it by {when(allocation.provider_expires_at or allocation.expires_at)}. Get a new one with `/vn new`."
            )
        except ExotelMaybeCreated:
            said.append(f"#{allocation.id}: Exotel still gives no clear answer; I'll check again next time.")
        except TelcoError as exc:
            _save(services, allocation, state="failed")
            said.append(f"#{allocation.id} wasn't created: {mrkdwn(str(exc), 1000)}")
        else:
            said.append(
                f"#{allocation.id} was created after all: " + allocated_line(_activate(services, allocation, result))
            )
    return said


def allocated_line(allocation: Allocation) -> str:
    return f"{mrkdwn(national(allocation.green_vn or ''))} until {when(allocation.expires_at)}."


def schedule(services: Services, allocation: Allocation) -> None:
    """(Re)create the reminder and expiry jobs of an active allocation."""
    if allocation.state != "active":
        unschedule(services, allocation)
        return
    services.scheduler.at(allocation.expires_at, f"vn-expire-{allocation.id}", expire, services, allocation.id)
    if allocation.reminder_at is not None and allocation.reminded_at is None:
        services.scheduler.at(allocation.reminder_at, f"vn-remind-{allocation.id}", remind, services, allocation.id)


def unschedule(services: Services, allocation: Allocation) -> None:
    services.scheduler.cancel(f"vn-expire-{allocation.id}")
    services.scheduler.cancel(f"vn-remind-{allocation.id}")


async def remind(services: Services, allocation_id: int) -> None:
    """DM the owner once, before the lease ends, with Extend and Release buttons."""
    allocation = get(services, str(allocation_id))
    if allocation.state != "active" or allocation.reminded_at is not None:
        return
    _save(services, allocation, reminded_at=time.time())  # before posting: a restart never reminds twice
    text, blocks = render_reminder(allocation.id, allocation.green_vn, allocation.expires_at)
    services.outbox.post(allocation.owner, text, blocks, dedup_key=f"vn-remind:{allocation.id}:{allocation.expires_at}")


async def expire(services: Services, allocation_id: int) -> None:
    allocation = get(services, str(allocation_id))
    if allocation.state != "active":
        return
    if allocation.expires_at > time.time() + 1:  # extended since this job was made
        schedule(services, allocation)
        return
    await end(services, allocation, "expired", by="Switchboard")


async def end(services: Services, allocation: Allocation, state: str, *, by: str) -> None:
    """Release the GreenVN at Exotel (already released counts) and close the lease, once."""
    client = exotel_client(services)
    if allocation.greenvn_id:
        try:
            await client.deallocate(allocation.greenvn_id)
        except ExotelAlreadyDeleted:
            pass
        except TelcoError as exc:
            if state == "expired":  # try again shortly; the lease stays open until Exotel confirms
                log.warning(
                    "could not release allocation %d at expiry (%s); retrying in 60 s", allocation.id, exc.detail
                )
                services.scheduler.at(time.time() + 60, f"vn-expire-{allocation.id}", expire, services, allocation.id)
                return
            raise
    _close(services, allocation, state, by)


def _close(services: Services, allocation: Allocation, state: str, by: str) -> None:
    if allocation.state != "active":
        return
    _save(services, allocation, state=state, ended_at=time.time())
    unschedule(services, allocation)
    services.store.audit(
        by, f"vn.{state}", subject=allocation.green_vn, provider_ref=allocation.greenvn_id, team=current_team()
    )
    refresh(services, allocation)
    if allocation.message_row is not None:
        why = {"expired": "its time ran out", "released": f"<@{by}> released it", "deallocated": "Exotel ended it"}.get(
            state, state
        )
        vn = mrkdwn(national(allocation.green_vn)) if allocation.green_vn else "The virtual number"
        services.outbox.post(
            allocation.channel,
            f"🔚 {vn} was released: {why}.",
            thread_of=allocation.message_row,
            dedup_key=f"vn-end:{allocation.id}",
        )


def inbox_handlers(services: Services) -> dict[type[Event], Handler]:
    """The inbox handlers of this room, bound to `services`."""
    return {ExotelDeallocation: lambda inbox_id, event: on_deallocation(services, inbox_id, event)}  # type: ignore[arg-type]


def on_deallocation(services: Services, inbox_id: int, event: ExotelDeallocation) -> str:
    """Exotel's deallocation event: the lease ends here too; one that isn't ours is said in its thread or route."""
    if on_deallocated(services, event.greenvn_id):
        return "done"  # a lease of Switchboard's: it closed the lease and said so in its thread
    message = render_deallocation(event)
    route = route_for(services.store, alerts_channels(services), number=exotel_number(event.greenvn))
    channel = thread_channel(services.store, *message.thread_keys) or (route.channel if route else None)
    if channel is None:
        return "unrouted"
    enter_team(route.team if route is not None else "")
    deliver(services.store, services.outbox, f"inbox:{inbox_id}", channel, message)
    return "done"


def on_deallocated(services: Services, greenvn_id: str) -> bool:
    """Exotel's deallocation event: end the lease here too, as its workspace's. False when the allocation isn't ours."""
    row = services.store.execute(
        f"SELECT {COLUMNS}, team_id FROM allocations WHERE greenvn_id = ?", (greenvn_id,)
    ).fetchone()
    if row is None:
        return False
    enter_team(str(row[-1]))
    _close(services, _row(row), "deallocated", "Exotel")
    return True


def extend(services: Services, allocation: Allocation, seconds: float, user: str) -> float:
    """Move the lease's end (and its reminder); returns the new end."""
    may_manage(services, allocation, user)
    if allocation.state != "active":
        raise UserError("That virtual number was already released.")
    new_end = max(allocation.expires_at, time.time()) + seconds
    if allocation.provider_expires_at and new_end > allocation.provider_expires_at:
        days = round(SAFETY_NET / 86400)
        raise UserError(
            f"Exotel releases this number {days} days after the end first set for it at the latest (set when it "
            "was made); get a new one with `/vn new` to keep going longer."
        )
    _save(
        services,
        allocation,
        expires_at=new_end,
        reminded_at=None,
        reminder_at=reminder_time(new_end, time.time(), services.settings.vn_reminder),
    )
    services.store.audit(
        user,
        "vn.extend",
        subject=allocation.green_vn,
        provider_ref=allocation.greenvn_id,
        detail=json.dumps({"expires_at": new_end}),
        team=current_team(),
    )
    schedule(services, allocation)
    refresh(services, allocation)
    return new_end


async def update_parties(services: Services, allocation: Allocation, user: str, update: PartiesUpdate) -> None:
    may_manage(services, allocation, user)
    assert allocation.greenvn_id is not None
    result = await exotel_client(services).update_parties(allocation.greenvn_id, update)
    parties = dict(allocation.parties)
    parties.update({k: v for k, v in update.model_dump(exclude_none=True).items() if k != "usage"})
    _save(services, allocation, parties=parties, usage=result.usage or update.usage or allocation.usage)
    services.store.audit(
        user, "vn.parties", subject=allocation.green_vn, provider_ref=allocation.greenvn_id, team=current_team()
    )
    refresh(services, allocation)


async def swap(services: Services, allocation: Allocation, user: str, preferences: Preferences | None) -> str:
    may_manage(services, allocation, user)
    assert allocation.greenvn_id is not None
    result = await exotel_client(services).swap_number(
        allocation.greenvn_id, preferences, current_green_vn=allocation.green_vn
    )
    old = allocation.green_vn
    _save(services, allocation, green_vn=result.green_vn)
    if result.green_vn and allocation.message_row is not None:
        remember_thread(services.store, f"allocation-number:{result.green_vn}", allocation.message_row)
    services.store.audit(
        user,
        "vn.swap",
        subject=result.green_vn,
        provider_ref=allocation.greenvn_id,
        detail=json.dumps({"old": old}),
        team=current_team(),
    )
    refresh(services, allocation)
    return result.green_vn or ""


async def release_now(services: Services, ref: str, user: str) -> Allocation:
    """Release an allocation at once, for its owner or an admin."""
    allocation = get(services, ref)
    may_manage(services, allocation, user)
    taken = services.store.execute(
        "UPDATE allocations SET state = 'releasing' WHERE id = ? AND state = 'active'", (allocation.id,)
    )
    if allocation.state != "active" or not taken.rowcount:  # two clicks at once: one DELETE
        raise UserError("That virtual number was already released (or is being released).")
    try:
        await end(services, allocation, "released", by=user)
    except BaseException:
        services.store.execute(
            "UPDATE allocations SET state = 'active' WHERE id = ? AND state = 'releasing'", (allocation.id,)
        )
        raise
    return allocation


async def check_with_exotel(services: Services, allocation: Allocation) -> Allocation:
    """Keep in step with Exotel: an allocation it has put in the vault is over here too."""
    if allocation.state != "active" or not allocation.greenvn_id or services.exotel is None:
        return allocation
    if (await services.exotel.get_allocation(allocation.greenvn_id)).state == "vault":
        on_deallocated(services, allocation.greenvn_id)
    return get(services, str(allocation.id))


# -- forms --------------------------------------------------------------------------------------------


def plan_from_form(values: dict[str, Any]) -> AllocationPlan:
    """The new-allocation form's values (by input name), checked; a UserError names the input it is about."""
    options = values.get("options") or []
    plan = AllocationPlan(
        aparty=parse_numbers(values.get("aparty") or "", "a-party", field="aparty"),
        bparty=parse_numbers(values.get("bparty") or "", "b-party", field="bparty"),
        usage=values.get("usage") or "twoway",
        duration=parse_duration(values.get("duration") or ""),
        apins=parse_pins(values.get("apins") or "", "a-party PIN", field="apins"),
        bpins=parse_pins(values.get("bpins") or "", "b-party PIN", field="bpins"),
        greenvn=(
            parse_numbers(values["greenvn"], "virtual number", field="greenvn")[0] if values.get("greenvn") else None
        ),
        region=values.get("region"),
        pin_code=values.get("pin_code") or None,
        number_type=values.get("number_type"),
        strict=True if "strict" in options else None,
        flow_id=values.get("flow_id") or None,
        masked="masked" in options,
    )
    plan.check()
    return plan


def parties_from_form(values: dict[str, Any]) -> PartiesUpdate:
    """The parties form's values, checked like a new allocation's."""
    update = PartiesUpdate(
        aparty_numbers=parse_numbers(values.get("aparty") or "", "a-party", field="aparty"),
        bparty_numbers=parse_numbers(values.get("bparty") or "", "b-party", field="bparty"),
        aparty_pins=parse_pins(values.get("apins") or "", "a-party PIN", field="apins") or None,
        bparty_pins=parse_pins(values.get("bpins") or "", "b-party PIN", field="bpins") or None,
        usage=values.get("usage") or None,
    )
    AllocationPlan(aparty=update.aparty_numbers or [], bparty=update.bparty_numbers or []).check()
    return update


def parse_preferences(text: str) -> Preferences | None:
    """`region KA vn +91… mobile` — what a swap should prefer."""
    words = text.split()
    prefs: dict[str, Any] = {}
    while words:
        word = words.pop(0).lower()
        if word in ("mobile", "landline"):
            prefs["type"] = word
        elif word == "region" and words:
            region = words.pop(0).upper()
            if region not in REGIONS:
                raise UserError(f"“{region}” isn't a region Exotel offers; use one of {', '.join(REGIONS)}.")
            prefs["region"] = region
        elif word == "vn" and words:
            prefs["greenvn"] = parse_numbers(words.pop(0), "virtual number")[0]
        else:
            raise UserError(f"I don't understand “{word}”. Use region <code>, vn <number>, mobile or landline.")
    return Preferences(**prefs) if prefs else None


async def rebuild(services: Services) -> None:
    """At start: release what expired while the app was down, send due reminders, schedule the rest — each
    allocation's jobs as its workspace's."""
    rows = services.store.execute(
        f"SELECT {COLUMNS}, team_id FROM allocations WHERE state = 'active' ORDER BY expires_at"
    ).fetchall()
    for row in rows:
        allocation = _row(row)
        with team_scope(str(row[-1])):
            if allocation.expires_at <= time.time():  # now, by job id: the stored job for it is replaced, not doubled
                services.scheduler.at(time.time(), f"vn-expire-{allocation.id}", expire, services, allocation.id)
            else:
                schedule(services, allocation)


def when(epoch: float) -> str:
    """A lease's end for a message: each reader sees it in their own zone (a Slack date token)."""
    return slack_date(epoch)
