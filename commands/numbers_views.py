"""Block Kit for /numbers: search results, the request form, approvals, lists (slack_sdk.models)."""

from __future__ import annotations

import json
import time
from datetime import tzinfo
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    CheckboxesElement,
    ConfirmObject,
    ContextBlock,
    ConversationFilter,
    ConversationSelectElement,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.domain.numbers import AccountOverview, Released, SearchQuery, quarantine_until
from bot.phone import national
from bot.telco.avanser import RequestRecord, SearchResult, ServiceDetail, Template
from commands.forms import select, text_input
from notifiers.message import iso_time
from notifiers.routes import route_option_words
from notifiers.text import (
    BUTTON,
    CONFIRM_TEXT,
    DATE_ONLY,
    FIELD,
    HEADER,
    LINE,
    SECTION,
    TEXT,
    VALUE,
    body,
    chunks,
    escape,
    mrkdwn,
    plain,
    shown_url,
    slack_date,
    truncate,
    zoned,
)

NEW_VIEW = "numbers_new"
EDIT_VIEW = "numbers_edit"
RELEASE_VIEW = "numbers_release"
TEMPLATE_VIEW = "numbers_template"
PICK_ACTION = "numbers_pick"
NEAR_ACTION = "numbers_near"
TEMPLATE_PREVIEW_ACTION = "numbers_template_preview"
TEMPLATE_DELETE_ACTION = "numbers_template_delete"
TEMPLATE_NEW_ACTION = "numbers_template_new"
ACCOUNT_SWITCH_ACTION = "numbers_account_switch"

SERVICE_TYPES = [
    ("transfer", "Transfer — forward calls to a phone"),
    ("voicemail", "Voicemail — take messages"),
    ("prompt", "Prompt — play a recording"),
]
REPORTS = [
    ("none", "No call reports"),
    ("missed", "Missed calls"),
    ("missed-voicemail", "Missed calls with voicemail"),
    ("all-calls", "All calls"),
]
CALL_TAGS = (
    "`__location__` caller location · `__outnum__` answer point · `__dateTime__` call time · `__bnum__` "
    "tracking number · `__ani__` caller · `__adsource__` number's name · `__callDuration__` seconds · "
    "`__callstatus__` Answered/Busy/… · `__URL__` recording URL · `__link__` recording link"
)


def _d(blocks: list[Any]) -> list[dict[str, Any]]:
    return [b.to_dict() for b in blocks]


def search_results(query: SearchQuery, result: SearchResult) -> tuple[str, list[dict[str, Any]]]:
    if result.ambiguous:
        text = f"“{mrkdwn(query.address)}” matches several places. Which one?"
        buttons = [
            ButtonElement(
                text=plain(a.name, BUTTON),
                action_id=f"{NEAR_ACTION}-{i}",
                value=json.dumps(
                    {
                        "lat": a.lat_lng[0],
                        "lng": a.lat_lng[1],
                        "country": a.country or query.country,
                        "radius": query.radius,
                    }
                ),
            )
            for i, a in enumerate(result.addresses[:25])
            if len(a.lat_lng) == 2
        ]
        return text, _d([SectionBlock(text=MarkdownTextObject(text=text)), ActionsBlock(elements=buttons)])
    if not result.numbers:
        text = f"AVANSER has no {mrkdwn(query.describe())} right now. Try a wider radius or another kind of number."
        return text, _d([SectionBlock(text=MarkdownTextObject(text=text))])
    shown = result.numbers[:40]
    heading = f"{len(result.numbers)} {query.describe()}"
    blocks: list[Any] = [HeaderBlock(text=plain(heading, HEADER))]
    for candidate in shown:
        facts = f"*{mrkdwn(national(candidate.e164))}* · {mrkdwn(candidate.region)} · {mrkdwn(candidate.type)}"
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=facts),
                accessory=ButtonElement(
                    text="Request this number",
                    action_id=PICK_ACTION,
                    value=json.dumps({"number": candidate.e164, "type": candidate.type}),
                ),
            )
        )
    if len(result.numbers) > len(shown):
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"{len(result.numbers) - len(shown)} more not shown; narrow the search to see them."
                    )
                ]
            )
        )
    return truncate(mrkdwn(heading, TEXT), TEXT), _d(blocks)


