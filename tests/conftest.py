from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.sandbox.stack import Stack

# A PostgreSQL server for the tests: `make test` starts a throwaway one (tests/pgserver.py) and sets this.
PG_URL = os.environ.get("SWITCHBOARD_TEST_PG") or None
PG_SKIPPED = (
    "PostgreSQL tests skipped: SWITCHBOARD_TEST_PG is not set — `make test` starts a throwaway PostgreSQL "
    "from Debian's postgresql package (tests/pgserver.py), or point it at a database of your own"
)


def pytest_report_header(config: pytest.Config) -> str:
    if PG_URL is None:
        return PG_SKIPPED
    from bot.store import redact_url

    return f"PostgreSQL tests run against {redact_url(PG_URL)} (SWITCHBOARD_TEST_PG), each in a schema of its own"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A test (or module) marked `both_backends` that uses `backend` (the `stack` fixture does) runs on each.
    if metafunc.definition.get_closest_marker("both_backends") and "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


def fresh_pg_url() -> str:
    """A URL of the test PostgreSQL whose tables live in a new, empty schema (a fresh database, in effect)."""
    if PG_URL is None:
        pytest.skip(PG_SKIPPED)
    from tests.pgserver import new_schema

    return new_schema(PG_URL)


@pytest.fixture
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SWITCHBOARD_DB for the test: a fresh SQLite file, or (when parametrized so) a fresh PostgreSQL schema."""
    # SWITCHBOARD_TEST_BACKEND=postgresql runs every stack-based test on PostgreSQL (not CI's default: slower).
    kind = getattr(request, "param", os.environ.get("SWITCHBOARD_TEST_BACKEND", "sqlite"))
    if kind == "postgresql":
        return fresh_pg_url()
    return str(tmp_path / "switchboard.db")


@pytest.fixture
def pg_url() -> str:
    """A fresh PostgreSQL schema's URL; the test is skipped, saying why, without a server."""
    return fresh_pg_url()


@pytest.fixture
def stack(tmp_path: Path, backend: str) -> Iterator[Stack]:
    """Switchboard and the Slack sandbox on loopback, with a fresh database."""
    with Stack(tmp_path, outbox_channel_interval=0.0, SWITCHBOARD_DB=backend) as running:
        yield running
        # The manifest's scopes cover whatever the test made Switchboard do.
        refused = [(c.method, c.response["needed"]) for c in running.slack.calls if c.response.get("needed")]
        assert refused == [], f"Slack answered missing_scope: {refused}"


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


class Providers:
    """The three provider sandboxes on loopback, and a client for each (fast retries)."""

    def __init__(self) -> None:
        from bot.sandbox.avanser import AvanserSandbox
        from bot.sandbox.dtl import DtlSandbox
        from bot.sandbox.exotel import ExotelSandbox
        from bot.sandbox.server import LoopbackServer

        self.avanser = AvanserSandbox(callback_delay=0.05)
        self.exotel = ExotelSandbox()
        self.dtl = DtlSandbox()
        self.servers = []
        for name, sandbox in (("avanser", self.avanser), ("exotel", self.exotel), ("dtl", self.dtl)):
            server = LoopbackServer(sandbox.asgi(), name=name).start()
            sandbox.base_url = server.url
            self.servers.append(server)

    def avanser_client(self, **options):
        from bot.telco.avanser import AvanserClient
        from bot.telco.base import RetryPolicy

        options.setdefault("retry", RetryPolicy(attempts=3, backoff=0.01))
        return AvanserClient(f"{self.avanser.base_url}/v1/", self.avanser.username, self.avanser.password, **options)

    def exotel_client(self, **options):
        from bot.telco.base import RetryPolicy
        from bot.telco.exotel import ExotelClient

        options.setdefault("retry", RetryPolicy(attempts=3, backoff=0.01))
        return ExotelClient(
            f"{self.exotel.base_url}/v1/",
            self.exotel.account_sid,
            self.exotel.username,
            self.exotel.password,
            **options,
        )

    def dtl_client(self, **options):
        from bot.telco.base import RetryPolicy
        from bot.telco.dtl import DtlClient

        options.setdefault("retry", RetryPolicy(attempts=3, backoff=0.01))
        return DtlClient(self.dtl.base_url, self.dtl.username, self.dtl.password, **options)

    def stop(self) -> None:
        for server in self.servers:
            server.request_stop()
        for server in self.servers:
            server.stop()


@pytest.fixture
def providers() -> Iterator[Providers]:
    """Fresh sandboxes for tests that change or count their state."""
    running = Providers()
    yield running
    running.stop()


def stack_client(stack: Stack, provider: str):
    """A client of the stack's provider sandbox for the test's own event loop (the app's stays on its own)."""
    from bot.services import provider_clients

    assert stack.settings is not None
    avanser, exotel, dtl = provider_clients(stack.settings)
    return {"avanser": avanser, "exotel": exotel, "dtl": dtl}[provider]
