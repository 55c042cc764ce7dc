"""The buttons on every call and text alert: Claim (who is handling it) and Call back."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.bridge import place_call
from bot.errors import UserError
from bot.inbox import render_alert
from commands.call import call_result_text
from notifiers.message import CALL_BACK_ACTION, CLAIM_ACTION

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncAck, AsyncApp

    from bot.services import Services

log = logging.getLogger(__name__)


def claim_alert(services: Services, alert_id: int, user_id: str) -> str | None:
    """Mark the alert as handled by `user_id` and edit its message; the claimer's id if someone was first."""
    cursor = services.store.execute(
        "UPDATE alerts SET claimed_by = ?, claimed_at = ? WHERE id = ? AND claimed_by IS NULL",
        (user_id, time.time(), alert_id),
    )
    if cursor.rowcount == 0:
        row = services.store.execute("SELECT claimed_by FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return str(row[0]) if row and row[0] else "unknown"
    services.store.audit(user_id, "alert.claim", subject=str(alert_id))
    refresh_alert(services, alert_id)
    return None


def refresh_alert(services: Services, alert_id: int) -> None:
    """Queue an edit of the alert's message to show who claimed or called back."""
    rendered = render_alert(services, alert_id)
    if rendered is None:
        return
    message, outbox_id = rendered
    if outbox_id is not None:  # an alert inside a storm digest has no message of its own
        services.outbox.update(outbox_id, message.text, message.blocks)


def register(app: AsyncApp, services: Services) -> None:
    @app.action(CLAIM_ACTION)
    async def on_claim(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        alert_id = int(body["actions"][0]["value"])
        user_id = body["user"]["id"]
        first = claim_alert(services, alert_id, user_id)
        if first is not None and first != user_id and body.get("response_url"):
            services.outbox.respond(
                body["response_url"],
                {
                    "response_type": "ephemeral",
                    "replace_original": False,
                    "text": f"<@{first}> already claimed this one.",
                },
            )

    @app.action(CALL_BACK_ACTION)
    async def on_call_back(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        alert_id = int(body["actions"][0]["value"])
        user_id = body["user"]["id"]
        url = body.get("response_url", "")

        def tell(text: str) -> None:
            services.outbox.respond(url, {"response_type": "ephemeral", "replace_original": False, "text": text})

        services.tasks.spawn(call_back(services, alert_id, user_id, tell), name="call back", tell_user=tell)


async def call_back(services: Services, alert_id: int, user_id: str, tell: Callable[[str], object]) -> None:
    """Ring the clicker, then the caller of the alert, showing the number the caller had called."""
    row = services.store.execute("SELECT caller, tracking FROM alerts WHERE id = ?", (alert_id,)).fetchone()
    if row is None:
        raise UserError("I can't find that alert any more.")
    caller, tracking = row
    if not caller:
        raise UserError("The caller withheld their number, so I can't call them back.")
    placed = await place_call(services, requester=user_id, customer_text=caller, tracking=tracking, via="alert")
    services.store.execute(
        "UPDATE alerts SET called_back_by = ?, called_back_at = ? WHERE id = ?", (user_id, time.time(), alert_id)
    )
    refresh_alert(services, alert_id)
    tell(call_result_text(placed, user_id))
