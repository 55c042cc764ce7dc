"""/vn — temporary virtual numbers (Exotel GreenVN) between two parties, with reminders."""

from __future__ import annotations

from typing import TYPE_CHECKING

from commands.base import CommandFamily

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.services import Services

family = CommandFamily("/vn", "temporary virtual numbers (Exotel)", "new|list|show|extend|release|help …")

family.planned(
    "new",
    "[<a-numbers> to <b-numbers> oneway|twoway for <duration> pin <pin>]",
    "get a virtual number that connects two sets of people without sharing their own numbers.",
)
family.planned("list", "[all]", "your virtual numbers, soonest to expire first.")
family.planned("show", "<id|number>", "who a virtual number connects and when it lapses.")
family.planned("parties", "<id>", "change the numbers, PINs or one-way/two-way use of a virtual number.")
family.planned("swap", "<id>", "swap a virtual number for a new one, keeping its parties.")
family.planned("extend", "<id> <duration>", "keep a virtual number longer (e.g. 2h, 3d).")
family.planned("release", "<id>", "release a virtual number now (asks you to confirm first).")


def register(app: AsyncApp, services: Services) -> None:
    family.register(app, services)