TYPE_ACTION = "numbers_form_type"  # the service type select: the form changes with it
FIELDS_BY_TYPE = {
    "transfer": ("answer_point", "answer_point_name", "record_call", "call_greeting", "call_whisper", "voicemail"),
    "voicemail": ("answer_point_name", "voicemail"),
    "prompt": ("answer_point_name", "call_greeting"),
}


def _template_select(block_id: str, label: str, names: list[str] | None, initial: str | None) -> InputBlock:
    """A select of the saved templates of one type (AVANSER types them); a text input when they are unknown."""
    if not names:
        hint = "No templates of this type are saved: AVANSER's standard one is used." if names is not None else None
        return text_input(block_id, label, initial=initial, hint=hint)
    choices = [Option(value=n[:150], label=n[:75]) for n in names[:100]]
    start = next((o for o in choices if o.value == initial), None)
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=True,
        element=StaticSelectElement(action_id="value", options=choices, initial_option=start),
    )


def number_form(
    *,
    callback_id: str,
    title: str,
    submit: str,
    metadata: dict[str, Any],
    channel: str | None,
    values: dict[str, Any],
    with_number: bool,
    templates: list[Template] | None = None,
) -> dict[str, Any]:
    """The request form (new number) or the edit form (prefilled from the service).

    It follows the service type: only the fields that type uses are shown (seed 001: whisper and
    recording are for transfers, the greeting for prompts, the voicemail audio for transfers and
    voicemails); choosing another type rebuilds the form keeping what was typed (`TYPE_ACTION`).
    Templates are offered from AVANSER's saved ones, by type; `templates=None`: they aren't known."""
    kind = str(values.get("type")) if values.get("type") in FIELDS_BY_TYPE else "transfer"
    type_select = select("type", "What calls to this number do", SERVICE_TYPES, kind)
    type_select.dispatch_action = True
    type_select.element.action_id = TYPE_ACTION  # type: ignore[union-attr]
    blocks: list[Any] = [
        text_input(
            "name",
            "Name, shown in alerts",
            initial=values.get("name"),
            optional=False,
            placeholder="Spring sale — radio ad",
        ),
        type_select,
    ]
    if with_number:
        blocks.append(
            text_input(
                "number",
                "Which number",
                initial=values.get("number"),
                hint="A number from /numbers search, or what to look for: mobile, tollfree, freecall, "
                "szu sydney, near <address>, prefix 0290. Empty: any mobile number.",
            )
        )
    shown = FIELDS_BY_TYPE[kind]
    service_fields: dict[str, Any] = {
        "answer_point": text_input(
            "answer_point",
            "Answer point: the phone calls go to",
            initial=values.get("answer_point"),
            optional=False,
            placeholder="02 9008 1500",
        ),
        "answer_point_name": text_input(
            "answer_point_name",
            "Answer point name",
            initial=values.get("answer_point_name"),
            placeholder="Sydney office",
        ),
        "record_call": InputBlock(
            block_id="record_call",
            label="Recording",
            optional=True,
            element=CheckboxesElement(
                action_id="value",
                options=[Option(value="yes", label="Record calls")],
                initial_options=[Option(value="yes", label="Record calls")] if values.get("record_call") else None,
            ),
        ),
        "call_greeting": text_input(
            "call_greeting", "Greeting audio URL (played to callers)", initial=values.get("call_greeting")
        ),
        "call_whisper": text_input(
            "call_whisper", "Whisper audio URL (played to whoever answers)", initial=values.get("call_whisper")
        ),
        "voicemail": text_input(
            "voicemail",
            "Voicemail greeting audio URL" if kind == "voicemail" else "Voicemail audio URL (when nobody answers)",
            initial=values.get("voicemail"),
        ),
    }
    blocks += [service_fields[f] for f in shown]
    email_names = [t.name for t in templates if t.type == "email"] if templates is not None else None
    sms_names = [t.name for t in templates if t.type == "sms"] if templates is not None else None
    blocks += [
        select("report", "Call reports by email or SMS", REPORTS, values.get("report") or "missed"),
        text_input(
            "email_to", "Report emails to", initial=values.get("email_to"), hint="Email addresses, separated by commas."
        ),
        text_input("email_cc", "Copy (cc)", initial=values.get("email_cc")),
        text_input("email_bcc", "Blind copy (bcc)", initial=values.get("email_bcc")),
        text_input(
            "email_subject",
            "Report email subject",
            initial=values.get("email_subject"),
            hint="Call tags work here, e.g. Missed call from __ani__ on __adsource__",
        ),
        _template_select("email_template", "Email template", email_names, values.get("email_template")),
        text_input("sms_mobile", "Report SMS to (mobile)", initial=values.get("sms_mobile")),
        text_input("sms_id", "SMS sender id", initial=values.get("sms_id"), hint="Empty: AVANSER"),
        _template_select("sms_template", "SMS template", sms_names, values.get("sms_template")),
    ]
    if with_number:
        blocks += [
            text_input(
                "custom_id",
                "Attribution id (custom_id)",
                initial=values.get("custom_id"),
                hint="Reported with every call. Empty: Switchboard makes one.",
            ),
            text_input(
                "custom_group",
                "Attribution group (custom_group)",
                initial=values.get("custom_group"),
                hint="Calls of a group can be routed together.",
            ),
            InputBlock(
                block_id="channel",
                label="Post its calls and texts in",
                element=ConversationSelectElement(
                    action_id="value",
                    initial_conversation=channel,
                    default_to_current_conversation=channel is None,
                    filter=ConversationFilter(include=["public", "private"], exclude_bot_users=True),
                ),
            ),
        ]
    return View(
        type="modal",
        callback_id=callback_id,
        title=title,
        submit=submit,
        close="Cancel",
        private_metadata=json.dumps(metadata),
        blocks=blocks,
    ).to_dict()


