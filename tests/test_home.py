"""The App Home as a dashboard: what each person (and each admin) sees, its buttons, and its refreshes."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import pytest

from bot.sandbox import payloads
from bot.sandbox.blockkit import check_view
from bot.sandbox.signing import signature_headers
from bot.sandbox.stack import ADMIN, Stack
from notifiers.home import (
    MAX_ALLOCATIONS,
    Dashboard,
    HomeAllocation,
    HomeApproval,
    HomeCall,
    HomeNumber,
    render_home,
)
from tests.helpers import submit_view, wait_for

REP, ONCALL = "U0REP", "U0ONCALL"
TRANSFER = {
    "name": "Spring sale radio ad",
    "type": "transfer",
    "number": "mobile",
    "answer_point": "02 9008 1500",
    "answer_point_name": "Sydney office",
    "report": "missed",
    "channel": "C0SALES",
}


@pytest.fixture
def home(tmp_path):
    with Stack(tmp_path, outbox_channel_interval=0, home_every=0.2) as running:
        running.avanser.callback_delay = 0.1
        yield running


def publishes(stack: Stack, user: str) -> list[dict[str, Any]]:
    """Every Home published to `user`, oldest first."""
    return [c.args["view"] for c in stack.slack.calls_to("views.publish") if c.args.get("user_id") == user]


def open_home(stack: Stack, user: str) -> dict[str, Any]:
    """Slack's app_home_opened for `user` (signed, as Slack sends it); the Home published in answer."""
    before = len(publishes(stack, user))
    event = {"type": "app_home_opened", "user": user, "channel": "D" + user[1:], "tab": "home"}
    body = json.dumps(payloads.event_callback(event))
    headers = {**signature_headers(stack.slack.signing_secret, body), "Content-Type": "application/json"}
    assert httpx.post(f"{stack.url}/slack/events", content=body, headers=headers).status_code == 200
    return wait_for(lambda: len(publishes(stack, user)) > before and publishes(stack, user)[-1])  # type: ignore[return-value]


def shown(stack: Stack, user: str) -> str:
    return json.dumps(stack.slack.home[user]["blocks"], ensure_ascii=False)


def next_home(stack: Stack, user: str, after: int, contains: str = "", timeout: float = 10) -> dict[str, Any]:
    """The first Home published to `user` after `after` publishes that shows `contains`."""

    def found() -> dict[str, Any] | None:
        later = [v for v in publishes(stack, user)[after:] if contains in json.dumps(v["blocks"], ensure_ascii=False)]
        return later[-1] if later else None

    return wait_for(found, timeout=timeout)  # type: ignore[return-value]


def press(stack: Stack, user: str, action_id: str, value: str) -> None:
    """A click on a button of `user`'s Home (a block_actions from a view: no channel, no response_url)."""
    payload = payloads.block_actions_in_view(action_id, value, user=user, view=stack.slack.home[user])
    assert stack.slack.interact(stack.url, payload).status_code == 200


def button(view: dict[str, Any], action_id: str) -> dict[str, Any]:
    for block in view["blocks"]:
        for element in block.get("elements") or []:
            if element.get("action_id", "").startswith(action_id):
                return element
    raise AssertionError(f"no {action_id} button on the Home")


def progress(stack: Stack) -> str:
    messages = stack.slack.channel_messages("C0SALES")
    return messages[0]["text"] if messages else ""


