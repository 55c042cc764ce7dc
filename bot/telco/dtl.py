"""DataTechLabs voice API client (seed 003): a two-leg callback call.

    TelcoError (bot.telco.base)
     ├── ProviderUnavailable / ProviderTimeout / ProviderRateLimited / ProviderAuthFailed
     ├── ProviderBadResponse
     └── ProviderRejected
          └── DtlRejected          the API refused the call (4xx), with its reason

`POST {DTL_API_URL}/voice/call/callback` with `{"leg_A": {"to", "from"}, "leg_B": {"to", "from"}}`:
leg A is called first and leg B joined to it. The seed shows numbers as bare digits ("1000123"), so
E.164 numbers are sent without the "+".

The seed is silent on authentication and on the answer. Authentication is `auth`: "basic" (HTTP
Basic with the username and password, the default), "bearer" (the password as a bearer token) or
"none". Any 2xx is success whatever its body: empty (200, 202, 204), JSON (an object whose
`call_id`, `id` or `uuid` is kept as the call's id; a bare string or number is the id) or plain
text (a single token such as an id is kept; "OK" and the like are not ids). A refusal's reason is
read from JSON (`error`, `message`, `description`, `detail`) or short plain text.

A call is never retried once it may have reached the API (a second POST would ring people twice);
only a connection that was never made, or a 429, is retried.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict

from bot.phone import to_dtl
from bot.telco.base import HttpProvider, ProviderAuthFailed, ProviderRejected, RetryPolicy

log = logging.getLogger("switchboard.telco.dtl")

AuthMode = Literal["basic", "bearer", "none"]
ID_KEYS = ("call_id", "id", "uuid")
NOT_IDS = frozenset({"ok", "accepted", "queued", "success", "true", "done", "created"})
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{2,127}")


class DtlRejected(ProviderRejected):
    """DataTechLabs refused the call."""


class Leg(BaseModel):
    to: str  # E.164: who is rung
    caller_id: str  # E.164: what their phone shows ("from" on the wire)

    def to_body(self) -> dict[str, str]:
        return {"to": to_dtl(self.to), "from": to_dtl(self.caller_id)}


class CallbackCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    call_id: str | None = None  # whatever id the answer carried; None when it carried none
    status: str | None = None
    raw: dict[str, Any] = {}  # a JSON object answer, as it came
    text: str = ""  # the answer's body as text (empty for no body)


def _read(response: httpx.Response) -> tuple[Any, str]:
    """The body as JSON (None when empty or not JSON) and as text."""
    text = response.text.strip() if response.content else ""
    if not text:
        return None, ""
    try:
        return json.loads(text), text
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, text


def _reason(data: Any, text: str) -> str:
    if isinstance(data, dict):
        for key in ("error", "message", "description", "detail"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("description")
            if value:
                return str(value)
        return ""
    if isinstance(data, str):
        return data
    if data is None and text and "<" not in text and len(text) <= 200:
        return text.splitlines()[0]
    return ""


def _call_id(data: Any, text: str) -> str | None:
    if isinstance(data, dict):
        value = next((data[k] for k in ID_KEYS if data.get(k) not in (None, "")), None)
        return str(value) if value is not None else None
    if isinstance(data, str | int) and not isinstance(data, bool):
        data, text = None, str(data)
    if data is None and _TOKEN.fullmatch(text) and text.lower() not in NOT_IDS:
        return text
    return None


class DtlClient(HttpProvider):
    name = "DataTechLabs"

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        auth: AuthMode = "basic",
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, username, password, timeout=timeout, retry=retry, transport=transport)
        if auth != "basic":
            self.http.auth = httpx.Auth()  # sends nothing
        if auth == "bearer":
            self.http.headers["Authorization"] = f"Bearer {password}"

    async def callback_call(self, leg_a: Leg, leg_b: Leg) -> CallbackCall:
        """Ring leg A, then leg B, and join them."""
        body = {"leg_A": leg_a.to_body(), "leg_B": leg_b.to_body()}
        response = await self.send("POST", "voice/call/callback", idempotent=False, json_body=body)
        data, text = _read(response)
        if response.status_code in (401, 403):
            raise ProviderAuthFailed(
                self.auth_text(), provider=self.name, status=response.status_code, detail=text[:200]
            )
        if response.status_code >= 300:
            reason = _reason(data, text)
            log.warning("DataTechLabs refused a callback call: HTTP %d %s", response.status_code, reason or text[:200])
            raise DtlRejected(
                f"The call couldn't be placed: {reason.rstrip('.')}."
                if reason
                else "The call couldn't be placed; DataTechLabs refused it.",
                provider=self.name,
                status=response.status_code,
                detail=text[:200],
            )
        status = data.get("status") if isinstance(data, dict) else None
        if status is None and data is None and text.lower() in NOT_IDS:
            status = text
        return CallbackCall(
            call_id=_call_id(data, text),
            status=str(status) if status else None,
            raw=data if isinstance(data, dict) else {},
            text=text,
        )
