"""The two kinds of failure (as in errbot): a refusal the user is told in plain words, and a bug.

    Exception
     └── UserError            expected refusal, shown to the user as it is (ephemeral, or under a form's input)
          ├── FormErrors      several inputs of one form refused at once
          └── NotAvailable    the feature exists in help but is not switched on in this version

Anything else is unexpected: it is logged with a correlation id and the user is shown only that id.
"""

from __future__ import annotations

import uuid


class UserError(Exception):
    """An expected refusal; its message is a sentence a sales rep understands.

    `field` names the form input it is about (a modal shows the sentence under that input).
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class FormErrors(UserError):
    """A form's values were refused: one sentence per input (shown under each input of the modal)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(" ".join(errors.values()), field=next(iter(errors), None))
        self.errors = errors


class NotAvailable(UserError):
    """The command is known but not switched on in this version of Switchboard."""


def correlation_id() -> str:
    """A short reference that ties what the user saw to the operator's log line."""
    return uuid.uuid4().hex[:10]


def unexpected_failure_text(ref: str) -> str:
    return (
        "Sorry, something went wrong on our side and that didn't finish. "
        f"If it happens again, give your Switchboard admin this reference: `{ref}`."
    )
