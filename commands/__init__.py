"""What a Slack user can do: one module per command family, each with `register(app, services)`."""

from __future__ import annotations

from commands import call, numbers, vn

FAMILIES = (numbers.family, vn.family, call.family)
MODULES = (numbers, vn, call)
