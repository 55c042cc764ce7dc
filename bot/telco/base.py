"""What the three provider clients share: one httpx client each, timeouts, safe retries, typed errors.

    UserError                       (bot.errors) shown to the user as its sentence
     └── TelcoError                 a provider call did not give what was asked
          ├── ProviderUnavailable   could not connect, or 5xx after the retries
          │    ├── ProviderUnreachable  could not connect: the request certainly never arrived
          │    └── ProviderTimeout  no answer within the timeout
          ├── ProviderMaybeApplied  a change that is unsafe to repeat got no clear answer and the
          │                         provider's state could not settle it: it may have happened
          ├── ProviderRateLimited   429 after the retries
          ├── ProviderAuthFailed    401/403: the credentials in settings are wrong
          ├── ProviderBadResponse   not JSON, or not the shape the provider documents
          └── ProviderRejected      the provider said no, with its reason (4xx)

Each provider module subclasses these (AvanserRejected, ExotelNoFreeNumber, …). `httpx` errors are
translated here with `raise … from exc`; nothing above `bot/telco/` catches `httpx.*`.

Retries: an idempotent call (GET, DELETE, PUT) is retried on connection errors, timeouts, 429 and
5xx, with exponential backoff (Retry-After honoured, capped). A call that is not idempotent (POST,
and the PUT/DELETE calls a provider applies once per call: Exotel's PUT …/vn, AVANSER's service
DELETE) is retried only when it certainly did not reach the provider (the connection was never
made) or the provider refused it unprocessed (429); after any other failure the caller looks at
the provider's state or raises a ProviderMaybeApplied whose sentence says how to check.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from bot.errors import UserError

log = logging.getLogger("switchboard.telco")

M = TypeVar("M", bound=BaseModel)


class TelcoError(UserError):
    """A provider call did not give what was asked; str() is the sentence for the user."""

    def __init__(self, message: str, *, provider: str, detail: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.detail = detail  # for the operator's log, never shown to the user
        self.status = status


class ProviderUnavailable(TelcoError):
    """The provider could not be reached, or kept failing (5xx)."""


class ProviderUnreachable(ProviderUnavailable):
    """No connection could be made: the request never reached the provider, nothing changed."""


class ProviderTimeout(ProviderUnavailable):
    """The provider did not answer within the timeout."""


class ProviderMaybeApplied(TelcoError):
    """A change that must not be sent twice got no clear answer, and the provider's state could not
    tell whether it happened. The sentence says that it may have happened and how to check."""


class ProviderRateLimited(TelcoError):
    """The provider asked us to slow down (429) and kept asking."""


class ProviderAuthFailed(TelcoError):
    """The provider refused the credentials in settings."""


class ProviderBadResponse(TelcoError):
    """The provider answered something that is not what its documentation promises."""


class ProviderRejected(TelcoError):
    """The provider refused the request and said why."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # in all, the first included
    backoff: float = 0.5  # seconds before the 2nd attempt, doubled each time
    max_wait: float = 10.0  # never sleep longer than this, whatever Retry-After says


RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_CONCURRENT = 32  # calls in flight to one provider at once


def ambiguous(exc: BaseException) -> bool:
    """Whether a failed change may nevertheless have been applied by the provider."""
    if isinstance(exc, ProviderUnreachable):
        return False
    if isinstance(exc, ProviderBadResponse):  # an answer we could not read: 2xx means it was done
        return exc.status is None or 200 <= exc.status < 300
    return isinstance(exc, ProviderUnavailable)


