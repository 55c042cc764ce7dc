"""Times in messages are Slack date tokens (each reader sees their own zone); plain text uses the viewer's zone."""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from bot.sandbox.markup import injections
from bot.sandbox.stack import Stack
from notifiers.message import clock, iso_time, local_time
from notifiers.text import DATE_ONLY, slack_date, zoned
from tests.helpers import EXOTEL_CALL, click, flat, messages, route, send, wait_for

ROOT = Path(__file__).resolve().parent.parent
TOKEN = re.compile(r"<!date\^(\d+)\^([^|>]+)\|([^>]*)>")


def test_the_token_and_its_fallbacks() -> None:
    at = datetime(2026, 11, 22, 1, 29, tzinfo=UTC).timestamp()
    assert slack_date(at) == "<!date^1795310940^{date_short_pretty} at {time}|Sun 22 Nov 2026, 1:29 am GMT>"
    assert slack_date(at, DATE_ONLY) == "<!date^1795310940^{date_short}|Sun 22 Nov 2026>"
    assert slack_date(at, fallback="a <b> | c") == "<!date^1795310940^{date_short_pretty} at {time}|a &lt;b&gt; ¦ c>"
    assert slack_date(at, fallback="2016-04-12\n<!channel>") == (
        "<!date^1795310940^{date_short_pretty} at {time}|2016-04-12 &lt;!channel&gt;>"  # one line, escaped
    )
    assert zoned(at, ZoneInfo("Australia/Sydney")) == "Sun 22 Nov 2026, 12:29 pm"  # plain text, the viewer's zone
    call_time = datetime.fromisoformat("2019-11-14T12:11:21+10:00")
    assert local_time(call_time) == "<!date^1573697481^{date_short_pretty} at {time}|12:11 pm, Thu 14 Nov>"
    assert local_time(datetime(2019, 11, 14, 12, 11)) == "12:11 pm, Thu 14 Nov"  # no zone: can't be placed
    assert clock(1573697481, call_time) == "<!date^1573697481^{time}|12:11>"
    assert iso_time("2021-01-19T19:17:03+05:30").startswith("<!date^1611064023^")
    assert iso_time("2021-01-19T19:17:03+50:30") == "2021-01-19T19:17:03+50:30"  # not a time: as sent


def test_lease_times_in_messages_are_date_tokens(tmp_path: Path) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, SWITCHBOARD_VN_REMINDER="1s") as stack:
        _, url = stack.slack.command(
            stack.url, "/vn", "+919176226528 to +918136966620 for 3s", user_id="U0REP", channel_id="C0FIELD"
        )
        said = wait_for(lambda: stack.slack.responses_to(url))[-1]["text"]  # type: ignore[index]
        assert TOKEN.search(said), said
        root = wait_for(lambda: stack.slack.channel_messages("C0FIELD"))[0]  # type: ignore[index]
        assert "until <!date^" in flat(root)
        reminder = wait_for(lambda: stack.slack.channel_messages("D0REP"), timeout=5)[0]  # type: ignore[index]
        assert TOKEN.search(reminder["text"]) and "will be released at <!date^" in reminder["text"]
        listed, _ = stack.slack.command(stack.url, "/vn", "list", user_id="U0REP", channel_id="C0FIELD")
        assert TOKEN.search(json.dumps(listed.json()))
        # Extend… opens a form whose hint (plain text, no tokens) gives the end in Riley's zone (Sydney).
        custom = reminder["blocks"][1]["elements"][2]
        click(stack, custom["action_id"], custom["value"], "U0REP", reminder, channel="D0REP")
        form = wait_for(lambda: stack.slack.calls_to("views.open"))[-1].args["view"]  # type: ignore[index]
        hint = form["blocks"][0]["hint"]["text"]
        assert hint.endswith("now (your time).") and "<!date" not in hint
        stack.drain(5)
        everything = json.dumps(stack.slack.all_messages(), ensure_ascii=False)
        assert "UTC" not in everything and "GMT" not in everything.replace("GMT>", "")  # only in fallbacks
        assert injections(stack.slack.all_messages(), users={"U0REP"}, channels={"C0FIELD"}) == []


def test_call_times_and_claims_are_date_tokens(stack: Stack, http: httpx.Client) -> None:
    route(stack)
    send(http, stack, "GET", "/hooks/avanser/call", {**_call(), "uniqueid": "T1"})
    [alert] = messages(stack, "C0SALES")
    click(stack, "alert_claim", alert["blocks"][-1]["elements"][1]["value"], "U0REP", alert)
    wait_for(lambda: "Claimed by" in flat(stack.slack.channel_messages("C0SALES")[0]))
    claimed = flat(stack.slack.channel_messages("C0SALES")[0])
    assert re.search(r"Claimed by <@U0REP> at <!date\^\d+\^\{time\}\|\d\d:\d\d>", claimed)
    route(stack, "+918041234513", "C0FIELD")
    exotel_call = {**EXOTEL_CALL, "greenvn": "+918041234513", "start_time": "2021-01-19T19:17:03+05:30"}
    send(http, stack, "POST", "/hooks/exotel/call", exotel_call)
    [exotel] = messages(stack, "C0FIELD")
    assert "<!date^1611064023^" in flat(exotel)


def _call() -> dict[str, str]:
    from tests.helpers import call

    return call(1)


def test_no_utc_is_written_for_people_to_read() -> None:
    """Strings in the code that renders what people read never say UTC (times are tokens or in their zone);
    docstrings, for whoever reads the code, may."""
    found = []
    for package in ("notifiers", "commands", "bot/domain"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            docstrings = {
                id(node.body[0].value)
                for node in ast.walk(tree)
                if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                and node.body
                and isinstance(node.body[0], ast.Expr)
                and isinstance(node.body[0].value, ast.Constant)
            }
            for node in ast.walk(tree):
                said = isinstance(node, ast.Constant) and isinstance(node.value, str) and "UTC" in node.value
                if said and id(node) not in docstrings:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_a_storm_digests_lines_say_the_time_and_a_recovered_call_its_day_too() -> None:
    """A digest's lines all fall in the minute its message was posted: the time alone (fewer characters, so one
    message holds more of a storm); a call recovered from the data feed may be hours old, so it keeps its day."""
    from notifiers.calls import call_summary
    from notifiers.events import parse_event
    from notifiers.message import Route
    from tests.helpers import AVANSER_CALL

    live = parse_event("avanser.call", AVANSER_CALL)
    line = call_summary(live, Route(channel="C0SALES", name="Radio ad"))  # type: ignore[arg-type]
    assert line.startswith("📞 <!date^1573697481^{time}|12:11 pm> — missed call from ")
    recovered = parse_event("avanser.call", {**AVANSER_CALL, "call_unique_id": "ECS1"})  # a feed record's field
    line = call_summary(recovered, Route(channel="C0SALES", name="Radio ad"))  # type: ignore[arg-type]
    assert "<!date^1573697481^{date_short_pretty} at {time}|12:11 pm, Thu 14 Nov>" in line
    assert line.endswith("(from the data feed)")
