"""Route options from Slack (`/numbers route … all-calls masked escalate @x`) and released numbers remembered."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime

import pytest

from bot.domain.numbers import add_months, parse_route, quarantine_until
from bot.errors import UserError
from bot.sandbox.stack import ADMIN, Stack
from tests.helpers import submit_view, wait_for
from tests.test_numbers import TRANSFER, progress, reply, slash, text_of

REP = "U0REP"


@pytest.fixture
def numbers(tmp_path):
    with Stack(tmp_path, outbox_channel_interval=0) as running:
        running.avanser.callback_delay = 0.1
        yield running


def provisioned(stack: Stack, user: str = ADMIN) -> tuple[str, str]:
    """A live number (asked for by an admin); (E.164, national)."""
    submit_view(stack, "numbers_new", TRANSFER, user=user)
    wait_for(lambda: "is live" in progress(stack)["text"], timeout=10)
    number = next(iter(stack.avanser.services))
    return number, "0" + number[3:6] + " " + number[6:9] + " " + number[9:]


# -- the grammar ------------------------------------------------------------------------------------------


def test_route_words_are_read_and_options_not_given_are_left_alone() -> None:
    change = parse_route("02 9008 1596 <#C0SALES|sales> all-calls masked escalate <@U0ONCALL|casey>", "AU")
    assert (change.number, change.channel) == ("+61290081596", "C0SALES")
    assert change.options == {"report": "all", "mask_callers": True, "escalate": "<@U0ONCALL>"}
    assert parse_route("0290081596 <#C0SALES>", "AU").options == {}  # nothing given: nothing changes
    group = parse_route("<#C0SALES|sales> 02 9008 1596 missed-only unmasked escalate <!subteam^S0TEAM|@sales>", "AU")
    assert group.options == {"report": "missed", "mask_callers": False, "escalate": "<!subteam^S0TEAM>"}
    assert parse_route("0290081596 <#C0SALES> escalate requester", "AU").options == {"escalate": None}
    assert parse_route("0290081596 <#C0SALES> weekly-report", "AU").options == {"weekly_report": True}  # #15's word
    assert parse_route("0290081596 <#C0SALES> no-weekly-report", "AU").options == {"weekly_report": False}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("0290081596", "Which channel?"),
        ("<#C0SALES>", "Which number?"),
        ("0290081596 <#C0SALES> loudly", "I don't understand “loudly”"),
        ("0290081596 <#C0SALES> masked unmasked", "`unmasked` contradicts another word"),
        ("0290081596 <#C0SALES> escalate", "`escalate` needs a value"),
        ("0290081596 <#C0SALES> escalate @casey", "“@casey” isn't a person or a group Slack knows"),
        ("0290081596 <#C0SALES> <#C0OTHER>", "Give one channel."),
        ("0290081596 <#C0SALES> escalate <!channel>", "isn't a person or a group"),
        ("0290081596 <#C0SALES> <script>", "I don't understand “&lt;script&gt;”"),
    ],
)
def test_route_words_that_cant_be_read_are_said(text: str, said: str) -> None:
    with pytest.raises(UserError) as refused:
        parse_route(text, "AU")
    assert said in str(refused.value)


# -- end to end -------------------------------------------------------------------------------------------


def test_route_options_set_from_slack_shown_and_applied(numbers: Stack) -> None:
    number, national = provisioned(numbers)
    text = f"route {national} <#C0NEW|new> all-calls masked escalate <@U0ONCALL|casey>"
    refused, _ = slash(numbers, text, user="U0ONCALL")  # not an admin, didn't ask for it
    assert refused["text"].startswith("Only Switchboard admins or whoever asked for")
    _, url = slash(numbers, text, user=ADMIN)
    assert reply(numbers, url)["text"] == (
        f"Calls and texts to {national} will be posted in <#C0NEW>.\nIts route: all calls · callers masked · "
        "unclaimed calls escalate to <@U0ONCALL> after 15 min."
    )
    # Applied: an answered call is posted (all-calls), its caller masked.
    numbers.avanser.place_call(number, "+61410203045", status="avanser_answered_call", duration=60)
    [answered] = wait_for(lambda: numbers.slack.channel_messages("C0NEW"))
    assert answered["text"].startswith("Answered call from •••• ••• 045")
    # Shown by /numbers show.
    _, url = slash(numbers, f"show {national}")
    assert (
        "*Route options:* all calls · callers masked · unclaimed calls escalate to <@U0ONCALL> after 15 min"
        in text_of(reply(numbers, url))
    )
    # Options not given keep their value; `escalate requester` goes back to whoever asked for the number.
    _, url = slash(numbers, f"route {national} <#C0NEW|new> unmasked escalate requester weekly-report", user=ADMIN)
    assert reply(numbers, url)["text"].endswith(
        "posted there too.\nIts route: all calls · callers shown · unclaimed calls escalate to whoever asked for "
        "it after 15 min · a call report every Monday."
    )
    audit = numbers.on_app(_audit(numbers))
    assert [json.loads(d)["options"] for d in audit] == [
        {"report": "all", "mask_callers": True, "escalate": "<@U0ONCALL>"},
        {"mask_callers": False, "escalate": None, "weekly_report": True},
    ]


async def _audit(stack: Stack) -> list[str]:
    assert stack.services is not None
    rows = stack.services.store.execute("SELECT detail FROM audit WHERE action = 'route.set' AND actor = ?", (ADMIN,))
    return [r[0] for r in rows.fetchall()]


def test_the_requester_routes_their_own_number(numbers: Stack) -> None:
    submit_view(numbers, "numbers_new", TRANSFER, user=REP)
    approval = wait_for(lambda: numbers.slack.channel_messages("C0APPROVALS"))[0]
    from tests.helpers import click

    click(numbers, "numbers_approve", approval["blocks"][-1]["elements"][0]["value"], ADMIN, approval, "C0APPROVALS")
    wait_for(lambda: "is live" in progress(numbers)["text"], timeout=10)
    number = next(iter(numbers.avanser.services))
    _, url = slash(numbers, f"route {number} <#C0SALES|sales> missed-only", user=REP)
    assert "missed calls only" in reply(numbers, url)["text"]


# -- released numbers ---------------------------------------------------------------------------------------


def test_quarantine_is_three_to_six_calendar_months() -> None:
    def at(y: int, m: int, d: int) -> float:
        return datetime(y, m, d, 9, 30, tzinfo=UTC).timestamp()

    assert add_months(at(2026, 11, 22), 3) == at(2027, 2, 22)
    assert add_months(at(2026, 11, 30), 3) == at(2027, 2, 28)  # no 30 February: the month's last day
    assert add_months(at(2027, 8, 31), 6) == at(2028, 2, 29)  # a leap year
    assert add_months(at(2026, 12, 15), 12) == at(2027, 12, 15)
    assert quarantine_until(at(2026, 11, 22)) == (at(2027, 2, 22), at(2027, 5, 22))


def test_a_released_number_is_remembered_with_its_quarantine(numbers: Stack) -> None:
    number, national = provisioned(numbers)
    answer, _ = slash(numbers, "released")  # answered in the ack: SQLite only, no provider
    assert answer["text"] == "No number has been released through Switchboard yet."

    # Releasing asks first, with the quarantine in the reader's own zone (plain dates) and what stops.
    slash(numbers, f"release {national}", user=ADMIN)
    view = wait_for(
        lambda: [
            c for c in numbers.slack.calls_to("views.update") if c.args["view"]["callback_id"] == "numbers_release"
        ]
    )[0].args["view"]
    asked = view["blocks"][0]["text"]["text"]
    assert "calls to it won't reach the team any more" in asked
    start, end = quarantine_until(time.time())
    assert f"in AVANSER's quarantine until about {_day(start)} – {_day(end)}" in asked  # Riley's zone: Sydney
    submit_view(numbers, view, {}, user=ADMIN)
    wait_for(lambda: number not in numbers.avanser.services, timeout=10)
    wait_for(lambda: any("is released" in m["text"] for m in numbers.slack.channel_messages("C0SALES")), timeout=10)

    # /numbers released: when, who, and the quarantine as Slack date tokens (each reader's own zone).
    listed, _ = slash(numbers, "released")
    assert listed["text"] == "1 number released through Switchboard"
    line = text_of(listed)
    released_at = int(re.search(r"released <!date\^(\d+)\^\{date_short\}", line)[1])  # type: ignore[index]
    assert abs(released_at - time.time()) < 30
    first, last = (int(t) for t in quarantine_until(released_at))
    assert f"*{national}* — “Spring sale radio ad” · released <!date^{released_at}^{{date_short}}|" in line
    assert "by <@U0ADMIN> · in AVANSER's quarantine until about " in line
    assert f"<!date^{first}^{{date_short}}|" in line and f"<!date^{last}^{{date_short}}|" in line

    # /numbers show of the released number says the same.
    _, url = slash(numbers, f"show {national}")
    shown = text_of(reply(numbers, url))
    assert "in AVANSER's quarantine until about" in shown and "calls to it don't reach the team" in shown


def _day(epoch: float) -> str:
    from zoneinfo import ZoneInfo

    at = datetime.fromtimestamp(epoch, ZoneInfo("Australia/Sydney"))
    return f"{at.strftime('%a')} {at.day} {at.strftime('%b %Y')}"
