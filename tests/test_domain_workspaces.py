"""Many workspaces (#18): the domain rooms keep each workspace's rows apart, on a real SQLite file.

Two workspaces, T1 and T2, in one Switchboard: what one routes, gets called on, allocates or reserves, the
other neither sees nor touches; a webhook finds its workspace through its number; the jobs rebuilt at start
run as their row's workspace.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bot.domain import alerts, calls, home, numbers, refresh, reports, routing, vn, workspace
from bot.errors import UserError
from bot.inbox import store_event
from bot.services import Services
from bot.settings import load_settings
from bot.web import wire_domain
from bot.workspaces import Installation, Installations, team_scope
from tests.helpers import AVANSER_CALL, AVANSER_SMS, TRACKING

ADMIN, REP = "U0ADMIN", "U0REP"
SMS_NUMBER = "+61401020304"  # AVANSER_SMS's `to`


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    made = Services.create(
        load_settings(
            env_file=None,
            SWITCHBOARD_DB=str(tmp_path / "switchboard.db"),
            SWITCHBOARD_ADMINS=ADMIN,
            SWITCHBOARD_ALERTS_CHANNEL="C0ALERTS",
            SWITCHBOARD_APPROVALS_CHANNEL="C0APPROVALS",
            SWITCHBOARD_CALL_LIMIT_TEAM="2/60m",
        )
    )
    wire_domain(made)
    yield made
    made.store.close()


def rows(services: Services, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in services.store.execute(sql, params).fetchall()]


def allocation(services: Services, owner: str, green_vn: str, team: str, *, expires_in: float = 3600.0) -> int:
    """An active lease as `_activate` leaves it, written as workspace `team`'s."""
    now = time.time()
    cursor = services.store.execute(
        "INSERT INTO allocations (connection_id, greenvn_id, green_vn, parties, usage, owner, channel, masked,"
        " expires_at, provider_expires_at, reminder_at, state, created_at, updated_at, team_id)"
        " VALUES (?, ?, ?, '{}', 'twoway', ?, 'C0VN', 0, ?, ?, NULL, 'active', ?, ?, ?)",
        (f"sb-{green_vn}", f"g-{green_vn}", green_vn, owner, now + expires_in, now + 86400, now, now, team),
    )
    return int(cursor.lastrowid or 0)


# -- routes ---------------------------------------------------------------------------------------------


async def test_a_route_is_its_workspaces_and_the_other_can_neither_see_nor_move_it(services: Services) -> None:
    with team_scope("T1"):
        routing.set_route(services.store, TRACKING, "C0T1", by=ADMIN, report="all")
        assert routing.routed_channels(services.store) == {TRACKING: "C0T1"}
    with team_scope("T2"):
        assert routing.routed_channels(services.store) == {}
        assert routing.routed_channel(services.store, TRACKING) is None
        assert routing.route_options(services.store, TRACKING) == {}
        with pytest.raises(routing.RoutedElsewhere, match="routed by another workspace; ask its admins") as refused:
            numbers.may_route(services, ADMIN, TRACKING)
        assert "9008" not in str(refused.value)  # the sentence doesn't name the number or whose it is
        change = numbers.parse_route(f"{TRACKING} <#C0T2|t2>", "AU")
        with pytest.raises(routing.RoutedElsewhere):
            await numbers.route_number(services, ADMIN, change)
        with pytest.raises(routing.RoutedElsewhere):
            routing.set_route(services.store, TRACKING, "C0T2", by=ADMIN)
        routing.remove_route(services.store, TRACKING)  # unrouting someone else's number does nothing
        with pytest.raises(UserError, match="isn't one of your active tracking numbers"):
            await numbers.find_service(services, TRACKING)  # same answer as a number that isn't there
    assert rows(services, "SELECT number, channel, options, team_id FROM routes") == [
        (TRACKING, "C0T1", json.dumps({"report": "all"}), "T1")
    ]
    route = routing.route_for(services.store, "C0ALERTS", number=TRACKING)
    assert route is not None and (route.channel, route.team) == ("C0T1", "T1")


# -- webhooks find their workspace ---------------------------------------------------------------------------


