"""/numbers — AVANSER tracking numbers: search, request, track, change and release them."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

import phonenumbers

from bot.errors import UserError
from bot.numbers import (
    BadSearch,
    NumberRequest,
    create_request,
    decide,
    load_request,
    new_custom_id,
    parse_search,
    rebuild_polls,
    run_search,
    submit,
)
from bot.phone import InvalidNumber, national, parse_number
from bot.routing import set_route
from bot.telco.avanser import (
    CallReporting,
    EmailReport,
    NumberRule,
    ServiceConfig,
    ServiceDetail,
    ServiceRequest,
    ServiceUpdate,
    SmsReport,
)
from bot.telco.base import TelcoError
from commands.base import CommandFamily, CommandRequest
from commands.numbers_views import (
    ACCOUNT_SWITCH_ACTION,
    APPROVE_ACTION,
    EDIT_VIEW,
    NEAR_ACTION,
    NEW_VIEW,
    PICK_ACTION,
    REJECT_ACTION,
    RELEASE_VIEW,
    TEMPLATE_DELETE_ACTION,
    TEMPLATE_NEW_ACTION,
    TEMPLATE_PREVIEW_ACTION,
    TEMPLATE_VIEW,
    approval_message,
    decided_message,
    form_values,
    notice_view,
    number_form,
    release_confirm,
    search_results,
    service_detail,
    services_list,
    template_form,
    templates_list,
)

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncAck, AsyncApp

    from bot.services import Services

family = CommandFamily("/numbers", "tracking numbers (AVANSER)", "search|new|list|show|route|help …")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")


def avanser(services: Services) -> Any:
    if services.avanser is None:
        raise UserError("AVANSER isn't set up: an admin needs to add the AVANSER settings.")
    return services.avanser


def tell(services: Services, response_url: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
    body: dict[str, Any] = {"response_type": "ephemeral", "text": text}
    if blocks is not None:
        body["blocks"] = blocks
    services.outbox.respond(response_url, body)


def number_arg(services: Services, text: str) -> str:
    if not text.strip():
        raise UserError("Which number? For example `/numbers show 02 9008 1596`.")
    return parse_number(text, services.settings.country)


async def find_service(services: Services, number: str) -> ServiceDetail:
    for service in await avanser(services).list_services():
        if service.e164 == number:
            return service
    raise UserError(f"{national(number)} isn't one of your active tracking numbers.")


async def modal_when_ready(
    services: Services, trigger_id: str, title: str, build: Callable[[], Awaitable[dict[str, Any]]]
) -> None:
    """Open a modal at once — a trigger_id lasts 3 s, AVANSER may take longer — then show what `build()` makes,
    or the sentence of its refusal."""
    opened = await services.slack.views_open(trigger_id=trigger_id, view=notice_view(title, "⏳ Asking AVANSER…"))
    try:
        view = await build()
    except UserError as exc:
        view = notice_view(title, str(exc))
    await services.slack.views_update(view_id=opened["view"]["id"], view=view)


def route_of(services: Services, number: str | None) -> str | None:
    row = services.store.execute("SELECT channel FROM routes WHERE number = ?", (number,)).fetchone()
    return str(row[0]) if row else None


# -- search ---------------------------------------------------------------------------------------


@family.subcommand(
    "search",
    "mobile|geo|tollfree|freecall | near <address> [radius <km>] | at <lat>,<lng> | prefix <number> "
    "| szu <name> [in <country>]",
)
async def search(request: CommandRequest) -> None:
    """find numbers you can get, each with a Request button."""
    services = request.services
    query = parse_search(request.args, services.settings.country)
    client = avanser(services)

    async def results() -> tuple[str, list[dict[str, Any]]]:
        return search_results(query, await run_search(client, query))

    await request.answer_later(f"Searching AVANSER for {query.describe()}…", results)


# -- new, edit, release: forms that become requests ---------------------------------------------------


@family.subcommand("new")
async def new(request: CommandRequest) -> None:
    """open a form to request a new tracking number (transfer, voicemail or prompt)."""
    open_new_form(request.services, request.trigger_id, request.channel_id, request.response_url)
    await request.ack()


def open_new_form(
    services: Services, trigger_id: str, channel: str | None, response_url: str, number: str | None = None
) -> None:
    view = number_form(
        callback_id=NEW_VIEW,
        title="Request a number",
        submit="Request",
        metadata={"channel": channel},
        channel=channel,
        values={"number": national(number) if number else None},
        with_number=True,
    )
    services.tasks.spawn(
        services.slack.views_open(trigger_id=trigger_id, view=view),
        name="open new-number form",
        tell_user=lambda text: tell(services, response_url, text) if response_url else None,
    )


def _reporting(values: dict[str, Any], errors: dict[str, str], country: str) -> CallReporting:
    email = sms = None
    recipients = [r.strip() for r in (values.get("email_to") or "").split(",") if r.strip()]
    bad = [r for r in recipients if not EMAIL.match(r)]
    if bad:
        errors["email_to"] = f"“{bad[0]}” isn't an email address."
    elif recipients:
        if not values.get("email_subject"):
            errors["email_subject"] = "Give the report emails a subject."
        email = EmailReport(
            subject=values.get("email_subject") or "", email_to=recipients, template=values.get("template") or None
        )
    if values.get("sms_mobile"):
        try:
            sms = SmsReport(mobile=parse_number(values["sms_mobile"], country), template=values.get("template") or None)
        except InvalidNumber as exc:
            errors["sms_mobile"] = str(exc)
    return CallReporting(report=values.get("report") or "none", email=email, sms=sms)


def _service(values: dict[str, Any], errors: dict[str, str], country: str) -> ServiceConfig:
    kind: Literal["transfer", "voicemail", "prompt"] = (
        values["type"] if values.get("type") in ("transfer", "voicemail", "prompt") else "transfer"
    )
    answer_point = None
    if values.get("answer_point"):
        try:
            answer_point = parse_number(values["answer_point"], country)
        except InvalidNumber as exc:
            errors["answer_point"] = str(exc)
    elif kind == "transfer":
        errors["answer_point"] = "A transfer needs the phone its calls go to."
    for key in ("call_greeting", "call_whisper", "voicemail"):
        value = values.get(key)
        if value and not re.match(r"^https?://\S+$", value):
            errors[key] = "Give a web address starting with http:// or https://."
    return ServiceConfig(
        type=kind,
        answer_point=answer_point,
        answer_point_name=values.get("answer_point_name") or None,
        record_call=("yes" in (values.get("record_call") or [])) if kind == "transfer" else None,
        call_greeting=values.get("call_greeting") or None,
        call_whisper=values.get("call_whisper") or None,
        voicemail=values.get("voicemail") or None,
        call_reporting=_reporting(values, errors, country),
    )


def hook_urls(services: Services) -> dict[str, str]:
    """call_uri, sms_forward_uri and callback_uri: Switchboard's own webhooks, never typed by users."""
    settings = services.settings
    if not settings.public_url or settings.webhook_token is None:
        raise UserError(
            "AVANSER couldn't reach Switchboard: an admin needs to set SWITCHBOARD_PUBLIC_URL and "
            "SWITCHBOARD_WEBHOOK_TOKEN first."
        )
    base = settings.public_url.rstrip("/")
    token = f"token={settings.webhook_token.get_secret_value()}"
    return {
        "call_uri": f"{base}/hooks/avanser/call?{token}",
        "sms_forward_uri": f"{base}/hooks/avanser/sms?{token}",
        "callback_uri": f"{base}/hooks/avanser/request?{token}",
    }


