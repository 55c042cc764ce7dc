"""Unclaimed calls escalate: once, to the route's person or group (else the requester), never after a claim,
across a restart, and only within business hours."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from bot.domain import alerts
from bot.sandbox.stack import Stack
from bot.settings import BusinessHours, SettingsError, load_settings
from tests.helpers import TRACKING, call, click, flat, messages, on_app, route, send, wait_for

SYDNEY = ZoneInfo("Australia/Sydney")


def replies(stack: Stack, channel: str = "C0SALES") -> list[dict]:
    return [m for m in stack.slack.channel_messages(channel) if m["thread_ts"]]


def alert_row(stack: Stack, alert_id: int) -> tuple:
    return on_app(
        stack,
        lambda s: s.store.execute(
            "SELECT escalate_at, escalated_at, claimed_by FROM alerts WHERE id = ?", (alert_id,)
        ).fetchone(),
    )


def test_an_unclaimed_call_escalates_once_to_the_routes_person(tmp_path: Path, http: httpx.Client) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, SWITCHBOARD_CLAIM_WITHIN="1s") as stack:
        route(stack, options={"escalate": "<@U0ONCALL>"})
        send(http, stack, "GET", "/hooks/avanser/call", call(1))
        [alert] = messages(stack, "C0SALES")
        [reply] = wait_for(lambda: replies(stack), timeout=5)
        assert reply["thread_ts"] == alert["ts"]
        assert reply["text"].startswith("⏰ <@U0ONCALL> this call has been unclaimed for 1 min. Can you take it?")
        edited = wait_for(lambda: "Unclaimed for" in flat(stack.slack.channel_messages("C0SALES")[0]))
        assert edited and "⏰ Unclaimed for 1 min" in flat(stack.slack.channel_messages("C0SALES")[0])
        # At most once: the job again, or its rebuild at start, says nothing more.
        alert_id = int(alert["blocks"][-1]["elements"][0]["value"])
        assert stack.on_app(alerts.escalate(stack.services, alert_id)) is False
        stack.on_app(alerts.rebuild_escalations(stack.services))
        time.sleep(0.5)
        stack.drain(5)
        assert len(replies(stack)) == 1
        # Claiming it afterwards takes the "unclaimed" line away.
        click(stack, "alert_claim", str(alert_id), "U0REP", alert)
        wait_for(lambda: "Claimed by <@U0REP>" in flat(stack.slack.channel_messages("C0SALES")[0]))
        assert "Unclaimed for" not in flat(stack.slack.channel_messages("C0SALES")[0])


def test_a_claimed_or_called_back_call_never_escalates(tmp_path: Path, http: httpx.Client) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, SWITCHBOARD_CLAIM_WITHIN="2s") as stack:
        route(stack, options={"escalate": "<!subteam^S0SALES>"})
        send(http, stack, "GET", "/hooks/avanser/call", call(1, ani="+61-0410203045"))
        send(http, stack, "GET", "/hooks/avanser/call", call(2, ani="+61-0410203046"))
        posted = messages(stack, "C0SALES", 2)
        first, second = (int(m["blocks"][-1]["elements"][0]["value"]) for m in posted)
        click(stack, "alert_claim", str(first), "U0REP", posted[0])
        stack.on_app(_called_back(stack, second))
        time.sleep(2.8)
        stack.drain(5)
        assert replies(stack) == []
        assert alert_row(stack, first)[:2] == (None, None) and alert_row(stack, second)[:2] == (None, None)


async def _called_back(stack: Stack, alert_id: int) -> None:
    assert stack.services is not None
    stack.services.store.execute(
        "INSERT INTO user_phones (user_id, phone, updated_at) VALUES ('U0REP', '+61412345678', 0)"
    )
    await alerts.call_back(stack.services, alert_id, "U0REP", "C0SALES")


def test_a_group_is_mentioned(tmp_path: Path, http: httpx.Client) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, SWITCHBOARD_CLAIM_WITHIN="1s") as stack:
        route(stack, options={"escalate": "<!subteam^S0SALES>"})
        send(http, stack, "GET", "/hooks/avanser/call", call(1, recording="https://recordings.example/vm1.mp3"))
        [reply] = wait_for(lambda: replies(stack), timeout=5)
        assert reply["text"].startswith("⏰ <!subteam^S0SALES> this voicemail has been unclaimed")


async def test_an_alert_inside_a_storm_digest_escalates_under_the_digest(tmp_path: Path) -> None:
    from bot.domain.routing import set_route
    from bot.inbox import store_event
    from tests.helpers import AVANSER_CALL
    from tests.test_domain import make

    services = make(tmp_path, SWITCHBOARD_CLAIM_WITHIN="1s")
    await services.scheduler.start()
    try:
        services.outbox.channel_interval = 1.0  # nothing is sent here: the queue builds up, a digest opens
        set_route(services.store, TRACKING, "C0SALES", by="U0ADMIN", options={"escalate": "<@U0ONCALL>"})
        for n in range(6):
            store_event(services.store, "avanser.call", f"ECS{n}", {**AVANSER_CALL, "uniqueid": f"ECS{n}"})
        while services.inbox.process_pending(budget=10):
            pass
        digested = services.store.execute("SELECT id FROM alerts WHERE digest_id IS NOT NULL").fetchall()
        assert digested and services.store.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 6
        alert_id = int(digested[-1][0])
        services.store.execute("UPDATE alerts SET escalate_at = 1 WHERE id = ?", (alert_id,))
        assert await alerts.escalate(services, alert_id) is True
        assert await alerts.escalate(services, alert_id) is False  # once
        digest_post = services.store.execute("SELECT outbox_id FROM digests").fetchone()[0]
        said = services.store.execute(
            "SELECT payload, thread_of FROM outbox WHERE dedup_key = ?", (f"escalate:{alert_id}",)
        ).fetchone()
        assert said[1] == digest_post and "<@U0ONCALL> this call has been unclaimed" in said[0]
        assert "missed call from 0410 203 045" in said[0]  # which of the digest's calls it is
    finally:
        await services.scheduler.stop()
        services.store.close()


def test_an_escalation_due_while_down_is_said_once_after_the_restart(tmp_path: Path, http: httpx.Client) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, SWITCHBOARD_CLAIM_WITHIN="2s") as stack:
        route(stack, options={"escalate": "<@U0ONCALL>"})
        send(http, stack, "GET", "/hooks/avanser/call", call(1))
        [alert] = messages(stack, "C0SALES")
        stack.stop_app()  # the job lived in memory only
        time.sleep(2.5)
        assert replies(stack) == []
        stack.start_app()  # rebuilt from the alerts table
        [reply] = wait_for(lambda: replies(stack), timeout=5)
        assert reply["thread_ts"] == alert["ts"] and "<@U0ONCALL>" in reply["text"]
        stack.stop_app()
        stack.start_app()  # and not again
        time.sleep(0.5)
        stack.drain(5)
        assert len(replies(stack)) == 1


def test_no_escalation_without_anyone_to_ask_or_when_switched_off(tmp_path: Path, http: httpx.Client) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, SWITCHBOARD_CLAIM_WITHIN="0") as stack:
        route(stack, options={"escalate": "<@U0ONCALL>"})
        send(http, stack, "GET", "/hooks/avanser/call", call(1))
        messages(stack, "C0SALES")
        assert alert_row(stack, 1)[0] is None
    with Stack(tmp_path / "b", outbox_channel_interval=0, SWITCHBOARD_CLAIM_WITHIN="1s") as stack:
        route(stack)  # routed by hand: no requester, no escalate option
        send(http, stack, "GET", "/hooks/avanser/call", call(1))
        send(http, stack, "GET", "/hooks/avanser/call", call(2, callstatus="avanser_answered_call"))
        messages(stack, "C0SALES")
        time.sleep(1.5)
        stack.drain(5)
        assert replies(stack) == [] and alert_row(stack, 1)[0] is None


def test_outside_business_hours_it_waits_for_opening_time(tmp_path: Path, http: httpx.Client) -> None:
    now = datetime.now(SYDNEY)
    closed = (now.weekday() + 2) % 7  # open one day only, and not today
    day = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[closed]
    hours = f"{day} 08:00-18:00 Australia/Sydney"
    with Stack(
        tmp_path, outbox_channel_interval=0, SWITCHBOARD_CLAIM_WITHIN="1s", SWITCHBOARD_BUSINESS_HOURS=hours
    ) as stack:
        route(stack, options={"escalate": "<@U0ONCALL>"})
        send(http, stack, "GET", "/hooks/avanser/call", call(1))
        messages(stack, "C0SALES")
        time.sleep(1.5)
        stack.drain(5)
        assert replies(stack) == []
        due = datetime.fromtimestamp(alert_row(stack, 1)[0], SYDNEY)
        assert (due.weekday(), due.hour, due.minute) == (closed, 8, 0)
        assert 0 < (due - now).days <= 6
        # A job that fires while closed (say, rebuilt at start at night) waits for opening time again.
        assert stack.on_app(alerts.escalate(stack.services, 1)) is False
        assert datetime.fromtimestamp(alert_row(stack, 1)[0], SYDNEY) == due


def test_business_hours_are_read_and_opening_times_found() -> None:
    hours = BusinessHours.parse("Mon-Fri 08:00-18:00 Australia/Sydney")
    friday_evening = datetime(2026, 11, 20, 17, 55, tzinfo=SYDNEY).timestamp()
    assert hours.is_open(friday_evening)
    assert hours.next_open(friday_evening) == friday_evening
    monday = datetime(2026, 11, 23, 8, 0, tzinfo=SYDNEY).timestamp()
    assert hours.next_open(friday_evening + 15 * 60) == monday  # 18:10 on Friday waits for Monday 08:00
    assert hours.next_open(datetime(2026, 11, 23, 6, 0, tzinfo=SYDNEY).timestamp()) == monday
    # Across a change of daylight saving (Sydney, first Sunday of April): opening is 08:00 on the wall clock.
    after_dst = datetime(2026, 4, 6, 8, 0, tzinfo=SYDNEY).timestamp()
    assert hours.next_open(datetime(2026, 4, 4, 12, 0, tzinfo=SYDNEY).timestamp()) == after_dst
    assert BusinessHours.parse("Fri-Mon 09:30-17:00 UTC").days == frozenset({4, 5, 6, 0})
    assert BusinessHours.parse("mon,wed 09:00-17:00 Europe/London").days == frozenset({0, 2})
    for bad, said in (
        ("Mon-Fri 18:00-08:00 Australia/Sydney", "opening time must come before"),
        ("Mon-Fri 08:00-18:00 Mars/Olympus", "isn't a time zone"),
        ("Someday 08:00-18:00 UTC", "days must be"),
        ("Mon-Fri", "must look like"),
    ):
        with pytest.raises(SettingsError, match=said):
            load_settings(env_file=None, SWITCHBOARD_BUSINESS_HOURS=bad)
    assert load_settings(env_file=None).claim_within == 900
    assert load_settings(env_file=None, SWITCHBOARD_CLAIM_WITHIN="0").claim_within == 0
    with pytest.raises(SettingsError, match="SWITCHBOARD_CLAIM_WITHIN"):
        load_settings(env_file=None, SWITCHBOARD_CLAIM_WITHIN="soon")


def test_the_requester_is_asked_when_the_route_names_nobody(tmp_path: Path) -> None:
    from tests.test_domain import make

    services = make(tmp_path)
    services.store.execute(
        "INSERT INTO number_requests (kind, custom_id, name, number, channel, requester, status, body, created_at,"
        " updated_at) VALUES ('create', 'sb-1', 'Ad', ?, 'C0SALES', 'U0REP', 'completed', '{}', 0, 0)",
        (TRACKING,),
    )
    from bot.domain.routing import route_for, set_route

    set_route(services.store, TRACKING, "C0SALES", by="U0ADMIN")
    assert alerts.escalation_target(services, TRACKING, route_for(services.store, None, number=TRACKING)) == (
        "<@U0REP>"
    )
    set_route(services.store, TRACKING, "C0SALES", by="U0ADMIN", options={"escalate": "<@U0ONCALL>"})
    assert alerts.escalation_target(services, TRACKING, route_for(services.store, None, number=TRACKING)) == (
        "<@U0ONCALL>"
    )
    services.store.close()
