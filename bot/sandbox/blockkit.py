"""Block Kit limits, checked the way Slack checks them, with Slack's error text and JSON pointers.

https://docs.slack.dev/reference/block-kit/blocks — a message that breaks one of these gets
`invalid_blocks` from Slack; the sandbox answers the same, so tests catch it before users do.
"""

from __future__ import annotations

from typing import Any

MESSAGE_MAX_BLOCKS = 50
VIEW_MAX_BLOCKS = 100
MESSAGE_TEXT_MAX = 40_000

_TEXT_TYPES = {"plain_text", "mrkdwn"}
_BLOCK_TYPES = {
    "actions",
    "context",
    "divider",
    "file",
    "header",
    "image",
    "input",
    "rich_text",
    "section",
    "video",
    "markdown",
    "table",
}
_ELEMENT_TYPES = {
    "button",
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "email_text_input",
    "image",
    "multi_static_select",
    "multi_external_select",
    "multi_users_select",
    "multi_conversations_select",
    "multi_channels_select",
    "number_input",
    "overflow",
    "plain_text_input",
    "radio_buttons",
    "rich_text_input",
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
    "timepicker",
    "url_text_input",
    "file_input",
    "workflow_button",
}


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, message: str, pointer: str) -> None:
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    def max_len(self, value: Any, limit: int, pointer: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.fail(f"must be less than {limit + 1} characters", pointer)

    def text(self, obj: Any, pointer: str, *, limit: int, plain_only: bool = False) -> None:
        if not isinstance(obj, dict):
            self.fail("must be an object", pointer)
            return
        kind = obj.get("type")
        if kind not in _TEXT_TYPES or (plain_only and kind != "plain_text"):
            allowed = "plain_text" if plain_only else "plain_text or mrkdwn"
            self.fail(f"must be one of the following types: {allowed}", f"{pointer}/type")
            return
        value = obj.get("text")
        if not isinstance(value, str) or value == "":
            self.fail("must be more than 0 characters", f"{pointer}/text")
            return
        self.max_len(value, limit, f"{pointer}/text")
        if "emoji" in obj and kind != "plain_text":
            self.fail("emoji is only allowed on plain_text", f"{pointer}/emoji")

    def option(self, opt: Any, pointer: str) -> None:
        if not isinstance(opt, dict):
            self.fail("must be an object", pointer)
            return
        self.text(opt.get("text"), f"{pointer}/text", limit=75)
        value = opt.get("value")
        if not isinstance(value, str) or not value:
            self.fail("must provide a value", f"{pointer}/value")
        else:
            self.max_len(value, 150, f"{pointer}/value")

    def element(self, el: Any, pointer: str) -> None:
        if not isinstance(el, dict) or el.get("type") not in _ELEMENT_TYPES:
            self.fail("must be a valid element type", f"{pointer}/type")
            return
        kind = el["type"]
        self.max_len(el.get("action_id"), 255, f"{pointer}/action_id")
        if kind == "button":
            self.text(el.get("text"), f"{pointer}/text", limit=75, plain_only=True)
            self.max_len(el.get("value"), 2000, f"{pointer}/value")
            self.max_len(el.get("url"), 3000, f"{pointer}/url")
            if "style" in el and el["style"] not in ("primary", "danger"):
                self.fail("must be one of primary, danger", f"{pointer}/style")
        elif kind == "image":
            self.max_len(el.get("image_url"), 3000, f"{pointer}/image_url")
            if not el.get("alt_text"):
                self.fail("must provide alt_text", f"{pointer}/alt_text")
        elif kind in ("static_select", "multi_static_select", "radio_buttons", "checkboxes", "overflow"):
            options = el.get("options")
            groups = el.get("option_groups")
            if options is None and groups is None:
                self.fail("must provide options or option_groups", pointer)
            limit = {"overflow": 5, "radio_buttons": 10, "checkboxes": 10}.get(kind, 100)
            if isinstance(options, list):
                if len(options) > limit:
                    self.fail(f"must provide at most {limit} items", f"{pointer}/options")
                if kind == "overflow" and len(options) < 2:
                    self.fail("must provide at least 2 items", f"{pointer}/options")
                for i, opt in enumerate(options):
                    self.option(opt, f"{pointer}/options/{i}")
        elif kind == "plain_text_input":
            max_length = el.get("max_length")
            if isinstance(max_length, int) and max_length > 3000:
                self.fail("must be less than 3001", f"{pointer}/max_length")
            self.max_len(el.get("initial_value"), 3000, f"{pointer}/initial_value")
        if "placeholder" in el:
            self.text(el["placeholder"], f"{pointer}/placeholder", limit=150, plain_only=True)
        if "confirm" in el and isinstance(el["confirm"], dict):
            c = el["confirm"]
            self.text(c.get("title"), f"{pointer}/confirm/title", limit=100, plain_only=True)
            self.text(c.get("text"), f"{pointer}/confirm/text", limit=300)
            self.text(c.get("confirm"), f"{pointer}/confirm/confirm", limit=30, plain_only=True)
            self.text(c.get("deny"), f"{pointer}/confirm/deny", limit=30, plain_only=True)

    def block(self, block: Any, pointer: str, block_ids: set[str], *, surface: str) -> None:
        if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
            self.fail("must be a valid block type", f"{pointer}/type")
            return
        kind = block["type"]
        block_id = block.get("block_id")
        if block_id is not None:
            self.max_len(block_id, 255, f"{pointer}/block_id")
            if block_id in block_ids:
                self.fail(f"duplicate block_id {block_id}", f"{pointer}/block_id")
            block_ids.add(block_id)
        if kind == "section":
            if "text" not in block and "fields" not in block:
                self.fail("must provide text or fields", pointer)
            if "text" in block:
                self.text(block["text"], f"{pointer}/text", limit=3000)
            fields = block.get("fields")
            if fields is not None:
                if not isinstance(fields, list) or len(fields) > 10:
                    self.fail("must provide at most 10 items", f"{pointer}/fields")
                else:
                    for i, field in enumerate(fields):
                        self.text(field, f"{pointer}/fields/{i}", limit=2000)
            if "accessory" in block:
                self.element(block["accessory"], f"{pointer}/accessory")
        elif kind == "header":
            self.text(block.get("text"), f"{pointer}/text", limit=150, plain_only=True)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements or len(elements) > 10:
                self.fail("must provide between 1 and 10 items", f"{pointer}/elements")
                return
            for i, el in enumerate(elements):
                if isinstance(el, dict) and el.get("type") == "image":
                    self.element(el, f"{pointer}/elements/{i}")
                else:
                    self.text(el, f"{pointer}/elements/{i}", limit=3000)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements or len(elements) > 25:
                self.fail("must provide between 1 and 25 items", f"{pointer}/elements")
                return
            for i, el in enumerate(elements):
                self.element(el, f"{pointer}/elements/{i}")
        elif kind == "input":
            if surface == "message":
                self.fail("input blocks are only allowed in modals and Home tabs", pointer)
            self.text(block.get("label"), f"{pointer}/label", limit=2000, plain_only=True)
            if "hint" in block:
                self.text(block["hint"], f"{pointer}/hint", limit=2000, plain_only=True)
            self.element(block.get("element"), f"{pointer}/element")
        elif kind == "image":
            self.max_len(block.get("image_url"), 3000, f"{pointer}/image_url")
            self.max_len(block.get("alt_text"), 2000, f"{pointer}/alt_text")
            if "title" in block:
                self.text(block["title"], f"{pointer}/title", limit=2000, plain_only=True)


def check_blocks(blocks: Any, *, surface: str = "message") -> list[str]:
    """Slack's complaints about a message's (surface='message') or a view's blocks; [] when valid."""
    checker = _Checker()
    if not isinstance(blocks, list):
        checker.fail("must be an array", "/blocks")
        return checker.errors
    limit = MESSAGE_MAX_BLOCKS if surface == "message" else VIEW_MAX_BLOCKS
    if len(blocks) > limit:
        checker.fail(f"must be no more than {limit} items", "/blocks")
    ids: set[str] = set()
    for i, block in enumerate(blocks):
        checker.block(block, f"/blocks/{i}", ids, surface=surface)
    return checker.errors


def check_view(view: Any) -> list[str]:
    """Slack's complaints about a modal or Home tab view; [] when valid."""
    checker = _Checker()
    if not isinstance(view, dict):
        return ["must be an object [json-pointer:/view]"]
    kind = view.get("type")
    if kind not in ("modal", "home"):
        checker.fail("must be one of modal, home", "/view/type")
    if kind == "modal":
        checker.text(view.get("title"), "/view/title", limit=24, plain_only=True)
        for key in ("submit", "close"):
            if key in view:
                checker.text(view[key], f"/view/{key}", limit=24, plain_only=True)
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or [])
        if has_input and "submit" not in view:
            checker.fail("a modal with input blocks must have a submit button", "/view/submit")
    checker.max_len(view.get("private_metadata"), 3000, "/view/private_metadata")
    checker.max_len(view.get("callback_id"), 255, "/view/callback_id")
    checker.max_len(view.get("external_id"), 255, "/view/external_id")
    errors = checker.errors
    errors += [
        e.replace("[json-pointer:/blocks", "[json-pointer:/view/blocks")
        for e in check_blocks(view.get("blocks", []), surface="view")
    ]
    return errors