def _rule(values: dict[str, Any], errors: dict[str, str], country: str) -> tuple[NumberRule, str | None]:
    text = values.get("number") or "mobile"
    try:
        query = parse_search(text, country)
    except BadSearch as exc:
        errors["number"] = str(exc).split("\n")[0]
        return NumberRule(search_type="number_type", number_type="MOBILE"), None
    return query.rule(), query.number if query.kind == "number" else None


def number_kind(e164: str) -> str:
    """AVANSER's type of a number: MOBILE, FREECALL (1800), TOLLFREE (1300/13) or GEO."""
    parsed = phonenumbers.parse(e164, None)
    kind = phonenumbers.number_type(parsed)
    if kind == phonenumbers.PhoneNumberType.MOBILE:
        return "MOBILE"
    if kind == phonenumbers.PhoneNumberType.TOLL_FREE:
        return "FREECALL"
    if kind == phonenumbers.PhoneNumberType.SHARED_COST:
        return "TOLLFREE"
    return "GEO"


async def cost_of(services: Services, rule: NumberRule) -> str:
    """What the number will cost, from the account's number rates where AVANSER gives them."""
    kind = (rule.number_type or ("GEO" if rule.search_type in ("location", "coordinates", "szu") else "")).upper()
    if not kind and rule.number:
        kind = number_kind(rule.number)
    try:
        rates = await avanser(services).number_rates()
    except TelcoError:
        return "Cost: AVANSER's rates couldn't be fetched just now."
    matching = [r for r in rates if kind and kind in (str(r.rate_code).upper(), str(r.description).upper())]
    if matching:
        rate = matching[0]
        return f"Cost: setup ${rate.setup_charge}, rental ${rate.rental_charge} ({rate.description})"
    if rates:
        listed = "; ".join(f"{r.description}: setup ${r.setup_charge}, rental ${r.rental_charge}" for r in rates[:4])
        return f"Cost depends on the number picked — {listed}"
    return "Cost: AVANSER lists no number rates for this account."


