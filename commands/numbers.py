"""/numbers — AVANSER tracking numbers: search, request, track, change and release them.

Each handler parses what was typed or clicked, acks, calls one function of `bot.domain.numbers` and
renders with `commands.numbers_views`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bot.domain import numbers, people, reports
from bot.domain.routing import route_options, routed_channel, routed_channels
from bot.errors import UserError
from bot.phone import national
from bot.telco.avanser import Template
from commands import workspaces
from commands.base import CommandFamily, CommandRequest, Interaction, action, prefixed, register_listeners, view
from commands.numbers_views import (
    ACCOUNT_SWITCH_ACTION,
    EDIT_VIEW,
    NEAR_ACTION,
    NEW_VIEW,
    PICK_ACTION,
    RELEASE_VIEW,
    REQUEST_DETAILS_ACTION,
    TEMPLATE_DELETE_ACTION,
    TEMPLATE_NEW_ACTION,
    TEMPLATE_PREVIEW_ACTION,
    TEMPLATE_VIEW,
    TYPE_ACTION,
    account_overview,
    number_form,
    rebuild_number_form,
    release_confirm,
    released_detail,
    released_list,
    request_details,
    requests_list,
    search_results,
    service_detail,
    services_list,
    template_form,
    template_preview,
    templates_list,
)
from notifiers.provisioning import APPROVE_ACTION, REJECT_ACTION

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.services import Services

family = CommandFamily("/numbers", "tracking numbers (AVANSER)", "search|new|list|show|route|released|help …")


@family.subcommand(
    "search",
    "mobile|geo|tollfree|freecall | near <address> [radius <km>] | at <lat>,<lng> | prefix <number> "
    "| szu <name> [in <country>]",
)
async def search(request: CommandRequest) -> None:
    """find numbers you can get, each with a Request button."""
    services = request.services
    query = numbers.parse_search(request.args, services.settings.country)
    client = numbers.avanser_client(services)

    async def results() -> tuple[str, list[dict[str, Any]]]:
        return search_results(query, await numbers.run_search(client, query))

    await request.answer_later(f"Searching AVANSER for {query.describe()}…", results, name="numbers search")


@family.subcommand("new")
async def new(request: CommandRequest) -> None:
    """open a form to request a new tracking number (transfer, voicemail or prompt)."""
    await request.ack()
    open_new_number_form(request, request.channel_id)


def open_new_number_form(ix: Interaction, channel: str | None, number: str | None = None) -> None:
    """Open the request form at once (a trigger_id lasts 3 s) and fill in AVANSER's saved templates when known."""

    async def form() -> dict[str, Any]:
        return new_number_form(channel, number, templates=await numbers.saved_templates(ix.services))

    ix.modal_when_ready("Request a number", "⏳ Asking AVANSER for your report templates…", form)


def new_number_form(
    channel: str | None, number: str | None = None, *, templates: list[Template] | None = None
) -> dict[str, Any]:
    return number_form(
        callback_id=NEW_VIEW,
        title="Request a number",
        submit="Request",
        metadata={"channel": channel},
        channel=channel,
        values={"number": national(number) if number else None},
        with_number=True,
        templates=templates,
    )


@family.subcommand("list")
async def list_numbers(request: CommandRequest) -> None:
    """list the active tracking numbers."""
    services = request.services
    client = numbers.avanser_client(services)

    async def listed() -> tuple[str, list[dict[str, Any]]]:
        return services_list(await client.list_services(), routed_channels(services.store))

    await request.answer_later("Fetching your tracking numbers from AVANSER…", listed, name="numbers list")


@family.subcommand("show", "<number>")
async def show(request: CommandRequest) -> None:
    """show how a tracking number is set up, where its alerts go and how (once released: its quarantine)."""
    services = request.services
    number = numbers.parse_number_arg(services, request.args)
    numbers.avanser_client(services)

    async def detail() -> tuple[str, list[dict[str, Any]]]:
        found = await numbers.show_number(services, number)
        if isinstance(found, numbers.Released):
            return released_detail(found)
        options, within = route_options(services.store, number), services.settings.claim_within
        return service_detail(found, routed_channel(services.store, number), options, within)

    await request.answer_later(f"Looking up {national(number)}…", detail, name="numbers show")


@family.subcommand("edit", "<number>")
async def edit(request: CommandRequest) -> None:
    """change a tracking number's answer point, recording or reporting."""
    services = request.services
    number = numbers.parse_number_arg(services, request.args)
    numbers.avanser_client(services)
    await request.ack()

    async def form() -> dict[str, Any]:
        values = numbers.form_values_of(await numbers.find_service(services, number))
        before = {k: v for k, v in values.items() if v not in (None, "")}
        metadata = {"number": number, "channel": request.channel_id, "before": before}
        templates = await numbers.saved_templates(services)
        return number_form(
            callback_id=EDIT_VIEW,
            title="Change a number",
            submit="Save",
            metadata=metadata,
            channel=None,
            values=values,
            with_number=False,
            templates=templates,
        )

    request.modal_when_ready("Change a number", "⏳ Asking AVANSER…", form)


