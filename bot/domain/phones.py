"""The phones Switchboard rings for each person's calls: registered with `/call phone`, else the Slack profile's.

SQLite (`user_phones`) is the truth; a profile phone is read from Slack each time it is needed.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from bot.domain import refresh
from bot.domain.dialling import CallNotAllowed, check_dialable, countries, parse_dialable
from bot.errors import UserError
from bot.phone import InvalidNumber, parse_number
from bot.workspaces import current_team

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


class NoPhone(UserError):
    """The person to ring has no phone Switchboard can use."""


def registered_phone(services: Services, user_id: str) -> str | None:
    """The phone `user_id` registered in this workspace, if any."""
    row = services.store.execute(
        "SELECT phone FROM user_phones WHERE user_id = ? AND team_id = ?", (user_id, current_team())
    ).fetchone()
    return str(row[0]) if row else None


def _allowed(services: Services) -> frozenset[str]:
    return countries(services.settings.call_countries, services.settings.country)


def register_phone(services: Services, user_id: str, text: str, *, field: str | None = None) -> str:
    """Validate and store the phone Switchboard rings for `user_id`; returns it in E.164 (`field`: the form's input)."""
    try:
        phone = parse_dialable(text, services.settings.country, _allowed(services))
    except CallNotAllowed as exc:
        raise CallNotAllowed(f"That can't be your phone for calls: {exc}", field=field) from None
    services.store.execute(
        # One phone per Slack user id (ids are unique across workspaces); the latest registration's workspace.
        "INSERT INTO user_phones (user_id, phone, updated_at, team_id) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(user_id) DO UPDATE SET phone = excluded.phone, updated_at = excluded.updated_at,"
        " team_id = excluded.team_id",
        (user_id, phone, time.time(), current_team()),
    )
    services.store.audit(user_id, "phone.register", subject=user_id, team=current_team())
    refresh.changed(services, user_id)
    return phone


def clear_phone(services: Services, user_id: str) -> bool:
    cursor = services.store.execute(
        "DELETE FROM user_phones WHERE user_id = ? AND team_id = ?", (user_id, current_team())
    )
    if cursor.rowcount:
        services.store.audit(user_id, "phone.clear", subject=user_id, team=current_team())
        refresh.changed(services, user_id)
    return bool(cursor.rowcount)


def how_to_register(who: str = "you") -> str:
    if who == "you":
        return (
            "I don't have a phone number for you. Register the phone Switchboard should ring with "
            "`/call phone +61 412 345 678` (or add a phone number to your Slack profile)."
        )
    return (
        f"I don't have a phone number for <@{who}>. They can register one with `/call phone <number>` "
        "(or add a phone number to their Slack profile)."
    )


async def phone_for(services: Services, user_id: str, *, requester: str) -> str:
    """The registered phone, else the Slack profile's phone if it parses; NoPhone with guidance otherwise."""
    phone = registered_phone(services, user_id)
    if phone:
        try:
            check_dialable(phone, _allowed(services))  # the rules may have changed since it was registered
        except CallNotAllowed as exc:
            raise CallNotAllowed(f"The phone registered for calls can't be rung: {exc}") from None
        return phone
    try:
        profile = await services.slack.users_profile_get(user=user_id)
        text = str((profile.get("profile") or {}).get("phone") or "")
    except Exception as exc:  # Slack unreachable or no users.profile:read: same guidance
        log.warning("could not read the Slack profile of %s: %s", user_id, type(exc).__name__)
        text = ""
    if text:
        try:
            profile_phone = parse_number(text, services.settings.country)
        except InvalidNumber:
            profile_phone = None
        if profile_phone:
            try:
                check_dialable(profile_phone, _allowed(services))
            except CallNotAllowed as exc:
                raise CallNotAllowed(
                    f"The phone on the Slack profile can't be rung: {exc} Register another with `/call phone <number>`."
                ) from None
            return profile_phone
    raise NoPhone(how_to_register("you" if user_id == requester else user_id))
