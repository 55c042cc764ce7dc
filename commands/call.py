"""/call — click-to-call: ring your phone, then the customer, and join the two (DataTechLabs)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import phonenumbers

from bot.bridge import (
    business_number,
    check_bridge,
    check_destination,
    check_rate,
    clear_phone,
    number_they_called,
    phone_for,
    place_call,
    register_phone,
    registered_phone,
)
from bot.errors import UserError
from bot.phone import national, parse_number
from commands.base import CommandFamily, CommandRequest

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncAck, AsyncApp

    from bot.services import Services

family = CommandFamily("/call", "click-to-call", "<number> [@user] [-- note] | phone [<number>|clear] | help")

# A phone number: digits, spaces, dashes, dots, brackets, optionally a leading +.
PHONE_LIKE = r"^\+?[\d\s().-]{6,}(\s|<|$)"
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


def call_result_text(placed: Any, requester: str) -> str:
    whose = "your phone" if placed.rep == requester else f"<@{placed.rep}>'s phone"
    return (
        f"📞 Ringing {whose} ({national(placed.rep_phone)}) now. When it's answered, I'll call "
        f"{national(placed.customer)}, who will see {national(placed.leg_b_caller_id)}."
    )


@family.set_default(PHONE_LIKE, usage="<number> [@user] [-- note]")
async def call_number(request: CommandRequest) -> None:
    """ring your phone (or @user's), then the number, and connect you; the customer sees the team's number."""
    services = request.services
    number_text, target, note = parse_call(request.args)
    customer = parse_number(number_text, services.settings.country)
    rep = target or request.user_id
    # The quick checks answer in the ack; the call itself happens after it.
    check_destination(services, customer)
    check_bridge(services, request.user_id, rep)
    check_rate(services, request.user_id)
    business_number(services, number_they_called(services, customer))
    who = "you" if rep == request.user_id else f"<@{rep}>"
    await request.reply(f"Calling {who} now, then {national(customer)}…")
    request.later(_call_and_report(request, customer, rep, note), name="call")


async def _call_and_report(request: CommandRequest, customer: str, rep: str, note: str | None) -> None:
    services = request.services
    placed = await place_call(services, requester=request.user_id, customer_text=customer, rep=rep, note=note)
    services.outbox.respond(
        request.response_url, {"response_type": "ephemeral", "text": call_result_text(placed, request.user_id)}
    )
    if rep != request.user_id:
        why = f" — “{note}”" if note else ""
        services.outbox.post(
            rep,
            f"📞 <@{request.user_id}> asked you to take a call with {national(customer)}{why}. "
            f"Your phone ({national(placed.rep_phone)}) is ringing now.",
        )


@family.subcommand("phone", "[<number>|clear]")
async def phone(request: CommandRequest) -> None:
    """show, set or clear the phone Switchboard rings for your calls."""
    services, arg = request.services, request.args.strip()
    if arg.lower() == "clear":
        removed = clear_phone(services, request.user_id)
        await request.reply("Removed your phone number." if removed else "You had no phone number registered.")
        return
    if arg:
        saved = register_phone(services, request.user_id, arg)
        await request.reply(f"Saved: Switchboard will ring {national(saved)} for your calls.")
        return
    mine = registered_phone(services, request.user_id)
    if mine:
        await request.reply(
            f"Switchboard rings {national(mine)} for your calls. Change it with "
            "`/call phone <number>`, or remove it with `/call phone clear`."
        )
        return
    await request.reply("Looking at your Slack profile…")

    async def from_profile() -> None:
        found = await phone_for(services, request.user_id, requester=request.user_id)
        services.outbox.respond(
            request.response_url,
            {
                "response_type": "ephemeral",
                "text": "No phone is registered, so Switchboard uses the one on your Slack profile: "
                f"{national(found)}. "
                "Register another with `/call phone <number>`.",
            },
        )

    request.later(from_profile(), name="call phone")


def numbers_in(text: str, country: str) -> list[str]:
    """E.164 numbers found in free text (a message), in order, without repeats."""
    found: list[str] = []
    for match in phonenumbers.PhoneNumberMatcher(text, country):
        number = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        if number not in found:
            found.append(number)
    return found


def register(app: AsyncApp, services: Services) -> None:
    family.register(app, services)

    @app.shortcut(SHORTCUT)
    async def call_from_message(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        message = body.get("message") or {}
        numbers = numbers_in(str(message.get("text") or ""), services.settings.country)[:5]
        url = body["response_url"]
        if not numbers:
            services.outbox.respond(
                url, {"response_type": "ephemeral", "text": "I couldn't find a phone number in that message."}
            )
            return
        buttons = [
            {
                "type": "button",
                "action_id": f"{CALL_NUMBER_ACTION}-{i}",
                "value": number,
                "text": {"type": "plain_text", "text": f"Call {national(number)}"[:75]},
            }
            for i, number in enumerate(numbers)
        ]
        services.outbox.respond(
            url,
            {
                "response_type": "ephemeral",
                "text": "Which number should I call?",
                "blocks": [
                    {
                        "type": "section",
                        "text": {"type": "mrkdwn", "text": "Which number should I call? I'll ring your phone first."},
                    },
                    {"type": "actions", "block_id": "call-numbers", "elements": buttons},
                ],
            },
        )

    @app.action(re.compile(f"^{CALL_NUMBER_ACTION}-\\d+$"))
    async def call_picked_number(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        user = body["user"]["id"]
        number = body["actions"][0]["value"]
        url = body.get("response_url", "")

        async def call() -> None:
            placed = await place_call(services, requester=user, customer_text=number, via="message shortcut")
            services.outbox.respond(
                url, {"response_type": "ephemeral", "replace_original": True, "text": call_result_text(placed, user)}
            )

        services.tasks.spawn(
            call(),
            name="call from message",
            tell_user=lambda text: services.outbox.respond(url, {"response_type": "ephemeral", "text": text}),
        )