def test_each_person_sees_their_own_dashboard_and_admins_see_more(home: Stack) -> None:
    empty = json.dumps(open_home(home, REP)["blocks"], ensure_ascii=False)
    for said in (
        "My virtual numbers",
        "`/vn +919176226528 to +918136966620 for 2h` connects two people",
        "My tracking numbers",
        "`/numbers search mobile` finds one",
        "Nothing waiting: no unclaimed missed calls",
        "No phone is registered",
    ):
        assert said in empty
    assert "Waiting for approval" not in empty  # admins only
    admin_home = json.dumps(open_home(home, ADMIN)["blocks"], ensure_ascii=False)
    assert "Waiting for approval" in admin_home and "Nothing is waiting for an admin's approval." in admin_home
    open_home(home, ONCALL)

    # Riley asks for a number: every admin's Home lists it with its cost and Approve / Reject.
    seen = len(publishes(home, ADMIN))
    submit_view(home, "numbers_new", TRANSFER, user=REP)
    waiting = next_home(home, ADMIN, seen, "Spring sale radio ad")
    assert "📝 <@U0REP> asks for a tracking number “Spring sale radio ad”" in json.dumps(waiting, ensure_ascii=False)
    assert "💲 Cost: unknown — AVANSER's number rates" in json.dumps(waiting, ensure_ascii=False)
    press(home, ADMIN, "numbers_approve", button(waiting, "numbers_approve")["value"])
    wait_for(lambda: "is live" in progress(home), timeout=10)
    number = next(iter(home.avanser.services))
    national = "0" + number[3:6] + " " + number[6:9] + " " + number[9:]

    # Riley's Home: the number, its route and its options, today's calls, a link to its thread.
    mine = json.dumps(next_home(home, REP, 1, national), ensure_ascii=False)
    assert f"*{national}* — “Spring sale radio ad” · alerts in <#C0SALES>" in mine
    assert "missed calls only · callers shown · unclaimed calls escalate to whoever asked for it after 15 min" in mine
    assert "Today: 0 calls, 0 missed" in mine
    assert re.search(r"<https://sandbox\.slack\.com/archives/C0SALES/p\d+\|its thread>", mine)
    assert national not in shown(home, ONCALL)  # not Casey's number

    # A missed call: on Riley's Home and every admin's, with Claim and Call back; not on Casey's.
    seen_rep, seen_admin = len(publishes(home, REP)), len(publishes(home, ADMIN))
    home.avanser.place_call(number, "+61410203045", status="avanser_missed_call", duration=25)
    waiting_rep = next_home(home, REP, seen_rep, "0410 203 045")
    text = json.dumps(waiting_rep, ensure_ascii=False)
    assert "📞 *Missed call* from *0410 203 045* to *Spring sale radio ad*" in text
    assert "Today: 1 call, 1 missed" in text
    assert re.search(r"<!date\^\d+\^\{date_short_pretty\} at \{time\}\|[^>]+> · in <#C0SALES>", text)
    next_home(home, ADMIN, seen_admin, "0410 203 045")
    home.drain(5)
    assert "0410 203 045" not in shown(home, ONCALL)
    claim = button(waiting_rep, "home_claim")

    # Casey can't take it from a Home: it isn't Casey's number.
    press(home, ONCALL, "home_claim", claim["value"])
    refusal = wait_for(lambda: home.slack.channel_messages("D0ONCALL"))[0]
    assert refusal["text"] == "Only Switchboard admins and whoever asked for that number can take its calls from here."

    # Riley claims it from the Home: the alert in #sales says so, and the Home no longer lists it.
    seen_rep = len(publishes(home, REP))
    press(home, REP, "home_claim", claim["value"])
    alert = wait_for(lambda: [m for m in home.slack.channel_messages("C0SALES") if "Claimed by <@U0REP>" in str(m)])
    assert alert and "Missed call from 0410 203 045" in alert[0]["text"]
    assert "Nothing waiting" in json.dumps(next_home(home, REP, seen_rep, "Nothing waiting"), ensure_ascii=False)