@family.subcommand("release", "<number>")
async def release(request: CommandRequest) -> None:
    """give a tracking number back (asks you to confirm first)."""
    services = request.services
    number = numbers.parse_number_arg(services, request.args)
    numbers.avanser_client(services)
    await request.ack()

    async def confirm() -> dict[str, Any]:
        service = await numbers.find_service(services, number)
        tz = await people.timezone(services, request.user_id)  # the quarantine's dates, in plain text
        return release_confirm(number, service.name, routed_channel(services.store, number), request.channel_id, tz)

    request.modal_when_ready("Release a number", "⏳ Asking AVANSER…", confirm)


@family.subcommand(
    "route",
    "<number> #channel [all-calls|missed-only] [masked|unmasked] [escalate @person-or-@group] "
    "[weekly-report|no-weekly-report]",
)
async def route(request: CommandRequest) -> None:
    """choose where a number's calls and texts are posted, and how (options left out keep their value)."""
    services = request.services
    change = numbers.parse_route(request.args, services.settings.country)
    numbers.may_route(services, request.user_id, change.number)
    shown = f"{national(change.number)} and <#{change.channel}>"

    async def routed() -> tuple[str, None]:
        options = await numbers.route_number(services, request.user_id, change)
        return numbers.routed_text(change, options, services.settings.claim_within), None

    await request.answer_later(f"Checking {shown}…", routed, name="numbers route")


@family.subcommand("released")
async def released(request: CommandRequest) -> None:
    """numbers released through Switchboard: when, by whom, and how long AVANSER keeps them in quarantine."""
    await request.reply(*released_list(*numbers.released_numbers(request.services)))


@family.subcommand("report", "[<number>|all] [<N>d]")
async def report(request: CommandRequest) -> None:
    """calls, answered, missed and the busiest hour per number, with a chart of calls per day (default: all, 7d)."""
    services = request.services
    query = reports.parse_report_args(request.args, services.settings.country)

    async def counted() -> tuple[str, list[dict[str, Any]]]:
        return await reports.report_for(services, request.user_id, request.channel_id, query)

    await request.answer_later(f"Counting calls: {query.describe()}…", counted, name="numbers report")


@family.subcommand("requests")
async def requests(request: CommandRequest) -> None:
    """recent number requests and where each one is up to."""
    client = numbers.avanser_client(request.services)
    admin = request.services.is_admin(request.user_id)

    async def recent() -> tuple[str, list[dict[str, Any]] | None]:
        return requests_list((await client.list_requests())[-15:][::-1], admin=admin)

    await request.answer_later("Fetching recent requests from AVANSER…", recent, name="numbers requests")


@family.subcommand("templates")
async def templates(request: CommandRequest) -> None:
    """list, preview, create and delete email/SMS report templates."""
    client = numbers.avanser_client(request.services)

    async def listed() -> tuple[str, list[dict[str, Any]]]:
        return templates_list(await client.list_templates())

    await request.answer_later("Fetching report templates from AVANSER…", listed, name="numbers templates")


@family.subcommand("accounts", "[<account id>]")
async def accounts(request: CommandRequest) -> None:
    """the selected AVANSER account — details, packages, rates, features — and switching to another (admins)."""
    services, wanted = request.services, request.args.strip()
    numbers.avanser_client(services)
    numbers.may_administer(services, request.user_id, "see or switch the AVANSER account")
    if wanted and not wanted.isdigit():
        raise UserError("Give the account's number, e.g. `/numbers accounts 6999`.")

    async def overview() -> tuple[str, list[dict[str, Any]]]:
        if wanted:
            await numbers.switch_account(services, request.user_id, int(wanted))
        return account_overview(await numbers.account_overview(services, request.user_id))

    waiting = "Switching the AVANSER account…" if wanted else "Asking AVANSER about the account…"
    await request.answer_later(waiting, overview, name="numbers accounts")


@family.subcommand("settings")
async def settings(request: CommandRequest) -> None:
    """this workspace's admins, approvals and alerts channels and caller ID (admins)."""
    workspaces.open_settings(request)
    await request.ack()


# -- forms and buttons ------------------------------------------------------------------------------------


async def on_new(ix: Interaction) -> None:
    checked = numbers.check_new_number(ix.services, ix.user_id, ix.values, ix.metadata.get("channel") or "")
    await ix.ack()
    numbers.request_new_number(ix.services, ix.user_id, checked)


