"""DataTechLabs client against its sandbox: the two-leg callback of seed 003."""

from __future__ import annotations

import base64

import pytest

from bot.telco.base import ProviderAuthFailed, ProviderRateLimited, ProviderTimeout, ProviderUnavailable
from bot.telco.dtl import DtlClient, DtlRejected, Leg
from tests.conftest import Providers

REP_PHONE, CUSTOMER, TRACKING = "+61412345678", "+61410203045", "+61290081596"


async def test_two_leg_call_body(providers: Providers) -> None:
    result = await providers.dtl_client().callback_call(
        Leg(to=REP_PHONE, caller_id=CUSTOMER), Leg(to=CUSTOMER, caller_id=TRACKING)
    )
    [sent] = providers.dtl.received
    assert (sent.method, sent.path) == ("POST", "/voice/call/callback")
    raw = f"{providers.dtl.username}:{providers.dtl.password}".encode()
    assert sent.headers["authorization"] == "Basic " + base64.b64encode(raw).decode()
    assert sent.json == {
        "leg_A": {"to": "61412345678", "from": "61410203045"},
        "leg_B": {"to": "61410203045", "from": "61290081596"},
    }
    assert result.call_id == providers.dtl.calls[0]["call_id"] and result.status == "queued"


async def test_refusal_is_a_sentence(providers: Providers) -> None:
    providers.dtl.inject("status", status=400, body='{"error": "destination barred"}')
    with pytest.raises(DtlRejected) as info:
        await providers.dtl_client().callback_call(
            Leg(to=REP_PHONE, caller_id=CUSTOMER), Leg(to=CUSTOMER, caller_id=TRACKING)
        )
    assert str(info.value) == "The call couldn't be placed: destination barred."


async def test_wrong_credentials(providers: Providers) -> None:
    client = DtlClient(providers.dtl.base_url, "switchboard", "wrong")
    with pytest.raises(ProviderAuthFailed):
        await client.callback_call(Leg(to=REP_PHONE, caller_id=CUSTOMER), Leg(to=CUSTOMER, caller_id=TRACKING))
    assert providers.dtl.calls == []


async def test_a_call_is_never_placed_twice(providers: Providers) -> None:
    providers.dtl.inject("status", status=500)
    with pytest.raises(ProviderUnavailable):
        await providers.dtl_client().callback_call(
            Leg(to=REP_PHONE, caller_id=CUSTOMER), Leg(to=CUSTOMER, caller_id=TRACKING)
        )
    assert len(providers.dtl.received) == 1
    providers.dtl.inject("after_commit", status=504, delay=1.0)
    with pytest.raises(ProviderTimeout):
        await providers.dtl_client(timeout=0.3).callback_call(
            Leg(to=REP_PHONE, caller_id=CUSTOMER), Leg(to=CUSTOMER, caller_id=TRACKING)
        )
    assert len(providers.dtl.calls) == 1 and len(providers.dtl.received) == 2


async def test_429_is_retried_because_nothing_was_placed(providers: Providers) -> None:
    providers.dtl.inject("status", status=429, retry_after=0)
    await providers.dtl_client().callback_call(
        Leg(to=REP_PHONE, caller_id=CUSTOMER), Leg(to=CUSTOMER, caller_id=TRACKING)
    )
    assert len(providers.dtl.calls) == 1
    providers.dtl.inject("status", status=429, retry_after=0, count=5)
    with pytest.raises(ProviderRateLimited):
        await providers.dtl_client().callback_call(
            Leg(to=REP_PHONE, caller_id=CUSTOMER), Leg(to=CUSTOMER, caller_id=TRACKING)
        )


def test_sandbox_validates_legs(providers: Providers) -> None:
    import httpx

    answer = httpx.post(
        f"{providers.dtl.base_url}/voice/call/callback",
        auth=(providers.dtl.username, providers.dtl.password),
        json={"leg_A": {"to": "+6141"}, "leg_B": {}},
    )
    assert answer.status_code == 400 and answer.json() == {"error": "leg_A.to must be a phone number"}
