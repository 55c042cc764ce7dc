"""/numbers — AVANSER tracking numbers: search, request, track, change and release them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from commands.base import CommandFamily

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.services import Services

family = CommandFamily("/numbers", "tracking numbers (AVANSER)", "search|new|list|show|route|help …")

family.planned(
    "search",
    "mobile|geo|tollfree|freecall | near <address> [radius <km>] | at <lat>,<lng> | prefix <number> "
    "| szu <name> [in <country>]",
    "find numbers you can get, each with a Request button.",
)
family.planned("new", "", "open a form to request a new tracking number (transfer, voicemail or prompt).")
family.planned("list", "", "list the active tracking numbers.")
family.planned("show", "<number>", "show how a tracking number is set up and where its alerts go.")
family.planned("edit", "<number>", "change a tracking number's answer point, recording or reporting.")
family.planned("release", "<number>", "give a tracking number back (asks you to confirm first).")
family.planned("route", "<number> #channel", "choose the channel a number's calls and texts are posted to.")
family.planned("requests", "", "recent number requests and where each one is up to.")
family.planned("templates", "", "list, preview, create and delete email/SMS report templates.")
family.planned("accounts", "", "list AVANSER accounts and switch between them (agency users).")


def register(app: AsyncApp, services: Services) -> None:
    family.register(app, services)
