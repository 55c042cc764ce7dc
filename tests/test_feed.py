"""AVANSER's data feed (seed 000): every call once even when its webhook is lost, recordings, failures."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.domain.feed import FeedResult, days_to_ask, pull_feed
from bot.sandbox.stack import Stack
from bot.telco.avanser_feed import AvanserFeed, FeedMalformed, feed_format, parse_feed
from notifiers.calls import RECOVERED
from notifiers.events import AvanserCall, feed_call_payload
from tests.helpers import call, flat, messages, on_app, route, send, wait_for
from tests.recording_attacks import trust_loopback

SEED_RECORD = json.loads((Path(__file__).parent / "fixtures" / "avanser_feed_record.json").read_text())["record"]
NUMBER = "+61290081596"


def caller(n: int) -> str:
    return f"+614122{n:05d}"


def shown(n: int) -> str:
    digits = f"2{n:05d}"
    return f"0412 {digits[:3]} {digits[3:]}"


def pull(stack: Stack) -> FeedResult:
    assert stack.services is not None
    return stack.on_app(pull_feed(stack.services))


def setup(stack: Stack, **route_options: Any) -> None:
    """A routed tracking number whose call-URI is this app's; the feed's first pull (at start) already done."""
    if stack.feed is not None:
        wait_for(lambda: on_app(stack, lambda s: s.store.execute("SELECT 1 FROM feed_state").fetchone()))
    route(stack, NUMBER, "C0SALES", **route_options)
    stack.avanser.register_service(NUMBER, "Spring sale ad", stack.call_uri(), custom_group="spring")


def handled(stack: Stack) -> bool:
    left = on_app(stack, lambda s: s.store.execute("SELECT COUNT(*) FROM inbox WHERE status = 'new'").fetchone()[0])
    return left == 0


def count_shown(stack: Stack, channel: str = "C0SALES") -> dict[str, int]:
    blobs = [json.dumps(m, ensure_ascii=False) for m in stack.slack.channel_messages(channel)]
    return {text: sum(text in b for b in blobs) for text in {shown(n) for n in range(100)}}


# -- the record as the call-URI's event ----------------------------------------------------------------


def test_the_seeds_record_is_the_call_uris_event() -> None:
    event = AvanserCall.model_validate(feed_call_payload(SEED_RECORD))
    assert event.dedup_key() == "ECS8-1590476401.423578"  # call_unique_id is the call-URI's uniqueid
    assert (event.uniqueid, event.callid, event.clientid) == ("ECS8-1590476401.423578", "67643772", "5995")
    assert (event.tracking_e164, event.caller_e164, event.answer_point_e164) == (
        "+61289996235",
        "+61290088888",
        "+61289995916",
    )
    assert (event.adname, event.targetname, event.status, event.duration) == (
        "Tracking Service Name",
        "Target Name",
        "missed",
        17,
    )
    assert (event.clocation, event.cstate, event.ccountry) == ("Sydney", "NSW", "AU")
    assert event.at is not None and event.at.isoformat() == "2020-05-26T17:00:01+10:00"
    assert event.recording_url is None and not event.is_voicemail  # call_has_audio 0
    assert event.from_feed
    assert event.extra_fields["call_talk_duration"] == 16 and event.extra_fields["tracking_wpc_id"] == 0  # kept
    assert not AvanserCall.model_validate(call()).from_feed


@pytest.mark.parametrize(
    ("status", "expected"),
    [("Missed", "missed"), ("Answered", "answered"), ("Busy", "busy"), ("Abandoned", "abandoned"), ("Call Back", "")],
)
def test_feed_statuses(status: str, expected: str) -> None:
    event = AvanserCall.model_validate(feed_call_payload({**SEED_RECORD, "call_status": status}))
    assert event.status == (expected or "call back")  # an unknown status is kept (shown as "Call (call back)")


def test_a_recording_needs_call_has_audio_and_a_url() -> None:
    url = "https://recordings.example/vm.mp3"
    record = {**SEED_RECORD, "call_has_audio": 1, "call_audio_url": url}
    with_audio = AvanserCall.model_validate(feed_call_payload(record))
    assert with_audio.recording_url == url and with_audio.is_voicemail
    flag_only = feed_call_payload({**SEED_RECORD, "call_has_audio": "1", "call_audio_url": ""})
    url_only = feed_call_payload({**SEED_RECORD, "call_has_audio": 0, "call_audio_url": url})
    assert "recording_url" not in flag_only and "recording_url" not in url_only


# -- the three formats ------------------------------------------------------------------------------------


def test_format_from_content_type_else_the_url() -> None:
    assert feed_format("application/json; charset=utf-8", "https://x/feed") == "json"
    assert feed_format("text/csv", "https://x/feed.json") == "csv"
    assert feed_format("text/xml", "https://x/feed") == feed_format("application/xml", "https://x/f") == "xml"
    assert feed_format("application/octet-stream", "https://x/calls.CSV?day=1") == "csv"
    assert feed_format("text/plain", "https://x/feed") is None


def test_each_format_parses_and_bad_records_are_counted() -> None:
    good = {"call_unique_id": "A1", "tracking_number": "+61-0290081596", "call_status": "Missed"}
    body = json.dumps([good, "not a record", {"call_status": "Missed"}, SEED_RECORD]).encode()
    records, bad = parse_feed(body, "json")
    assert [r["call_unique_id"] for r in records] == ["A1", "ECS8-1590476401.423578"] and bad == 2
    assert parse_feed(json.dumps({"calls": [good]}).encode(), "json") == ([good], 0)
    csv_body = "call_unique_id,tracking_number,call_status\r\nA1,+61-0290081596,Missed\r\nA2,too,many,cells\r\n"
    assert parse_feed(csv_body.encode(), "csv") == ([good], 1)
    xml_body = (
        "<?xml version='1.0'?><calls><call><call_unique_id>A1</call_unique_id>"
        "<tracking_number>+61-0290081596</tracking_number><call_status>Missed</call_status></call>"
        "<call/><call><call_status>Missed</call_status></call></calls>"
    )
    assert parse_feed(xml_body.encode(), "xml") == ([good], 2)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"<html>Bad Gateway</html>", "json"),
        (b'{"a": 1}', "json"),
        (b"name,value\r\nx,1\r\n", "csv"),
        (b"<calls><call>", "xml"),
        (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><calls><call><call_id>&a;</call_id></call></calls>', "xml"),
        (b"\xff\xfe not utf-8", "csv"),
    ],
)
def test_a_malformed_feed_is_refused_whole(body: bytes, kind: Any) -> None:
    with pytest.raises(FeedMalformed):
        parse_feed(body, kind)


# -- recovery -------------------------------------------------------------------------------------------


def test_ten_percent_of_a_burst_dropped_every_call_visible_once(tmp_path: Path, http: httpx.Client) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, feed="json") as stack:
        setup(stack)
        calls = 60
        dropped = {f"ECS-burst-{n}" for n in range(0, calls, 10)}  # 10 %
        stack.avanser.drop_webhooks = dropped
        for n in range(calls):
            stack.avanser.place_call(NUMBER, caller(n), uniqueid=f"ECS-burst-{n}", duration=5)
        wait_for(lambda: handled(stack) and len(stack.slack.channel_messages("C0SALES")) >= calls - len(dropped))
        assert sorted(stack.avanser.dropped) == sorted(dropped)
        result = pull(stack)
        assert (result.records, result.recovered, result.known, result.bad) == (calls, len(dropped), 54, 0)
        posted = messages(stack, "C0SALES", calls)
        counts = count_shown(stack)
        assert all(counts[shown(n)] == 1 for n in range(calls)), counts
        recovered = [m for m in posted if RECOVERED in flat(m)]
        assert len(recovered) == len(dropped)
        callers = {m["text"].split(" from ")[1].split(" to ")[0] for m in recovered}
        assert callers == {shown(n) for n in range(0, 60, 10)}
        # Pulled again, and the lost webhooks finally arriving: nothing is posted twice.
        assert pull(stack).recovered == 0
        late = call(0, uniqueid="ECS-burst-0", ani="+61-0412200000", bnum="+61-0290081596")
        assert send(http, stack, "GET", "/hooks/avanser/call", late).json()["duplicate"] is True
        time.sleep(0.3)
        assert stack.drain(10) and len(stack.slack.channel_messages("C0SALES")) == calls
        metrics = http.get(f"{stack.url}/metrics").text
        assert 'switchboard_feed_records_total{outcome="recovered"} 6.0' in metrics
        assert 'switchboard_feed_pulls_total{outcome="ok"}' in metrics


@pytest.mark.parametrize("form", ["json", "csv", "xml", "by-extension"])
def test_each_format_recovers_a_lost_call(tmp_path: Path, form: str) -> None:
    extension = "csv" if form == "by-extension" else form
    with Stack(tmp_path, outbox_channel_interval=0, feed=extension) as stack:
        stack.avanser.feed_content_type = form != "by-extension"
        setup(stack)
        stack.avanser.place_call(NUMBER, caller(1), uniqueid="ECS-kept", duration=3)
        stack.avanser.place_call(NUMBER, caller(2), uniqueid="ECS-lost", send=False)
        wait_for(lambda: len(stack.slack.channel_messages("C0SALES")) == 1)
        result = pull(stack)
        assert (result.recovered, result.known, result.bad, result.error) == (1, 1, 0, None)
        [_, lost] = messages(stack, "C0SALES", 2)
        assert lost["text"] == f"Missed call from {shown(2)} to Spring sale ad ((02) 9008 1596)"
        assert RECOVERED in flat(lost)
        asked = stack.avanser.requests_to("GET", "/feed/")[-1]
        assert set(asked.query) == {"year", "month", "day"} and asked.basic_auth == (
            stack.avanser.feed_username,
            stack.avanser.feed_password,
        )


@pytest.mark.parametrize("day_form", ["date", "none"])
def test_a_feed_with_other_filters_is_read_whole(tmp_path: Path, day_form: str) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, feed="json") as stack:
        stack.avanser.feed_day_form = day_form
        setup(stack)
        stack.avanser.place_call(NUMBER, caller(3), uniqueid="ECS-lost", send=False)
        result = pull(stack)
        assert result.recovered == 1
        assert result.filtered is (day_form == "none")  # "date" refuses ?year=…: read without filters
        messages(stack, "C0SALES", 1)


def test_the_sandbox_takes_the_seeds_filters(tmp_path: Path, http: httpx.Client) -> None:
    with Stack(tmp_path, outbox_channel_interval=0) as stack:
        setup(stack)
        stack.avanser.place_call(NUMBER, caller(1), uniqueid="A", send=False)
        stack.avanser.place_call(NUMBER, caller(2), uniqueid="B", status="avanser_answered_call", send=False)
        auth = (stack.avanser.feed_username, stack.avanser.feed_password)

        def ids(**query: str) -> list[str]:
            answer = http.get(stack.avanser.feed_url("json"), params=query, auth=auth)
            assert answer.status_code == 200, answer.text
            return [r["call_unique_id"] for r in answer.json()]

        day = stack.avanser.feed_records[0]["call_start_time"][:10].split("-")
        assert ids(year=day[0], month=day[1], day=day[2]) == ["A", "B"]
        assert ids(year="1999") == []
        assert ids(status="answered") == ["B"]
        assert ids(number="0412 200 001") == ["A"]
        assert ids(custom_group="spring", custom_id="") == ["A", "B"]
        assert http.get(stack.avanser.feed_url("json"), params={"month": "05"}, auth=auth).status_code == 400
        assert http.get(stack.avanser.feed_url("json"), params={"caller": "1"}, auth=auth).status_code == 400
        assert http.get(stack.avanser.feed_url("json")).status_code == 401
        [record] = http.get(stack.avanser.feed_url("json"), params={"status": "Missed"}, auth=auth).json()
        assert set(record) == set(SEED_RECORD)  # the seed's fields, no others
        assert http.get(stack.avanser.feed_url("csv"), auth=auth).headers["content-type"].startswith("text/csv")


def test_a_call_recovered_a_day_late_is_counted_not_posted(tmp_path: Path) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, feed="json") as stack:
        stack.avanser.feed_day_form = "none"
        setup(stack)
        stack.avanser.place_call(NUMBER, caller(4), uniqueid="ECS-old", at=time.time() - 30 * 3600, send=False)
        stack.avanser.feed_records[-1]["call_u_start_time"] = int(time.time())  # still in the feed's "recent" window
        assert pull(stack).recovered == 1
        wait_for(lambda: handled(stack))
        assert stack.drain(5) and stack.slack.channel_messages("C0SALES") == []
        counted = on_app(stack, lambda s: s.store.execute("SELECT status, via FROM calls").fetchall())
        assert counted == [("missed", "feed")]


def test_a_bad_record_is_skipped_and_counted_not_the_pull(tmp_path: Path) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, feed="json") as stack:
        setup(stack)
        stack.avanser.place_call(NUMBER, caller(5), uniqueid="ECS-lost", send=False)
        broken = dict(stack.avanser.feed_records[-1], call_unique_id="ECS-broken", call_id=1)
        del broken["tracking_number"]
        stack.avanser.feed_records.append(broken)
        stack.avanser.feed_records.append({"call_status": "Missed", "call_start_time": broken["call_start_time"]})
        result = pull(stack)
        assert (result.recovered, result.bad, result.error) == (1, 2, None)
        messages(stack, "C0SALES", 1)


# -- failures ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        ({"kind": "status", "status": 500}, "unavailable"),
        ({"kind": "malformed"}, "malformed"),
        ({"kind": "timeout", "delay": 3.0}, "timeout"),
        ({"kind": "reset"}, "unavailable"),
        ({"kind": "status", "status": 401}, "auth"),
    ],
)
def test_a_failing_feed_is_counted_and_read_again_next_time(
    tmp_path: Path, http: httpx.Client, fault: dict[str, Any], outcome: str, caplog: pytest.LogCaptureFixture
) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, feed="json") as stack:
        setup(stack)
        assert stack.services is not None
        stack.services.feed = AvanserFeed(
            stack.avanser.feed_url("json"), stack.avanser.feed_username, stack.avanser.feed_password, timeout=0.5
        )
        stack.avanser.place_call(NUMBER, caller(6), uniqueid="ECS-lost", send=False)
        stack.avanser.inject(**fault, path="/feed/")
        with caplog.at_level(logging.WARNING, logger="bot.domain.feed"):
            failed = pull(stack)
        assert failed.error and failed.recovered == 0
        assert any("pull failed" in r.getMessage() for r in caplog.records)
        assert http.get(f"{stack.url}/healthz").status_code == 200
        assert f'switchboard_feed_pulls_total{{outcome="{outcome}"}} 1.0' in http.get(f"{stack.url}/metrics").text
        stack.avanser.clear_faults()
        assert pull(stack).recovered == 1  # the next interval's pull
        messages(stack, "C0SALES", 1)


def test_unset_feed_url_is_said_once_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bot.domain.feed"), Stack(tmp_path) as stack:
        assert stack.services is not None and stack.services.feed is None
        assert "avanser-feed" not in stack.on_app(_jobs(stack))
    said = [r.getMessage() for r in caplog.records if "data feed" in r.getMessage()]
    assert said == ["AVANSER data feed: off (AVANSER_FEED_URL is not set); calls whose webhook is lost stay lost"]


def test_the_feed_job_runs_at_start_one_at_a_time(tmp_path: Path) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, feed="json", SWITCHBOARD_FEED_INTERVAL="10m") as stack:
        wait_for(lambda: stack.avanser.requests_to("GET", "/feed/"))  # the first pull, at start
        assert "avanser-feed" in stack.on_app(_jobs(stack))
        job = stack.on_app(_job(stack, "avanser-feed"))
        assert (job.max_instances, job.coalesce, job.trigger.interval.total_seconds()) == (1, True, 600)
        wait_for(lambda: on_app(stack, lambda s: s.store.execute("SELECT last_success_at FROM feed_state").fetchone()))
        # Restarted: the days asked for start from the last good pull (kept in SQLite), and the job is rebuilt.
        stack.stop_app()
        stack.start_app()
        assert stack.services is not None
        days = stack.on_app(_days(stack))
        assert len(days) == 3 and "avanser-feed" in stack.on_app(_jobs(stack))


async def _days(stack: Stack) -> list[Any]:
    assert stack.services is not None
    return days_to_ask(stack.services)


async def _jobs(stack: Stack) -> list[str]:
    assert stack.services is not None
    return stack.services.scheduler.pending()


async def _job(stack: Stack, job_id: str) -> Any:
    assert stack.services is not None
    return stack.services.scheduler.job(job_id)


# -- recordings ------------------------------------------------------------------------------------------


def test_a_voicemail_from_the_feed_reaches_the_alert_that_had_none(tmp_path: Path) -> None:
    with Stack(tmp_path, SWITCHBOARD_RECORDING_HOSTS="127.0.0.1", outbox_channel_interval=0, feed="json") as stack:
        setup(stack)
        trust_loopback(stack)
        stack.avanser.place_call(NUMBER, caller(7), uniqueid="ECS-vm", duration=20, has_audio=True)
        [alert] = messages(stack, "C0SALES", 1)
        assert alert["text"].startswith("Missed call")  # the call-URI carries no recording
        assert pull(stack).recordings == 1
        posted = messages(stack, "C0SALES", 2)
        [file] = [m for m in posted if m.get("files")]
        assert file["thread_ts"] == alert["ts"]
        assert file["files"][0]["name"] == "voicemail-ECS-vm.mp3"
        assert file["files"][0]["title"].startswith(f"Voicemail — Voicemail from {shown(7)}")
        assert next(iter(stack.slack.uploads.values()))["content"].startswith(b"ID3")
        # Pulled again: the recording is attached once.
        assert pull(stack).recordings == 0
        time.sleep(0.3)
        assert stack.drain(5) and len(stack.slack.channel_messages("C0SALES")) == 2
        kinds = on_app(stack, lambda s: s.store.execute("SELECT kind FROM alerts").fetchall())
        assert kinds == [("voicemail",)]


def test_a_recording_from_another_host_is_a_link_in_the_thread(stack: Stack) -> None:
    setup(stack)
    assert stack.services is not None
    stack.services.feed = AvanserFeed(
        stack.avanser.feed_url("xml"), stack.avanser.feed_username, stack.avanser.feed_password
    )
    stack.avanser.place_call(NUMBER, caller(8), uniqueid="ECS-vm2", has_audio=True)
    [alert] = messages(stack, "C0SALES", 1)
    pull(stack)
    pull(stack)
    [_, reply] = messages(stack, "C0SALES", 2)
    assert reply["thread_ts"] == alert["ts"]
    assert "▶ Play the voicemail" in reply["text"] and "/recordings/ECS-vm2.mp3" in reply["text"]
    time.sleep(0.3)
    assert len(stack.slack.channel_messages("C0SALES")) == 2 and stack.slack.uploads == {}


def test_a_lost_voicemail_comes_back_with_its_recording(tmp_path: Path) -> None:
    with Stack(tmp_path, SWITCHBOARD_RECORDING_HOSTS="127.0.0.1", outbox_channel_interval=0, feed="csv") as stack:
        setup(stack)
        trust_loopback(stack)
        stack.avanser.place_call(NUMBER, caller(9), uniqueid="ECS-vm3", has_audio=True, send=False)
        result = pull(stack)
        assert (result.recovered, result.recordings) == (1, 0)
        posted = messages(stack, "C0SALES", 2)
        [alert] = [m for m in posted if not m["thread_ts"]]
        assert alert["text"].startswith(f"Voicemail from {shown(9)}") and RECOVERED in flat(alert)
        [file] = [m for m in posted if m.get("files")]
        assert file["thread_ts"] == alert["ts"]
        pull(stack)
        time.sleep(0.3)
        assert len(stack.slack.channel_messages("C0SALES")) == 2


def test_an_answered_call_on_a_missed_only_route_gets_no_recording(stack: Stack) -> None:
    setup(stack)
    stack.services.feed = AvanserFeed(  # type: ignore[union-attr]
        stack.avanser.feed_url("json"), stack.avanser.feed_username, stack.avanser.feed_password
    )
    stack.avanser.place_call(NUMBER, caller(10), status="avanser_answered_call", duration=60, has_audio=True)
    wait_for(lambda: handled(stack))
    assert pull(stack).recordings == 1
    wait_for(lambda: handled(stack))
    assert stack.drain(5) and stack.slack.channel_messages("C0SALES") == []


# -- outside text ---------------------------------------------------------------------------------------


def test_a_feed_record_with_markup_in_every_field_is_shown_as_text(tmp_path: Path) -> None:
    from bot.sandbox.markup import injections
    from tests.test_escaping import ATTACK, assert_shown_as_text

    with Stack(tmp_path, outbox_channel_interval=0, feed="json") as stack:
        setup(stack, name=ATTACK)
        stack.avanser.place_call(NUMBER, caller(11), uniqueid="ECS-posted")
        stack.avanser.place_call(NUMBER, caller(12), uniqueid="ECS-lost", send=False)
        hostile = "https://evil.example/vm.mp3|https://slack.com/verify>x<!channel>"
        posted, lost = stack.avanser.feed_records[-2:]
        posted.update(call_has_audio=1, call_audio_url=hostile)
        for name in ("tracking_name", "target_name", "caller_location", "caller_state", "call_status"):
            lost[name] = ATTACK
        lost.update(caller_number=ATTACK, call_has_audio=1, call_audio_url=hostile)
        result = pull(stack)
        assert (result.recovered, result.recordings, result.bad) == (1, 1, 0)
        found = messages(stack, "C0SALES", 3)
        assert_shown_as_text(found)
        assert injections(found) == []
