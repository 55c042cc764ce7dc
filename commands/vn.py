"""/vn — temporary virtual numbers (Exotel GreenVN) between two parties, with reminders."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import (
    CheckboxesElement,
    ConversationFilter,
    ConversationSelectElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot import leases
from bot.errors import UserError
from bot.phone import national
from bot.telco.exotel import REGIONS, PartiesUpdate, Preferences
from commands.base import CommandFamily, CommandRequest
from notifiers.allocations import EXTEND_ACTION, EXTEND_CUSTOM_ACTION, RELEASE_ACTION

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncAck, AsyncApp

    from bot.services import Services

family = CommandFamily("/vn", "temporary virtual numbers (Exotel)", "new|list|show|extend|release|help …")
NEW_VIEW, PARTIES_VIEW, EXTEND_VIEW = "vn_new", "vn_parties", "vn_extend"
PHONE_LIKE = r"^\+?[\d\s(),-]{6,}"


def tell(services: Services, url: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
    body: dict[str, Any] = {"response_type": "ephemeral", "text": text}
    if blocks:
        body["blocks"] = blocks
    services.outbox.respond(url, body)


def allocated_text(allocation: leases.Allocation) -> str:
    return (
        f"✅ {national(allocation.green_vn or '')} is yours (#{allocation.id}) until "
        f"{leases._when(allocation.expires_at)}. Its calls are posted in the thread in <#{allocation.channel}>; "
        "I'll remind you before it ends."
    )


async def _quick(request: CommandRequest, text: str) -> None:
    services = request.services
    plan = leases.parse_quick(text)
    leases._client(services)
    await request.reply(f"Getting a virtual number for {len(plan.aparty)} + {len(plan.bparty)} people…")

    async def run() -> None:
        allocation = await leases.allocate(services, plan, request.user_id, request.channel_id)
        tell(services, request.response_url, allocated_text(allocation))

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
    leases._client(request.services)
    view = new_form(request.channel_id)
    request.services.tasks.spawn(
        request.services.slack.views_open(trigger_id=request.trigger_id, view=view), name="open vn form"
    )
    await request.ack()


@family.subcommand("list", "[all]")
async def list_(request: CommandRequest) -> None:
    """your virtual numbers, soonest to expire first."""
    services = request.services
    everyone = request.args.strip().lower() == "all"
    if everyone and not services.is_admin(request.user_id):
        raise UserError("Only Switchboard admins can list everyone's virtual numbers.")
    found = leases.owned(services, request.user_id, everyone=everyone)
    if not found:
        await request.reply("No virtual numbers are active. Get one with `/vn new`.")
        return
    lines = [
        f"*#{a.id}* {national(a.green_vn or '')} — {len(a.parties['aparty_numbers'])} ⇄ "
        f"{len(a.parties['bparty_numbers'])} people · until {leases._when(a.expires_at)}"
        + (f" · <@{a.owner}>" if everyone else "")
        for a in found
    ]
    await request.reply(
        f"{len(found)} active virtual numbers",
        [SectionBlock(text=MarkdownTextObject(text="\n".join(lines)[:2900])).to_dict()],
    )


@family.subcommand("show", "<id|number>")
async def show(request: CommandRequest) -> None:
    """who a virtual number connects and when it lapses."""
    services = request.services
    allocation = leases.get(services, request.args)
    if allocation.state != "active" or not allocation.greenvn_id or services.exotel is None:
        await request.reply(*leases.rendered(allocation))
        return
    await request.reply(f"Checking #{allocation.id} with Exotel…")
    exotel, greenvn_id = services.exotel, allocation.greenvn_id

    async def check() -> None:
        # Keep in step with Exotel: an allocation it has put in the vault is over here too.
        if (await exotel.get_allocation(greenvn_id)).state == "vault":
            leases.on_deallocated(services, greenvn_id)
        tell(services, request.response_url, *leases.rendered(leases.get(services, str(allocation.id))))

    request.later(check(), name="vn show")


@family.subcommand("parties", "<id>")
async def parties(request: CommandRequest) -> None:
    """change the numbers, PINs or one-way/two-way use of a virtual number."""
    allocation = leases.get(request.services, request.args)
    leases.may_manage(request.services, allocation, request.user_id)
    view = parties_form(allocation)
    request.services.tasks.spawn(
        request.services.slack.views_open(trigger_id=request.trigger_id, view=view), name="open vn parties form"
    )
    await request.ack()


@family.subcommand("swap", "<id> [region <code>] [vn <number>] [mobile|landline]")
async def swap(request: CommandRequest) -> None:
    """swap a virtual number for a new one, keeping its parties."""
    services = request.services
    ref, _, rest = request.args.strip().partition(" ")
    allocation = leases.get(services, ref)
    leases.may_manage(services, allocation, request.user_id)
    prefs = _preferences(rest)
    await request.reply(f"Asking Exotel for a new number in place of {national(allocation.green_vn or '')}…")

    async def run() -> None:
        new_number = await leases.swap(services, allocation, request.user_id, prefs)
        tell(
            services,
            request.response_url,
            f"✅ #{allocation.id} now uses {national(new_number)}; its parties are unchanged.",
        )

    request.later(run(), name="vn swap")


def _preferences(text: str) -> Preferences | None:
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
            prefs["greenvn"] = leases._numbers(words.pop(0), "virtual number")[0]
        else:
            raise UserError(f"I don't understand “{word}”. Use region <code>, vn <number>, mobile or landline.")
    return Preferences(**prefs) if prefs else None


@family.subcommand("extend", "<id> <duration>")
async def extend(request: CommandRequest) -> None:
    """keep a virtual number longer (e.g. 2h, 3d)."""
    parts = request.args.split()
    if len(parts) != 2:
        raise UserError("Say which and for how long, e.g. `/vn extend 12 2h`.")
    allocation = leases.get(request.services, parts[0])
    new_end = leases.extend(request.services, allocation, leases.parse_duration(parts[1]), request.user_id)
    await request.reply(f"#{allocation.id} now lasts until {leases._when(new_end)}.")


@family.subcommand("release", "<id>")
async def release(request: CommandRequest) -> None:
    """release a virtual number now (asks you to confirm first)."""
    allocation = leases.get(request.services, request.args)
    leases.may_manage(request.services, allocation, request.user_id)
    if allocation.state != "active":
        raise UserError("That virtual number was already released.")
    vn = national(allocation.green_vn or "")
    await request.reply(
        f"Release {vn} now?",
        [
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"Release *{vn}* (#{allocation.id}) now? Its parties can no longer "
                    "reach each other through it."
                )
            ).to_dict(),
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": RELEASE_ACTION,
                        "value": str(allocation.id),
                        "style": "danger",
                        "text": {"type": "plain_text", "text": "Release now"},
                        "confirm": {
                            "title": {"type": "plain_text", "text": "Release it now?"},
                            "text": {"type": "plain_text", "text": f"{vn} stops working at once."},
                            "confirm": {"type": "plain_text", "text": "Release"},
                            "deny": {"type": "plain_text", "text": "Keep it"},
                        },
                    }
                ],
            },
        ],
    )


# -- forms ----------------------------------------------------------------------------------------------


def _input(
    block_id: str, label: str, *, optional: bool = True, hint: str | None = None, initial: str | None = None
) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=optional,
        hint=hint,
        element=PlainTextInputElement(action_id="value", initial_value=initial or None),
    )


def _choice(
    block_id: str, label: str, options: list[tuple[str, str]], initial: str | None = None, optional: bool = True
) -> InputBlock:
    choices = [Option(value=v, label=t) for v, t in options]
    start = next((o for o in choices if o.value == initial), None)
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=optional,
        element=StaticSelectElement(action_id="value", options=choices, initial_option=start),
    )


USAGES = [("twoway", "Both sides can call each other"), ("oneway", "Only the first side can call")]


def new_form(channel: str) -> dict[str, Any]:
    blocks = [
        _input("aparty", "First side: phone numbers", optional=False, hint="Comma-separated, e.g. +919176226528"),
        _input("bparty", "Other side: phone numbers", optional=False),
        _choice("usage", "Who can call", USAGES, "twoway", optional=False),
        _input("duration", "Keep it for", optional=False, initial="2h", hint="e.g. 45m, 2h, 3d"),
        _input("apins", "First side PINs", hint="Lets others join that side by entering the PIN; 4–6 digits."),
        _input("bpins", "Other side PINs"),
        _input("greenvn", "A specific virtual number"),
        _choice("region", "Region", [(r, r) for r in REGIONS]),
        _input("pin_code", "Near this pin code"),
        _choice("number_type", "Number type", [("mobile", "Mobile"), ("landline", "Landline")]),
        InputBlock(
            block_id="options",
            label="Options",
            optional=True,
            element=CheckboxesElement(
                action_id="value",
                options=[
                    Option(value="strict", label="Only if every preference is met"),
                    Option(value="masked", label="Hide full numbers in the channel"),
                ],
            ),
        ),
        _input("flow_id", "Call flow id", hint="Only when your Exotel account has several call flows."),
        InputBlock(
            block_id="channel",
            label="Post its calls in",
            element=ConversationSelectElement(
                action_id="value",
                initial_conversation=channel,
                filter=ConversationFilter(include=["public", "private", "im"], exclude_bot_users=True),
            ),
        ),
    ]
    return View(
        type="modal",
        callback_id=NEW_VIEW,
        title="New virtual number",
        submit="Get number",
        close="Cancel",
        private_metadata=json.dumps({"channel": channel}),
        blocks=blocks,
    ).to_dict()


def parties_form(allocation: leases.Allocation) -> dict[str, Any]:
    p = allocation.parties

    def joined(values: list[Any]) -> str:
        return ", ".join(str(v) for v in values or [] if v is not None)

    blocks = [
        _input("aparty", "First side: phone numbers", optional=False, initial=joined(p.get("aparty_numbers", []))),
        _input("bparty", "Other side: phone numbers", optional=False, initial=joined(p.get("bparty_numbers", []))),
        _input("apins", "First side PINs", initial=joined(p.get("aparty_pins", []))),
        _input("bpins", "Other side PINs", initial=joined(p.get("bparty_pins", []))),
        _choice("usage", "Who can call", USAGES, allocation.usage, optional=False),
    ]
    return View(
        type="modal",
        callback_id=PARTIES_VIEW,
        title="Change the parties",
        submit="Save",
        close="Cancel",
        private_metadata=json.dumps({"id": allocation.id}),
        blocks=blocks,
    ).to_dict()


def extend_form(allocation_id: int) -> dict[str, Any]:
    return View(
        type="modal",
        callback_id=EXTEND_VIEW,
        title="Keep it longer",
        submit="Extend",
        close="Cancel",
        private_metadata=json.dumps({"id": allocation_id}),
        blocks=[_input("duration", "Extend by", optional=False, initial="4h", hint="e.g. 45m, 2h, 3d")],
    ).to_dict()


def result_view(text: str) -> dict[str, Any]:
    return View(
        type="modal", title="Virtual number", close="Close", blocks=[SectionBlock(text=MarkdownTextObject(text=text))]
    ).to_dict()


FIELD_OF = {
    "a-party": "aparty",
    "b-party": "bparty",
    "a-party PIN": "apins",
    "b-party PIN": "bpins",
    "virtual number": "greenvn",
}


def _field_error(exc: UserError) -> dict[str, str]:
    """Put a validation sentence on the form field it is about."""
    message = str(exc)
    prefix = message.split(":", 1)[0]
    if prefix in FIELD_OF:
        return {FIELD_OF[prefix]: message.split(":", 1)[1].strip()}
    if "both sides" in message:
        return {"bparty": message}
    if "duration" in message or "between a minute" in message:
        return {"duration": message}
    if "pin code" in message:
        return {"pin_code": message}
    return {"aparty": message}


def plan_from_form(values: dict[str, Any]) -> leases.AllocationPlan:
    options = values.get("options") or []
    plan = leases.AllocationPlan(
        aparty=leases._numbers(values.get("aparty") or "", "a-party"),
        bparty=leases._numbers(values.get("bparty") or "", "b-party"),
        usage=values.get("usage") or "twoway",
        duration=leases.parse_duration(values.get("duration") or ""),
        apins=leases._pins(values.get("apins") or "", "a-party PIN"),
        bpins=leases._pins(values.get("bpins") or "", "b-party PIN"),
        greenvn=leases._numbers(values["greenvn"], "virtual number")[0] if values.get("greenvn") else None,
        region=values.get("region"),
        pin_code=values.get("pin_code") or None,
        number_type=values.get("number_type"),
        strict="strict" in options,
        flow_id=values.get("flow_id") or None,
        masked="masked" in options,
    )
    if plan.pin_code and not plan.pin_code.isdigit():
        raise UserError("That isn't a pin code (six digits, e.g. 560001).")
    plan.check()
    return plan


def register(app: AsyncApp, services: Services) -> None:
    from commands.numbers_views import form_values

    family.register(app, services)
    services.on_start(lambda: leases.rebuild(services))

    @app.view(NEW_VIEW)
    async def on_new(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = form_values(view)
        try:
            plan = plan_from_form(values)
        except UserError as exc:
            await ack(response_action="errors", errors=_field_error(exc))
            return
        await ack(response_action="update", view=result_view("⏳ Asking Exotel for a virtual number…"))
        user = body["user"]["id"]
        channel = values.get("channel") or json.loads(view.get("private_metadata") or "{}").get("channel") or user
        view_id = body["view"]["id"]

        async def run() -> None:
            try:
                allocation = await leases.allocate(services, plan, user, channel)
                text = allocated_text(allocation)
            except UserError as exc:  # Exotel's refusal, shown on the form as a sentence
                text = f"❌ {exc}"
            await services.slack.views_update(view_id=view_id, view=result_view(text))

        services.tasks.spawn(run(), name="vn allocate from form")

    @app.view(PARTIES_VIEW)
    async def on_parties(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = form_values(view)
        try:
            update = PartiesUpdate(
                aparty_numbers=leases._numbers(values.get("aparty") or "", "a-party"),
                bparty_numbers=leases._numbers(values.get("bparty") or "", "b-party"),
                aparty_pins=leases._pins(values.get("apins") or "", "a-party PIN") or None,
                bparty_pins=leases._pins(values.get("bpins") or "", "b-party PIN") or None,
                usage=values.get("usage") or None,
            )
            leases.AllocationPlan(aparty=update.aparty_numbers or [], bparty=update.bparty_numbers or []).check()
        except UserError as exc:
            await ack(response_action="errors", errors=_field_error(exc))
            return
        await ack(response_action="update", view=result_view("⏳ Updating the parties at Exotel…"))
        allocation = leases.get(services, str(json.loads(view["private_metadata"])["id"]))
        user, view_id = body["user"]["id"], body["view"]["id"]

        async def run() -> None:
            try:
                await leases.update_parties(services, allocation, user, update)
                text = f"✅ #{allocation.id} now connects the numbers you gave."
            except UserError as exc:
                text = f"❌ {exc}"
            await services.slack.views_update(view_id=view_id, view=result_view(text))

        services.tasks.spawn(run(), name="vn parties")

    @app.view(EXTEND_VIEW)
    async def on_extend_form(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        allocation = leases.get(services, str(json.loads(view["private_metadata"])["id"]))
        try:
            new_end = leases.extend(
                services, allocation, leases.parse_duration(form_values(view).get("duration") or ""), body["user"]["id"]
            )
        except UserError as exc:
            await ack(response_action="errors", errors={"duration": str(exc)})
            return
        await ack(
            response_action="update", view=result_view(f"✅ #{allocation.id} now lasts until {leases._when(new_end)}.")
        )

    @app.action(re.compile(f"^{EXTEND_ACTION}-"))
    async def on_extend(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        allocation_id, duration = body["actions"][0]["value"].split(":")
        url = body.get("response_url", "")
        try:
            allocation = leases.get(services, allocation_id)
            new_end = leases.extend(services, allocation, leases.parse_duration(duration), body["user"]["id"])
        except UserError as exc:
            tell(services, url, str(exc))
            return
        services.outbox.respond(
            url,
            {
                "replace_original": True,
                "text": f"✅ Extended: #{allocation.id} now lasts until {leases._when(new_end)}.",
            },
        )

    @app.action(EXTEND_CUSTOM_ACTION)
    async def on_extend_custom(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        services.tasks.spawn(
            services.slack.views_open(
                trigger_id=body["trigger_id"], view=extend_form(int(body["actions"][0]["value"]))
            ),
            name="open vn extend form",
        )

    @app.action(RELEASE_ACTION)
    async def on_release(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        user, url = body["user"]["id"], body.get("response_url", "")

        async def run() -> None:
            allocation = leases.get(services, body["actions"][0]["value"])
            leases.may_manage(services, allocation, user)
            if allocation.state != "active":
                raise UserError("That virtual number was already released.")
            await leases.end(services, allocation, "released", by=user)
            services.outbox.respond(
                url, {"replace_original": True, "text": f"✅ Released {national(allocation.green_vn or '')}."}
            )

        services.tasks.spawn(run(), name="vn release", tell_user=lambda text: tell(services, url, text))
