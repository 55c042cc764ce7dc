"""The buttons on every call and text alert: Claim (who is handling it) and Call back."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.domain import alerts
from commands.base import Interaction, action, register_listeners
from commands.call import call_result_text
from notifiers.message import CALL_BACK_ACTION, CLAIM_ACTION

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.services import Services


async def on_claim(ix: Interaction) -> None:
    await ix.ack()
    first = alerts.claim(ix.services, int(ix.value), ix.user_id, ix.channel_id)
    if first is not None:
        ix.tell(f"<@{first}> already claimed this one.")


async def on_call_back(ix: Interaction) -> None:
    await ix.ack()

    async def run() -> None:
        placed, masked = await alerts.call_back(ix.services, int(ix.value), ix.user_id, ix.channel_id)
        ix.tell(call_result_text(placed, ix.user_id, masked=masked))

    ix.later(run(), name="call back")


LISTENERS = [action(CLAIM_ACTION, on_claim), action(CALL_BACK_ACTION, on_call_back)]


def register(app: AsyncApp, services: Services) -> None:
    register_listeners(app, services, LISTENERS)
