"""The App Home tab: what Switchboard can do, from the same help table as the commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import DividerBlock, HeaderBlock, MarkdownTextObject, SectionBlock
from slack_sdk.models.views import View

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.services import Services
    from commands.base import CommandFamily


def home_view(families: tuple[CommandFamily, ...]) -> dict[str, Any]:
    blocks: list[Any] = [
        HeaderBlock(text="Switchboard"),
        SectionBlock(
            text=MarkdownTextObject(
                text="Tracking numbers, call and text alerts, click-to-call and temporary virtual numbers "
                "— without leaving Slack."
            )
        ),
    ]
    for family in families:
        blocks.append(DividerBlock())
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f"*{family.command}* — {family.title}")))
        lines = "\n".join(family.line(sub) for sub in family.entries())
        blocks.append(SectionBlock(text=MarkdownTextObject(text=lines[:3000])))
    return View(type="home", blocks=blocks).to_dict()


def register(app: AsyncApp, services: Services) -> None:
    from commands import FAMILIES

    view = home_view(FAMILIES)

    @app.event("app_home_opened")
    async def publish_home(event: dict[str, Any], client: Any) -> None:
        if event.get("tab", "home") != "home":
            return
        # process_before_response: the event is acked when this returns, so publish in the background.
        services.tasks.spawn(client.views_publish(user_id=event["user"], view=view), name="home tab")
