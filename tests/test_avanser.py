"""AVANSER client against its sandbox: every endpoint's request checked against seed 001."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from bot.errors import UserError
from bot.telco.avanser import (
    AvanserMaybeApplied,
    AvanserRejected,
    CallReporting,
    EmailReport,
    NumberRule,
    RuleNotOffered,
    ServiceConfig,
    ServiceRequest,
    ServiceUpdate,
    SmsReport,
    TemplateInUse,
    cost_for,
    number_type_of,
)
from bot.telco.base import (
    ProviderAuthFailed,
    ProviderBadResponse,
    ProviderMaybeApplied,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    RetryPolicy,
)
from tests.conftest import Providers, stack_client
from tests.helpers import wait_for

SEED = Path(__file__).resolve().parent / "fixtures" / "avanser_seed_examples.md"  # seed 001's request examples


def auth_header(providers: Providers) -> str:
    raw = f"{providers.avanser.username}:{providers.avanser.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


async def raw(providers: Providers, method: str, path: str, **options) -> httpx.Response:
    """A request to the AVANSER sandbox as it is, not through the client."""
    async with httpx.AsyncClient() as http:
        headers = {"authorization": auth_header(providers)}
        return await http.request(method, f"{providers.avanser.base_url}/v1/{path}", headers=headers, **options)


def last(providers: Providers, method: str, path: str):
    return providers.avanser.requests_to(method, path)[-1]


# -- accounts ---------------------------------------------------------------------------------


async def test_list_accounts(providers: Providers) -> None:
    client = providers.avanser_client()
    accounts = await client.list_accounts()
    sent = last(providers, "GET", "/v1/accounts")
    assert sent.path == "/v1/accounts" and sent.query == {"type": "configuration"}
    assert sent.headers["authorization"] == auth_header(providers)
    assert [(a.account_id, a.account) for a in accounts] == [
        (6999, "Test Account"),
        (7001, "Agency Client B"),
    ]
    assert client.last_transaction is not None and client.last_transaction.account_id == 6999
    await client.list_accounts("billing")
    assert last(providers, "GET", "/v1/accounts").query == {"type": "billing"}


async def test_switch_account(providers: Providers) -> None:
    client = providers.avanser_client()
    await client.switch_account(7001)
    sent = last(providers, "POST", "/v1/accounts")
    assert sent.query == {"account-id": "7001"}
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.text == "account-id=7001"
    await client.account_details()
    assert client.last_transaction is not None and client.last_transaction.account_id == 7001
    with pytest.raises(AvanserRejected) as info:
        await client.switch_account(1234)
    assert info.value.fields == {"account-id": "invalid account"}
    assert str(info.value) == "AVANSER refused the request — the account: invalid account."


async def test_account_reports(providers: Providers) -> None:
    client = providers.avanser_client()
    details = await client.account_details()
    assert details[0].client_name == "Test Account" and details[0].invoice_address["post_code"] == "2000"
    packages = await client.packages()
    assert packages[0].package_code == "corporate" and packages[0].rates[0]["price"] == "0.25"
    [rate] = await client.number_rates()
    assert (rate.rate_code, rate.description, rate.setup_charge, rate.rental_charge) == (
        "61",
        "Test MMT",
        "0.00",
        "0.00",
    )
    assert (await client.call_rates())[0].cost_per_minute == "0.39"
    assert (await client.transcription_rates())[0].rate == "0.1"
    assert (await client.features())[0].feature_code == "TBR"
    paths = [r.path for r in providers.avanser.received]
    assert paths == [
        "/v1/accounts/details",
        "/v1/accounts/packages",
        "/v1/accounts/number_rates",
        "/v1/accounts/call_rates",
        "/v1/accounts/transcription_rates",
        "/v1/accounts/features",
    ]


# -- search -----------------------------------------------------------------------------------


async def test_search_by_type(providers: Providers) -> None:
    result = await providers.avanser_client().search_by_type("AU", "MOBILE")
    assert last(providers, "GET", "/v1/numbers").query == {"country": "AU", "number_type": "MOBILE"}
    assert result.numbers and all(n.type == "MOBILE" for n in result.numbers)
    first = result.numbers[0]
    assert first.e164.startswith("+614") and first.national.startswith("04") and first.calling_code == "+61"


async def test_search_by_location_and_ambiguous_address(providers: Providers) -> None:
    client = providers.avanser_client()
    result = await client.search_by_location("AU", "Sydney, 2000 NSW, Australia", radius=10)
    assert last(providers, "GET", "/v1/numbers").query == {
        "country": "AU",
        "location": "Sydney, 2000 NSW, Australia",
        "radius": "10",
    }
    assert result.numbers and all(n.region == "NSW: Sydney" for n in result.numbers)
    ambiguous = await client.search_by_location("AU", "Richmond")
    assert ambiguous.ambiguous and not ambiguous.numbers
    assert [(a.name, a.state) for a in ambiguous.addresses] == [
        ("Richmond, NSW, AU", "NSW"),
        ("Richmond, VIC, AU", "VIC"),
    ]
    assert ambiguous.addresses[1].lat_lng == [-37.823, 144.998]
    with pytest.raises(AvanserRejected, match="the address: address not found"):
        await client.search_by_location("AU", "Atlantis")


async def test_search_by_coordinates_prefix_and_szu(providers: Providers) -> None:
    client = providers.avanser_client()
    near = await client.search_by_coordinates("AU", -37.81, 144.96, radius=5)
    assert last(providers, "GET", "/v1/numbers").query == {
        "country": "AU",
        "lat": "-37.81",
        "lng": "144.96",
        "radius": "5",
    }
    assert near.numbers and all(n.region == "VIC: Melbourne" for n in near.numbers)
    prefix = await client.search_by_prefix("AU", "+61290081596")
    assert last(providers, "GET", "/v1/numbers").query == {"country": "AU", "number": "61290081596"}
    assert "+61290081596" in [n.e164 for n in prefix.numbers]
    szu = await client.search_by_szu("perth")
    assert last(providers, "GET", "/v1/numbers").query == {"szu": "perth"}
    assert szu.numbers and all(n.region == "WA: Perth" for n in szu.numbers)


# -- new service requests: the seed's own examples, byte for byte -------------------------------


def seed_example(title: str) -> dict:
    text = SEED.read_text()
    start = text.index(title)
    block = text[text.index("```", start) + 3 : text.index("```", text.index("```", start) + 3)]
    return json.loads(block)


EXAMPLE_URIS = dict(
    call_uri="http://example.tld/debug.php?call-uri",
    sms_forward_uri="http://example.tld/debug.php?sms_forward_uri",
    callback_uri="http://example.tld/debug.php?callback_uri",
)


async def test_transfer_request_matches_the_seed_example(providers: Providers) -> None:
    request = ServiceRequest(
        name="TAPI Transfer EXAMPLE",
        custom_id="tapi-transfer-example-1",
        service_number=NumberRule(search_type="number_type", country="AU", number_type="MOBILE"),
        service=ServiceConfig(
            type="transfer",
            answer_point_name="TAPI answer point EXAMPLE #1",
            answer_point="+61420123123",
            call_whisper="https://example.tld/audio/call_whisper.wav",
            voicemail="https://example.tld/audio/voicemail.wav",
            record_call=False,
            call_reporting=CallReporting(report="none"),
        ),
        **EXAMPLE_URIS,
    )
    ack = await providers.avanser_client().request_service(request)
    sent = last(providers, "POST", "/v1/requests")
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["authorization"] == auth_header(providers)
    assert sent.json == seed_example("### Example: new transfer service")
    assert len(ack.request_id) == 32 and ack.message == "Success" and ack.code == 200
    assert ack.service_e164 is not None and ack.service_e164.startswith("+614")


async def test_voicemail_request_matches_the_seed_example(providers: Providers) -> None:
    request = ServiceRequest(
        name="TAPI Voicemail EXAMPLE",
        custom_id="tapi-voicemail-example-1",
        service_number=NumberRule(search_type="number_type", number_type="MOBILE"),
        service=ServiceConfig(
            type="voicemail",
            answer_point_name="TAPI answer point EXAMPLE #2",
            voicemail="https://example.tld/audio/voicemail.mp3",
            call_reporting=CallReporting(
                report="missed",
                email=EmailReport(
                    subject="call for Voicemail",
                    email_to=["no-reply@avanser.com.au"],
                    template="html_email_template",
                ),
                sms=SmsReport(mobile="+61420123123", template="text_sms_template"),
            ),
        ),
        **EXAMPLE_URIS,
    )
    await providers.avanser_client().request_service(request)
    assert last(providers, "POST", "/v1/requests").json == seed_example("### Example: new voicemail service")


async def test_prompt_request_puts_reporting_where_its_example_does(providers: Providers) -> None:
    # The seed's prompt example has call_reporting at the top level; the schema and the other two
    # examples have it inside `service`. Each type is sent as its own example shows (README).
    reporting = CallReporting(
        report="missed",
        email=EmailReport(
            subject="call for Prompt", email_to=["no-reply@avanser.com.au"], template="html_email_template"
        ),
        sms=SmsReport(mobile="+61420123123", template="text_sms_template"),
    )
    request = ServiceRequest(
        name="TAPI Prompt EXAMPLE",
        custom_id="tapi-prompt-example-1",
        service_number=NumberRule(search_type="number_type", number_type="MOBILE"),
        service=ServiceConfig(
            type="prompt",
            answer_point_name="TAPI answer point EXAMPLE #3",
            call_greeting="https://example.tld/audio/call_greeting.wav",
            call_reporting=reporting,
        ),
        **EXAMPLE_URIS,
    )
    await providers.avanser_client().request_service(request)
    assert last(providers, "POST", "/v1/requests").json == seed_example("### Example: new prompt service")


@pytest.mark.parametrize(
    ("rule", "body"),
    [
        (
            NumberRule(search_type="location", location="LEVEL 2 150-152 Elizabeth St, 2000 NSW Australia", radius=20),
            {
                "country": "AU",
                "search_type": "location",
                "location": "LEVEL 2 150-152 Elizabeth St, 2000 NSW Australia",
                "radius": 20,
            },
        ),
        (
            NumberRule(search_type="coordinates", lat=-33.865143, lng=151.2099, radius=20),
            {
                "country": "AU",
                "search_type": "coordinates",
                "lat": -33.865143,
                "long": 151.2099,
                "lng": 151.2099,
                "radius": 20,
            },
        ),
        (
            NumberRule(search_type="number", number="+61290081596"),
            {"country": "AU", "search_type": "number", "number": "61290081596"},
        ),
        (
            NumberRule(search_type="prefix", number="+61290081500"),
            {"country": "AU", "search_type": "prefix", "number": "61290081500"},
        ),
        (
            NumberRule(search_type="szu", szu="sydney"),
            {"country": "AU", "search_type": "szu", "szu": "sydney"},
        ),
    ],
)
async def test_number_rules(providers: Providers, rule: NumberRule, body: dict) -> None:
    request = ServiceRequest(
        name="Rule test", custom_id="rule-1", service_number=rule, service=ServiceConfig(type="voicemail")
    )
    ack = await providers.avanser_client().request_service(request)
    assert last(providers, "POST", "/v1/requests").json["service_number"] == body
    assert ack.service_e164 and ack.service_e164.startswith("+612")


async def test_invalid_request_fields_come_back_per_field(providers: Providers) -> None:
    request = ServiceRequest(
        name="Bad",
        custom_id="bad-1",
        service_number=NumberRule(search_type="szu", szu="perth"),
        service=ServiceConfig(type="transfer"),
    )
    with pytest.raises(AvanserRejected) as info:
        await providers.avanser_client().request_service(request)
    assert info.value.fields == {
        "answer_point": "invalid number",
        "record_call": "required for transfer (true or false)",
    }
    assert str(info.value).startswith("AVANSER refused the request — the answer point: invalid number;")
    assert providers.avanser.posts_for("bad-1") == 0


# -- requests, services, callbacks ------------------------------------------------------------


async def test_request_lifecycle_and_raw_bodies(providers: Providers) -> None:
    client = providers.avanser_client()
    request = ServiceRequest(
        name="Lifecycle",
        custom_id="life-1",
        service_number=NumberRule(search_type="szu", szu="brisbane"),
        service=ServiceConfig(type="voicemail"),
    )
    ack = await client.request_service(request)
    pending = await client.find_request("life-1")
    assert pending is not None and pending.id == ack.request_id
    wait_for(lambda: providers.avanser.requests[-1]["request_status"] == "completed", timeout=5)
    done = await client.find_request("life-1")
    assert done is not None and done.final and done.request_status == "completed"
    assert done.links["request_body"] == f"/requests/{ack.request_id}/request_body"
    assert await client.request_body(ack.request_id) == request.to_body()
    assert (await client.acknowledgment_body(ack.request_id))["response"]["request_id"] == ack.request_id
    assert (await client.callback_body(ack.request_id))["status"] == "completed"
    services = await client.list_services()
    assert [s.name for s in services] == ["Lifecycle"] and services[0].e164 == ack.service_e164


async def test_list_requests_follows_next(providers: Providers) -> None:
    for n in range(230):
        providers.avanser.requests.append(
            {
                "id": f"{n:032x}",
                "request_type": "create",
                "custom_id": f"bulk-{n}",
                "custom_group": None,
                "request_date": "2016-09-06T16:13:38+10:00",
                "callback_date": None,
                "request_status": "completed",
                "message": "ok",
                "service_number": "61290081590",
                "answer_point": None,
                "callback_url": None,
                "request_body": {},
                "acknowledgment_body": None,
                "callback_body": None,
                "callback": {"last_update": None, "status": "pending", "http_reply": 0},
            }
        )
    records = await providers.avanser_client().list_requests()
    assert len(records) == 230 and records[-1].custom_id == "bulk-229"
    assert [r.path for r in providers.avanser.received] == [
        "/v1/requests",
        "/v1/requests/2",
        "/v1/requests/3",
    ]
    assert records[0].callback is not None and records[0].callback.status == "pending"


async def test_update_and_decommission(providers: Providers) -> None:
    client = providers.avanser_client()
    ack = await client.request_service(
        ServiceRequest(
            name="Sydney Office",
            custom_id="upd-1",
            service_number=NumberRule(search_type="szu", szu="sydney"),
            service=ServiceConfig(type="transfer", answer_point="+61401010023", record_call=True),
        )
    )
    number = ack.service_e164
    assert number is not None
    wait_for(lambda: number in providers.avanser.services, timeout=5)
    await client.update_service(number, ServiceUpdate(service=ServiceConfig(answer_point_name="Sidney Office New")))
    sent = last(providers, "POST", "/v1/services/")
    assert sent.path == f"/v1/services/{number[1:]}"
    assert sent.json == {"service": {"answer_point_name": "Sidney Office New"}}  # the seed's example
    await client.update_service(number, ServiceUpdate(call_reporting=CallReporting(report="none")))
    assert last(providers, "POST", "/v1/services/").json == {"call_reporting": {"report": "none"}}  # seed example
    wait_for(
        lambda: providers.avanser.services[number]["service"].get("call_reporting") == {"report": "none"},
        timeout=5,
    )
    assert providers.avanser.services[number]["service"]["answer_point_name"] == "Sidney Office New"
    gone = await client.decommission_service(number)
    assert last(providers, "DELETE", "/v1/services/").path == f"/v1/services/{number[1:]}"
    assert gone.request_id
    wait_for(lambda: number not in providers.avanser.services, timeout=5)
    with pytest.raises(AvanserRejected, match="service not found"):
        await client.decommission_service(number)


async def test_callback_reaches_the_app_inbox(stack) -> None:
    from tests.helpers import inbox

    client = stack_client(stack, "avanser")
    callback_uri = f"{stack.url}/hooks/avanser/request?token={stack.webhook_token}"
    request = ServiceRequest(
        name="Callback",
        custom_id="cb-1",
        service_number=NumberRule(search_type="szu", szu="melbourne"),
        service=ServiceConfig(type="voicemail"),
        callback_uri=callback_uri,
    )
    ack = await client.request_service(request)
    rows = wait_for(lambda: inbox(stack), timeout=10)
    source, key, payload = rows[0]
    assert source == "avanser.request" and key == f"avanser.request:{ack.request_id}:completed"
    assert payload == {
        "account_id": 6999,
        "request_id": ack.request_id,
        "custom_id": "cb-1",
        "status": "completed",
        "message": "Request completed successfully",
        "service_number": ack.service_number,
        "answer_point": None,
    }
    wait_for(lambda: stack.avanser.callbacks_sent, timeout=5)
    assert stack.avanser.callbacks_sent[-1][2] == 200


async def test_failed_provisioning_is_reported(providers: Providers) -> None:
    providers.avanser.fail_provisioning.add("+61290081590")
    client = providers.avanser_client()
    await client.request_service(
        ServiceRequest(
            name="Fails",
            custom_id="fail-1",
            service_number=NumberRule(search_type="number", number="+61290081590"),
            service=ServiceConfig(type="voicemail"),
        )
    )
    wait_for(lambda: providers.avanser.requests[-1]["request_status"] == "failed", timeout=5)
    record = await client.find_request("fail-1")
    assert record is not None and record.message == "Selected service number is not available"
    assert "+61290081590" in [n.e164 for n in (await client.search_by_szu("sydney")).numbers]  # released


# -- templates --------------------------------------------------------------------------------


async def test_templates(providers: Providers) -> None:
    client = providers.avanser_client()
    names = {(t.name, t.type) for t in await client.list_templates()}
    assert ("html_email_template", "email") in names
    body = "New Call for your service __adname__ (__bnum__) at __dateTime__."
    await client.save_template("missed_sms", body, type="sms")
    sent = last(providers, "POST", "/v1/templates")
    assert sent.query == {"type": "sms", "name": "missed_sms", "country": "AU"}
    assert sent.headers["content-type"].startswith("text/html") and sent.text == body
    preview = await client.preview_template("missed_sms")
    assert last(providers, "GET", "/v1/templates").query == {"name": "missed_sms", "country": "AU"}
    assert preview == {"message": "Success", "code": 200}  # Generic Success: the seed's preview has no text
    await client.delete_template("missed_sms", type="sms")
    assert last(providers, "DELETE", "/v1/templates").query == {
        "type": "sms",
        "name": "missed_sms",
        "country": "AU",
    }
    assert ("missed_sms", "sms") not in {(t.name, t.type) for t in await client.list_templates()}


async def test_deleting_a_template_in_use_is_refused(providers: Providers) -> None:
    client = providers.avanser_client()
    ack = await client.request_service(
        ServiceRequest(
            name="Uses template",
            custom_id="tpl-1",
            service_number=NumberRule(search_type="szu", szu="perth"),
            service=ServiceConfig(
                type="voicemail",
                call_reporting=CallReporting(
                    report="missed", sms=SmsReport(mobile="+61420123123", template="text_sms_template")
                ),
            ),
        )
    )
    wait_for(lambda: ack.service_e164 in providers.avanser.services, timeout=5)
    with pytest.raises(TemplateInUse) as info:
        await client.delete_template("text_sms_template", type="sms")
    assert str(info.value) == "AVANSER refused the request: Template is in use."


# -- robustness -------------------------------------------------------------------------------


async def test_wrong_credentials(providers: Providers) -> None:
    from bot.telco.avanser import AvanserClient

    client = AvanserClient(f"{providers.avanser.base_url}/v1/", "switchboard", "wrong")
    with pytest.raises(ProviderAuthFailed) as info:
        await client.list_accounts()
    assert "check the AVANSER credentials" in str(info.value) and "wrong" not in str(info.value)


async def test_get_retries_5xx_then_succeeds(providers: Providers) -> None:
    providers.avanser.inject("status", status=503, count=2)
    accounts = await providers.avanser_client().list_accounts()
    assert len(accounts) == 2
    assert len(providers.avanser.requests_to("GET", "/v1/accounts")) == 3


async def test_get_gives_up_after_the_attempts(providers: Providers) -> None:
    providers.avanser.inject("status", status=500, count=5)
    with pytest.raises(ProviderUnavailable) as info:
        await providers.avanser_client().list_accounts()
    assert (
        str(info.value) == "AVANSER isn't answering right now. Nothing was changed; please try again in a few minutes."
    )
    assert len(providers.avanser.received) == 3


async def test_429_retry_after_is_honoured(providers: Providers) -> None:
    providers.avanser.inject("status", status=429, count=1, retry_after=1)
    client = providers.avanser_client(retry=RetryPolicy(attempts=2, backoff=0.01, max_wait=2))
    import time

    start = time.monotonic()
    await client.list_accounts()
    assert time.monotonic() - start >= 0.9
    providers.avanser.inject("status", status=429, count=5, retry_after=0)
    with pytest.raises(ProviderRateLimited):
        await client.list_accounts()


async def test_malformed_json_is_a_typed_error(providers: Providers) -> None:
    providers.avanser.inject("malformed")
    with pytest.raises(ProviderBadResponse) as info:
        await providers.avanser_client().list_templates()
    assert str(info.value) == "AVANSER sent back something Switchboard didn't understand. An admin has the details."


async def test_unexpected_shape_is_a_typed_error(providers: Providers) -> None:
    providers.avanser.inject("status", status=200, body='{"response": [{"name": 5, "type": []}]}')
    with pytest.raises(ProviderBadResponse):
        await providers.avanser_client().list_templates()


async def test_timeout_is_a_typed_error(providers: Providers) -> None:
    providers.avanser.inject("timeout", delay=0.8, count=3)
    with pytest.raises(ProviderTimeout):
        await providers.avanser_client(timeout=0.2).list_accounts()


async def test_connection_refused_is_a_typed_error() -> None:
    from bot.sandbox.server import free_socket
    from bot.telco.avanser import AvanserClient

    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    client = AvanserClient(f"http://127.0.0.1:{port}/v1/", "u", "p", retry=RetryPolicy(attempts=2, backoff=0.01))
    with pytest.raises(ProviderUnavailable):
        await client.list_accounts()


# -- never buy a number twice -----------------------------------------------------------------


def simple_request(custom_id: str) -> ServiceRequest:
    return ServiceRequest(
        name="Once",
        custom_id=custom_id,
        service_number=NumberRule(search_type="szu", szu="sydney"),
        service=ServiceConfig(type="voicemail"),
    )


async def test_lost_answer_after_commit_is_recovered_from_the_request_list(providers: Providers) -> None:
    providers.avanser.inject("after_commit", status=502, path="/v1/requests", method="POST")
    ack = await providers.avanser_client().request_service(simple_request("once-1"))
    assert providers.avanser.posts_for("once-1") == 1
    assert len(providers.avanser.requests_to("POST", "/v1/requests")) == 1
    assert ack.request_id == providers.avanser.requests[-1]["id"]


async def test_timeout_after_commit_is_recovered_without_a_second_post(providers: Providers) -> None:
    providers.avanser.inject("after_commit", status=504, delay=1.0, path="/v1/requests", method="POST")
    ack = await providers.avanser_client(timeout=0.3).request_service(simple_request("once-2"))
    assert providers.avanser.posts_for("once-2") == 1
    assert len(providers.avanser.requests_to("POST", "/v1/requests")) == 1
    assert ack.request_id


async def test_refusal_before_commit_buys_nothing_and_says_so(providers: Providers) -> None:
    providers.avanser.inject("status", status=503, path="/v1/requests", method="POST")
    with pytest.raises(ProviderUnavailable) as info:
        await providers.avanser_client().request_service(simple_request("once-3"))
    assert "Nothing was changed" in str(info.value)
    assert providers.avanser.posts_for("once-3") == 0
    assert len(providers.avanser.requests_to("POST", "/v1/requests")) == 1


async def test_429_on_a_new_request_is_retried_once_refused(providers: Providers) -> None:
    providers.avanser.inject("status", status=429, path="/v1/requests", method="POST", retry_after=0)
    await providers.avanser_client().request_service(simple_request("once-4"))
    assert providers.avanser.posts_for("once-4") == 1


async def test_httpx_errors_never_escape(providers: Providers) -> None:
    providers.avanser.inject("timeout", delay=0.8, count=10)
    with pytest.raises(ProviderTimeout) as info:
        await providers.avanser_client(timeout=0.2).list_services()
    assert not isinstance(info.value, httpx.HTTPError)
    assert isinstance(info.value.__cause__, httpx.TimeoutException)


async def test_calls_and_texts_reach_the_app_inbox(stack) -> None:
    from tests.helpers import inbox

    hooks = f"{stack.url}/hooks/avanser"
    token = f"token={stack.webhook_token}"
    ack = await stack_client(stack, "avanser").request_service(
        ServiceRequest(
            name="Spring sale ad",
            custom_id="ad-1",
            custom_group="spring",
            service_number=NumberRule(search_type="number_type", number_type="MOBILE"),
            service=ServiceConfig(
                type="transfer",
                answer_point="+61401020304",
                answer_point_name="Sydney Office",
                record_call=True,
            ),
            call_uri=f"{hooks}/call?{token}",
            sms_forward_uri=f"{hooks}/sms?{token}",
        )
    )
    number = ack.service_e164
    wait_for(lambda: number in stack.avanser.services, timeout=5)
    assert stack.avanser.place_call(number, "+61410203045", uniqueid="ECS1-42.1").status_code == 200
    assert stack.avanser.send_sms(number, "+61410203045", "Is the sale still on?").status_code == 200
    rows = wait_for(lambda: len(inbox(stack)) == 2 and inbox(stack), timeout=5)
    call = next(r[2] for r in rows if r[0] == "avanser.call")
    assert call["uniqueid"] == "ECS1-42.1" and call["callstatus"] == "avanser_missed_call"
    assert call["bnum"] == "+61-0" + number[3:] and call["ani"] == "+61-0410203045"
    assert call["adname"] == "Spring sale ad" and call["targetname"] == "Sydney Office"
    assert call["target"] == "+61-0401020304"
    assert (call["custom_id"], call["custom_group"]) == ("ad-1", "spring")
    sms = next(r[2] for r in rows if r[0] == "avanser.sms")
    assert sms["txt"] == "Is the sale still on?" and sms["from"] == "+61-0410203045" and sms["clientId"] == "6999"


# -- only what seed 001 shows -------------------------------------------------------------------


@pytest.mark.parametrize("form", ["number", "string"])
async def test_number_rates_are_read_in_the_seed_shape(providers: Providers, form: str) -> None:
    # Seed: `rate_code : 61 (string)` — unquoted in the example, typed string: the sandbox sends either.
    providers.avanser.rate_code_form = form
    answer = await raw(providers, "GET", "accounts/number_rates")
    assert answer.json()["response"] == [
        {
            "rate_code": 61 if form == "number" else "61",
            "description": "Test MMT",
            "setup_date": "2017-01-07",
            "setup_charge": "0.00",
            "rental_charge": "0.00",
        }
    ]
    client = providers.avanser_client()
    [rate] = await client.number_rates()
    assert rate.rate_code == "61" and rate.label == "Test MMT, rate code 61"
    assert (await client.call_rates())[0].rate_code == "61"


async def test_the_cost_of_a_number_type_is_known_only_when_a_rate_names_it(providers: Providers) -> None:
    client = providers.avanser_client()
    unknown = await client.number_cost("MOBILE")
    assert not unknown.known and unknown.number_type == "MOBILE"
    assert unknown.sentence() == (
        "Cost: unknown — AVANSER's number rates don't say which applies to a mobile number "
        "(Test MMT, rate code 61: setup $0.00, rental $0.00)."
    )
    providers.avanser.number_rates.append(
        {
            "rate_code": 62,
            "description": "Virtual mobile number",
            "setup_date": "2017-01-07",
            "setup_charge": 5,
            "rental_charge": "15.00",
        }
    )
    mobile = await client.number_cost(NumberRule(search_type="number_type", number_type="MOBILE"))
    assert (
        mobile.known and mobile.sentence() == "Cost: setup $5.00, rental $15.00 (Virtual mobile number, rate code 62)"
    )
    geo = await client.number_cost(NumberRule(search_type="szu", szu="sydney"))  # picked by place: a local number
    assert geo.number_type == "GEO" and not geo.known
    picked = await client.number_cost(NumberRule(search_type="number", number="+61412010100"))
    assert picked.number_type == "MOBILE" and picked.known
    assert cost_for([], "TOLLFREE").sentence() == "Cost: unknown — AVANSER lists no number rates for this account."
    assert number_type_of("+611800555120") == "FREECALL" and number_type_of("+611300123120") == "TOLLFREE"


async def test_geo_is_never_sent_as_a_request_rule(providers: Providers) -> None:
    # Inbound Request: number_type is tollfree, freecall or mobile; GEO is a search type only.
    rule = NumberRule(search_type="number_type", number_type="GEO")
    assert rule.problem() == (
        "AVANSER can't pick a geo number by type in a new-service request (it offers mobile, tollfree and "
        "freecall). Search near an address, by SZU or by prefix, or pick a number from `/numbers search geo`."
    )
    request = ServiceRequest(
        name="Geo", custom_id="geo-1", service_number=rule, service=ServiceConfig(type="voicemail")
    )
    with pytest.raises(RuleNotOffered) as info:
        await providers.avanser_client().request_service(request)
    assert isinstance(info.value, UserError) and str(info.value) == rule.problem()
    assert providers.avanser.received == []
    assert NumberRule(search_type="number_type", number_type="mobile").problem() is None  # the schema's case reads
    # and the sandbox refuses it, as AVANSER's schema does
    body = {
        **request.model_dump(exclude_none=True),
        "service_number": {"country": "AU", "search_type": "number_type", "number_type": "GEO"},
    }
    answer = await raw(providers, "POST", "requests", json=body)
    assert answer.status_code == 400 and answer.json()["errors"] == {
        "number_type": "must be tollfree, freecall or mobile"
    }
    body["service_number"]["number_type"] = "mobile"
    assert (await raw(providers, "POST", "requests", json=body)).status_code == 200


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        (lambda b: b["service"].update(recording=True), {"recording": "unknown field"}),
        (lambda b: b.update(call_callback_uri="http://x.example/cb"), {"call_callback_uri": "unknown field"}),
        (
            lambda b: b["service_number"].pop("radius"),
            {"radius": "required when search_type is coordinates or location"},
        ),
        (
            lambda b: b["service"]["call_reporting"]["sms"].update(template="html_email_template"),
            {"template": "invalid template"},
        ),
        (
            lambda b: b["service"]["call_reporting"]["email"].update(template="never_saved"),
            {"template": "invalid template"},
        ),
        (
            lambda b: b["service"]["call_reporting"]["email"].update(email_cc="a@b.example"),
            {"email_cc": "must be a list of email addresses"},
        ),
    ],
)
def test_the_sandbox_refuses_what_the_request_schema_does_not_list(providers: Providers, change, errors: dict) -> None:
    body = {
        "name": "Strict",
        "custom_id": "strict-1",
        "service_number": {"country": "AU", "search_type": "location", "location": "Sydney NSW", "radius": 20},
        "service": {
            "type": "voicemail",
            "call_reporting": {
                "report": "missed",
                "email": {"subject": "s", "email_to": ["a@b.example"], "template": "html_email_template"},
                "sms": {"mobile": "61420123123", "template": "text_sms_template"},
            },
        },
    }
    url, headers = f"{providers.avanser.base_url}/v1/requests", {"authorization": auth_header(providers)}
    assert httpx.post(url, json={**body, "custom_id": "strict-0"}, headers=headers).status_code == 200
    change(body)
    answer = httpx.post(url, json=body, headers=headers)
    assert answer.status_code == 400 and answer.json()["errors"] == errors
    assert answer.json()["error"] == {"message": "Bad Request", "code": 400}


def test_error_bodies_and_the_300_are_the_seeds_shapes(providers: Providers) -> None:
    refused = httpx.get(f"{providers.avanser.base_url}/v1/accounts", auth=("switchboard", "wrong"))
    assert refused.status_code == 401
    assert {k: v for k, v in refused.json().items() if k != "@transaction"} == {
        "error": {"message": "Unauthorized", "code": 401},
        "errors": {"description": "Unauthorized", "code": "401"},  # Error Response
    }
    several = httpx.get(
        f"{providers.avanser.base_url}/v1/numbers",
        params={"country": "AU", "location": "Richmond"},
        headers={"authorization": auth_header(providers)},
    )
    assert several.status_code == 300 and set(several.json()) == {"@transaction", "errors"}  # Multiple Addresses
    assert several.json()["errors"]["location"][0] == {
        "name": "Richmond, NSW, AU",
        "state": "NSW",
        "country": "AU",
        "lat_lng": [-33.5997, 150.7514],
    }
    lower = httpx.get(
        f"{providers.avanser.base_url}/v1/numbers",
        params={"country": "AU", "number_type": "mobile"},  # the search's enum is upper case
        headers={"authorization": auth_header(providers)},
    )
    assert lower.status_code == 400


async def test_raw_bodies_are_what_was_exchanged(providers: Providers) -> None:
    client = providers.avanser_client()
    ack = await client.request_service(simple_request("raw-1"))
    sent = last(providers, "POST", "/v1/requests")
    answer = await raw(providers, "GET", f"requests/{ack.request_id}/request_body")
    assert answer.headers["content-type"].startswith("text/plain") and answer.text == sent.text
    [record] = (await raw(providers, "GET", "requests")).json()["response"]
    assert set(record) == {  # List Requests, field for field
        "id",
        "request_type",
        "custom_id",
        "custom_group",
        "request_date",
        "callback_date",
        "request_status",
        "message",
        "service_number",
        "answer_point",
        "callback_url",
        "@links",
        "@callback",
    }
    acknowledgment = await client.acknowledgment_body(ack.request_id)
    assert (
        set(acknowledgment) == {"@transaction", "response"}
        and acknowledgment["response"]["request_id"] == ack.request_id
    )
    wait_for(lambda: ack.service_e164 in providers.avanser.services, timeout=5)
    gone = await client.decommission_service(ack.service_e164 or "")
    assert await client.request_body(gone.request_id) == {}  # a DELETE has no body


def test_a_call_carries_the_documented_parameters_only(providers: Providers) -> None:
    import inspect

    from bot.sandbox.avanser import SEED_CALL

    assert "recording" not in inspect.signature(providers.avanser.place_call).parameters
    providers.avanser.services["+61290081590"] = {
        "name": "Ad",
        "service": {"answer_point": "61401020304", "answer_point_name": "Office"},
        "call_uri": f"{providers.avanser.base_url}/v1/accounts?type=configuration",  # any URL that answers
        "custom_id": "ad-1",
        "custom_group": "g",
    }
    providers.avanser.place_call("+61290081590", "+61410203045")
    call = providers.avanser.received[-1]
    assert set(call.query) == set(SEED_CALL) | {"type", "custom_id", "custom_group"}  # seed 001's table + seed 000's


# -- a decommission is never sent twice -----------------------------------------------------------


async def live_service(providers: Providers, custom_id: str) -> str:
    ack = await providers.avanser_client().request_service(simple_request(custom_id))
    number = ack.service_e164
    assert number is not None
    wait_for(lambda: number in providers.avanser.services, timeout=5)
    return number


def deletes(providers: Providers) -> list[dict]:
    return [r for r in providers.avanser.requests if r["request_type"] == "delete"]


@pytest.mark.parametrize(("status", "delay"), [(502, 0.0), (504, 1.0)])
async def test_a_lost_decommission_answer_is_found_in_the_request_list(
    providers: Providers, status: int, delay: float
) -> None:
    number = await live_service(providers, "dec-1")
    providers.avanser.inject("after_commit", status=status, delay=delay, path="/v1/services/", method="DELETE")
    ack = await providers.avanser_client(timeout=0.3).decommission_service(number)
    assert len(providers.avanser.requests_to("DELETE", "/v1/services/")) == 1  # not re-sent
    [record] = deletes(providers)
    assert ack.request_id == record["id"]


async def test_a_refused_decommission_is_not_resent_and_says_nothing_changed(providers: Providers) -> None:
    number = await live_service(providers, "dec-2")
    providers.avanser.inject("status", status=503, path="/v1/services/", method="DELETE")
    with pytest.raises(ProviderUnavailable) as info:
        await providers.avanser_client().decommission_service(number)
    assert "Nothing was changed" in str(info.value)
    assert len(providers.avanser.requests_to("DELETE", "/v1/services/")) == 1 and deletes(providers) == []
    providers.avanser.inject("timeout", delay=1.0, path="/v1/services/", method="DELETE")
    with pytest.raises(ProviderTimeout) as late:
        await providers.avanser_client(timeout=0.3).decommission_service(number)
    assert "no record of a release" in str(late.value) and "still in service" in str(late.value)
    assert deletes(providers) == []


async def test_an_unverifiable_decommission_may_have_happened(providers: Providers) -> None:
    number = await live_service(providers, "dec-3")
    providers.avanser.inject("after_commit", status=502, path="/v1/services/", method="DELETE")
    providers.avanser.inject("status", status=500, path="/v1/requests", method="GET", count=10)
    with pytest.raises(AvanserMaybeApplied) as info:
        await providers.avanser_client().decommission_service(number)
    assert isinstance(info.value, ProviderMaybeApplied) and not isinstance(info.value, ProviderUnavailable)
    assert str(info.value) == (
        "AVANSER didn't answer, and I couldn't check whether it took the release of (02) 9008 1590: it may have. "
        "Nothing will be sent again automatically; look at `/numbers requests` in a few minutes before trying again."
    )
    assert len(providers.avanser.requests_to("DELETE", "/v1/services/")) == 1 and len(deletes(providers)) == 1


async def test_an_earlier_life_of_the_number_is_not_taken_for_this_release(providers: Providers) -> None:
    number = await live_service(providers, "dec-4")
    old = {**providers.avanser.requests[-1], "id": "0" * 32, "request_type": "delete", "request_status": "completed"}
    providers.avanser.requests.insert(0, old)  # a release of the same number before it was bought again
    providers.avanser.inject("status", status=502, path="/v1/services/", method="DELETE")
    with pytest.raises(ProviderUnavailable):
        await providers.avanser_client().decommission_service(number)


async def test_an_unverifiable_new_service_may_have_been_taken(providers: Providers) -> None:
    providers.avanser.inject("after_commit", status=502, path="/v1/requests", method="POST")
    providers.avanser.inject("status", status=500, path="/v1/requests", method="GET", count=10)
    with pytest.raises(AvanserMaybeApplied, match="it may have"):
        await providers.avanser_client().request_service(simple_request("maybe-1"))
    assert providers.avanser.posts_for("maybe-1") == 1