def test_an_extend_publishes_the_home_again(home: Stack) -> None:
    home.slack.command(home.url, "/vn", "+919176226528 to +918136966620 for 2h", user_id=REP, channel_id="C0FIELD")
    home.slack.command(
        home.url, "/vn", "+919176226529 to +918136966621 for 3h masked", user_id=REP, channel_id="C0FIELD"
    )
    wait_for(lambda: len(home.exotel.active()) == 2)
    view = open_home(home, REP)
    text = json.dumps(view["blocks"], ensure_ascii=False)
    assert text.index("(#1) connects") < text.index("(#2) connects")  # soonest to expire first
    assert "091762 26528 ⇄ 081369 66620" in text  # #1 shows its parties
    assert "•••••• ••529 ⇄ •••••• ••621" in text and "26529" not in text  # #2 was made masked
    assert "1 h 59 min left" in text or "2 h left" in text
    ends = [int(e) for e in re.findall(r"Ends <!date\^(\d+)\^", text)]

    seen = len(publishes(home, REP))
    extend = button(view, "home_vn_extend-1h")
    assert extend["value"] == "1:1h" and button(view, "home_vn_extend-1d")["value"] == "1:1d"
    press(home, REP, extend["action_id"], extend["value"])
    after = json.dumps(next_home(home, REP, seen, f"Ends <!date^{ends[0] + 3600}^")["blocks"], ensure_ascii=False)
    assert after.index("(#1) connects") < after.index("(#2) connects")

    # /vn extend from a channel refreshes the Home too.
    seen = len(publishes(home, REP))
    home.slack.command(home.url, "/vn", "extend 2 1d", user_id=REP, channel_id="C0FIELD")
    moved = json.dumps(next_home(home, REP, seen, f"Ends <!date^{ends[1] + 86400}^")["blocks"], ensure_ascii=False)
    assert moved.index("(#1) connects") < moved.index("(#2) connects")

    # Release from the Home: Exotel is told, and the Home lists only the other one.
    seen = len(publishes(home, REP))
    press(home, REP, "home_vn_release", "1")
    wait_for(lambda: len(home.exotel.active()) == 1)
    left = json.dumps(next_home(home, REP, seen, "(#2) connects")["blocks"], ensure_ascii=False)
    wait_for(lambda: "(#1)" not in shown(home, REP))
    assert "(#2) connects" in left


def test_a_burst_of_changes_is_published_once(tmp_path) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, home_every=1.0) as stack:
        stack.slack.command(stack.url, "/vn", "+919176226528 to +918136966620 for 2h", user_id=REP, channel_id="C0F")
        wait_for(lambda: stack.exotel.active())
        open_home(stack, REP)
        seen = len(publishes(stack, REP))
        for _ in range(5):  # five extends within a second: at most one Home right away, one after the pause
            stack.slack.command(stack.url, "/vn", "extend 1 1h", user_id=REP, channel_id="C0F")
        wait_for(lambda: "3 h" in shown(stack, REP) or "4 h" in shown(stack, REP) or "6 h" in shown(stack, REP))
        time.sleep(1.5)
        stack.drain(5)
        assert 1 <= len(publishes(stack, REP)) - seen <= 2
        assert "6 h 59 min left" in shown(stack, REP) or "7 h left" in shown(stack, REP)  # the last state


def test_change_my_phone_from_the_home(home: Stack) -> None:
    open_home(home, REP)
    press(home, REP, "home_phone", "change")
    form = wait_for(lambda: home.slack.calls_to("views.open"))[-1].args["view"]
    assert form["callback_id"] == "home_phone_view"
    refused = submit_view(home, form, {"phone": "1900 123 456"}, user=REP)
    assert refused.json()["response_action"] == "errors"
    assert "premium" in refused.json()["errors"]["phone"].lower()
    seen = len(publishes(home, REP))
    assert submit_view(home, form, {"phone": "0412 345 678"}, user=REP).status_code == 200
    assert "Switchboard rings *0412 345 678*" in json.dumps(next_home(home, REP, seen, "0412 345 678"))


