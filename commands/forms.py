"""The form inputs every modal is made of (slack_sdk.models), so each view builds them the same way."""

from __future__ import annotations

from slack_sdk.models.blocks import InputBlock, Option, PlainTextInputElement, StaticSelectElement

INITIAL = 3000  # a plain_text_input's initial_value


def text_input(
    block_id: str,
    label: str,
    *,
    hint: str | None = None,
    initial: str | None = None,
    optional: bool = True,
    multiline: bool = False,
    placeholder: str | None = None,
) -> InputBlock:
    """A plain-text input whose answer is read back under `block_id` (`commands.base.form_values`)."""
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=optional,
        hint=hint,
        element=PlainTextInputElement(
            action_id="value",
            initial_value=initial[:INITIAL] if initial else None,
            multiline=multiline,
            placeholder=placeholder,
        ),
    )


def select(
    block_id: str, label: str, options: list[tuple[str, str]], initial: str | None = None, *, optional: bool = False
) -> InputBlock:
    """A static select of (value, label) pairs, `initial` chosen when it is one of them."""
    choices = [Option(value=v, label=t) for v, t in options]
    start = next((o for o in choices if o.value == initial), None)
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=optional,
        element=StaticSelectElement(action_id="value", options=choices, initial_option=start),
    )