def services_list(services: list[ServiceDetail], routes: dict[str, str]) -> tuple[str, list[dict[str, Any]]]:
    if not services:
        text = "No active tracking numbers yet. Find one with `/numbers search mobile`."
        return text, _d([SectionBlock(text=MarkdownTextObject(text=text))])
    lines = []
    for service in services:
        number = service.e164
        kind = service.service.type or "service"
        target = ""
        if service.service.answer_point:
            point = national(service.service.answer_point)
            target = f" → {mrkdwn(service.service.answer_point_name or '')} {point}".rstrip()
        where = f" · alerts in <#{routes[number]}>" if number and number in routes else " · no route"
        shown = national(number) if number else "?"
        lines.append(truncate(f"*{shown}* — {mrkdwn(service.name)} · {mrkdwn(kind)}{target}{where}", LINE))
    blocks: list[Any] = [HeaderBlock(text=f"{len(services)} active tracking number{'s' if len(services) != 1 else ''}")]
    for chunk in chunks(lines, SECTION, 48):
        blocks.append(SectionBlock(text=MarkdownTextObject(text=chunk)))
    listed = sum(chunk.count("\n") + 1 for chunk in chunks(lines, SECTION, 48))
    if listed < len(lines):
        more = f"{len(lines) - listed} more not shown."
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=more)]))
    return f"{len(services)} active tracking numbers", _d(blocks)