def summary(request: NumberRequest) -> tuple[str, list[str]]:
    """What a request asks for, in the words an approver reads."""
    shown = national(request.number) if request.number else None
    if request.kind == "create":
        rule = NumberRule.model_validate(request.body["service_number"])
        service = request.body.get("service") or {}
        target = f" → {national(service['answer_point'])}" if service.get("answer_point") else ""
        return f"a tracking number “{request.name}”", [
            f"Number: {describe_rule(rule, request.number)}",
            f"Type: {service.get('type', '?')}{target}",
            f"Alerts in <#{request.channel}>",
        ]
    if request.kind == "update":
        changing = sorted(request.body.get("service", {}).keys() | (request.body.keys() - {"service"}))
        return f"a change to “{request.name}” ({shown})", [f"Changing: {', '.join(changing).replace('_', ' ')}"]
    return f"the release of {shown} (“{request.name}”)", ["The number goes back to AVANSER; this can't be undone."]


def after_request_created(services: Services, request_row: int, rule: NumberRule | None) -> None:
    """Admins' requests go to AVANSER now; anyone else's wait in the approvals channel."""
    request = load_request(services, id=request_row)
    assert request is not None
    if request.status == "submitting":
        services.tasks.spawn(submit(services, request_row), name="submit number request")
        return
    approvals = services.settings.approvals_channel
    assert approvals is not None

    async def ask() -> None:
        cost = (
            await cost_of(services, rule) if rule is not None else "Releasing or changing a number costs nothing extra."
        )
        what, details = summary(request)
        text, blocks = approval_message(request_row, request.requester, what, details, cost)
        row = services.outbox.post(approvals, text, blocks)
        services.store.execute("UPDATE number_requests SET approval_row = ? WHERE id = ?", (row, request_row))

    services.tasks.spawn(ask(), name="ask for approval")


