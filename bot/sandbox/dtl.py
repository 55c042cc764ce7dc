"""A stand-in for the DataTechLabs voice API (seed 003): `POST /voice/call/callback` on loopback.

Checks Basic auth, validates both legs (`to` and `from`, digits as the seed shows them), records
each call it would place, and answers `{"status": "queued", "call_id": …}`. Faults via `inject()`.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.sandbox.common import SandboxBase


def _digits(value: Any) -> bool:
    return isinstance(value, str) and value.isdigit() and 3 <= len(value) <= 15


class DtlSandbox(SandboxBase):
    def __init__(self, username: str = "switchboard", password: str = "dtl-sandbox-password") -> None:
        super().__init__(username, password)
        self.calls: list[dict[str, Any]] = []

    def asgi(self) -> Starlette:
        return Starlette(routes=[Route("/voice/call/callback", self._callback, methods=["POST"])])

    async def _callback(self, request: Request) -> Response:
        received, fault, early = await self.admit(request)
        if early is not None:
            return early
        if not self.authorized(received):
            return JSONResponse({"error": "authentication failed"}, status_code=401)
        try:
            body = received.json
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body must be an object with leg_A and leg_B"}, status_code=400)
        for leg in ("leg_A", "leg_B"):
            value = body.get(leg)
            if not isinstance(value, dict):
                return JSONResponse({"error": f"{leg} is required"}, status_code=400)
            for key in ("to", "from"):
                if not _digits(value.get(key)):
                    return JSONResponse({"error": f"{leg}.{key} must be a phone number"}, status_code=400)
        call = {
            "call_id": uuid.uuid4().hex,
            "status": "queued",
            "leg_A": body["leg_A"],
            "leg_B": body["leg_B"],
        }
        with self.lock:
            self.calls.append(call)
        if fault is not None:
            return await self.after_commit_response(fault)
        return JSONResponse({"status": "queued", "call_id": call["call_id"]})