def service_detail(
    service: ServiceDetail, route: str | None, options: dict[str, Any] | None = None, claim_within: float = 0
) -> tuple[str, list[dict[str, Any]]]:
    number = national(service.e164) if service.e164 else "?"
    config = service.service
    facts = [f"*Type:* {mrkdwn(config.type or '—')}"]
    if config.answer_point:
        point = national(config.answer_point)
        facts.append(f"*Answer point:* {mrkdwn(config.answer_point_name or '')} {point}".strip())
    if config.record_call is not None:
        facts.append(f"*Recording:* {'on' if config.record_call else 'off'}")
    for key, label in (("call_greeting", "Greeting"), ("call_whisper", "Whisper"), ("voicemail", "Voicemail")):
        value = getattr(config, key)
        if value:
            facts.append(f"*{label}:* {shown_url(value, 'audio')}")
    reporting = service.reporting
    if reporting is not None:
        facts.append(f"*Call reports:* {mrkdwn(reporting.report)}")
    facts.append(f"*Alerts:* <#{route}>" if route else "*Alerts:* no route — set one with `/numbers route`")
    if route:
        facts.append("*Route options:* " + " · ".join(route_option_words(options or {}, claim_within=claim_within)))
    header = HeaderBlock(text=plain(f"{number} — {service.name}", HEADER))
    text = truncate(f"{number} — {mrkdwn(service.name, TEXT)}", TEXT)
    return text, _d([header, SectionBlock(text=MarkdownTextObject(text=truncate("\n".join(facts), SECTION)))])


METADATA_NAME = 1000  # of a number's name carried in a modal's private_metadata (3,000 in all)


def quarantine_sentence(released_at: float, tz: tzinfo | None = None, *, plain_text: bool = False) -> str:
    """ "in AVANSER's quarantine until about <+3 months> – <+6 months>": Slack date tokens in a message, or —
    for plain text, where tokens can't go — dates in the viewer's zone `tz`."""
    start, end = quarantine_until(released_at)
    if plain_text:
        first, last = zoned(start, tz, with_time=False), zoned(end, tz, with_time=False)
    else:
        first, last = slack_date(start, DATE_ONLY), slack_date(end, DATE_ONLY)
    return f"in AVANSER's quarantine until about {first} – {last}"


def released_line(released: Released) -> str:
    name = f" — “{mrkdwn(released.name)}”" if released.name else ""
    return truncate(
        f"*{mrkdwn(national(released.number))}*{name} · released {slack_date(released.released_at, DATE_ONLY)}"
        f" by <@{released.released_by}> · {quarantine_sentence(released.released_at)}",
        LINE,
    )


def released_list(found: list[Released], total: int) -> tuple[str, list[dict[str, Any]]]:
    """`/numbers released`: numbers released through Switchboard, newest first."""
    if not found:
        text = "No number has been released through Switchboard yet."
        return text, _d([SectionBlock(text=MarkdownTextObject(text=text))])
    heading = f"{total} number{'s' if total != 1 else ''} released through Switchboard"
    blocks: list[Any] = [HeaderBlock(text=plain(heading, HEADER))]
    lines = [released_line(r) for r in found]
    shown = chunks(lines, SECTION, 40)
    blocks += [SectionBlock(text=MarkdownTextObject(text=chunk)) for chunk in shown]
    listed = sum(chunk.count("\n") + 1 for chunk in shown)
    if listed < total:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"{total - listed} older ones not shown.")]))
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text="Seed 000: a released number spends three to six months in AVANSER's quarantine before "
                    "anyone else can get it."
                )
            ]
        )
    )
    return heading, _d(blocks)


def released_detail(released: Released) -> tuple[str, list[dict[str, Any]]]:
    """`/numbers show` of a number released through Switchboard."""
    text = (
        f"{released_line(released)}.\nIt is no longer one of your tracking numbers: calls to it don't reach the team."
    )
    return truncate(f"{national(released.number)} was released", TEXT), _d(
        [SectionBlock(text=MarkdownTextObject(text=text))]
    )


