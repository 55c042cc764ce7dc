"""DataTechLabs client against its sandbox: the two-leg callback of seed 003.

The seed says nothing about authentication or the answer, so the sandbox offers the plausible
variants (bot/sandbox/dtl.py: AUTH_MODES, ANSWERS) and every test of a placed or refused call runs
against each.
"""

from __future__ import annotations

import base64

import httpx
import pytest

from bot.sandbox.dtl import ANSWERS, AUTH_MODES
from bot.telco.base import ProviderAuthFailed, ProviderRateLimited, ProviderTimeout, ProviderUnavailable
from bot.telco.dtl import DtlClient, DtlRejected, Leg
from tests.conftest import Providers

REP_PHONE, CUSTOMER, TRACKING = "+61412345678", "+61410203045", "+61290081596"
LEGS = (Leg(to=REP_PHONE, caller_id=CUSTOMER), Leg(to=CUSTOMER, caller_id=TRACKING))


def client(providers: Providers, auth: str, **options) -> DtlClient:
    return providers.dtl_client(auth=auth, **options)


@pytest.mark.parametrize("answer", ANSWERS)
@pytest.mark.parametrize("auth", AUTH_MODES)
async def test_two_leg_call_against_every_variant(providers: Providers, auth: str, answer: str) -> None:
    providers.dtl.auth, providers.dtl.answer = auth, answer
    result = await client(providers, auth).callback_call(*LEGS)
    [sent] = providers.dtl.received
    assert (sent.method, sent.path) == ("POST", "/voice/call/callback")
    assert sent.json == {
        "leg_A": {"to": "61412345678", "from": "61410203045"},
        "leg_B": {"to": "61410203045", "from": "61290081596"},
    }
    header = sent.headers.get("authorization")
    if auth == "basic":
        raw = f"{providers.dtl.username}:{providers.dtl.password}".encode()
        assert header == "Basic " + base64.b64encode(raw).decode()
    elif auth == "bearer":
        assert header == f"Bearer {providers.dtl.password}"
    else:
        assert header is None
    [placed] = providers.dtl.calls
    if answer in ("json-id", "json-call-id", "text-id"):
        assert result.call_id == placed["call_id"]
    else:
        assert result.call_id is None  # the answer carried no id: the call was placed all the same
    assert result.status == ("OK" if answer == "text-ok" else None)


@pytest.mark.parametrize("answer", ANSWERS)
async def test_refusal_is_a_sentence_in_every_answer_form(providers: Providers, answer: str) -> None:
    providers.dtl.answer = answer
    with pytest.raises(DtlRejected) as info:
        await providers.dtl_client().callback_call(Leg(to="+61412345678", caller_id="+61"), LEGS[1])
    if answer.startswith("empty"):
        assert str(info.value) == "The call couldn't be placed; DataTechLabs refused it."
    else:
        assert str(info.value) == "The call couldn't be placed: leg_A.from must be a phone number."
    assert info.value.status == 400 and providers.dtl.calls == []


async def test_refusal_reasons_in_other_shapes(providers: Providers) -> None:
    for body, sentence in [
        ('{"error": "destination barred"}', "The call couldn't be placed: destination barred."),
        ('{"message": "no credit"}', "The call couldn't be placed: no credit."),
        ('{"error": {"message": "leg_B unreachable"}}', "The call couldn't be placed: leg_B unreachable."),
        ("<html><body>Bad Request</body></html>", "The call couldn't be placed; DataTechLabs refused it."),
    ]:
        providers.dtl.inject("status", status=400, body=body)
        with pytest.raises(DtlRejected) as info:
            await providers.dtl_client().callback_call(*LEGS)
        assert str(info.value) == sentence


@pytest.mark.parametrize("answer", ANSWERS)
@pytest.mark.parametrize("auth", ["basic", "bearer"])
async def test_wrong_credentials(providers: Providers, auth: str, answer: str) -> None:
    providers.dtl.auth, providers.dtl.answer = auth, answer
    wrong = DtlClient(providers.dtl.base_url, "switchboard", "wrong", auth=auth)  # type: ignore[arg-type]
    with pytest.raises(ProviderAuthFailed):
        await wrong.callback_call(*LEGS)
    assert providers.dtl.calls == []


async def test_no_auth_variant_takes_any_credentials(providers: Providers) -> None:
    providers.dtl.auth = "none"
    await DtlClient(providers.dtl.base_url, "switchboard", "wrong").callback_call(*LEGS)
    assert len(providers.dtl.calls) == 1


async def test_a_call_is_never_placed_twice(providers: Providers) -> None:
    providers.dtl.inject("status", status=500)
    with pytest.raises(ProviderUnavailable):
        await providers.dtl_client().callback_call(*LEGS)
    assert len(providers.dtl.received) == 1
    providers.dtl.inject("after_commit", status=504, delay=1.0)
    with pytest.raises(ProviderTimeout):
        await providers.dtl_client(timeout=0.3).callback_call(*LEGS)
    assert len(providers.dtl.calls) == 1 and len(providers.dtl.received) == 2
    providers.dtl.inject("after_commit", cut=True)
    with pytest.raises(ProviderUnavailable):
        await providers.dtl_client().callback_call(*LEGS)
    assert len(providers.dtl.calls) == 2 and len(providers.dtl.received) == 3


async def test_429_is_retried_because_nothing_was_placed(providers: Providers) -> None:
    providers.dtl.inject("status", status=429, retry_after=0)
    await providers.dtl_client().callback_call(*LEGS)
    assert len(providers.dtl.calls) == 1
    providers.dtl.inject("status", status=429, retry_after=0, count=5)
    with pytest.raises(ProviderRateLimited):
        await providers.dtl_client().callback_call(*LEGS)


def test_sandbox_validates_legs(providers: Providers) -> None:
    answer = httpx.post(
        f"{providers.dtl.base_url}/voice/call/callback",
        auth=(providers.dtl.username, providers.dtl.password),
        json={"leg_A": {"to": "+6141"}, "leg_B": {}},
    )
    assert answer.status_code == 400 and answer.json() == {"error": "leg_A.to must be a phone number"}
    extra = {"to": "1000123", "from": "1000125", "timeout": 30}  # "You can use more attributes … for each call leg"
    placed = httpx.post(
        f"{providers.dtl.base_url}/voice/call/callback",
        auth=(providers.dtl.username, providers.dtl.password),
        json={"leg_A": extra, "leg_B": {"to": "1000125", "from": "1000123"}},  # the seed's example
    )
    assert placed.status_code == 200 and placed.json() == {"id": providers.dtl.calls[-1]["call_id"]}
