"""Exotel client against its sandbox: requests checked against seed 002, every Appendix 1 code read."""

from __future__ import annotations

import base64
import json

import pytest

from bot.telco.base import ProviderAuthFailed, ProviderBadResponse, ProviderTimeout, ProviderUnavailable
from bot.telco.exotel import (
    APPENDIX_1,
    AllocationRequest,
    ExotelAlreadyDeleted,
    ExotelDuplicate,
    ExotelError,
    ExotelNoFreeNumber,
    ExotelNotFound,
    PartiesUpdate,
    Preferences,
)
from tests.conftest import Providers, stack_client
from tests.helpers import wait_for

SEED_ALLOCATION = {  # seed 002, 'Create an Allocation', the curl example
    "aparty_numbers": ["+919176226528", "+911234567891"],
    "bparty_numbers": ["+918136966620"],
    "usage": "twoway",
    "connection_id": "X1",
    "deallocation_policy": {"duration": "600s"},
}


def seed_request(**changes) -> AllocationRequest:
    return AllocationRequest(
        connection_id=changes.pop("connection_id", "X1"),
        aparty_numbers=changes.pop("aparty_numbers", ["+919176226528", "+911234567891"]),
        bparty_numbers=changes.pop("bparty_numbers", ["+918136966620"]),
        usage=changes.pop("usage", "twoway"),
        deallocation_duration=changes.pop("deallocation_duration", "600s"),
        **changes,
    )


async def test_allocate_sends_the_seed_example(providers: Providers) -> None:
    allocation = await providers.exotel_client().allocate(seed_request())
    [sent] = providers.exotel.received
    assert (sent.method, sent.path) == ("POST", "/v1/tenants/switchboard1/greenvn")
    key, token = providers.exotel.username, providers.exotel.password
    assert sent.headers["authorization"] == "Basic " + base64.b64encode(f"{key}:{token}".encode()).decode()
    assert sent.headers["content-type"] == "application/json"
    assert sent.json == SEED_ALLOCATION
    assert allocation.connection_id == "X1" and allocation.state == "active"
    assert allocation.green_vn and allocation.green_vn.startswith("+91") and allocation.greenvn_id
    assert allocation.aparty_numbers == SEED_ALLOCATION["aparty_numbers"]


async def test_allocate_with_every_field(providers: Providers) -> None:
    request = seed_request(
        connection_id="X2",
        aparty_pins=[1234],
        bparty_pins=[5678, 9012],
        strictness=True,
        preferences=Preferences(greenvn="+918012345679", region="KA", pin_code="560001", type="landline"),
        flow_id="flow-7",
    )
    allocation = await providers.exotel_client().allocate(request)
    assert providers.exotel.received[-1].json == {
        **SEED_ALLOCATION,
        "connection_id": "X2",
        "aparty_pins": [1234],
        "bparty_pins": [5678, 9012],
        "strictness": True,
        "preferences": {"greenvn": "+918012345679", "region": "KA", "pin_code": "560001", "type": "landline"},
        "flow_id": "flow-7",
    }
    assert allocation.green_vn == "+918012345679" and allocation.flow_id == "flow-7"


async def test_get_delete_and_delete_again(providers: Providers) -> None:
    client = providers.exotel_client()
    created = await client.allocate(seed_request())
    fetched = await client.get_allocation(created.greenvn_id)
    assert providers.exotel.received[-1].path == f"/v1/tenants/switchboard1/greenvn/{created.greenvn_id}"
    assert fetched.green_vn == created.green_vn
    released = await client.deallocate(created.greenvn_id)
    assert providers.exotel.received[-1].method == "DELETE"
    assert released.state == "vault"
    with pytest.raises(ExotelAlreadyDeleted) as info:
        await client.deallocate(created.greenvn_id)
    assert info.value.code == 22 and str(info.value) == "That virtual number was already released."
    with pytest.raises(ExotelNotFound):
        await client.get_allocation("no-such-id")


async def test_update_parties_sends_the_seed_shape(providers: Providers) -> None:
    client = providers.exotel_client()
    created = await client.allocate(seed_request())
    update = PartiesUpdate(
        aparty_numbers=["+919950000040", "+919950000041"],
        bparty_numbers=["+917980000040", "+917980006841"],
        aparty_pins=[12340],
        bparty_pins=[2340],
        usage="oneway",
    )
    updated = await client.update_parties(created.greenvn_id, update)
    sent = providers.exotel.received[-1]
    assert (sent.method, sent.path) == (
        "PUT",
        f"/v1/tenants/switchboard1/greenvn/{created.greenvn_id}/call-party",
    )
    assert sent.json == {
        "aparty_numbers": ["+919950000040", "+919950000041"],
        "bparty_numbers": ["+917980000040", "+917980006841"],
        "aparty_pins": [12340],
        "bparty_pins": [2340],
        "usage": "oneway",
    }
    assert updated.usage == "oneway" and updated.aparty_pins == [12340]
    with pytest.raises(ValueError, match="at least one"):
        PartiesUpdate(usage="twoway").to_body()


async def test_swap_number_sends_the_seed_shape(providers: Providers) -> None:
    client = providers.exotel_client()
    created = await client.allocate(seed_request())
    swapped = await client.swap_number(
        created.greenvn_id,
        Preferences(greenvn="+917205827365", region="KA", type="landline"),
        strictness=False,
    )
    sent = providers.exotel.received[-1]
    assert (sent.method, sent.path) == ("PUT", f"/v1/tenants/switchboard1/greenvn/{created.greenvn_id}/vn")
    assert sent.json == {
        "strictness": "false",
        "preferences": {"greenvn": "+917205827365", "region": "KA", "number_type": "landline"},
    }
    assert swapped.green_vn == "+917205827365" and swapped.greenvn_id == created.greenvn_id
    again = await client.swap_number(created.greenvn_id)
    assert providers.exotel.received[-1].body == b""
    assert again.green_vn != "+917205827365"