async def on_edit(ix: Interaction) -> None:
    meta = ix.metadata
    update = numbers.check_edit(ix.services, ix.user_id, ix.values, meta.get("before", {}))
    await ix.ack()
    numbers.request_change(ix.services, ix.user_id, meta["number"], ix.values["name"], update, meta.get("channel", ""))


async def on_release(ix: Interaction) -> None:
    meta = ix.metadata
    numbers.may_request(ix.services, ix.user_id)
    await ix.ack()
    numbers.request_release(ix.services, ix.user_id, meta["number"], meta["name"], meta.get("channel") or "")


async def on_pick(ix: Interaction) -> None:
    await ix.ack()
    open_new_number_form(ix, ix.channel_id or None, json.loads(ix.value)["number"])


async def on_type(ix: Interaction) -> None:
    """Another service type chosen in the request or edit form: the form shows that type's fields."""
    await ix.ack()
    values = {**ix.values, "type": (ix.body["actions"][0].get("selected_option") or {}).get("value")}
    rebuilt = rebuild_number_form(ix.view, values)
    ix.later(ix.services.slack.views_update(view_id=ix.view["id"], hash=ix.view.get("hash"), view=rebuilt), name="form")


async def on_near(ix: Interaction) -> None:
    await ix.ack()
    place = json.loads(ix.value)
    text = f"at {place['lat']},{place['lng']} radius {place['radius']} in {place['country']}"
    query = numbers.parse_search(text, ix.services.settings.country)

    async def show() -> None:
        ix.tell(*search_results(query, await numbers.run_search(numbers.avanser_client(ix.services), query)))

    ix.later(show(), name="numbers search near")


async def on_approve(ix: Interaction) -> None:
    await ix.ack()
    numbers.decide_and_send(ix.services, int(ix.value), ix.user_id, True)


async def on_reject(ix: Interaction) -> None:
    await ix.ack()
    numbers.decide_and_send(ix.services, int(ix.value), ix.user_id, False)


async def on_preview(ix: Interaction) -> None:
    await ix.ack()
    template = json.loads(ix.value)

    async def show() -> None:
        preview = await numbers.avanser_client(ix.services).preview_template(template["name"], template["country"])
        ix.tell(*template_preview(template, preview))

    ix.later(show(), name="template preview")


async def on_delete_template(ix: Interaction) -> None:
    await ix.ack()
    template = json.loads(ix.value)

    async def delete() -> None:
        await numbers.delete_template(ix.services, ix.user_id, template["name"], template["country"], template["type"])
        ix.tell(f"Deleted the template “{template['name']}”.")

    ix.later(delete(), name="template delete")


async def on_new_template(ix: Interaction) -> None:
    await ix.ack()
    ix.open_modal(template_form(ix.services.settings.country))


async def on_template(ix: Interaction) -> None:
    name, content, country, kind = numbers.check_template(ix.services, ix.user_id, ix.values)
    await ix.ack()

    async def save() -> None:
        await numbers.save_template(ix.services, ix.user_id, name, content, country, kind)
        ix.tell(f"Saved the {kind} template “{name}”.")

    ix.later(save(), name="template save")


async def on_request_details(ix: Interaction) -> None:
    await ix.ack()

    async def show() -> None:
        ix.tell(*request_details(ix.value, await numbers.request_details(ix.services, ix.user_id, ix.value)))

    ix.later(show(), name="request details")


async def on_switch(ix: Interaction) -> None:
    await ix.ack()
    account = int(ix.value)

    async def switch() -> None:
        await numbers.switch_account(ix.services, ix.user_id, account)
        ix.tell(f"Switched to AVANSER account {account}.")

    ix.later(switch(), name="switch account")


LISTENERS = [
    view(NEW_VIEW, on_new),
    view(EDIT_VIEW, on_edit),
    view(RELEASE_VIEW, on_release),
    view(TEMPLATE_VIEW, on_template),
    action(PICK_ACTION, on_pick),
    action(TYPE_ACTION, on_type),
    action(prefixed(NEAR_ACTION), on_near),
    action(APPROVE_ACTION, on_approve),
    action(REJECT_ACTION, on_reject),
    action(prefixed(TEMPLATE_PREVIEW_ACTION), on_preview),
    action(prefixed(TEMPLATE_DELETE_ACTION), on_delete_template),
    action(TEMPLATE_NEW_ACTION, on_new_template),
    action(prefixed(ACCOUNT_SWITCH_ACTION), on_switch),
    action(REQUEST_DETAILS_ACTION, on_request_details),
]


def register(app: AsyncApp, services: Services) -> None:
    family.register(app, services)
    register_listeners(app, services, LISTENERS)