def test_a_crowded_home_fits_in_one_view() -> None:
    now = time.time()
    board = Dashboard(
        user=ADMIN,
        admin=True,
        now=now,
        claim_within=900,
        allocations=[
            HomeAllocation(i, f"+9180123456{i:02d}", ["+919176226528"], ["+918136966620"], "twoway", False, now + i)
            for i in range(MAX_ALLOCATIONS)
        ],
        allocations_total=20,
        numbers=[
            HomeNumber(f"+6129008{i:04d}", f"Ad {i}", "C0SALES", {"escalate": "<!subteam^S0SALES>"}, i, 0)
            for i in range(30)
        ],
        numbers_total=30,
        calls=[
            HomeCall(i, "voicemail", "+61410203045", "", True, "+61290081596", "Ad", now, "C0SALES") for i in range(25)
        ],
        calls_total=25,
        approvals=[HomeApproval(i, REP, "a tracking number “x”", ["Number: any mobile"], None) for i in range(9)],
        approvals_total=12,
        approvals_channel="C0APPROVALS",
    )
    view = render_home(board)
    assert check_view(view) == [] and len(view["blocks"]) <= 100
    text = json.dumps(view["blocks"], ensure_ascii=False)
    assert "and 12 more — `/vn list`" in text
    assert "and 20 more — `/numbers list`" in text and "and 15 more — in their channels" in text
    assert "and 4 more — in <#C0APPROVALS>" in text
    assert "•••• ••• 045" in text and "0410 203 045" not in text  # a masked route's callers stay masked
    assert "unclaimed calls escalate to <!subteam^S0SALES> after 15 min" in text


def test_outside_text_on_the_home_is_never_markup() -> None:
    from bot.sandbox.markup import injections
    from tests.test_escaping import ATTACK

    now = time.time()
    board = Dashboard(
        user=ADMIN,
        admin=True,
        now=now,
        claim_within=900,
        numbers=[
            HomeNumber("+61290081596", ATTACK, "C0SALES", {"escalate": ATTACK, ATTACK: ATTACK}, 1, 1, ATTACK, REP)
        ],
        numbers_total=1,
        calls=[HomeCall(1, ATTACK, None, ATTACK, False, "+61290081596", ATTACK, now, "C0SALES")],
        calls_total=1,
        approvals=[HomeApproval(1, REP, "a tracking number", ["Number: any"], ATTACK)],
        approvals_total=1,
    )
    view = render_home(board)
    assert check_view(view) == []
    message = {"channel": "home", "blocks": view["blocks"]}
    assert injections([message], users={REP, ADMIN}, channels={"C0SALES"}) == []
    assert "&lt;!channel&gt;" in json.dumps(view)


def test_one_publish_waits_per_person_and_a_change_waits_for_the_pause(tmp_path) -> None:
    from tests.test_domain import make

    services = make(tmp_path)
    services.outbox.home_every = 3.0
    first = services.outbox.publish_home(REP)
    assert services.outbox.publish_home(REP) == first  # a change while one waits is in it already
    assert services.outbox.publish_home(ADMIN) != first  # a lane per person
    rendered = time.time()  # the outbox rendered it and is sending it: a change now needs another publish
    services.store.execute("UPDATE outbox SET sending_at = ? WHERE id = ?", (rendered, first))
    again = services.outbox.publish_home(REP)
    due = services.store.execute("SELECT next_attempt_at FROM outbox WHERE id = ?", (again,)).fetchone()[0]
    assert again != first and due >= rendered + 3.0
    services.store.execute("DELETE FROM outbox WHERE id = ?", (again,))
    services.store.execute("UPDATE outbox SET status = 'sent', sent_at = ? WHERE id = ?", (time.time(), first))
    later = services.outbox.publish_home(REP)
    due = services.store.execute("SELECT next_attempt_at FROM outbox WHERE id = ?", (later,)).fetchone()[0]
    assert later != first and 2.5 < due - time.time() <= 3.0  # debounced: not before the pause is over
    services.store.close()


def test_a_home_that_cant_be_rendered_is_dropped_not_retried_forever(home: Stack) -> None:
    assert home.services is not None
    renderer = home.services.outbox.home_renderer

    def broken(user: str) -> dict[str, Any]:
        raise RuntimeError("a bug in a dashboard")

    home.services.outbox.home_renderer = broken
    event = {"type": "app_home_opened", "user": REP, "channel": "D0REP", "tab": "home"}
    body = json.dumps(payloads.event_callback(event))
    headers = {**signature_headers(home.slack.signing_secret, body), "Content-Type": "application/json"}
    httpx.post(f"{home.url}/slack/events", content=body, headers=headers)
    assert home.drain(5)  # nothing left pending: the row failed, the lane is free
    assert publishes(home, REP) == []
    home.services.outbox.home_renderer = renderer
    assert open_home(home, REP)["type"] == "home"
