"""Exotel client against its sandbox: requests checked against seed 002; every Appendix 1 code and the 402,
429 and 499 statuses produced by the sandbox from its own tables and read by the client, in both error shapes."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import httpx
import pytest

from bot.errors import UserError
from bot.sandbox import exotel as sandbox
from bot.telco.base import (
    ProviderAuthFailed,
    ProviderBadResponse,
    ProviderMaybeApplied,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    ProviderUnreachable,
    RetryPolicy,
    TelcoError,
)
from bot.telco.exotel import (
    APPENDIX_1,
    Allocation,
    AllocationRequest,
    ExotelAlreadyDeleted,
    ExotelClient,
    ExotelError,
    ExotelInternal,
    ExotelMaybeApplied,
    ExotelMaybeCreated,
    ExotelNoFreeNumber,
    ExotelNotFound,
    InvalidPin,
    PartiesUpdate,
    Preferences,
    parse_pins,
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


# -- every documented error, produced by the sandbox from its own copy of the seed's tables --------

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "exotel_error_tables.txt"  # seed 002, verbatim


def test_the_sandbox_tables_are_the_seeds() -> None:
    lines = [line.strip() for line in FIXTURE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    appendix = {}
    for line in lines:
        match = re.fullmatch(r"(\d+) (.+) (\d{3})", line)
        if match:
            appendix[int(match.group(1))] = (int(match.group(3)), match.group(2))
    statuses = dict(
        (int(m.group(1)), m.group(2)) for m in (re.fullmatch(r"(\d{3}): (.+)", line) for line in lines) if m
    )
    assert appendix == sandbox.APPENDIX_1  # code 50 included: the seed's Appendix 1 ends with it
    assert {k: statuses[k] for k in (402, 429, 499)} == sandbox.STATUSES
    # and the client knows every code, with the same HTTP status
    assert {code: http for code, (_, _, http) in APPENDIX_1.items()} == {c: h for c, (h, _) in appendix.items()}


async def fresh(client: ExotelClient, **changes) -> Allocation:
    return await client.allocate(seed_request(**changes))


async def trigger(code: int, providers: Providers, client: ExotelClient) -> None:
    """Make the sandbox answer `code` through a real request where one causes it, else through refuse_next."""
    box = providers.exotel
    if code in (0, 9, 20, 23):  # no request the seed describes causes these here
        created = await fresh(client, connection_id=f"c{code}")
        box.refuse_next(code, count=3)
        await client.get_allocation(created.greenvn_id)
    elif code == 1:
        await client.get_allocation("no-such-id")
    elif code == 2:
        await fresh(client, preferences=Preferences(colour="green"))  # not a documented filter
    elif code == 3:
        await fresh(client, aparty_numbers=[])
    elif code == 4:
        await fresh(client, strictness=True, preferences=Preferences(region="RJ"))  # none in RJ
    elif code == 5:
        await fresh(client, deallocation_duration="soon")
    elif code == 7:
        await ExotelClient(f"{box.base_url}/v1/", box.account_sid, box.username, "nope").get_allocation("x")
    elif code == 8:
        await ExotelClient(f"{box.base_url}/v1/", "someone-else", box.username, box.password).get_allocation("x")
    elif code == 13:
        await fresh(client, aparty_numbers=["+919176226528", "+919176226528"])
    elif code == 14:
        await fresh(client, bparty_numbers=["+919176226528"])
    elif code == 15:
        await fresh(client, preferences=Preferences.model_construct(region="XX"))
    elif code == 16:
        await fresh(client, aparty_numbers=["+91123"])
    elif code == 17:
        box.bulk_limit = 1
        await fresh(client)  # two a-party numbers
    elif code == 18:
        await fresh(client)
        await fresh(client)
    elif code == 19:
        await fresh(client, aparty_pins=[1234])
        await fresh(client, connection_id="X2", aparty_numbers=["+919176226528"], aparty_pins=[5678])
    elif code == 22:
        created = await fresh(client)
        await client.deallocate(created.greenvn_id)
        await client.deallocate(created.greenvn_id)
    elif code == 50:
        box.call_flows = {"flow-7"}
        await fresh(client, flow_id="flow-8")
    else:
        raise AssertionError(f"no trigger for code {code}")


@pytest.mark.parametrize("code", sorted(sandbox.APPENDIX_1))
@pytest.mark.parametrize("shape", ["list", "object"])
async def test_every_appendix_code_is_produced_and_read(providers: Providers, code: int, shape: str) -> None:
    providers.exotel.error_shape = shape
    with pytest.raises(TelcoError) as info:
        await trigger(code, providers, providers.exotel_client())
    if code == 7:
        assert isinstance(info.value, ProviderAuthFailed) and info.value.status == 401
        return
    cls, sentence, http_status = APPENDIX_1[code]
    assert type(info.value) is cls and isinstance(info.value, ExotelError)
    assert (info.value.code, info.value.http_status, str(info.value)) == (code, http_status, sentence)
    assert sandbox.APPENDIX_1[code][1] in info.value.detail  # the provider's words go to the log only


@pytest.mark.parametrize("shape", ["list", "object"])
async def test_402_is_an_auth_failure_with_or_without_a_code(providers: Providers, shape: str) -> None:
    # Appendix 1: code 7 → 401; the status list: "402: Unauthorized Request". The sandbox can say either.
    providers.exotel.error_shape, providers.exotel.auth_failure_status = shape, 402
    box = providers.exotel
    wrong = ExotelClient(f"{box.base_url}/v1/", box.account_sid, box.username, "nope")
    with pytest.raises(ProviderAuthFailed) as coded:
        await wrong.allocate(seed_request())
    assert coded.value.status == 402
    box.refuse_next(status=402)  # the bare status, no Appendix code
    with pytest.raises(ProviderAuthFailed):
        await providers.exotel_client().get_allocation("x")


@pytest.mark.parametrize("shape", ["list", "object"])
async def test_429_is_retried_then_rate_limited(providers: Providers, shape: str) -> None:
    providers.exotel.error_shape = shape
    client = providers.exotel_client()
    providers.exotel.refuse_next(status=429, method="POST", retry_after=0)
    await client.allocate(seed_request())  # refused unprocessed, so the POST is sent again
    assert len(providers.exotel.requests_to("POST", "/v1/")) == 2 and len(providers.exotel.active()) == 1
    providers.exotel.refuse_next(status=429, count=3, retry_after=0)
    with pytest.raises(ProviderRateLimited):
        await client.get_allocation(providers.exotel.active()[0]["greenvn_id"])


@pytest.mark.parametrize("shape", ["list", "object"])
async def test_499_is_a_timeout(providers: Providers, shape: str) -> None:
    providers.exotel.error_shape = shape
    client = providers.exotel_client()
    created = await client.allocate(seed_request())
    providers.exotel.refuse_next(status=499)
    assert (await client.get_allocation(created.greenvn_id)).greenvn_id == created.greenvn_id  # a GET is repeated
    providers.exotel.refuse_next(status=499, count=3)
    with pytest.raises(ProviderTimeout) as info:
        await client.get_allocation(created.greenvn_id)
    assert info.value.status == 499


# -- a POST that may have created an allocation, a swap that may have happened ----------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 499, "after_commit": True},  # "Response timeout exceeded", after the allocation was made
        {"status": 499},  # … or before: from here the two can't be told apart
        {"cut": True},  # the answer cut off
        {"status": 504, "delay": 1.0},  # no answer within the timeout
        {"status": 502},  # a gateway's error, not Exotel's
    ],
)
async def test_an_unclear_allocation_may_have_been_created(providers: Providers, fault: dict) -> None:
    box = providers.exotel
    if fault.get("status") == 499:
        box.refuse_next(status=499, method="POST", after_commit=bool(fault.get("after_commit")))
    else:
        box.inject("after_commit", method="POST", **fault)
    with pytest.raises(ExotelMaybeCreated) as info:
        await providers.exotel_client(timeout=0.3).allocate(seed_request())
    assert isinstance(info.value, ProviderMaybeApplied) and not isinstance(info.value, ProviderUnavailable)
    assert str(info.value) == (
        "Exotel didn't answer clearly, so the virtual number may have been created — check `/vn list` before "
        "trying again."
    )
    assert len(box.requests_to("POST", "/v1/tenants")) == 1  # never sent twice


async def test_an_internal_error_or_a_refused_connection_is_not_ambiguous(providers: Providers) -> None:
    providers.exotel.refuse_next(0, method="POST")  # Exotel's own answer, code 0
    with pytest.raises(ExotelInternal):
        await providers.exotel_client().allocate(seed_request())
    from bot.sandbox.server import free_socket

    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    client = ExotelClient(f"http://127.0.0.1:{port}/v1/", "s", "k", "t", retry=RetryPolicy(attempts=2, backoff=0.01))
    with pytest.raises(ProviderUnreachable):
        await client.allocate(seed_request())


@pytest.mark.parametrize("fault", [{"status": 502}, {"status": 504, "delay": 1.0}, {"cut": True}])
async def test_a_swap_with_a_lost_answer_is_read_back_not_resent(providers: Providers, fault: dict) -> None:
    client = providers.exotel_client(timeout=0.3)
    created = await client.allocate(seed_request())
    providers.exotel.inject("after_commit", method="PUT", **fault)
    swapped = await client.swap_number(created.greenvn_id, current_green_vn=created.green_vn)
    assert len(providers.exotel.requests_to("PUT", "/v1/")) == 1
    assert swapped.green_vn != created.green_vn
    assert swapped.green_vn == providers.exotel.allocations[created.greenvn_id]["green_vn"]


async def test_a_swap_refused_before_it_was_applied_says_so(providers: Providers) -> None:
    client = providers.exotel_client(timeout=0.3)
    created = await client.allocate(seed_request())
    providers.exotel.inject("status", status=503, method="PUT")
    with pytest.raises(ProviderUnavailable) as refused:
        await client.swap_number(created.greenvn_id)  # reads the current number first
    assert "Nothing was changed" in str(refused.value)
    providers.exotel.inject("timeout", delay=1.0, method="PUT")
    with pytest.raises(ExotelMaybeApplied) as late:
        await client.swap_number(created.greenvn_id, current_green_vn=created.green_vn)
    assert str(late.value) == (
        "Exotel didn't answer in time. It still shows 080123 45678, but the swap may yet go through — check "
        "`/vn list` in a minute before trying again."
    )
    assert len(providers.exotel.requests_to("PUT", "/v1/")) == 2  # one per call, none repeated
    assert providers.exotel.allocations[created.greenvn_id]["green_vn"] == created.green_vn


async def test_a_swap_that_cannot_be_read_back_may_have_happened(providers: Providers) -> None:
    client = providers.exotel_client()
    created = await client.allocate(seed_request())
    providers.exotel.inject("after_commit", status=502, method="PUT")
    providers.exotel.inject("status", status=500, method="GET", count=3)
    with pytest.raises(ExotelMaybeApplied) as info:
        await client.swap_number(created.greenvn_id, current_green_vn=created.green_vn)
    assert "may have been. Check `/vn list`" in str(info.value)


# -- the sandbox takes only what seed 002 lists ------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({**SEED_ALLOCATION, "recording": True}, 5),  # not a documented parameter
        ({**SEED_ALLOCATION, "strictness": "yes"}, 5),
        ({**SEED_ALLOCATION, "aparty_pins": ["1234"]}, 5),  # pins are integers
        ({**SEED_ALLOCATION, "aparty_pins": [0]}, 5),  # … positive ones
        ({**SEED_ALLOCATION, "deallocation_policy": [{"duration": "600s"}]}, 5),  # the Node example's list
        ({**SEED_ALLOCATION, "preferences": {"type": "tollfree"}}, 2),
        ({**SEED_ALLOCATION, "preferences": {"region": "ka"}}, 15),
        ({k: v for k, v in SEED_ALLOCATION.items() if k != "usage"}, 3),
    ],
)
def test_the_sandbox_refuses_what_the_seed_does_not_list(providers: Providers, body: dict, code: int) -> None:
    box = providers.exotel
    answer = httpx.post(
        f"{box.base_url}/v1/tenants/{box.account_sid}/greenvn", json=body, auth=(box.username, box.password)
    )
    [envelope] = answer.json()
    assert (answer.status_code, envelope["code"]) == (sandbox.APPENDIX_1[code][0], code)
    assert envelope == {
        "success": False,
        "status": answer.status_code,
        "code": code,
        "message": sandbox.APPENDIX_1[code][1],
        "data": None,
    }


async def test_answers_carry_the_documented_fields_only(providers: Providers) -> None:
    client = providers.exotel_client()
    created = await client.allocate(seed_request(aparty_pins=[1234]))
    keys = {"connection_id", "aparty_numbers", "bparty_numbers", "usage", "state", "green_vn", "greenvn_id"}
    box = providers.exotel
    url = f"{box.base_url}/v1/tenants/{box.account_sid}/greenvn/{created.greenvn_id}"
    async with httpx.AsyncClient(auth=(box.username, box.password)) as http:
        assert set((await http.get(url)).json()["data"]) == keys  # the GET example has no pins
        parties = await http.put(f"{url}/call-party", json={"aparty_numbers": ["+919176226528"]})
        assert set(parties.json()["data"]) == keys | {"aparty_pins", "bparty_pins"}  # the call-party example has


# -- PINs and strictness ---------------------------------------------------------------------------


def test_a_pin_with_a_leading_zero_is_refused_not_changed() -> None:
    with pytest.raises(InvalidPin) as info:
        seed_request(aparty_pins=["0123"])
    assert isinstance(info.value, UserError)
    assert str(info.value) == (
        "a-party PIN “0123” starts with 0. Exotel keeps PINs as numbers, so it would become 123; choose one "
        "that doesn't start with 0."
    )
    with pytest.raises(InvalidPin, match="b-party PIN: “0” isn't a PIN"):
        PartiesUpdate(aparty_numbers=["+919176226528"], bparty_pins=["0"])
    with pytest.raises(InvalidPin, match="b-party PIN: “12a4” isn't a PIN"):
        parse_pins("1234, 12a4", "b-party PIN")
    with pytest.raises(InvalidPin, match="starts with 0"):
        parse_pins("0042", "a-party PIN")
    assert parse_pins("1234, 5678 90", "a-party PIN") == [1234, 5678, 90]
    assert seed_request(aparty_pins=["1234", 5678]).to_body()["aparty_pins"] == [1234, 5678]


async def test_strictness_false_is_sent_on_both_endpoints(providers: Providers) -> None:
    client = providers.exotel_client()
    created = await client.allocate(seed_request(strictness=False, preferences=Preferences(region="RJ")))
    assert providers.exotel.received[-1].json["strictness"] is False  # the create schema's boolean
    assert created.green_vn  # not strict: the nearest match
    await client.swap_number(created.greenvn_id, Preferences(region="RJ"), strictness=False)
    assert providers.exotel.received[-1].json == {"strictness": "false", "preferences": {"region": "RJ"}}
    with pytest.raises(ExotelNoFreeNumber):
        await client.swap_number(created.greenvn_id, Preferences(region="RJ"), strictness=True)
    assert providers.exotel.received[-1].json["strictness"] == "true"


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
