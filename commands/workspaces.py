"""A workspace's own settings (`/numbers settings`), and Slack telling us it removed Switchboard.

The settings modal is for that workspace's admins (and whoever installed Switchboard there); an empty
field goes back to the environment's value, shown as the field's hint. `app_uninstalled` and
`tokens_revoked` (a revoked bot token) hand the workspace to `bot.domain.workspace.uninstalled`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import (
    ConversationSelectElement,
    InputBlock,
    SectionBlock,
    UserMultiSelectElement,
)
from slack_sdk.models.views import View

from bot.domain import workspace
from bot.workspaces import WorkspaceConfig, current_team
from commands.base import Interaction, register_listeners, view
from commands.forms import text_input

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.services import Services

SETTINGS_VIEW = "workspace_settings"


def settings_form(config: WorkspaceConfig, defaults: WorkspaceConfig) -> dict[str, Any]:
    """The modal: admins, approvals channel, alerts channel and caller ID, each with its default as the hint."""

    def channel(block_id: str, label: str, initial: str | None, default: str | None) -> InputBlock:
        return InputBlock(
            block_id=block_id,
            label=label,
            optional=True,
            hint=f"Empty: {f'<#{default}>' if default else 'none'} (the server's setting).",
            element=ConversationSelectElement(
                action_id="value", initial_conversation=initial or None, default_to_current_conversation=False
            ),
        )

    admins_default = ", ".join(f"<@{u}>" for u in sorted(defaults.admins)) or "nobody but the installer"
    return View(
        type="modal",
        callback_id=SETTINGS_VIEW,
        title="Switchboard settings",
        submit="Save",
        close="Cancel",
        blocks=[
            SectionBlock(text="These settings are this workspace's own; other workspaces keep theirs."),
            InputBlock(
                block_id="admins",
                label="Admins",
                optional=True,
                hint=f"Approve numbers, route them, change these settings. Empty: {admins_default}.",
                element=UserMultiSelectElement(action_id="value", initial_users=sorted(config.admins) or None),
            ),
            channel("approvals_channel", "Approvals channel", config.approvals_channel, defaults.approvals_channel),
            channel("alerts_channel", "Alerts channel", config.alerts_channel, defaults.alerts_channel),
            text_input(
                "caller_id",
                "Caller ID for /call",
                initial=config.caller_id,
                hint=f"The number people see when Switchboard rings them. Empty: {defaults.caller_id or 'none'}.",
            ),
        ],
    ).to_dict()


def open_settings(ix: Interaction) -> None:
    """Open the modal with the workspace's settings (admins only)."""
    config = workspace.may_configure(ix.services, ix.user_id)
    ix.open_modal(settings_form(config, ix.services.workspaces.defaults))


async def on_settings(ix: Interaction) -> None:
    values = ix.values
    updated = workspace.save_settings(
        ix.services,
        ix.user_id,
        admins=list(values.get("admins") or []),
        approvals_channel=values.get("approvals_channel"),
        alerts_channel=values.get("alerts_channel"),
        caller_id=values.get("caller_id"),
    )
    await ix.ack()
    admins = ", ".join(f"<@{u}>" for u in sorted(updated.admins)) or "—"
    ix.tell(
        "Saved this workspace's settings: admins "
        f"{admins}; approvals {f'<#{updated.approvals_channel}>' if updated.approvals_channel else '—'}; "
        f"alerts {f'<#{updated.alerts_channel}>' if updated.alerts_channel else '—'}; "
        f"caller ID {updated.caller_id or '—'}."
    )


LISTENERS = [view(SETTINGS_VIEW, on_settings)]


def register(app: AsyncApp, services: Services) -> None:
    register_listeners(app, services, LISTENERS)

    @app.event("app_uninstalled")
    async def app_uninstalled(body: dict[str, Any]) -> None:
        workspace.uninstalled(services, str(body.get("team_id") or current_team()), "uninstalled Switchboard")

    @app.event("tokens_revoked")
    async def tokens_revoked(body: dict[str, Any], event: dict[str, Any]) -> None:
        if (event.get("tokens") or {}).get("bot"):
            workspace.uninstalled(services, str(body.get("team_id") or current_team()), "revoked Switchboard's token")