def test_a_webhook_for_a_workspaces_number_writes_that_workspaces_rows(services: Services) -> None:
    with team_scope("T1"):
        routing.set_route(services.store, TRACKING, "C0T1", by=ADMIN)
    with team_scope("T2"):  # T2 asked for the SMS number (no route of its own yet) and has its own alerts channel
        services.workspaces.update("T2", ADMIN, alerts_channel="C0T2ALERTS")
        numbers.create_request(
            services, kind="update", name="Texts", number=SMS_NUMBER, channel="C0T2", requester=ADMIN, body={}
        )
    services.store.execute("UPDATE number_requests SET status = 'completed'")  # AVANSER carried it out
    store_event(services.store, "avanser.call", "ECS1", AVANSER_CALL)
    store_event(services.store, "avanser.sms", "sms1", AVANSER_SMS)
    assert services.inbox.process_pending(budget=60) == 2  # processed with no workspace set
    assert rows(services, "SELECT status FROM inbox ORDER BY id") == [("done",), ("done",)]
    assert rows(services, "SELECT tracking, channel, team_id FROM alerts ORDER BY id") == [
        (TRACKING, "C0T1", "T1"),
        (SMS_NUMBER, "C0T2ALERTS", "T2"),  # T2's own alerts channel, not SWITCHBOARD_ALERTS_CHANNEL
    ]
    assert rows(services, "SELECT tracking, team_id FROM calls") == [(TRACKING, "T1")]
    alert_posts = rows(
        services,
        "SELECT channel, team_id FROM outbox WHERE dedup_key LIKE 'inbox:%' AND method = ? ORDER BY id",
        ("chat.postMessage",),
    )
    assert alert_posts == [("C0T1", "T1"), ("C0T2ALERTS", "T2")]  # each sent with its workspace's token


def test_another_workspace_cannot_claim_an_alert(services: Services) -> None:
    with team_scope("T1"):
        routing.set_route(services.store, TRACKING, "C0T1", by=ADMIN)
    store_event(services.store, "avanser.call", "ECS1", AVANSER_CALL)
    services.inbox.process_pending(budget=60)
    with team_scope("T2"):
        with pytest.raises(UserError, match="can't find that alert in this conversation"):
            alerts.claim(services, 1, ADMIN, "C0T1")
        with pytest.raises(UserError, match="Only Switchboard admins and whoever asked"):
            alerts.claim(services, 1, ADMIN, None)  # from T2's App Home
        assert calls.number_they_called(services, "+61410203045") is None  # T1's caller is unknown in T2
    assert rows(services, "SELECT claimed_by FROM alerts") == [(None,)]
    with team_scope("T1"):
        assert alerts.claim(services, 1, REP, "C0T1") is None
        assert calls.number_they_called(services, "+61410203045") == TRACKING
    assert rows(services, "SELECT claimed_by, team_id FROM alerts") == [(REP, "T1")]
    assert rows(services, "SELECT actor, team_id FROM audit WHERE action = 'alert.claim'") == [(REP, "T1")]


def test_reports_homes_and_requests_are_each_workspaces_own(services: Services) -> None:
    with team_scope("T1"):
        routing.set_route(services.store, TRACKING, "C0T1", by=ADMIN)
        request = numbers.create_request(
            services, kind="update", name="Radio", number=TRACKING, channel="C0T1", requester=REP, body={}
        )
        refresh.opened(services, ADMIN)
    store_event(services.store, "avanser.call", "ECS1", AVANSER_CALL)
    services.inbox.process_pending(budget=60)
    day = date.fromisoformat(rows(services, "SELECT local_day FROM calls")[0][0])  # the seed call's own day
    with team_scope("T2"):
        assert reports.call_report(services.store, None, 7, last_day=day, team="T2").numbers == ()
        counted = reports.call_report(services.store, TRACKING, 7, last_day=day, team="T2")
        assert [(s.calls, s.name) for s in counted.numbers] == [(0, None)]  # not even T1's name for it
        assert home.tracking_numbers(services, ADMIN, True) == []
        assert home.waiting_calls(services, [TRACKING], time.time()) == ([], 0)
        assert home.waiting_approvals(services) == ([], 0)
        with pytest.raises(UserError, match="can't find that request"):
            numbers.decide(services, request.id, ADMIN, True)
    with team_scope("T1"):
        counted = reports.call_report(services.store, None, 7, last_day=day, team="T1")
        assert [(s.number, s.calls) for s in counted.numbers] == [(TRACKING, 1)]
        assert home.tracking_numbers(services, ADMIN, True) == [(TRACKING, None)]
        assert home.waiting_calls(services, [TRACKING], time.time())[1] == 1
        assert home.waiting_approvals(services)[1] == 1
    # The outbox renders a Home outside any request: as the workspace the person opened it in.
    assert "9008 1596" in json.dumps(home.view_for(services, ADMIN))
    assert rows(services, "SELECT status FROM number_requests") == [("awaiting_approval",)]


