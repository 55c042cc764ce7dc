"""/vn — temporary virtual numbers (Exotel GreenVN) between two parties, with reminders.

Each handler parses, acks, calls one function of `bot.domain.vn` and renders with `commands.vn_views`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.domain import people, vn
from bot.errors import UserError
from commands.base import (
    CommandFamily,
    CommandRequest,
    Interaction,
    action,
    prefixed,
    register_listeners,
    section,
    view,
)
from commands.vn_views import (
    EXTEND_VIEW,
    NEW_VIEW,
    PARTIES_VIEW,
    allocated_text,
    allocations_list,
    extend_form,
    new_form,
    parties_form,
    release_question,
    vn_number,
)
from notifiers.allocations import EXTEND_ACTION, EXTEND_CUSTOM_ACTION, RELEASE_ACTION
from notifiers.text import SECTION, truncate

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.services import Services

family = CommandFamily("/vn", "temporary virtual numbers (Exotel)", "new|list|show|extend|release|help …")
PHONE_LIKE = r"^\+?[\d\s(),-]{6,}"


async def _quick(request: CommandRequest, text: str) -> None:
    services = request.services
    plan = vn.parse_quick(text)
    vn.exotel_client(services)
    await request.reply(f"Getting a virtual number for {len(plan.aparty)} + {len(plan.bparty)} people…")

    async def run() -> None:
        request.tell(allocated_text(await vn.allocate(services, plan, request.user_id, request.channel_id)))

    request.later(run(), name="vn allocate")


@family.set_default(PHONE_LIKE, usage="<a-numbers> to <b-numbers> [oneway|twoway] [for <duration>] [pin <pin>]")
async def quick(request: CommandRequest) -> None:
    """the quick form of `/vn new`: connect the numbers now, e.g. `+919176226528 to +918136966620 for 2h`."""
    await _quick(request, request.args)


@family.subcommand("new", "[<a-numbers> to <b-numbers> oneway|twoway for <duration> pin <pin>]")
async def new(request: CommandRequest) -> None:
    """get a virtual number that connects two sets of people without sharing their own numbers."""
    if request.args.strip():
        await _quick(request, request.args)
        return
    vn.exotel_client(request.services)
    await request.ack()
    request.open_modal(new_form(request.channel_id))


@family.subcommand("list", "[all]")
async def list_(request: CommandRequest) -> None:
    """your virtual numbers, soonest to expire first."""
    services = request.services
    everyone = request.args.strip().lower() == "all"
    if everyone and not services.is_admin(request.user_id):
        raise UserError("Only Switchboard admins can list everyone's virtual numbers.")
    if not vn.unconfirmed(services, request.user_id, everyone=everyone):
        await request.reply(*allocations_list(vn.owned(services, request.user_id, everyone=everyone), everyone))
        return

    async def settled() -> tuple[str, list[dict]]:
        said = await vn.reconcile(services, request.user_id, everyone=everyone)
        text, blocks = allocations_list(vn.owned(services, request.user_id, everyone=everyone), everyone)
        return text, [section(truncate("\n".join(said), SECTION)), *blocks]

    await request.answer_later("Checking with Exotel first…", settled, name="vn list")


@family.subcommand("show", "<id|number>")
async def show(request: CommandRequest) -> None:
    """who a virtual number connects and when it lapses."""
    services = request.services
    allocation = vn.get(services, request.args)
    vn.may_view(services, allocation, request.user_id)
    if allocation.state != "active" or services.exotel is None:
        await request.reply(*vn.rendered(allocation))
        return

    async def checked() -> tuple[str, list[dict]]:
        return vn.rendered(await vn.check_with_exotel(services, allocation))

    await request.answer_later(f"Checking #{allocation.id} with Exotel…", checked, name="vn show")


@family.subcommand("parties", "<id>")
async def parties(request: CommandRequest) -> None:
    """change the numbers, PINs or one-way/two-way use of a virtual number."""
    allocation = vn.get(request.services, request.args)
    vn.may_manage(request.services, allocation, request.user_id)
    await request.ack()
    request.open_modal(parties_form(allocation))


@family.subcommand("swap", "<id> [region <code>] [vn <number>] [mobile|landline]")
async def swap(request: CommandRequest) -> None:
    """swap a virtual number for a new one, keeping its parties."""
    services = request.services
    ref, _, rest = request.args.strip().partition(" ")
    allocation = vn.get(services, ref)
    vn.may_manage(services, allocation, request.user_id)
    prefs = vn.parse_preferences(rest)
    await request.reply(f"Asking Exotel for a new number in place of {vn_number(allocation.green_vn)}…")

    async def run() -> None:
        new_number = await vn.swap(services, allocation, request.user_id, prefs)
        request.tell(f"✅ #{allocation.id} now uses {vn_number(new_number)}; its parties are unchanged.")

    request.later(run(), name="vn swap")


@family.subcommand("extend", "<id> <duration>")
async def extend(request: CommandRequest) -> None:
    """keep a virtual number longer (e.g. 2h, 3d)."""
    parts = request.args.split()
    if len(parts) != 2:
        raise UserError("Say which and for how long, e.g. `/vn extend 12 2h`.")
    allocation = vn.get(request.services, parts[0])
    new_end = vn.extend(request.services, allocation, vn.parse_duration(parts[1]), request.user_id)
    await request.reply(f"#{allocation.id} now lasts until {vn.when(new_end)}.")


@family.subcommand("release", "<id>")
async def release(request: CommandRequest) -> None:
    """release a virtual number now (asks you to confirm first)."""
    allocation = vn.get(request.services, request.args)
    vn.may_manage(request.services, allocation, request.user_id)
    if allocation.state != "active":
        raise UserError("That virtual number was already released.")
    await request.reply(*release_question(allocation))


# -- forms and buttons ------------------------------------------------------------------------------------


async def on_new(ix: Interaction) -> None:
    plan = vn.plan_from_form(ix.values)
    await ix.keep_modal("⏳ Asking Exotel for a virtual number…", "Virtual number")
    channel = ix.values.get("channel") or ix.metadata.get("channel") or ix.user_id

    async def run() -> None:
        ix.tell(allocated_text(await vn.allocate(ix.services, plan, ix.user_id, channel)))

    ix.later(run(), name="vn allocate from form")


async def on_parties(ix: Interaction) -> None:
    update = vn.parties_from_form(ix.values)
    allocation = vn.get(ix.services, str(ix.metadata["id"]))
    vn.may_manage(ix.services, allocation, ix.user_id)
    await ix.keep_modal("⏳ Updating the parties at Exotel…", "Virtual number")

    async def run() -> None:
        await vn.update_parties(ix.services, allocation, ix.user_id, update)
        ix.tell(f"✅ #{allocation.id} now connects the numbers you gave.")

    ix.later(run(), name="vn parties")


async def on_extend_form(ix: Interaction) -> None:
    allocation = vn.get(ix.services, str(ix.metadata["id"]))
    new_end = vn.extend(ix.services, allocation, vn.parse_duration(ix.values.get("duration") or ""), ix.user_id)
    await ix.keep_modal(f"✅ #{allocation.id} now lasts until {vn.when(new_end)}.", "Virtual number")


async def on_extend(ix: Interaction) -> None:
    await ix.ack()
    allocation_id, duration = ix.value.split(":")
    allocation = vn.get(ix.services, allocation_id)
    new_end = vn.extend(ix.services, allocation, vn.parse_duration(duration), ix.user_id)
    ix.tell(f"✅ Extended: #{allocation.id} now lasts until {vn.when(new_end)}.", replace=True)


async def on_extend_custom(ix: Interaction) -> None:
    await ix.ack()
    allocation_id = int(ix.value)

    async def run() -> None:
        tz = await people.timezone(ix.services, ix.user_id)  # the form's hint is plain text: the viewer's zone
        ends = vn.ends_at(ix.services, allocation_id)
        await ix.services.slack.views_open(trigger_id=ix.trigger_id, view=extend_form(allocation_id, ends, tz))

    ix.later(run(), name="open the extend form")


async def on_release(ix: Interaction) -> None:
    await ix.ack()

    async def run() -> None:
        allocation = await vn.release_now(ix.services, ix.value, ix.user_id)
        ix.tell(f"✅ Released {vn_number(allocation.green_vn)}.", replace=True)

    ix.later(run(), name="vn release")


LISTENERS = [
    view(NEW_VIEW, on_new),
    view(PARTIES_VIEW, on_parties),
    view(EXTEND_VIEW, on_extend_form),
    action(prefixed(EXTEND_ACTION), on_extend),
    action(EXTEND_CUSTOM_ACTION, on_extend_custom),
    action(RELEASE_ACTION, on_release),
]


def register(app: AsyncApp, services: Services) -> None:
    family.register(app, services)
    register_listeners(app, services, LISTENERS)
