"""DataTechLabs voice API client (seed 003): a two-leg callback call.

    TelcoError (bot.telco.base)
     ├── ProviderUnavailable / ProviderTimeout / ProviderRateLimited / ProviderAuthFailed
     ├── ProviderBadResponse
     └── ProviderRejected
          └── DtlRejected          the API refused the call (4xx), with its reason

`POST {DTL_API_URL}/voice/call/callback` with `{"leg_A": {"to", "from"}, "leg_B": {"to", "from"}}`:
leg A is called first and leg B joined to it. The seed shows numbers as bare digits ("1000123"), so
E.164 numbers are sent without the "+". The seed documents no answer body: any JSON object (or an
empty body) with a 2xx status is success, and whatever id it carries is kept.

A call is never retried once it may have reached the API (a second POST would ring people twice);
only a connection that was never made, or a 429, is retried.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.phone import to_dtl
from bot.telco.base import HttpProvider, ProviderAuthFailed, ProviderRejected

log = logging.getLogger("switchboard.telco.dtl")


class DtlRejected(ProviderRejected):
    """DataTechLabs refused the call."""


class Leg(BaseModel):
    to: str  # E.164: who is rung
    caller_id: str  # E.164: what their phone shows ("from" on the wire)

    def to_body(self) -> dict[str, str]:
        return {"to": to_dtl(self.to), "from": to_dtl(self.caller_id)}


class CallbackCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    call_id: str | None = None
    status: str | None = None
    raw: dict[str, Any] = {}


class DtlClient(HttpProvider):
    name = "DataTechLabs"

    async def callback_call(self, leg_a: Leg, leg_b: Leg) -> CallbackCall:
        """Ring leg A, then leg B, and join them."""
        body = {"leg_A": leg_a.to_body(), "leg_B": leg_b.to_body()}
        response = await self.send("POST", "voice/call/callback", idempotent=False, json_body=body)
        data: Any = self.decode(response) if response.content.strip() else {}
        if response.status_code in (401, 403):
            raise ProviderAuthFailed(
                self.auth_text(), provider=self.name, status=response.status_code, detail=str(data)[:200]
            )
        if response.status_code >= 400:
            reason = ""
            if isinstance(data, dict):
                reason = str(data.get("error") or data.get("message") or data.get("description") or "")
            log.warning("DataTechLabs refused a callback call: HTTP %d %s", response.status_code, reason)
            raise DtlRejected(
                f"The call couldn't be placed: {reason.rstrip('.')}."
                if reason
                else "The call couldn't be placed; DataTechLabs refused it.",
                provider=self.name,
                status=response.status_code,
                detail=str(data)[:200],
            )
        if not isinstance(data, dict):
            data = {}
        call_id = data.get("call_id") or data.get("id") or data.get("uuid")
        return CallbackCall(
            call_id=str(call_id) if call_id is not None else None,
            status=str(data.get("status")) if data.get("status") else None,
            raw=data,
        )