class HttpProvider:
    """One provider's HTTP client: base URL, Basic auth, timeouts and the retry rule."""

    name = "provider"
    retryable_status: frozenset[int] = RETRYABLE_STATUS

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        # Callers beyond MAX_CONCURRENT wait here, cheaply: thousands of tasks waiting inside httpx's own
        # pool cost CPU on every connection release and starved the event loop (and so Slack's acks).
        self._slots = asyncio.Semaphore(MAX_CONCURRENT)
        self.http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=MAX_CONCURRENT, max_keepalive_connections=MAX_CONCURRENT),
            base_url=base_url if base_url.endswith("/") else base_url + "/",
            auth=httpx.BasicAuth(username, password),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "switchboard/0.1"},
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- sentences -------------------------------------------------------------------------

    def unavailable_text(self) -> str:
        return f"{self.name} isn't answering right now. Nothing was changed; please try again in a few minutes."

    def timeout_text(self) -> str:
        return f"{self.name} took too long to answer. Please try again in a few minutes."

    def rate_limited_text(self) -> str:
        return f"{self.name} is busy and asked us to slow down. Please try again in a minute."

    def auth_text(self) -> str:
        return (
            f"Switchboard couldn't sign in to {self.name}. An admin needs to check the {self.name} "
            "credentials in Switchboard's settings."
        )

    def bad_response_text(self) -> str:
        return f"{self.name} sent back something Switchboard didn't understand. An admin has the details."

    # -- requests --------------------------------------------------------------------------

    async def send(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        content: str | None = None,
        headers: dict[str, str] | None = None,
        form: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """Send one call with the retry rule; return the final response, whatever its status."""
        path = path.lstrip("/")
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                async with self._slots:
                    response = await self.http.request(
                        method, path, params=params, json=json_body, content=content, headers=headers, data=form
                    )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Never reached the provider: safe to retry whatever the method.
                if attempt < self.retry.attempts:
                    await self._sleep(attempt, None, method, path, type(exc).__name__)
                    continue
                self._log_failure(method, path, started, f"could not connect ({type(exc).__name__})")
                raise ProviderUnreachable(
                    self.unavailable_text(), provider=self.name, detail=f"{method} {path}: {exc!r}"
                ) from exc
            except httpx.TimeoutException as exc:
                if idempotent and attempt < self.retry.attempts:
                    await self._sleep(attempt, None, method, path, "timeout")
                    continue
                self._log_failure(method, path, started, "timed out")
                raise ProviderTimeout(
                    self.timeout_text(), provider=self.name, detail=f"{method} {path}: {exc!r}"
                ) from exc
            except httpx.HTTPError as exc:  # reset mid-request, protocol errors
                if idempotent and attempt < self.retry.attempts:
                    await self._sleep(attempt, None, method, path, type(exc).__name__)
                    continue
                self._log_failure(method, path, started, f"transport error ({type(exc).__name__})")
                raise ProviderUnavailable(
                    self.unavailable_text(), provider=self.name, detail=f"{method} {path}: {exc!r}"
                ) from exc
            status = response.status_code
            retry_safe = idempotent or status == 429
            if status in self.retryable_status and retry_safe and attempt < self.retry.attempts:
                await self._sleep(attempt, response.headers.get("Retry-After"), method, path, f"HTTP {status}")
                continue
            if status == 429:
                self._log_failure(method, path, started, "rate limited (429)")
                raise ProviderRateLimited(self.rate_limited_text(), provider=self.name, status=429)
            if status >= 500 and not self.provider_error_body(response):
                self._log_failure(method, path, started, f"HTTP {status}: {response.text[:200]!r}")
                raise ProviderUnavailable(
                    self.unavailable_text(),
                    provider=self.name,
                    status=status,
                    detail=f"{method} {path}: HTTP {status}",
                )
            return response

    def provider_error_body(self, response: httpx.Response) -> bool:
        """True when a 5xx answer carries the provider's own error (to be reported by the subclass)."""
        return False

    async def _sleep(self, attempt: int, retry_after: str | None, method: str, path: str, why: str) -> None:
        wait = self.retry.backoff * 2 ** (attempt - 1) * random.uniform(0.8, 1.2)
        if retry_after:
            with contextlib.suppress(ValueError):
                wait = max(wait, float(retry_after))
        wait = min(wait, self.retry.max_wait)
        log.warning(
            "%s %s %s failed (%s), attempt %d; retrying in %.2f s",
            self.name,
            method,
            path,
            why,
            attempt,
            wait,
        )
        await asyncio.sleep(wait)

    def _log_failure(self, method: str, path: str, started: float, what: str) -> None:
        log.error("%s %s %s %s after %.2f s", self.name, method, path, what, time.monotonic() - started)

    # -- answers -----------------------------------------------------------------------------

    def decode(self, response: httpx.Response) -> Any:
        """The JSON body, or ProviderBadResponse."""
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            log.error(
                "%s %s %s answered HTTP %d with a body that is not JSON: %r",
                self.name,
                response.request.method,
                response.request.url.path,
                response.status_code,
                response.text[:200],
            )
            raise ProviderBadResponse(
                self.bad_response_text(),
                provider=self.name,
                status=response.status_code,
                detail=f"not JSON: {response.text[:200]!r}",
            ) from exc

    def parse(self, model: type[M], data: Any, response: httpx.Response) -> M:
        """Validate `data` as `model`, or ProviderBadResponse naming what was wrong."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            log.error(
                "%s %s %s answered a %s we could not read: %s",
                self.name,
                response.request.method,
                response.request.url.path,
                model.__name__,
                exc.errors()[:3],
            )
            raise ProviderBadResponse(
                self.bad_response_text(),
                provider=self.name,
                status=response.status_code,
                detail=f"{model.__name__}: {exc.errors()[:3]}",
            ) from exc