# -- virtual numbers and call slots ------------------------------------------------------------------------


def test_allocations_are_listed_and_found_in_their_own_workspace_only(services: Services) -> None:
    first = allocation(services, REP, "+918012345678", "T1")
    allocation(services, REP, "+918012345679", "T2")
    with team_scope("T1"):
        assert [a.green_vn for a in vn.owned(services, REP)] == ["+918012345678"]
        assert [a.green_vn for a in vn.owned(services, ADMIN, everyone=True)] == ["+918012345678"]
        assert vn.get(services, str(first)).green_vn == "+918012345678"
    with team_scope("T2"):
        assert [a.green_vn for a in vn.owned(services, ADMIN, everyone=True)] == ["+918012345679"]
        with pytest.raises(UserError, match="There's no virtual number") as by_id:
            vn.get(services, str(first))
        with pytest.raises(UserError, match="There's no virtual number"):
            vn.get(services, "+918012345678")  # by its number: the same sentence as one that doesn't exist
        assert vn.ends_at(services, first) is None
    assert "T1" not in str(by_id.value)


def test_the_team_call_limit_is_each_workspaces_own(services: Services) -> None:
    with team_scope("T1"):
        calls.reserve_slot(services, REP)
        calls.reserve_slot(services, ADMIN)
        with pytest.raises(calls.CallNotAllowed, match="Your team has placed 2 calls"):
            calls.reserve_slot(services, "U0THIRD")
    with team_scope("T2"):  # T1's calls don't count against T2's limit
        calls.reserve_slot(services, REP)
        calls.reserve_slot(services, "U0THIRD")
    assert rows(services, "SELECT team_id, COUNT(*) FROM call_slots GROUP BY team_id ORDER BY team_id") == [
        ("T1", 2),
        ("T2", 2),
    ]


# -- jobs rebuilt at start --------------------------------------------------------------------------------


async def test_rebuilt_jobs_run_as_their_rows_workspace(services: Services) -> None:
    with team_scope("T1"):
        routing.set_route(services.store, TRACKING, "C0T1", by=ADMIN, options={"escalate": "<@U0ONCALL>"})
    store_event(services.store, "avanser.call", "ECS1", AVANSER_CALL)
    services.inbox.process_pending(budget=60)
    expiring = allocation(services, REP, "+918012345678", "T1")
    later = allocation(services, REP, "+918012345679", "T2", expires_in=-5)  # ended while Switchboard was down
    with team_scope("T2"):
        request = numbers.create_request(
            services, kind="update", name="Radio", number=SMS_NUMBER, channel="C0T2", requester=ADMIN, body={}
        )
    services.store.execute(
        "UPDATE number_requests SET status = 'pending', request_id = 'r1', submitted_at = ? WHERE id = ?",
        (time.time(), request.id),
    )
    assert rows(services, "SELECT job_id, team_id FROM scheduled_jobs") == [("escalate-1", "T1")]
    services.store.execute("DELETE FROM scheduled_jobs")  # a restart: the leader rebuilds them with no team set

    await alerts.rebuild_escalations(services)
    await vn.rebuild(services)
    await numbers.rebuild_polls(services)

    assert sorted(rows(services, "SELECT job_id, team_id FROM scheduled_jobs")) == sorted(
        [
            ("escalate-1", "T1"),
            (f"vn-expire-{expiring}", "T1"),
            (f"vn-expire-{later}", "T2"),
            (f"poll-request-{request.id}", "T2"),
        ]
    )