def describe_rule(rule: NumberRule, number: str | None) -> str:
    if number:
        return national(number)
    return {
        "number_type": f"any {str(rule.number_type).lower()} number",
        "szu": f"a number in the {rule.szu} zone",
        "location": f"a number near {rule.location}",
        "coordinates": f"a number near {rule.lat}, {rule.lng}",
        "prefix": f"a number like {national(rule.number or '')}",
    }.get(rule.search_type, "a number")


# -- the other sub-commands ---------------------------------------------------------------------------


@family.subcommand("list")
async def list_numbers(request: CommandRequest) -> None:
    """list the active tracking numbers."""
    services = request.services
    client = avanser(services)

    async def listed() -> tuple[str, list[dict[str, Any]]]:
        found = await client.list_services()
        return services_list(found, dict(services.store.execute("SELECT number, channel FROM routes").fetchall()))

    await request.answer_later("Fetching your tracking numbers from AVANSER…", listed)


@family.subcommand("show", "<number>")
async def show(request: CommandRequest) -> None:
    """show how a tracking number is set up and where its alerts go."""
    services = request.services
    number = number_arg(services, request.args)
    avanser(services)

    async def detail() -> tuple[str, list[dict[str, Any]]]:
        return service_detail(await find_service(services, number), route_of(services, number))

    await request.answer_later(f"Looking up {national(number)}…", detail)


@family.subcommand("edit", "<number>")
async def edit(request: CommandRequest) -> None:
    """change a tracking number's answer point, recording or reporting."""
    services = request.services
    number = number_arg(services, request.args)
    avanser(services)
    await request.ack()

    async def form() -> dict[str, Any]:
        service = await find_service(services, number)
        config, reporting = service.service, service.reporting
        values = {
            "name": service.name,
            "type": config.type,
            "answer_point": national(config.answer_point) if config.answer_point else None,
            "answer_point_name": config.answer_point_name,
            "record_call": config.record_call,
            "call_greeting": config.call_greeting,
            "call_whisper": config.call_whisper,
            "voicemail": config.voicemail,
            "report": reporting.report if reporting else "none",
            "email_to": ", ".join(reporting.email.email_to) if reporting and reporting.email else None,
            "email_subject": reporting.email.subject if reporting and reporting.email else None,
            "sms_mobile": national(reporting.sms.mobile) if reporting and reporting.sms else None,
            "template": (reporting.email.template if reporting and reporting.email else None)
            or (reporting.sms.template if reporting and reporting.sms else None),
        }
        view = number_form(
            callback_id=EDIT_VIEW,
            title="Change a number",
            submit="Save",
            metadata={
                "number": number,
                "channel": request.channel_id,
                "before": {k: v for k, v in values.items() if v not in (None, "")},
            },
            channel=None,
            values=values,
            with_number=False,
        )
        return view

    request.later(modal_when_ready(services, request.trigger_id, "Change a number", form), name="numbers edit")


@family.subcommand("release", "<number>")
async def release(request: CommandRequest) -> None:
    """give a tracking number back (asks you to confirm first)."""
    services = request.services
    number = number_arg(services, request.args)
    avanser(services)
    await request.ack()

    async def confirm() -> dict[str, Any]:
        service = await find_service(services, number)
        return release_confirm(number, service.name, route_of(services, number), request.channel_id)

    request.later(modal_when_ready(services, request.trigger_id, "Release a number", confirm), name="numbers release")


@family.subcommand("route", "<number> #channel")
async def route(request: CommandRequest) -> None:
    """choose the channel a number's calls and texts are posted to."""
    services = request.services
    channel = CHANNEL.search(request.args)
    if channel is None:
        raise UserError("Which channel? For example `/numbers route 02 9008 1596 #sales`.")
    number = number_arg(services, CHANNEL.sub(" ", request.args))
    set_route(services.store, number, channel.group(1), by=request.user_id)
    services.store.audit(request.user_id, "route.set", subject=number, detail=json.dumps({"channel": channel.group(1)}))
    await request.reply(f"Calls and texts to {national(number)} will be posted in <#{channel.group(1)}>.")


