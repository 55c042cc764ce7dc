"""Sign requests the way Slack does, and build the bodies Slack sends.

Slack signs `v0:{X-Slack-Request-Timestamp}:{raw body}` with HMAC-SHA256 and the app's signing
secret; the receiver rejects a timestamp more than 300 s away. Body shapes follow the payloads in
shared/slack-samples (from bolt-python's own tests).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode


def signature_headers(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def slash_command_body(
    command: str,
    text: str,
    *,
    user_id: str,
    channel_id: str,
    response_url: str,
    trigger_id: str,
    team_id: str = "T0SANDBOX",
    user_name: str = "rep",
    channel_name: str = "sales",
) -> str:
    """The form-encoded body of a slash command, field for field as Slack sends it."""
    return urlencode(
        {
            "token": "verification_token",
            "team_id": team_id,
            "team_domain": "sandbox",
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": "A0SWITCHBOARD",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
    )


def interaction_body(payload: dict[str, Any]) -> str:
    """Interactivity payloads (block_actions, view_submission, shortcuts) arrive as `payload=<json>`."""
    return urlencode({"payload": json.dumps(payload)})
