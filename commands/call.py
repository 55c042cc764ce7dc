"""/call — click-to-call: ring your phone, then the customer, and join the two (DataTechLabs)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import phonenumbers

from bot.domain import calls, phones
from bot.errors import UserError
from bot.phone import national
from commands.base import CommandFamily, CommandRequest, Interaction, action, prefixed, register_listeners, shortcut
from notifiers.message import number_text

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.services import Services

family = CommandFamily("/call", "click-to-call", "<number> [@user] [-- note] | phone [<number>|clear] | help")

# A phone number: digits, spaces, dashes, dots, brackets, optionally a leading +.
PHONE_LIKE = r"^\+?\d[\d\s().-]*(\s|<|$)"  # short codes too: the dialling rules refuse them with a reason
MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
CALL_NUMBER_ACTION = "call_number"
SHORTCUT = "call_number_in_message"


def parse_call(args: str) -> tuple[str, str | None, str | None]:
    """`+61 412 345 678 <@U123|casey> -- about the outage` → (number text, user id, note)."""
    text, _, note = args.partition(" -- ")
    if text.strip().endswith("--"):
        text = text.strip()[:-2]
    mention = MENTION.search(text)
    user = mention.group(1) if mention else None
    number = MENTION.sub(" ", text).strip()
    if not number:
        raise UserError("Which number should I call? For example `/call 0410 203 045`.")
    return number, user, note.strip() or None


def call_result_text(placed: Any, requester: str, *, masked: bool = False) -> str:
    """What the person is told once DataTechLabs took the call; a masked alert's caller stays masked."""
    whose = "your phone" if placed.rep == requester else f"<@{placed.rep}>'s phone"
    return (
        f"📞 Ringing {whose} ({national(placed.rep_phone)}) now. When it's answered, I'll call "
        f"{number_text(placed.customer, mask=masked)}, who will see {national(placed.leg_b_caller_id)}."
    )


@family.set_default(PHONE_LIKE, usage="<number> [@user] [-- note]")
async def call_number(request: CommandRequest) -> None:
    """ring your phone (or @user's), then the number, and connect you; the customer sees the team's number."""
    services = request.services
    number_text, target, note = parse_call(request.args)
    rep = target or request.user_id
    customer = calls.check_call(services, requester=request.user_id, customer_text=number_text, rep=rep)
    who = "you" if rep == request.user_id else f"<@{rep}>"
    await request.reply(f"Calling {who} now, then {national(customer)}…")

    async def run() -> None:
        placed = await calls.place_call(services, requester=request.user_id, customer_text=customer, rep=rep, note=note)
        request.tell(call_result_text(placed, request.user_id))

    request.later(run(), name="call")


@family.subcommand("phone", "[<number>|clear]")
async def phone(request: CommandRequest) -> None:
    """show, set or clear the phone Switchboard rings for your calls."""
    services, arg = request.services, request.args.strip()
    if arg.lower() == "clear":
        removed = phones.clear_phone(services, request.user_id)
        await request.reply("Removed your phone number." if removed else "You had no phone number registered.")
        return
    if arg:
        saved = phones.register_phone(services, request.user_id, arg)
        await request.reply(f"Saved: Switchboard will ring {national(saved)} for your calls.")
        return
    mine = phones.registered_phone(services, request.user_id)
    if mine:
        await request.reply(
            f"Switchboard rings {national(mine)} for your calls. Change it with "
            "`/call phone <number>`, or remove it with `/call phone clear`."
        )
        return

    async def from_profile() -> tuple[str, None]:
        found = await phones.phone_for(services, request.user_id, requester=request.user_id)
        return (
            "No phone is registered, so Switchboard uses the one on your Slack profile: "
            f"{national(found)}. Register another with `/call phone <number>`.",
            None,
        )

    await request.answer_later("Looking at your Slack profile…", from_profile, name="call phone")


def numbers_in(text: str, country: str) -> list[str]:
    """E.164 numbers found in free text (a message), in order, without repeats."""
    found: list[str] = []
    for match in phonenumbers.PhoneNumberMatcher(text, country):
        number = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        if number not in found:
            found.append(number)
    return found


async def on_shortcut(ix: Interaction) -> None:
    await ix.ack()
    found = numbers_in(str((ix.body.get("message") or {}).get("text") or ""), ix.services.settings.country)[:5]
    if not found:
        ix.tell("I couldn't find a phone number in that message.")
        return
    ix.tell(*pick_number(found))


def pick_number(numbers: list[str]) -> tuple[str, list[dict[str, Any]]]:
    buttons = [
        {
            "type": "button",
            "action_id": f"{CALL_NUMBER_ACTION}-{i}",
            "value": number,
            "text": {"type": "plain_text", "text": f"Call {national(number)}"[:75]},
        }
        for i, number in enumerate(numbers)
    ]
    text = "Which number should I call? I'll ring your phone first."
    return "Which number should I call?", [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "actions", "block_id": "call-numbers", "elements": buttons},
    ]


async def on_pick(ix: Interaction) -> None:
    await ix.ack()

    async def run() -> None:
        placed = await calls.place_call(
            ix.services, requester=ix.user_id, customer_text=ix.value, via="message shortcut"
        )
        ix.tell(call_result_text(placed, ix.user_id), replace=True)

    ix.later(run(), name="call from message")


LISTENERS = [shortcut(SHORTCUT, on_shortcut), action(prefixed(CALL_NUMBER_ACTION), on_pick)]


def register(app: AsyncApp, services: Services) -> None:
    family.register(app, services)
    register_listeners(app, services, LISTENERS)
