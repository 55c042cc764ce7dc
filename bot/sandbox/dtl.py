"""A stand-in for the DataTechLabs voice API (seed 003): `POST /voice/call/callback` on loopback.

Validates both legs (`to` and `from`, digits as the seed shows them; more attributes per leg are
allowed: "You can use more attributes … for each call leg") and records each call it would place.

Seed 003 says nothing about authentication ("it should be able to do proper authentication") nor
about what the API answers, so both are options, and the client's tests run against every one:

- `auth`: "basic" (HTTP Basic with the username and password), "bearer" (`Authorization: Bearer
  <password>`), or "none" (any or no Authorization header);
- `answer`: "json-id" (200 `{"id": …}`), "json-call-id" (201 `{"call_id": …}`), "empty-200",
  "empty-202", "empty-204" (no body), "text-id" (200 text/plain with the call's id) or "text-ok"
  (200 text/plain `OK`). Refusals (400, 401) take the same form: `{"error": reason}`, nothing, or the
  reason as plain text.

Faults via `inject()` (bot.sandbox.common).
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.sandbox.common import Received, SandboxBase

AUTH_MODES = ("basic", "bearer", "none")
ANSWERS = ("json-id", "json-call-id", "empty-200", "empty-202", "empty-204", "text-id", "text-ok")


def _digits(value: Any) -> bool:
    return isinstance(value, str) and value.isdigit() and 3 <= len(value) <= 15


class DtlSandbox(SandboxBase):
    def __init__(
        self,
        username: str = "switchboard",
        password: str = "dtl-sandbox-password",
        *,
        auth: str = "basic",
        answer: str = "json-id",
    ) -> None:
        super().__init__(username, password)
        self.auth = auth
        self.answer = answer
        self.calls: list[dict[str, Any]] = []  # {"call_id", "leg_A", "leg_B"}: what would have been rung

    def asgi(self) -> Starlette:
        return Starlette(routes=[Route("/voice/call/callback", self._callback, methods=["POST"])])

    def authorized(self, received: Received) -> bool:
        if self.auth not in AUTH_MODES:
            raise ValueError(f"auth is one of {AUTH_MODES}")
        if self.auth == "none":
            return True
        if self.auth == "bearer":
            return received.headers.get("authorization", "") == f"Bearer {self.password}"
        return super().authorized(received)

    def _refuse(self, status: int, reason: str) -> Response:
        if self.answer.startswith("json"):
            return JSONResponse({"error": reason}, status_code=status)
        if self.answer.startswith("text"):
            return PlainTextResponse(reason, status_code=status)
        return Response(status_code=status)

    def _placed(self, call_id: str) -> Response:
        kind = self.answer
        if kind == "json-id":
            return JSONResponse({"id": call_id})
        if kind == "json-call-id":
            return JSONResponse({"call_id": call_id}, status_code=201)
        if kind.startswith("empty-"):
            return Response(status_code=int(kind.removeprefix("empty-")))
        if kind == "text-id":
            return PlainTextResponse(call_id)
        if kind == "text-ok":
            return PlainTextResponse("OK")
        raise ValueError(f"answer is one of {ANSWERS}")

    async def _callback(self, request: Request) -> Response:
        received, fault, early = await self.admit(request)
        if early is not None:
            return early
        if not self.authorized(received):
            return self._refuse(401, "authentication failed")
        try:
            body = received.json
        except ValueError:
            return self._refuse(400, "body is not JSON")
        if not isinstance(body, dict):
            return self._refuse(400, "body must be an object with leg_A and leg_B")
        for leg in ("leg_A", "leg_B"):
            value = body.get(leg)
            if not isinstance(value, dict):
                return self._refuse(400, f"{leg} is required")
            for key in ("to", "from"):
                if not _digits(value.get(key)):
                    return self._refuse(400, f"{leg}.{key} must be a phone number")
        call = {"call_id": uuid.uuid4().hex, "leg_A": body["leg_A"], "leg_B": body["leg_B"]}
        with self.lock:
            self.calls.append(call)
        if fault is not None:
            return await self.after_commit_response(fault)
        return self._placed(call["call_id"])