def release_confirm(
    number: str, name: str, route: str | None, channel: str, tz: tzinfo | None = None, now: float | None = None
) -> dict[str, Any]:
    """The confirmation before a release: what happens to calls, and the quarantine (dates in the viewer's zone)."""
    where = f" Its calls are posted in <#{route}>; that stops too." if route else ""
    quarantine = quarantine_sentence(time.time() if now is None else now, tz, plain_text=True)
    return View(
        type="modal",
        callback_id=RELEASE_VIEW,
        title="Release a number",
        submit="Release",
        close="Keep it",
        private_metadata=json.dumps({"number": number, "name": name[:METADATA_NAME], "channel": channel}),
        blocks=[
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"Release *{national(number)}* — “{mrkdwn(name)}”? AVANSER will decommission it: calls "
                    f"to it won't reach the team any more, and it can't be taken back.{where}\n"
                    f"The number will be {quarantine}; then anyone may get it."
                )
            )
        ],
    ).to_dict()


TEMPLATES_SHOWN = 23  # two blocks each, a header, a "more" line and the New button: 49 of Slack's 50


def templates_list(templates: list[Template]) -> tuple[str, list[dict[str, Any]]]:
    blocks: list[Any] = [HeaderBlock(text="Call report templates")]
    shown = templates[:TEMPLATES_SHOWN]
    for template in shown:
        value = json.dumps({"name": template.name, "country": template.country, "type": template.type})
        line = f"*{mrkdwn(template.name)}* · {mrkdwn(template.type, 20)} · {mrkdwn(template.country, 20)}"
        if len(value) > VALUE:  # a name too long to carry in a button: listed, not clickable
            blocks.append(SectionBlock(text=MarkdownTextObject(text=line)))
            blocks.append(ContextBlock(elements=[MarkdownTextObject(text="Its name is too long to preview here.")]))
            continue
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=line),
                accessory=ButtonElement(
                    text="Preview", action_id=f"{TEMPLATE_PREVIEW_ACTION}-{len(blocks)}", value=value
                ),
            )
        )
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text="Delete",
                        action_id=f"{TEMPLATE_DELETE_ACTION}-{len(blocks)}",
                        value=value,
                        style="danger",
                        confirm=ConfirmObject(
                            title="Delete this template?",
                            text=truncate(f"{mrkdwn(template.name)} ({mrkdwn(template.type, 20)})", CONFIRM_TEXT),
                            confirm="Delete",
                            deny="Keep",
                        ),
                    )
                ]
            )
        )
    if len(templates) > len(shown):
        more = f"{len(templates) - len(shown)} more not shown; delete unused ones to see them."
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=more)]))
    blocks.append(
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="New or update a template", action_id=TEMPLATE_NEW_ACTION, value="new", style="primary"
                )
            ]
        )
    )
    return f"{len(templates)} templates", _d(blocks)


def template_form(country: str) -> dict[str, Any]:
    return View(
        type="modal",
        callback_id=TEMPLATE_VIEW,
        title="Report template",
        submit="Save",
        close="Cancel",
        blocks=[
            text_input("name", "Name", optional=False, hint="Saving under an existing name updates it."),
            select("type", "Used for", [("email", "Email reports"), ("sms", "SMS reports")], "email"),
            text_input("country", "Country", initial=country, optional=False),
            text_input("content", "Content", optional=False, multiline=True),
            ContextBlock(elements=[MarkdownTextObject(text=f"Call tags: {CALL_TAGS}")]),
        ],
    ).to_dict()


def templates_in(view: dict[str, Any]) -> list[Template] | None:
    """The templates a form offers (read back from its selects), to rebuild it without asking AVANSER again."""
    found: list[Template] = []
    known = False
    for block in view.get("blocks") or []:
        kind = {"email_template": "email", "sms_template": "sms"}.get(str(block.get("block_id")))
        element = block.get("element") or {}
        if kind is None:
            continue
        if element.get("type") == "static_select":
            known = True
            found += [Template(name=o["value"], type=kind) for o in element.get("options") or []]
        elif (block.get("hint") or {}).get("text", "").startswith("No templates"):
            known = True
    return found if known else None


