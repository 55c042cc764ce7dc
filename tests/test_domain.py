"""The domain rooms on a real SQLite file, without Slack or a provider: the rules that moved out of the listeners."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.domain import alerts, calls, numbers, routing, vn
from bot.errors import FormErrors, UserError
from bot.inbox import InboxProcessor, store_event
from bot.services import Services
from bot.settings import load_settings
from bot.web import wire_domain
from notifiers.message import Message
from tests.helpers import AVANSER_CALL, AVANSER_SMS, TRACKING

ADMIN, REP = "U0ADMIN", "U0REP"
FORM = {"name": "Radio ad", "type": "transfer", "answer_point": "02 9008 1500", "report": "missed"}


def make(tmp_path: Path, **settings: Any) -> Services:
    values = {
        "SWITCHBOARD_DB": str(tmp_path / "switchboard.db"),
        "SWITCHBOARD_ADMINS": ADMIN,
        "SWITCHBOARD_PUBLIC_URL": "https://switchboard.example",
        "SWITCHBOARD_WEBHOOK_TOKEN": "hook-secret",
        "SWITCHBOARD_ALERTS_CHANNEL": "C0ALERTS",
        **settings,
    }
    services = Services.create(load_settings(env_file=None, **values))
    wire_domain(services)
    return services


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    made = make(tmp_path, SWITCHBOARD_APPROVALS_CHANNEL="C0APPROVALS")
    yield made
    made.store.close()


def posts(services: Services) -> list[tuple[str, str, dict[str, Any]]]:
    rows = services.store.execute("SELECT method, channel, payload FROM outbox ORDER BY id").fetchall()
    return [(m, c, json.loads(p)) for m, c, p in rows]


# -- numbers ------------------------------------------------------------------------------------------------


def test_a_rep_without_an_approvals_channel_is_refused_on_the_form(tmp_path: Path) -> None:
    services = make(tmp_path)  # no SWITCHBOARD_APPROVALS_CHANNEL
    with pytest.raises(UserError) as refused:
        numbers.check_new_number(services, REP, FORM, "C0SALES")
    assert refused.value.field == "name"
    assert "no approvals channel is set up" in str(refused.value)
    assert numbers.check_new_number(services, ADMIN, FORM, "C0SALES").request.name == "Radio ad"


def test_new_number_form_errors_name_their_inputs(services: Services) -> None:
    form = {**FORM, "answer_point": "", "email_to": "not-an-email", "custom_id": "x" * 51}
    with pytest.raises(FormErrors) as refused:
        numbers.check_new_number(services, ADMIN, form, "C0SALES")
    assert refused.value.errors == {
        "answer_point": "A transfer needs the phone its calls go to.",
        "email_to": "“not-an-email” isn't an email address.",
        "custom_id": "At most 50 characters.",
    }


async def test_the_webhook_urls_carry_the_token(services: Services) -> None:
    checked = numbers.check_new_number(services, ADMIN, FORM, "C0SALES")
    assert checked.request.call_uri == (
        f"https://switchboard.example/hooks/avanser/call?token=hook-secret&{numbers.CALL_URI_TAGS}"
    )
    assert numbers.request_new_number(services, ADMIN, checked).status == "submitting"
    await services.tasks.wait(2)  # AVANSER isn't configured here: the submission says so and ends
    audited = services.store.execute("SELECT detail FROM audit WHERE action = 'number.create.request'").fetchone()
    assert "hook-secret" not in audited[0]


def test_an_edit_sends_only_what_changed(services: Services) -> None:
    before = {"name": "Radio ad", "type": "transfer", "answer_point": "02 9008 1500", "report": "missed"}
    same = {**before, "answer_point": "(02) 9008 1500"}  # spacing is not a change
    with pytest.raises(UserError, match="Nothing was changed"):
        numbers.check_edit(services, ADMIN, same, before)
    update = numbers.check_edit(services, ADMIN, {**before, "answer_point_name": "Front desk"}, before)
    assert update.model_dump(exclude_none=True) == {"service": {"answer_point_name": "Front desk"}}


def test_a_rep_request_waits_for_approval_and_only_admins_decide(services: Services) -> None:
    checked = numbers.check_new_number(services, REP, FORM, "C0SALES")
    created = numbers.create_request(
        services, kind="create", name="Radio ad", number=None, channel="C0SALES", requester=REP, body={}
    )
    assert created.status == "awaiting_approval" and checked.channel == "C0SALES"
    with pytest.raises(UserError, match="Only Switchboard admins"):
        numbers.decide(services, created.id, REP, True)
    assert numbers.decide(services, created.id, ADMIN, False).status == "rejected"
    with pytest.raises(UserError, match="already decided by <@U0ADMIN>"):
        numbers.decide(services, created.id, ADMIN, True)


# -- routing and alerts ---------------------------------------------------------------------------------


def test_route_order_number_then_group_then_default(services: Services) -> None:
    store = services.store
    assert routing.route_for(store, "C0ALERTS", number=TRACKING, custom_group="g1") == routing.Route(
        "C0ALERTS", via="default"
    )
    routing.set_group_route(store, "g1", "C0GROUP", by=ADMIN)
    assert routing.route_for(store, "C0ALERTS", number=TRACKING, custom_group="g1").channel == "C0GROUP"
    routing.set_route(store, TRACKING, "C0SALES", by=ADMIN, mask_callers=True)
    routing.set_route(store, TRACKING, "C0OTHER", by=ADMIN)  # options not given keep their value
    route = routing.route_for(store, "C0ALERTS", number=TRACKING, custom_group="g1")
    assert (route.channel, route.mask_callers, route.via) == ("C0OTHER", True, "number")


def test_delivery_replies_in_a_thread_only_in_its_own_channel(services: Services) -> None:
    store, outbox = services.store, services.outbox
    root = routing.deliver(store, outbox, "k1", "C0SALES", Message(text="root", starts_thread="t")).row
    assert root is not None
    reply = routing.deliver(store, outbox, "k2", "C0SALES", Message(text="reply", thread_keys=("t",))).row
    moved = routing.deliver(store, outbox, "k3", "C0ELSEWHERE", Message(text="moved", thread_keys=("t",))).row
    thread_of = dict(store.execute("SELECT id, thread_of FROM outbox").fetchall())
    assert (thread_of[reply], thread_of[moved]) == (root, None)


def test_a_storm_gathers_alerts_into_one_digest(services: Services) -> None:
    store, outbox = services.store, services.outbox
    outbox.channel_interval = 1.0
    for n in range(12):
        routing.deliver(store, outbox, f"k{n}", "C0SALES", Message(text=f"alert {n}", summary=f"line {n}"), digest=True)
    posted = [p for m, c, p in posts(services) if m == "chat.postMessage"]
    assert len(posted) == 4  # three posts fill 3 s of the channel's queue; the fourth is the digest
    assert posted[-1] == {"digest": 1}  # rendered when it is sent, from every line it has then
    lines = [r[0] for r in store.execute("SELECT line FROM digest_lines WHERE digest_id = 1 ORDER BY id")]
    assert lines == [f"line {n}" for n in range(3, 12)]
    assert [m for m, _, _ in posts(services)].count("chat.update") == 0  # its post is still pending: no edit


def test_inbox_dispatches_by_event_type_and_claim_is_once(services: Services) -> None:
    routing.set_route(services.store, TRACKING, "C0SALES", by=ADMIN)
    store_event(services.store, "avanser.call", "ECS1", AVANSER_CALL)
    store_event(services.store, "avanser.sms", "sms1", AVANSER_SMS)
    assert services.inbox.process_pending(budget=60) == 2  # not the 3 ms budget: a cold first event may take longer
    statuses = [r[0] for r in services.store.execute("SELECT status FROM inbox ORDER BY id")]
    assert statuses == ["done", "done"]  # the text's number has no route: it goes to SWITCHBOARD_ALERTS_CHANNEL
    assert [c for _, c, _ in posts(services)] == ["C0SALES", "C0ALERTS"]
    assert alerts.claim(services, 1, REP, "C0SALES") is None
    assert alerts.claim(services, 1, ADMIN, "C0SALES") == REP
    with pytest.raises(UserError, match="can't find that alert"):
        alerts.claim(services, 99, REP, "C0SALES")
    with pytest.raises(UserError, match="can't find that alert in this conversation"):
        alerts.claim(services, 2, REP, "C0SALES")  # the text's alert is in C0ALERTS


def test_an_event_without_a_handler_is_kept_as_failed(tmp_path: Path) -> None:
    services = make(tmp_path)
    bare = InboxProcessor(services.store)  # nothing registered
    store_event(services.store, "avanser.call", "ECS1", AVANSER_CALL)
    bare.process_pending()
    row = services.store.execute("SELECT status, error FROM inbox").fetchone()
    assert row == ("failed", "NoHandler: no handler for AvanserCall")


# -- virtual numbers and calls --------------------------------------------------------------------------


def test_allocation_form_errors_name_their_inputs() -> None:
    good = {"aparty": "+919176226528", "bparty": "+918136966620", "duration": "2h"}
    assert vn.plan_from_form(good).duration == 7200
    for changes, field in [
        ({"bparty": "+919176226528"}, "bparty"),
        ({"apins": "12a"}, "apins"),
        ({"duration": "forever"}, "duration"),
        ({"pin_code": "56A001"}, "pin_code"),
        ({"greenvn": "12"}, "greenvn"),
    ]:
        with pytest.raises(UserError) as refused:
            vn.plan_from_form({**good, **changes})
        assert refused.value.field == field, changes


def test_only_the_owner_or_an_admin_manages_an_allocation(services: Services) -> None:
    allocation = vn.Allocation(
        1, "c", "g", "+918012345678", {}, "twoway", REP, "C0", False, None, 0.0, None, None, None, "active"
    )
    vn.may_manage(services, allocation, REP)
    vn.may_manage(services, allocation, ADMIN)
    with pytest.raises(UserError, match="Only <@U0REP>"):
        vn.may_manage(services, allocation, "U0SOMEONE")


def test_call_rules_before_the_ack(tmp_path: Path) -> None:
    services = make(tmp_path, SWITCHBOARD_CALLER_ID="+61290081500")
    assert calls.check_call(services, requester=REP, customer_text="0410 203 045", rep=REP) == "+61410203045"
    with pytest.raises(calls.CallNotAllowed, match="isn't allowed to call"):
        calls.check_call(services, requester=REP, customer_text="+64 21 123 4567", rep=REP)
    with pytest.raises(calls.CallNotAllowed, match="Only Switchboard admins can connect someone else"):
        calls.check_call(services, requester=REP, customer_text="0410 203 045", rep="U0ONCALL")