@family.subcommand("requests")
async def requests(request: CommandRequest) -> None:
    """recent number requests and where each one is up to."""
    services = request.services
    client = avanser(services)

    async def recent() -> tuple[str, list[dict[str, Any]] | None]:
        records = (await client.list_requests())[-15:][::-1]
        if not records:
            return "AVANSER has no requests on this account yet.", None
        icons = {"completed": "✅", "failed": "❌", "reported": "⚠️", "pending": "⏳", "pending_confirmation": "⏳"}
        lines = [
            f"{icons.get(r.request_status, '•')} *{r.request_type}* "
            f"{national('+' + r.service_number) if r.service_number else ''} — {r.request_status}"
            f"{': ' + r.message if r.message and r.request_status != 'completed' else ''}"
            f" · {(r.request_date or '')[:16].replace('T', ' ')}"
            for r in records
        ]
        return f"{len(records)} recent requests", [
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900]}}
        ]

    await request.answer_later("Fetching recent requests from AVANSER…", recent)


@family.subcommand("templates")
async def templates(request: CommandRequest) -> None:
    """list, preview, create and delete email/SMS report templates."""
    services = request.services
    client = avanser(services)

    async def listed() -> tuple[str, list[dict[str, Any]]]:
        return templates_list(await client.list_templates())

    await request.answer_later("Fetching report templates from AVANSER…", listed)


@family.subcommand("accounts", "[<account id>]")
async def accounts(request: CommandRequest) -> None:
    """list AVANSER accounts and switch between them (agency users)."""
    services = request.services
    client = avanser(services)
    wanted = request.args.strip()
    if wanted and not services.is_admin(request.user_id):
        raise UserError("Only Switchboard admins can switch the AVANSER account.")
    if wanted and not wanted.isdigit():
        raise UserError("Give the account's number, e.g. `/numbers accounts 6999`.")
    await request.reply("Switching the AVANSER account…" if wanted else "Fetching AVANSER accounts…")

    async def run() -> None:
        if wanted:
            await client.switch_account(int(wanted))
            services.store.audit(request.user_id, "account.switch", subject=wanted)
        listed = await client.list_accounts()
        current = client.last_transaction.account_id if client.last_transaction else None
        lines = [f"{'👉 ' if a.account_id == current else ''}*{a.account}* ({a.account_id})" for a in listed]
        buttons = [
            {
                "type": "button",
                "action_id": f"{ACCOUNT_SWITCH_ACTION}-{a.account_id}",
                "value": str(a.account_id),
                "text": {"type": "plain_text", "text": f"Switch to {a.account}"[:75]},
            }
            for a in listed
            if a.account_id != current
        ][:5]
        blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]
        if buttons:
            blocks.append({"type": "actions", "elements": buttons})
        tell(services, request.response_url, f"AVANSER accounts: {', '.join(a.account for a in listed)}", blocks)

    request.later(run(), name="numbers accounts")


# -- listeners for the forms and buttons --------------------------------------------------------------