def rebuild_number_form(view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The same form for another service type, keeping everything typed so far."""
    inputs = {b.get("block_id") for b in view.get("blocks") or []}
    metadata = json.loads(view.get("private_metadata") or "{}")
    return number_form(
        callback_id=str(view.get("callback_id")),
        title=str((view.get("title") or {}).get("text") or "Request a number"),
        submit=str((view.get("submit") or {}).get("text") or "Request"),
        metadata=metadata,
        channel=values.get("channel") or metadata.get("channel"),
        values=values,
        with_number="number" in inputs,
        templates=templates_in(view),
    )


REQUEST_DETAILS_ACTION = "numbers_request_details"


def _callback_state(record: RequestRecord) -> str:
    """Whether AVANSER reached Switchboard's callback URL for this request (its `@callback`)."""
    callback = record.callback
    if callback is None or not callback.status:
        return ""
    if callback.status == "success":
        return " · callback delivered"
    reply = f" (HTTP {callback.http_reply})" if callback.http_reply else ""
    return f" · ⚠️ callback {mrkdwn(callback.status, 20)}{reply}"


def requests_list(records: list[RequestRecord], *, admin: bool = False) -> tuple[str, list[dict[str, Any]] | None]:
    """Recent AVANSER requests, newest first: each one's status and whether its callback reached Switchboard;
    for admins a Details button on each (the bodies sent and received)."""
    if not records:
        return "AVANSER has no requests on this account yet.", None
    icons = {"completed": "✅", "failed": "❌", "reported": "⚠️", "pending": "⏳", "pending_confirmation": "⏳"}
    blocks: list[Any] = []
    for r in records[:45]:
        line = truncate(
            f"{icons.get(r.request_status, '•')} *{mrkdwn(r.request_type, 20)}* "
            f"{mrkdwn(national('+' + r.service_number)) if r.service_number else ''} — {mrkdwn(r.request_status, 30)}"
            f"{': ' + mrkdwn(r.message) if r.message and r.request_status != 'completed' else ''}"
            f" · {iso_time(r.request_date)}{_callback_state(r)}",
            SECTION,
        )
        details = ButtonElement(text="Details", action_id=REQUEST_DETAILS_ACTION, value=r.id[:150])
        blocks.append(SectionBlock(text=MarkdownTextObject(text=line), accessory=details if admin else None))
    failing = sum(1 for r in records if r.callback and r.callback.status not in (None, "", "success"))
    if failing:
        note = (
            f"⚠️ AVANSER couldn't reach Switchboard's callback URL for {failing} of these; check SWITCHBOARD_PUBLIC_URL."
        )
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=note)]))
    return f"{len(records)} recent requests", _d(blocks)


def request_details(request_id: str, bodies: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """A request's bodies as AVANSER holds them (secrets already removed), each in a code block."""
    blocks: list[Any] = [SectionBlock(text=MarkdownTextObject(text=f"*AVANSER request* `{mrkdwn(request_id, 100)}`"))]
    for title, held in bodies.items():
        shown = json.dumps(held, indent=1, ensure_ascii=False) if held is not None else "(AVANSER didn't answer)"
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=truncate(f"*{title}*\n```{escape(shown)}```", SECTION)))
        )
    return f"AVANSER request {request_id}", _d(blocks)


def _facts(title: str, rows: list[str] | None, empty: str) -> SectionBlock:
    if rows is None:
        text = f"*{title}*\n_AVANSER didn't answer this just now._"
    else:
        text = f"*{title}*\n" + ("\n".join(rows) if rows else f"_{empty}_")
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, SECTION)))


def _money(value: object) -> str:
    return f"${value}" if value not in (None, "") else "—"


