"""The two kinds of failure (as in errbot): a refusal the user is told in plain words, and a bug.

    Exception
     └── UserError            expected refusal, shown to the user as it is (ephemeral)
          └── NotAvailable    the feature exists in help but is not switched on in this version

Anything else is unexpected: it is logged with a correlation id and the user is shown only that id.
"""

from __future__ import annotations

import uuid


class UserError(Exception):
    """An expected refusal; its message is a sentence a sales rep understands."""


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