def register(app: AsyncApp, services: Services) -> None:
    family.register(app, services)
    services.on_start(lambda: rebuild_polls(services))

    @app.view(NEW_VIEW)
    async def on_new(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        values = form_values(view)
        country = services.settings.country
        errors: dict[str, str] = {}
        try:
            urls = hook_urls(services)
        except UserError as exc:
            await ack(response_action="errors", errors={"name": str(exc)})
            return
        rule, number = _rule(values, errors, country)
        config = _service(values, errors, country)
        custom_id = values.get("custom_id") or None
        if custom_id and len(custom_id) > 50:
            errors["custom_id"] = "At most 50 characters."
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        channel = values.get("channel") or json.loads(view.get("private_metadata") or "{}").get("channel") or user
        request = ServiceRequest(
            name=values["name"],
            custom_id=custom_id or new_custom_id(),
            service_number=rule,
            service=config,
            custom_group=values.get("custom_group") or None,
            **urls,
        )
        created = create_request(
            services,
            kind="create",
            name=values["name"],
            number=number,
            channel=channel,
            requester=user,
            body=request.model_dump(mode="json", exclude_none=True),
            custom_id=request.custom_id,
        )
        after_request_created(services, created.id, rule)

    @app.view(EDIT_VIEW)
    async def on_edit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        meta = json.loads(view.get("private_metadata") or "{}")
        values = form_values(view)
        errors: dict[str, str] = {}
        config = _service(values, errors, services.settings.country)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        before = meta.get("before", {})

        def same(key: str) -> bool:
            new, old = values.get(key) or None, before.get(key) or None
            if key in ("answer_point", "sms_mobile") and new and old:  # spacing is not a change
                try:
                    return parse_number(new, services.settings.country) == parse_number(old, services.settings.country)
                except InvalidNumber:
                    return False
            return bool(new == old)

        fields = (
            "name",
            "type",
            "answer_point",
            "answer_point_name",
            "call_greeting",
            "call_whisper",
            "voicemail",
            "report",
            "email_to",
            "email_subject",
            "sms_mobile",
            "template",
        )
        changed = {k for k in fields if not same(k)}
        if ("yes" in (values.get("record_call") or [])) != bool(before.get("record_call")):
            changed.add("record_call")
        if not changed:
            await ack(response_action="errors", errors={"name": "Nothing was changed."})
            return
        await ack()
        service_fields = {
            "type",
            "answer_point",
            "answer_point_name",
            "record_call",
            "call_greeting",
            "call_whisper",
            "voicemail",
        } & changed
        update = ServiceUpdate(
            name=values["name"] if "name" in changed else None,
            service=ServiceConfig(**{k: getattr(config, k) for k in service_fields}) if service_fields else None,
            call_reporting=config.call_reporting
            if changed & {"report", "email_to", "email_subject", "sms_mobile", "template"}
            else None,
        )
        number = meta["number"]
        created = create_request(
            services,
            kind="update",
            name=values["name"],
            number=number,
            channel=meta.get("channel") or user,
            requester=user,
            body=update.model_dump(mode="json", exclude_none=True),
        )
        after_request_created(services, created.id, None)

    @app.view(RELEASE_VIEW)
    async def on_release(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack()
        meta = json.loads(view.get("private_metadata") or "{}")
        user = body["user"]["id"]
        created = create_request(
            services,
            kind="delete",
            name=meta["name"],
            number=meta["number"],
            channel=meta.get("channel") or user,
            requester=user,
            body={},
        )
        after_request_created(services, created.id, None)

    @app.action(PICK_ACTION)
    async def on_pick(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        picked = json.loads(body["actions"][0]["value"])
        channel = (body.get("channel") or {}).get("id")
        open_new_form(services, body["trigger_id"], channel, body.get("response_url", ""), number=picked["number"])

    @app.action(re.compile(f"^{NEAR_ACTION}-\\d+$"))
    async def on_near(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        place = json.loads(body["actions"][0]["value"])
        query = parse_search(
            f"at {place['lat']},{place['lng']} radius {place['radius']} in {place['country']}",
            services.settings.country,
        )
        url = body.get("response_url", "")

        async def show() -> None:
            text, blocks = search_results(query, await run_search(avanser(services), query))
            tell(services, url, text, blocks)

        services.tasks.spawn(show(), name="numbers search near", tell_user=lambda t: tell(services, url, t))

    async def on_decision(ack: AsyncAck, body: dict[str, Any], approve: bool) -> None:
        await ack()
        user = body["user"]["id"]
        url = body.get("response_url", "")
        try:
            request = decide(services, int(body["actions"][0]["value"]), user, approve)
        except UserError as exc:
            tell(services, url, str(exc))
            return
        if request.approval_row is not None:
            what, details = summary(request)
            services.outbox.update(
                request.approval_row,
                f"{'Approved' if approve else 'Rejected'}: {what}",
                decided_message(request.requester, what, details, user, approve),
            )
        if approve:
            services.tasks.spawn(submit(services, request.id), name="submit approved request")

    @app.action(APPROVE_ACTION)
    async def on_approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await on_decision(ack, body, True)

    @app.action(REJECT_ACTION)
    async def on_reject(ack: AsyncAck, body: dict[str, Any]) -> None:
        await on_decision(ack, body, False)

    @app.action(re.compile(f"^{TEMPLATE_PREVIEW_ACTION}-\\d+$"))
    async def on_preview(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        template = json.loads(body["actions"][0]["value"])
        url = body.get("response_url", "")

        async def show() -> None:
            preview = await avanser(services).preview_template(template["name"], template["country"])
            content = str(preview.get("content") or preview.get("message") or "")
            tell(
                services,
                url,
                f"{template['name']}: {content[:200]}",
                [
                    {
                        "type": "section",
                        "text": {
                            "type": "mrkdwn",
                            "text": f"*{template['name']}* ({template['type']})\n```{content[:2800]}```",
                        },
                    }
                ],
            )

        services.tasks.spawn(show(), name="template preview", tell_user=lambda t: tell(services, url, t))

    @app.action(re.compile(f"^{TEMPLATE_DELETE_ACTION}-\\d+$"))
    async def on_delete_template(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        template = json.loads(body["actions"][0]["value"])
        user, url = body["user"]["id"], body.get("response_url", "")

        async def delete() -> None:
            if not services.is_admin(user):
                raise UserError("Only Switchboard admins can delete report templates.")
            await avanser(services).delete_template(
                template["name"], country=template["country"], type=template["type"]
            )
            services.store.audit(user, "template.delete", subject=template["name"])
            tell(services, url, f"Deleted the template “{template['name']}”.")

        services.tasks.spawn(delete(), name="template delete", tell_user=lambda t: tell(services, url, t))

    @app.action(TEMPLATE_NEW_ACTION)
    async def on_new_template(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        services.tasks.spawn(
            services.slack.views_open(trigger_id=body["trigger_id"], view=template_form(services.settings.country)),
            name="open template form",
        )

    @app.view(TEMPLATE_VIEW)
    async def on_template(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = form_values(view)
        user = body["user"]["id"]
        if not services.is_admin(user):
            await ack(response_action="errors", errors={"name": "Only Switchboard admins can change templates."})
            return
        country = (values.get("country") or "").upper()
        if len(country) != 2:
            await ack(response_action="errors", errors={"country": "Use a two-letter country code such as AU."})
            return
        await ack()

        async def save() -> None:
            await avanser(services).save_template(
                values["name"], values["content"], country=country, type=values.get("type") or "email"
            )
            services.store.audit(user, "template.save", subject=values["name"])
            services.outbox.post(user, f"Saved the {values.get('type') or 'email'} template “{values['name']}”.")

        services.tasks.spawn(
            save(),
            name="template save",
            tell_user=lambda t: services.outbox.post(user, f"The template wasn't saved: {t}"),
        )

    @app.action(re.compile(f"^{ACCOUNT_SWITCH_ACTION}-\\d+$"))
    async def on_switch(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        user, url = body["user"]["id"], body.get("response_url", "")
        account = int(body["actions"][0]["value"])

        async def switch() -> None:
            if not services.is_admin(user):
                raise UserError("Only Switchboard admins can switch the AVANSER account.")
            await avanser(services).switch_account(account)
            services.store.audit(user, "account.switch", subject=str(account))
            tell(services, url, f"Switched to AVANSER account {account}.")

        services.tasks.spawn(switch(), name="switch account", tell_user=lambda t: tell(services, url, t))
