from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bot.sandbox.stack import Stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Switchboard and the Slack sandbox on loopback, with a fresh database."""
    with Stack(tmp_path, outbox_channel_interval=0.0) as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def wait_for(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.02) -> object:
    """Poll until `condition()` is truthy; fail the test with a clear message otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
