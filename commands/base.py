"""A slash command family (`/numbers`, `/vn`, `/call`): its sub-commands, its help, its dispatch.

Each sub-command is an async handler whose docstring is its help text (errbot's rule: one place,
no drift). A sub-command a later version will bring is declared with `planned()` so that help
already says what it will do; using it says plainly that it is not switched on yet.

Handlers get a `CommandRequest`: they parse, `ack` within Slack's 3 seconds, and put slow work in
`request.later(...)` — the Bolt app runs with process_before_response, so the HTTP answer waits
for the handler to return.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.models.blocks import ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from bot.errors import NotAvailable, UserError

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

Handler = Callable[["CommandRequest"], Awaitable[None]]


@dataclass
class CommandRequest:
    """One slash command as a handler sees it."""

    services: Services
    command: str
    name: str  # the sub-command word, "" for the family's default
    args: str  # the text after the sub-command
    user_id: str
    channel_id: str
    response_url: str
    trigger_id: str
    ack: AsyncAck
    respond: AsyncRespond
    body: dict[str, Any]

    async def reply(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """Acknowledge with a message only the user sees."""
        await self.ack(text=text, blocks=blocks, response_type="ephemeral")

    async def answer_later(
        self, waiting: str, answer: Callable[[], Awaitable[tuple[str, list[dict[str, Any]] | None]]]
    ) -> None:
        """Ack with `waiting` now; post what `answer()` makes (text, blocks) when it is ready, only to the user."""
        await self.reply(waiting)

        async def run() -> None:
            text, blocks = await answer()
            body: dict[str, Any] = {"response_type": "ephemeral", "text": text}
            if blocks:
                body["blocks"] = blocks
            self.services.outbox.respond(self.response_url, body)

        self.later(run())

    def later(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> None:
        """Run slow work after the ack; its failure is told to the user through the response_url."""
        self.services.tasks.spawn(
            coro,
            name=name or f"{self.command} {self.name}",
            tell_user=lambda text: self.services.outbox.respond(
                self.response_url, {"response_type": "ephemeral", "text": text}
            ),
        )


@dataclass(frozen=True)
class Subcommand:
    name: str
    usage: str
    summary: str
    handler: Handler | None  # None: planned, listed in help but not switched on


class CommandFamily:
    def __init__(self, command: str, title: str, usage_hint: str) -> None:
        self.command = command
        self.title = title
        self.usage_hint = usage_hint  # also the manifest's usage_hint
        self.subcommands: dict[str, Subcommand] = {}
        self.default: Subcommand | None = None
        self._default_accepts: re.Pattern[str] | None = None

    # -- declaring ---------------------------------------------------------------------------

    def subcommand(self, name: str, usage: str = "") -> Callable[[Handler], Handler]:
        """Register a handler for `/<command> <name> …`; its docstring is the help line."""

        def decorator(handler: Handler) -> Handler:
            summary = inspect.cleandoc(handler.__doc__ or "").strip()
            if not summary:
                raise ValueError(f"{self.command} {name}: a handler's docstring is its help text")
            self.subcommands[name] = Subcommand(name, usage, summary, handler)
            return handler

        return decorator

    def planned(self, name: str, usage: str, summary: str) -> None:
        """Declare a sub-command that help describes but this version does not run yet."""
        self.subcommands.setdefault(name, Subcommand(name, usage, summary, None))

    def planned_default(self, usage: str, summary: str, accepts: str) -> None:
        """Declare what `/<command> <text>` does when <text> matches `accepts` (e.g. a number)."""
        self.default = Subcommand("", usage, summary, None)
        self._default_accepts = re.compile(accepts)

    def set_default(self, accepts: str, usage: str = "") -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            self.default = Subcommand("", usage, inspect.cleandoc(handler.__doc__ or ""), handler)
            self._default_accepts = re.compile(accepts)
            return handler

        return decorator

    # -- help ----------------------------------------------------------------------------------

    def line(self, sub: Subcommand) -> str:
        words = " ".join(part for part in (self.command, sub.name, sub.usage) if part)
        # mrkdwn reads <…> as a link: escape as Slack asks (&lt; &gt; &amp;).
        words = words.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        soon = "" if sub.handler is not None else " _(coming soon)_"
        return f"`{words}` — {sub.summary.splitlines()[0]}{soon}"

    def entries(self) -> list[Subcommand]:
        entries = list(self.subcommands.values())
        if self.default is not None:
            entries.insert(0, self.default)
        return entries

    def help_text(self) -> str:
        lines = [f"{self.command} — {self.title}"]
        lines += [self.line(sub) for sub in self.entries()]
        lines.append(f"`{self.command} help` — this list")
        return "\n".join(lines)

    def help_blocks(self, intro: str | None = None) -> list[dict[str, Any]]:
        blocks: list[Any] = []
        if intro:
            blocks.append(SectionBlock(text=MarkdownTextObject(text=intro)))
        blocks.append(HeaderBlock(text=f"{self.command} — {self.title}"))
        body = "\n".join(self.line(sub) for sub in self.entries())
        blocks.append(SectionBlock(text=MarkdownTextObject(text=body[:3000])))
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"`{self.command} help` shows this list again.")]))
        return [b.to_dict() for b in blocks]

    # -- dispatch ------------------------------------------------------------------------------

    def register(self, app: AsyncApp, services: Services) -> None:
        async def on_command(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
            await self.dispatch(services, ack, body, respond)

        app.command(self.command)(on_command)

    def route(self, text: str) -> tuple[Subcommand | None, str, str]:
        """(sub-command, its word, the rest) for the text typed after the command."""
        text = text.strip()
        word, _, rest = text.partition(" ")
        sub = self.subcommands.get(word.lower())
        if sub is not None:
            return sub, word.lower(), rest.strip()
        if self.default is not None and self._default_accepts and self._default_accepts.match(text):
            return self.default, "", text
        return None, word, rest

    async def dispatch(self, services: Services, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        text = str(body.get("text") or "")
        if text.strip().lower() in ("", "help", "-h", "--help", "?"):
            await ack(text=self.help_text(), blocks=self.help_blocks(), response_type="ephemeral")
            return
        sub, word, rest = self.route(text)
        if sub is None:
            intro = f"I don't know `{self.command} {word}`. Here is what `{self.command}` can do:"
            await ack(text=intro, blocks=self.help_blocks(intro), response_type="ephemeral")
            return
        request = CommandRequest(
            services=services,
            command=self.command,
            name=word,
            args=rest,
            user_id=str(body.get("user_id", "")),
            channel_id=str(body.get("channel_id", "")),
            response_url=str(body.get("response_url", "")),
            trigger_id=str(body.get("trigger_id", "")),
            ack=ack,
            respond=respond,
            body=body,
        )
        try:
            if sub.handler is None:
                usage = self.line(sub).split("`")[1].replace("&lt;", "<").replace("&gt;", ">")
                raise NotAvailable(
                    f"`{usage}` isn't switched on in this version of Switchboard yet. It will: {sub.summary}"
                )
            await sub.handler(request)
        except UserError as exc:
            if ack.response is None:
                await request.reply(str(exc))
            else:
                services.outbox.respond(request.response_url, {"response_type": "ephemeral", "text": str(exc)})