# -- what the second reader found (#18): ownership, digests, caller ID, the operator -----------------------------


def test_asking_for_a_number_does_not_take_it_from_its_workspace(services: Services) -> None:
    """Only a request AVANSER carried out makes a number a workspace's; naming another's is refused before a row."""
    with team_scope("T1"):
        numbers.create_request(
            services, kind="update", name="T1 ad", number=TRACKING, channel="C0T1", requester=ADMIN, body={}
        )
        services.store.execute("UPDATE number_requests SET status = 'completed' WHERE team_id = 'T1'")
    with team_scope("T2"), pytest.raises(UserError, match="isn't one of your active tracking numbers"):
        numbers.create_request(
            services, kind="create", name="mine now", number=TRACKING, channel="C0T2", requester=REP, body={}
        )
    assert rows(services, "SELECT team_id FROM number_requests") == [("T1",)]
    with team_scope("T2"):  # T2's pending ask for a number T1 hasn't got doesn't make it T2's
        numbers.create_request(
            services, kind="create", name="asked", number=SMS_NUMBER, channel="C0T2", requester=ADMIN, body={}
        )
    assert routing.team_of_number(services.store, SMS_NUMBER) == ""
    store_event(services.store, "avanser.call", "ECS1", AVANSER_CALL)
    services.inbox.process_pending(budget=60)
    assert rows(services, "SELECT team_id FROM alerts") == [("T1",)]


def test_a_storm_digest_is_one_workspaces(services: Services) -> None:
    """Two workspaces posting to one channel id (a Slack Connect channel, a shared default) never share a digest."""
    for team in ("T1", "T2"):
        with team_scope(team):
            digest = routing.add_to_digest(services.store, services.outbox, "C0SHARED", f"a call of {team}")
            assert rows(services, "SELECT team_id FROM digests WHERE id = ?", (digest,)) == [(team,)]
    assert len(rows(services, "SELECT id FROM digests")) == 2


def test_the_caller_id_is_one_of_the_workspaces_own_numbers(services: Services) -> None:
    with team_scope("T1"):
        routing.set_route(services.store, TRACKING, "C0T1", by=ADMIN)
    with team_scope("T2"), pytest.raises(UserError, match="isn't one of this workspace's tracking numbers"):
        workspace.save_settings(
            services, ADMIN, admins=[], approvals_channel=None, alerts_channel=None, caller_id="02 9008 1596"
        )
    with team_scope("T1"):
        saved = workspace.save_settings(
            services, ADMIN, admins=[], approvals_channel=None, alerts_channel=None, caller_id="02 9008 1596"
        )
    assert saved.caller_id == TRACKING
    with team_scope("T1"), pytest.raises(UserError) as refused:
        workspace.save_settings(
            services, ADMIN, admins=[], approvals_channel=None, alerts_channel=None, caller_id="<!channel> call me"
        )
    assert "&lt;!channel&gt;" in str(refused.value) and "<!channel>" not in str(refused.value)


def test_the_operator_enables_a_workspace_gives_it_an_account_and_lets_it_adopt_old_rows(services: Services) -> None:
    store = services.store
    for team in ("T1", "T2"):
        installation = Installation(team, team, f"xoxb-{team}", "U0BOT", "chat:write", ADMIN, None, time.time(), {})
        asyncio.run(Installations(store).asave(installation))
    routing.set_route(store, TRACKING, "C0OLD", by=ADMIN)  # written in the one-workspace days: team ""
    assert workspace.operate(store, "T1", enable=True, avanser_accounts=[6999, 7005], adopt=True) == [
        "T1 works in AVANSER account 6999 (its accounts: 6999, 7005).",
        "T1 took over 1 rows written before there were several workspaces.",
        "T1 is enabled.",
    ]
    assert rows(services, "SELECT team_id FROM routes") == [("T1",)]
    with pytest.raises(UserError, match="AVANSER account 7005 is already T1's"):
        workspace.operate(store, "T2", avanser_accounts=[7001, 7005])
    with pytest.raises(UserError, match="hasn't installed Switchboard"):
        workspace.operate(store, "T9", enable=True)
    found = Installations(store).find("T1")
    assert found is not None and found.enabled_at is not None
    assert Installations(store).find("T2").enabled_at is None  # type: ignore[union-attr]


