"""The App Home tab: each person's dashboard (`bot.domain.home`), and what its buttons do.

The Home is published when it is opened and again — debounced, through the outbox — when something it
shows changes (`bot.domain.refresh`). Its buttons act like their twins elsewhere: Extend and Release
like a lease reminder's, Approve and Reject like the approvals channel's (the `numbers` listeners),
Claim and Call back like an alert's — from the Home, for admins and whoever asked for the number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.domain import alerts, people, phones, refresh, vn
from commands.base import Interaction, action, prefixed, register_listeners, view
from commands.call import call_result_text
from commands.home_views import PHONE_VIEW, phone_form
from notifiers.home import (
    HOME_CALL_BACK_ACTION,
    HOME_CLAIM_ACTION,
    HOME_EXTEND_ACTION,
    HOME_PHONE_ACTION,
    HOME_RELEASE_ACTION,
)

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.services import Services


async def on_opened(services: Services, user: str) -> None:
    """Learn the viewer's zone (for "today" on their Home), then publish their Home now."""
    await people.timezone(services, user)
    refresh.opened(services, user)


async def on_claim(ix: Interaction) -> None:
    await ix.ack()
    first = alerts.claim(ix.services, int(ix.value), ix.user_id, None)
    if first is not None:
        ix.tell(f"<@{first}> already claimed this one.")


async def on_call_back(ix: Interaction) -> None:
    await ix.ack()

    async def run() -> None:
        placed, masked = await alerts.call_back(ix.services, int(ix.value), ix.user_id, None)
        ix.tell(call_result_text(placed, ix.user_id, masked=masked))

    ix.later(run(), name="call back from the Home")


async def on_extend(ix: Interaction) -> None:
    await ix.ack()
    allocation_id, duration = ix.value.split(":")
    allocation = vn.get(ix.services, allocation_id)
    vn.extend(ix.services, allocation, vn.parse_duration(duration), ix.user_id)  # the Home shows the new end


async def on_release(ix: Interaction) -> None:
    await ix.ack()
    ix.later(vn.release_now(ix.services, ix.value, ix.user_id), name="vn release from the Home")


async def on_change_phone(ix: Interaction) -> None:
    await ix.ack()
    ix.open_modal(phone_form(phones.registered_phone(ix.services, ix.user_id)))


async def on_phone(ix: Interaction) -> None:
    text = str(ix.values.get("phone") or "").strip()
    if text:
        phones.register_phone(ix.services, ix.user_id, text, field="phone")
    else:
        phones.clear_phone(ix.services, ix.user_id)
    await ix.ack()


LISTENERS = [
    action(HOME_CLAIM_ACTION, on_claim),
    action(HOME_CALL_BACK_ACTION, on_call_back),
    action(prefixed(HOME_EXTEND_ACTION), on_extend),
    action(HOME_RELEASE_ACTION, on_release),
    action(HOME_PHONE_ACTION, on_change_phone),
    view(PHONE_VIEW, on_phone),
]


def register(app: AsyncApp, services: Services) -> None:
    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home":
            return
        # process_before_response: the event is acked when this returns, so publish in the background.
        services.tasks.spawn(on_opened(services, str(event["user"])), name="home tab")

    register_listeners(app, services, LISTENERS)
