"""What every Slack listener shares: one `Interaction` object, one place refusals are shown, and command families.

Every slash command, button, shortcut and modal submission reaches its handler as an `Interaction`
(a `CommandRequest` for slash commands): who did it, where, and how to answer — `reply` in the ack,
`tell` later (the response_url, the still-open modal, or a DM), `open_modal` while the trigger_id is
fresh (Slack gives 3 s), `later` for work after the ack. Handlers parse, ack, call one domain
function and render; a `UserError` they raise is shown by `Interaction.refuse` — under the form's
input when a modal is submitted (before it closes), else as a message only the person sees. Nothing
else catches it.

A command family (`/numbers`, `/vn`, `/call`) lists its sub-commands; each is an async handler
whose docstring is its help text (errbot's rule: one place, no drift). The Bolt app runs with
process_before_response, so the HTTP answer waits for the handler to return: slow work goes in
`later`.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.models.blocks import ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock
from slack_sdk.models.views import View

from bot.errors import FormErrors, NotAvailable, UserError

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

DOUBLE_CLICK_SECONDS = 10.0  # the same button clicked again within this is the same click


def notice_view(title: str, text: str) -> dict[str, Any]:
    """A modal that only says something: while a provider answers, or why it couldn't."""
    return View(
        type="modal", title=title[:24], close="Close", blocks=[SectionBlock(text=MarkdownTextObject(text=text))]
    ).to_dict()


def section(text: str) -> dict[str, Any]:
    """A mrkdwn section block."""
    return SectionBlock(text=MarkdownTextObject(text=text[:3000])).to_dict()


def form_values(view: dict[str, Any]) -> dict[str, Any]:
    """The form's answers by block id: text, the chosen option's value, checkbox values, a conversation."""
    out: dict[str, Any] = {}
    for block_id, actions in (view.get("state") or {}).get("values", {}).items():
        state: dict[str, Any] = actions.get("value") or next(iter(actions.values()), {})
        if "selected_option" in state:
            out[block_id] = (state.get("selected_option") or {}).get("value")
        elif "selected_options" in state:
            out[block_id] = [o.get("value") for o in state.get("selected_options") or []]
        elif "selected_users" in state:
            out[block_id] = list(state.get("selected_users") or [])
        elif "selected_conversation" in state:
            out[block_id] = state.get("selected_conversation")
        else:
            value = state.get("value")
            out[block_id] = value.strip() if isinstance(value, str) else value
    return out


