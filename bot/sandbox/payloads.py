"""The bodies Slack sends to an app, built once for tests, the demo and the bench.

Shapes follow the real payloads in shared/slack-samples (block_actions, view_submission,
message_action, event_callback); `slash_command_body` and the signer are in `signing.py`. A
view_submission is built from the view as it was opened, so its `state.values` carry each input's
real element type, as Slack's do.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

TEAM_ID = "T0SANDBOX"
APP_ID = "A0SWITCHBOARD"


def _user(user_id: str) -> dict[str, Any]:
    return {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": TEAM_ID}


def trigger_id() -> str:
    return f"{int(time.time())}.{TEAM_ID}.{uuid.uuid4().hex[:12]}"


def block_actions(
    action_id: str,
    value: str,
    *,
    user: str,
    response_url: str,
    channel: str = "C0SALES",
    message: dict[str, Any] | None = None,
    trigger: str | None = None,
    block_id: str | None = None,
) -> dict[str, Any]:
    """A button click on a message (block_actions_payload.json)."""
    message = message or {}
    blocks = message.get("blocks") or [{}]
    return {
        "type": "block_actions",
        "user": _user(user),
        "api_app_id": APP_ID,
        "token": "verification_token",
        "container": {
            "type": "message",
            "message_ts": message.get("ts", ""),
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": trigger or trigger_id(),
        "team": {"id": TEAM_ID, "domain": "sandbox"},
        "channel": {"id": channel, "name": "sales"},
        "message": message,
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id or blocks[-1].get("block_id", "b"),
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def block_actions_in_view(
    action_id: str, value: str, *, user: str, view: dict[str, Any], trigger: str | None = None
) -> dict[str, Any]:
    """A click inside a modal or the App Home (no response_url, a `view` instead)."""
    return {
        "type": "block_actions",
        "user": _user(user),
        "api_app_id": APP_ID,
        "token": "verification_token",
        "container": {"type": "view", "view_id": view.get("id", "")},
        "trigger_id": trigger or trigger_id(),
        "team": {"id": TEAM_ID, "domain": "sandbox"},
        "view": view,
        "actions": [{"action_id": action_id, "block_id": "b", "value": value, "type": "button"}],
    }


def _state_of(element: dict[str, Any], value: Any) -> dict[str, Any]:
    kind = element.get("type", "plain_text_input")
    if kind == "static_select":
        return {"type": kind, "selected_option": {"value": value} if value else None}
    if kind == "checkboxes":  # a list of option values, or True for the first option (a single tick box)
        first = [o["value"] for o in element.get("options", [])[:1]]
        chosen = value if isinstance(value, list) else first if value is True else [value] if value else []
        return {"type": kind, "selected_options": [{"value": v} for v in chosen]}
    if kind == "conversations_select":
        return {"type": kind, "selected_conversation": value}
    if kind == "users_select":
        return {"type": kind, "selected_user": value}
    if kind == "multi_users_select":
        return {"type": kind, "selected_users": list(value or [])}
    return {"type": kind, "value": value}


def view_state(view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """`view.state.values` for answers keyed by input block id, typed as the view's own elements."""
    state: dict[str, Any] = {}
    for block in view.get("blocks") or []:
        if block.get("type") != "input" or block.get("block_id") not in values:
            continue
        element = block.get("element") or {}
        state[block["block_id"]] = {element.get("action_id", "value"): _state_of(element, values[block["block_id"]])}
    return {"values": state}


def view_submission(
    view: dict[str, Any],
    values: dict[str, Any],
    *,
    user: str,
    metadata: dict[str, Any] | None = None,
    view_id: str | None = None,
) -> dict[str, Any]:
    """A modal submitted with `values` (view_submission_payload.json): the view as opened, its state filled in."""
    submitted = {
        **view,
        "id": view_id or view.get("id") or f"V{uuid.uuid4().hex[:10].upper()}",
        "team_id": TEAM_ID,
        "state": view_state(view, values),
        "hash": view.get("hash") or f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
    }
    if metadata is not None:
        submitted["private_metadata"] = json.dumps(metadata)
    return {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "sandbox"},
        "user": _user(user),
        "api_app_id": APP_ID,
        "token": "verification_token",
        "trigger_id": trigger_id(),
        "view": submitted,
        "response_urls": [],
    }


def message_action(
    callback_id: str, message: dict[str, Any], *, user: str, response_url: str, channel: str = "C0SALES"
) -> dict[str, Any]:
    """A message shortcut on `message` (message_action_payload.json)."""
    return {
        "type": "message_action",
        "token": "verification_token",
        "action_ts": f"{time.time():.6f}",
        "team": {"id": TEAM_ID, "domain": "sandbox"},
        "user": _user(user),
        "channel": {"id": channel, "name": "sales"},
        "callback_id": callback_id,
        "trigger_id": trigger_id(),
        "message_ts": message.get("ts", ""),
        "message": message,
        "response_url": response_url,
    }


def event_callback(event: dict[str, Any], *, event_id: str | None = None, team_id: str = TEAM_ID) -> dict[str, Any]:
    """An Events API delivery (app_home_opened_event.json and friends)."""
    return {
        "token": "verification_token",
        "team_id": team_id,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
    }