def account_overview(overview: AccountOverview) -> tuple[str, list[dict[str, Any]]]:
    """The selected account in one message: details, packages, rates, features, and Switch buttons."""
    current = next((a for a in overview.accounts if a.account_id == overview.current), None)
    name = mrkdwn(current.account) if current else "the selected account"
    details = [
        f"{mrkdwn(d.client_name)} · client {mrkdwn(str(d.client_id or ''), 40)}"
        + (f" · ABN {mrkdwn(d.abn, 40)}" if d.abn else "")
        for d in overview.details or []
    ]
    packages = [
        f"{mrkdwn(p.package_code, 60)}: setup {_money(p.setup_charge)}, monthly {_money(p.monthly_charge)}"
        f" · from {mrkdwn(p.start_date, 20)}" + (f" to {mrkdwn(p.end_date, 20)}" if p.end_date else "")
        for p in overview.packages or []
    ]
    number_rates = [
        f"{mrkdwn(r.label, 80)}: setup {_money(r.setup_charge)}, rental {_money(r.rental_charge)}"
        for r in overview.number_rates or []
    ]
    call_rates = [
        f"code {mrkdwn(r.rate_code, 20)} · {mrkdwn(r.call_type, 20)}: {_money(r.cost_per_minute)}/min"
        + (f", {mrkdwn(r.free_seconds, 10)} s free" if r.free_seconds else "")
        for r in overview.call_rates or []
    ]
    transcription = [
        f"{_money(r.rate)} per minute from {mrkdwn(r.setup_date, 20)}" for r in overview.transcription_rates or []
    ]
    features = [
        f"{mrkdwn(f.description or f.feature_code, 80)}: "
        f"setup {_money(f.setup_charge)}, monthly {_money(f.monthly_charge)}"
        for f in overview.features or []
    ]
    blocks: list[Any] = [
        HeaderBlock(text=plain(f"AVANSER account: {current.account if current else '?'}", 150)),
        _facts("Details", details if overview.details is not None else None, "No details."),
        _facts("Packages", packages if overview.packages is not None else None, "No packages."),
        _facts("Number rates", number_rates if overview.number_rates is not None else None, "No number rates."),
        _facts("Call rates", call_rates if overview.call_rates is not None else None, "No call rates."),
        _facts(
            "Transcription rates",
            transcription if overview.transcription_rates is not None else None,
            "No transcription rates.",
        ),
        _facts("Features", features if overview.features is not None else None, "No features."),
    ]
    others = [a for a in overview.accounts if a.account_id != overview.current]
    if others:
        names = "\n".join(f"*{mrkdwn(a.account)}* ({a.account_id})" for a in others[:20])
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(f"*Other accounts*\n{names}", SECTION))))
        buttons = [
            ButtonElement(
                text=plain(f"Switch to {a.account}", BUTTON),
                action_id=f"{ACCOUNT_SWITCH_ACTION}-{a.account_id}",
                value=str(a.account_id),
            )
            for a in others[:5]
        ]
        blocks.append(ActionsBlock(elements=buttons))
    return truncate(f"AVANSER account {name}", TEXT), _d(blocks)


def template_preview(template: dict[str, Any], preview: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """AVANSER's preview answers a Generic Success (message, code) and no text of the template (seed 001)."""
    name = mrkdwn(template["name"])
    head = f"*{name}* ({mrkdwn(template['type'], 20)}, {mrkdwn(template['country'], 20)})"
    content = str(preview.get("content") or "")  # not in the seed; shown if AVANSER ever sends it
    if content:  # shown as sent: plain_text, so nothing in it is read as markup or formatting
        return truncate(f"{name}: {mrkdwn(content, FIELD)}", TEXT), _d(
            [
                SectionBlock(text=MarkdownTextObject(text=head)),
                SectionBlock(text=PlainTextObject(text=body(content, SECTION, empty="(empty)"), emoji=False)),
            ]
        )
    said = mrkdwn(preview.get("message") or "OK", 1000)
    text = f"{head} exists — AVANSER answered “{said}”. Its preview returns no text to show here."
    return text.replace("*", ""), _d([SectionBlock(text=MarkdownTextObject(text=text))])
