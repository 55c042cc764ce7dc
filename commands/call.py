"""/call — click-to-call: ring your phone, then the customer, and join the two (DataTechLabs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from commands.base import CommandFamily

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.services import Services

family = CommandFamily("/call", "click-to-call", "<number> [@user] [-- note] | phone [<number>|clear] | help")

# A phone number: digits, spaces, dashes, dots, brackets, optionally a leading +.
PHONE_LIKE = r"^\+?[\d\s().-]{6,}(\s|$)"

family.planned_default(
    "<number> [@user] [-- note]",
    "ring your phone (or @user's), then the number, and connect you; the customer sees the team's number.",
    PHONE_LIKE,
)
family.planned("phone", "[<number>|clear]", "show, set or clear the phone Switchboard rings for your calls.")


def register(app: AsyncApp, services: Services) -> None:
    family.register(app, services)