@pytest.mark.parametrize("code", sorted(APPENDIX_1))
@pytest.mark.parametrize("shape", ["list", "object"])
async def test_every_appendix_code_is_a_typed_error_with_a_sentence(
    providers: Providers, code: int, shape: str
) -> None:
    cls, sentence, http_status = APPENDIX_1[code]
    envelope = {
        "success": False,
        "status": http_status,
        "code": code,
        "message": "raw provider text",
        "data": None,
    }
    body = json.dumps([envelope] if shape == "list" else envelope)
    providers.exotel.inject("status", status=http_status, body=body, count=3)
    client = providers.exotel_client()
    if http_status >= 500:
        with pytest.raises(ProviderUnavailable):  # 5xx is retried, then reported as unavailable
            await client.get_allocation("x")
        return
    expected = ProviderAuthFailed if code == 7 else cls
    with pytest.raises(expected) as info:
        await client.get_allocation("x")
    if code != 7:
        assert isinstance(info.value, ExotelError) and info.value.code == code
        assert str(info.value) == sentence
    assert "raw provider text" not in str(info.value)


async def test_sandbox_refusals_map_to_sentences(providers: Providers) -> None:
    client = providers.exotel_client()
    with pytest.raises(ExotelDuplicate) as overlap:
        await client.allocate(seed_request(bparty_numbers=["+919176226528"]))
    assert overlap.value.code == 14
    with pytest.raises(ExotelError) as invalid:
        await client.allocate(seed_request(connection_id="X9", aparty_numbers=["+91123"]))
    assert invalid.value.code == 16 and str(invalid.value) == "Exotel says one of the phone numbers is invalid."
    await client.allocate(seed_request())
    with pytest.raises(ExotelDuplicate) as duplicate:
        await client.allocate(seed_request())
    assert duplicate.value.code == 18
    with pytest.raises(ExotelError) as flow:
        await client.allocate(seed_request(connection_id="X3", flow_id="invalid-flow"))
    assert flow.value.code == 50


async def test_no_free_number(providers: Providers) -> None:
    client = providers.exotel_client()
    for n in range(len(providers.exotel.pool)):
        await client.allocate(seed_request(connection_id=f"fill-{n}"))
    with pytest.raises(ExotelNoFreeNumber) as info:
        await client.allocate(seed_request(connection_id="one-too-many"))
    assert info.value.code == 4 and info.value.http_status == 452
    assert str(info.value) == "Exotel has no free virtual numbers right now. Try another region or later."


async def test_strictness_refuses_a_partial_match(providers: Providers) -> None:
    client = providers.exotel_client()
    with pytest.raises(ExotelNoFreeNumber):
        await client.allocate(seed_request(strictness=True, preferences=Preferences(region="RJ")))
    loose = await client.allocate(seed_request(connection_id="X5", preferences=Preferences(region="RJ")))
    assert loose.green_vn


async def test_wrong_credentials_and_wrong_tenant(providers: Providers) -> None:
    from bot.telco.exotel import ExotelClient

    wrong = ExotelClient(f"{providers.exotel.base_url}/v1/", "switchboard1", "key", "nope")
    with pytest.raises(ProviderAuthFailed):
        await wrong.allocate(seed_request())
    other = ExotelClient(
        f"{providers.exotel.base_url}/v1/",
        "someone-else",
        providers.exotel.username,
        providers.exotel.password,
    )
    with pytest.raises(ExotelError) as info:
        await other.allocate(seed_request())
    assert info.value.code == 8


async def test_allocation_is_not_retried_after_an_ambiguous_failure(providers: Providers) -> None:
    providers.exotel.inject("after_commit", status=504, delay=1.0, method="POST")
    with pytest.raises(ProviderTimeout):
        await providers.exotel_client(timeout=0.3).allocate(seed_request())
    assert len(providers.exotel.requests_to("POST", "/v1/tenants")) == 1
    assert len(providers.exotel.active()) == 1


async def test_get_is_retried_and_malformed_json_is_typed(providers: Providers) -> None:
    client = providers.exotel_client()
    created = await client.allocate(seed_request())
    providers.exotel.inject("status", status=503, count=2)
    assert (await client.get_allocation(created.greenvn_id)).greenvn_id == created.greenvn_id
    providers.exotel.inject("malformed")
    with pytest.raises(ProviderBadResponse):
        await client.get_allocation(created.greenvn_id)


async def test_events_reach_the_app_inbox(stack) -> None:
    from tests.helpers import inbox

    client = stack_client(stack, "exotel")
    allocation = await client.allocate(seed_request(deallocation_duration="1s"))
    assert stack.exotel.fire_call(allocation.greenvn_id, "+919176226528", insights=True).status_code == 200
    assert (
        stack.exotel.fire_verification(allocation.greenvn_id, "+919000000001", "1234", success=True).status_code == 200
    )
    assert (
        stack.exotel.fire_verification(allocation.greenvn_id, "+919000000001", "9999", success=False).status_code == 200
    )
    rows = wait_for(lambda: len(inbox(stack)) == 4 and inbox(stack), timeout=10)
    sources = [r[0] for r in rows]
    assert sources == ["exotel.call", "exotel.verification", "exotel.verification", "exotel.deallocation"]
    call = rows[0][2]
    assert call["greenvn_id"] == allocation.greenvn_id and call["insights"]["DetailedStatus"] == "CALL_COMPLETED"
    dealloc = rows[3][2]
    assert dealloc["state"] == "vault" and dealloc["connection_id"] == "X1"
    assert stack.exotel.allocations[allocation.greenvn_id]["state"] == "vault"