async def test_a_workspace_switches_only_between_the_accounts_its_operator_gave_it(services: Services) -> None:
    services.installations = Installations(services.store)  # many workspaces
    for team in ("T1", "T2"):
        installation = Installation(team, team, f"xoxb-{team}", "U0BOT", "chat:write", ADMIN, None, time.time(), {})
        await services.installations.asave(installation)
    workspace.operate(services.store, "T1", enable=True, avanser_accounts=[6999, 7005])
    workspace.operate(services.store, "T2", enable=True, avanser_accounts=[7001])
    with team_scope("T1"):
        await numbers.switch_account(services, ADMIN, 7005)
        assert services.workspace().avanser_account == 7005
        with pytest.raises(UserError, match="isn't one of this workspace's AVANSER accounts"):
            await numbers.switch_account(services, ADMIN, 7001)  # T2's
        assert services.workspace().avanser_account == 7005
    with team_scope("T2"):
        assert services.workspace().avanser_account == 7001


def test_a_reissued_number_starts_afresh_in_its_new_workspace(services: Services) -> None:
    """T1 had calls on a number, released it; after quarantine AVANSER gives it to T2: T2's report of the number
    counts only T2's calls, T1's report keeps T1's."""
    with team_scope("T1"):
        routing.set_route(services.store, TRACKING, "C0T1", by=ADMIN)
    store_event(services.store, "avanser.call", "ECS1", AVANSER_CALL)
    services.inbox.process_pending(budget=60)
    with team_scope("T1"):
        routing.remove_route(services.store, TRACKING)
    with team_scope("T2"):
        routing.set_route(services.store, TRACKING, "C0T2", by=ADMIN)
    store_event(services.store, "avanser.call", "ECS2", {**AVANSER_CALL, "uniqueid": "ECS2", "callid": "2"})
    store_event(services.store, "avanser.call", "ECS3", {**AVANSER_CALL, "uniqueid": "ECS3", "callid": "3"})
    services.inbox.process_pending(budget=60)
    day = date.fromisoformat(rows(services, "SELECT local_day FROM calls")[0][0])
    mine = {team: reports.call_report(services.store, TRACKING, 7, last_day=day, team=team) for team in ("T1", "T2")}
    assert [s.calls for s in mine["T1"].numbers] == [1]
    assert [s.calls for s in mine["T2"].numbers] == [2]
    assert reports.rebuild_stats(services.store) == 2  # recounted per workspace: a row each


async def test_the_installation_store_keeps_the_installer_when_a_bot_alone_is_saved(services: Services) -> None:
    from slack_sdk.oauth.installation_store import Bot
    from slack_sdk.oauth.installation_store import Installation as SlackInstallation

    from bot.oauth import DatabaseInstallationStore

    saved = DatabaseInstallationStore(Installations(services.store))
    await saved.async_save(
        SlackInstallation(user_id="U0INSTALLER", team_id="T1", team_name="One", bot_token="xoxb-1", bot_user_id="U0B")
    )
    await saved.async_save_bot(
        Bot(team_id="T1", team_name="One", bot_token="xoxb-2", bot_id="B1", bot_user_id="U0B", installed_at=time.time())
    )
    found = await saved.async_find_installation(enterprise_id=None, team_id="T1")
    assert found is not None and (found.user_id, found.bot_token, found.bot_id) == ("U0INSTALLER", "xoxb-2", "B1")
    with pytest.raises(ValueError, match="one workspace at a time"):
        await saved.async_save_bot(
            Bot(team_id=None, bot_token="xoxb-3", bot_id="B1", bot_user_id="U0B", installed_at=time.time())
        )