@dataclass
class Interaction:
    """One thing a person did in Slack, and the ways to answer them."""

    services: Services
    ack: AsyncAck
    body: dict[str, Any]
    user_id: str
    channel_id: str  # "" when Slack gave none (a modal submission)
    response_url: str  # "" when Slack gave none
    trigger_id: str
    view_open: bool = False  # a submitted modal was kept open to show progress in it

    @classmethod
    def of(cls, services: Services, ack: AsyncAck, body: dict[str, Any]) -> Interaction:
        user = body.get("user")
        channel = body.get("channel")
        urls = body.get("response_urls") or []
        return cls(
            services=services,
            ack=ack,
            body=body,
            user_id=str(user.get("id", "") if isinstance(user, dict) else body.get("user_id", "")),
            channel_id=str((channel or {}).get("id", "") if isinstance(channel, dict) else body.get("channel_id", "")),
            response_url=str(body.get("response_url") or (urls[0].get("response_url") if urls else "") or ""),
            trigger_id=str(body.get("trigger_id", "")),
        )

    # -- what was sent ------------------------------------------------------------------------

    @property
    def acked(self) -> bool:
        return self.ack.response is not None

    @property
    def value(self) -> str:
        """The clicked button's value."""
        return str(self.body["actions"][0]["value"])

    @property
    def view(self) -> dict[str, Any]:
        return dict(self.body.get("view") or {})

    @property
    def values(self) -> dict[str, Any]:
        """A submitted modal's answers by input."""
        return form_values(self.view)

    @property
    def metadata(self) -> dict[str, Any]:
        """A submitted modal's private_metadata."""
        return dict(json.loads(self.view.get("private_metadata") or "{}"))

    # -- answering ----------------------------------------------------------------------------

    async def reply(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """Acknowledge a slash command with a message only the person sees."""
        await self.ack(text=text, blocks=blocks, response_type="ephemeral")

    async def keep_modal(self, text: str, title: str = "Switchboard") -> None:
        """Acknowledge a modal submission by keeping the modal open with `text` (the result follows in it)."""
        self.view_open = True
        await self.ack(response_action="update", view=notice_view(title, text))

    def tell(self, text: str, blocks: list[dict[str, Any]] | None = None, *, replace: bool = False) -> None:
        """After the ack: to the response_url, else in the still-open modal, else as a DM."""
        services = self.services
        if self.response_url:
            body: dict[str, Any] = {"response_type": "ephemeral", "text": text}
            if blocks:
                body["blocks"] = blocks
            if self.body.get("type") == "block_actions":
                body["replace_original"] = replace
            services.outbox.respond(self.response_url, body)
        elif self.view_open and self.view.get("id"):
            title = ((self.view.get("title") or {}).get("text")) or "Switchboard"
            services.tasks.spawn(
                services.slack.views_update(view_id=self.view["id"], view=notice_view(title, text)),
                name="tell in modal",
            )
        else:
            services.outbox.post(self.user_id, text, blocks)

    def later(self, coro: Coroutine[Any, Any, Any], *, name: str) -> None:
        """Run slow work after the ack; a refusal or failure is told to the person."""
        self.services.tasks.spawn(coro, name=name, tell_user=self.tell)

    async def answer_later(
        self, waiting: str, answer: Callable[[], Awaitable[tuple[str, list[dict[str, Any]] | None]]], *, name: str
    ) -> None:
        """Ack with `waiting` now; tell what `answer()` makes (text, blocks) when it is ready."""
        await self.reply(waiting)

        async def run() -> None:
            self.tell(*await answer())

        self.later(run(), name=name)

    def open_modal(self, view: dict[str, Any]) -> None:
        """Open a modal now: the trigger_id expires 3 s after the click."""
        self.later(self.services.slack.views_open(trigger_id=self.trigger_id, view=view), name="open modal")

    def modal_when_ready(self, title: str, waiting: str, build: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        """Open a modal saying `waiting` at once, then show what `build()` makes, or the sentence of its refusal."""
        services = self.services

        async def run() -> None:
            opened = await services.slack.views_open(trigger_id=self.trigger_id, view=notice_view(title, waiting))
            try:
                view = await build()
            except UserError as exc:
                view = notice_view(title, str(exc))
            await services.slack.views_update(view_id=opened["view"]["id"], view=view)

        self.later(run(), name=f"modal {title}")

    # -- refusals -----------------------------------------------------------------------------

    def once_key(self) -> tuple[str, float | None] | None:
        """What makes this interaction a repeat: the same modal (id + hash) submitted again, or the same
        button on the same message clicked again by the same person within a few seconds (a select that
        changes a form is not a repeat)."""
        kind = self.body.get("type")
        if kind == "view_submission":
            return f"view:{self.view.get('id')}:{self.view.get('hash')}", None
        if kind == "block_actions" and self.body.get("actions") and self.body["actions"][0].get("type") == "button":
            action = self.body["actions"][0]
            container = self.body.get("container") or {}
            where = container.get("message_ts") or container.get("view_id") or ""
            key = f"action:{action.get('action_id')}:{action.get('value')}:{where}:{self.user_id}"
            return key, DOUBLE_CLICK_SECONDS
        return None

    async def run(self, handler: Callable[[Any], Awaitable[None]]) -> None:
        """Run a listener's handler once per interaction; the one place a refusal (UserError) is shown."""
        once = self.once_key()
        if once is not None and not self.services.store.first_time(once[0], within=once[1]):
            log.info("%s from %s seen before; handled once", once[0].split(":")[0], self.user_id)
            await self.ack()
            return
        try:
            await handler(self)
        except UserError as exc:
            await self.refuse(exc)

    async def refuse(self, exc: UserError) -> None:
        text = str(exc)
        if self.acked:
            self.tell(text)
        elif self.body.get("type") == "view_submission":
            await self._refuse_form(exc)
        elif self.body.get("command"):
            await self.reply(text)
        else:
            await self.ack()
            self.tell(text)

    async def _refuse_form(self, exc: UserError) -> None:
        inputs = [b.get("block_id") for b in self.view.get("blocks") or [] if b.get("type") == "input"]
        errors = dict(exc.errors) if isinstance(exc, FormErrors) else {exc.field or "": str(exc)}
        if inputs and not all(field in inputs for field in errors):
            errors = {str(inputs[0]): str(exc)}  # an input this form doesn't have: say it under the first one
        if inputs or (self.view.get("blocks") is None and all(errors)):
            await self.ack(response_action="errors", errors=errors)
            return
        self.view_open = True  # a form with no inputs (a confirmation): show the sentence in its place
        title = ((self.view.get("title") or {}).get("text")) or "Switchboard"
        await self.ack(response_action="update", view=notice_view(title, str(exc)))


@dataclass
class CommandRequest(Interaction):
    """One slash command as a sub-command's handler sees it."""

    command: str = ""
    name: str = ""  # the sub-command word, "" for the family's default
    args: str = ""  # the text after the sub-command


Handler = Callable[[CommandRequest], Awaitable[None]]
ListenerKind = Literal["action", "view", "shortcut"]


@dataclass(frozen=True)
class Listener:
    """A button, modal or shortcut handler: registered with Bolt by `register_listeners`."""

    kind: ListenerKind
    match: str | re.Pattern[str]
    handler: Callable[[Interaction], Awaitable[None]]


def action(match: str | re.Pattern[str], handler: Callable[[Interaction], Awaitable[None]]) -> Listener:
    return Listener("action", match, handler)


def view(callback_id: str, handler: Callable[[Interaction], Awaitable[None]]) -> Listener:
    return Listener("view", callback_id, handler)


def shortcut(callback_id: str, handler: Callable[[Interaction], Awaitable[None]]) -> Listener:
    return Listener("shortcut", callback_id, handler)


def prefixed(prefix: str) -> re.Pattern[str]:
    """Matches `prefix-<anything>`: one handler for a row of buttons."""
    return re.compile(f"^{re.escape(prefix)}-")


def register_listeners(app: AsyncApp, services: Services, listeners: list[Listener]) -> None:
    """Register each listener with Bolt; each runs as an Interaction with `services` at hand."""
    for spec in listeners:
        getattr(app, spec.kind)(spec.match)(_bolt_listener(services, spec.handler))


def _bolt_listener(
    services: Services, handler: Callable[[Interaction], Awaitable[None]]
) -> Callable[[AsyncAck, dict[str, Any]], Awaitable[None]]:
    # Bolt passes arguments by name (ack, body), so the handler is bound here, not as a default argument.
    async def listener(ack: AsyncAck, body: dict[str, Any]) -> None:
        await Interaction.of(services, ack, body).run(handler)

    return listener


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
        self._help_blocks: list[dict[str, Any]] | None = None  # built on first use, after every sub-command
        self._help_text: str | None = None

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
        if self._help_text is None:
            self._help_text = self._build_help_text()
        return self._help_text

    def _build_help_text(self) -> str:
        lines = [f"{self.command} — {self.title}"]
        lines += [self.line(sub) for sub in self.entries()]
        lines.append(f"`{self.command} help` — this list")
        return "\n".join(lines)

    def help_blocks(self, intro: str | None = None) -> list[dict[str, Any]]:
        """The help as Block Kit; the plain list is built once (it is the hot path of `/numbers help`)."""
        if intro is None:
            if self._help_blocks is None:
                self._help_blocks = self._build_help_blocks(None)
            return self._help_blocks
        return self._build_help_blocks(intro)

    def _build_help_blocks(self, intro: str | None) -> list[dict[str, Any]]:
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
        async def on_command(ack: AsyncAck, body: dict[str, Any]) -> None:
            base = Interaction.of(services, ack, body)
            request = CommandRequest(**vars(base), command=self.command)
            await request.run(self.dispatch)

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

    async def dispatch(self, request: CommandRequest) -> None:
        text = str(request.body.get("text") or "")
        if text.strip().lower() in ("", "help", "-h", "--help", "?"):
            await request.reply(self.help_text(), self.help_blocks())
            return
        sub, word, rest = self.route(text)
        if sub is None:
            intro = f"I don't know `{self.command} {word}`. Here is what `{self.command}` can do:"
            await request.reply(intro, self.help_blocks(intro))
            return
        request.name, request.args = word, rest
        if sub.handler is None:
            usage = self.line(sub).split("`")[1].replace("&lt;", "<").replace("&gt;", ">")
            raise NotAvailable(
                f"`{usage}` isn't switched on in this version of Switchboard yet. It will: {sub.summary}"
            )
        await sub.handler(request)
