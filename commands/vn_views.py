"""Block Kit for /vn: the new-allocation, parties and extend forms, and the answers (slack_sdk.models)."""

from __future__ import annotations

import json
from datetime import tzinfo
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    CheckboxesElement,
    ConfirmObject,
    ConversationFilter,
    ConversationSelectElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.domain.vn import Allocation, when
from bot.phone import national
from bot.telco.exotel import REGIONS
from commands.forms import select, text_input
from notifiers.allocations import RELEASE_ACTION
from notifiers.text import SECTION, TEXT, mrkdwn, truncate, zoned

NEW_VIEW, PARTIES_VIEW, EXTEND_VIEW = "vn_new", "vn_parties", "vn_extend"


def vn_number(green_vn: str | None) -> str:
    """A virtual number Exotel gave, for mrkdwn: national form, or what Exotel sent, escaped."""
    return mrkdwn(national(green_vn or ""))


def allocated_text(allocation: Allocation) -> str:
    return (
        f"✅ {vn_number(allocation.green_vn)} is yours (#{allocation.id}) until "
        f"{when(allocation.expires_at)}. Its calls are posted in the thread in <#{allocation.channel}>; "
        "I'll remind you before it ends."
    )


def allocations_list(found: list[Allocation], everyone: bool) -> tuple[str, list[dict[str, Any]]]:
    if not found:
        text = "No virtual numbers are active. Get one with `/vn new`."
        return text, [SectionBlock(text=MarkdownTextObject(text=text)).to_dict()]
    lines = [
        f"*#{a.id}* {vn_number(a.green_vn)} — {len(a.parties['aparty_numbers'])} ⇄ "
        f"{len(a.parties['bparty_numbers'])} people · until {when(a.expires_at)}"
        + (f" · <@{a.owner}>" if everyone else "")
        for a in found
    ]
    return f"{len(found)} active virtual numbers", [
        SectionBlock(text=MarkdownTextObject(text=truncate("\n".join(lines), SECTION))).to_dict()
    ]


def release_question(allocation: Allocation) -> tuple[str, list[dict[str, Any]]]:
    vn = vn_number(allocation.green_vn)
    text = f"Release *{vn}* (#{allocation.id}) now? Its parties can no longer reach each other through it."
    button = ButtonElement(
        text="Release now",
        action_id=RELEASE_ACTION,
        value=str(allocation.id),
        style="danger",
        confirm=ConfirmObject(
            title="Release it now?", text=f"{vn} stops working at once.", confirm="Release", deny="Keep it"
        ),
    )
    blocks = [SectionBlock(text=MarkdownTextObject(text=text)), ActionsBlock(elements=[button])]
    return truncate(f"Release {vn} now?", TEXT), [b.to_dict() for b in blocks]


USAGES = [("twoway", "Both sides can call each other"), ("oneway", "Only the first side can call")]


def new_form(channel: str) -> dict[str, Any]:
    blocks = [
        text_input("aparty", "First side: phone numbers", optional=False, hint="Comma-separated, e.g. +919176226528"),
        text_input("bparty", "Other side: phone numbers", optional=False),
        select("usage", "Who can call", USAGES, "twoway", optional=False),
        text_input("duration", "Keep it for", optional=False, initial="2h", hint="e.g. 45m, 2h, 3d"),
        text_input("apins", "First side PINs", hint="Lets others join that side by entering the PIN; 4–6 digits."),
        text_input("bpins", "Other side PINs"),
        text_input("greenvn", "A specific virtual number"),
        select("region", "Region", [(r, r) for r in REGIONS], optional=True),
        text_input("pin_code", "Near this pin code"),
        select("number_type", "Number type", [("mobile", "Mobile"), ("landline", "Landline")], optional=True),
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
        text_input("flow_id", "Call flow id", hint="Only when your Exotel account has several call flows."),
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


def parties_form(allocation: Allocation) -> dict[str, Any]:
    p = allocation.parties

    def joined(values: list[Any]) -> str:
        return ", ".join(str(v) for v in values or [] if v is not None)

    blocks = [
        text_input("aparty", "First side: phone numbers", optional=False, initial=joined(p.get("aparty_numbers", []))),
        text_input("bparty", "Other side: phone numbers", optional=False, initial=joined(p.get("bparty_numbers", []))),
        text_input("apins", "First side PINs", initial=joined(p.get("aparty_pins", []))),
        text_input("bpins", "Other side PINs", initial=joined(p.get("bparty_pins", []))),
        select("usage", "Who can call", USAGES, allocation.usage, optional=False),
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


def extend_form(allocation_id: int, expires_at: float | None = None, tz: tzinfo | None = None) -> dict[str, Any]:
    """The Extend… form; its hint (plain text: no date token) says when the lease ends now, in the viewer's zone."""
    hint = "e.g. 45m, 2h, 3d"
    if expires_at is not None:
        hint += f". It ends {zoned(expires_at, tz)} now" + (" (your time)." if tz is not None else ".")
    return View(
        type="modal",
        callback_id=EXTEND_VIEW,
        title="Keep it longer",
        submit="Extend",
        close="Cancel",
        private_metadata=json.dumps({"id": allocation_id}),
        blocks=[text_input("duration", "Extend by", optional=False, initial="4h", hint=hint)],
    ).to_dict()
