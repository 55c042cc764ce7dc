"""/vn end to end: quick form and forms → what Exotel received; leases, reminders, expiry, restarts."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from bot.domain import vn as vn_domain
from bot.errors import UserError
from bot.sandbox.stack import ADMIN, Stack
from tests.helpers import click, submit_view, wait_for

REP = "U0REP"
QUICK = "+919176226528,+911234567891 to +918136966620 twoway for 2h pin 1234"


@pytest.fixture
def vn(tmp_path):
    with Stack(tmp_path, outbox_channel_interval=0, SWITCHBOARD_VN_REMINDER="1s") as running:
        yield running


def slash(stack: Stack, text: str, user: str = REP) -> tuple[dict[str, Any], str]:
    answer, url = stack.slack.command(stack.url, "/vn", text, user_id=user, channel_id="C0FIELD")
    assert answer.status_code == 200
    return (answer.json() if answer.content else {}), url


def later(stack: Stack, url: str) -> str:
    return wait_for(lambda: stack.slack.responses_to(url), timeout=10)[-1]["text"]


def allocations(stack: Stack) -> list[vn_domain.Allocation]:
    async def rows() -> list[vn_domain.Allocation]:
        assert stack.services is not None
        return vn_domain.owned(stack.services, "", everyone=True) + [
            vn_domain.get(stack.services, str(r[0]))
            for r in stack.services.store.execute("SELECT id FROM allocations WHERE state != 'active'").fetchall()
        ]

    return stack.on_app(rows())


def test_quick_form_reads_every_field() -> None:
    plan = vn_domain.parse_quick(
        "+919176226528, +911234567891 to +918136966620 oneway for 45m pin 1234 bpin 5678,9012 "
        "vn +918012345679 region ka pincode 560001 landline strict flow f-1 masked"
    )
    assert plan.aparty == ["+919176226528", "+911234567891"] and plan.bparty == ["+918136966620"]
    assert (plan.usage, plan.duration, plan.apins, plan.bpins) == ("oneway", 2700, [1234], [5678, 9012])
    assert (plan.greenvn, plan.region, plan.pin_code, plan.number_type) == ("+918012345679", "KA", "560001", "landline")
    assert plan.strict and plan.masked and plan.flow_id == "f-1"
    body = plan.request("X1").to_body()
    assert body["deallocation_policy"] == {"duration": f"{2700 + int(vn_domain.SAFETY_NET)}s"}
    assert body["preferences"] == {"greenvn": "+918012345679", "region": "KA", "pin_code": "560001", "type": "landline"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("+919176226528 to +919176226528", "091762 26528 is on both sides"),
        ("+919176226528 to +918136966620 for 2 weeks", "“2” isn't a duration"),
        ("+919176226528 to +918136966620 for 100d", "between a minute and 90 days"),
        ("+919176226528 to +918136966620 pin 12a4", "a-party PIN: “12a4” isn't a PIN"),
        ("+919176226528 to +918136966620 region XX", "“XX” isn't a region Exotel offers"),
        ("+919176226528 to +918136966620 please", "I don't understand “please”"),
        ("+919176226528 +918136966620", "Try `/vn +919176226528"),
        ("+91123 to +918136966620", "a-party: “+91123” isn't"),
    ],
)
def test_quick_form_refusals(text: str, message: str) -> None:
    with pytest.raises(UserError) as info:
        vn_domain.parse_quick(text)
    assert message in str(info.value)


def test_allocate_with_the_quick_form(vn: Stack) -> None:
    answer, url = slash(vn, QUICK)
    assert answer["text"] == "Getting a virtual number for 2 + 1 people…"
    result = later(vn, url)
    [sent] = vn.exotel.requests_to("POST", "/v1/tenants/")
    body = sent.json
    assert body["aparty_numbers"] == ["+919176226528", "+911234567891"] and body["bparty_numbers"] == ["+918136966620"]
    assert body["usage"] == "twoway" and body["aparty_pins"] == [1234] and body["connection_id"].startswith("sb-")
    assert body["deallocation_policy"] == {"duration": f"{7200 + int(vn_domain.SAFETY_NET)}s"}
    [allocation] = allocations(vn)
    assert result.startswith(f"✅ {allocation.green_vn and '0' + allocation.green_vn[3:6]}")
    [message] = wait_for(lambda: vn.slack.channel_messages("C0FIELD"))
    assert message["blocks"][0]["text"]["text"].startswith(
        "☎️ *080123 45678* connects 091762 26528, 01234 567 891 ⇄ 081369 66620"
    )
    assert "PINs set · owner <@U0REP> · until" in message["blocks"][1]["elements"][0]["text"]
    vn.exotel.fire_call(allocation.greenvn_id, "+919176226528")
    call = wait_for(lambda: [m for m in vn.slack.channel_messages("C0FIELD") if m["thread_ts"]])[0]
    assert call["thread_ts"] == message["ts"] and call["text"].startswith("Call on 080123 45678")


def test_reminder_once_then_extend_moves_the_end(vn: Stack) -> None:
    slash(vn, "+919176226528 to +918136966620 for 3s")
    [allocation] = wait_for(lambda: allocations(vn))
    reminder = wait_for(lambda: vn.slack.channel_messages("D0REP"), timeout=5)[0]
    assert reminder["text"].startswith("⏰ 080123 45678 (#1) will be released at")
    buttons = reminder["blocks"][1]["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Extend 1 hour", "Extend 1 day", "Extend…", "Release now"]
    extended = click(vn, buttons[0]["action_id"], buttons[0]["value"], REP, reminder, channel="D0REP")
    assert later(vn, extended["response_url"]).startswith("✅ Extended: #1 now lasts until")
    time.sleep(3)  # past the original end
    [now] = allocations(vn)
    assert now.state == "active" and now.expires_at > allocation.expires_at + 3000
    assert vn.exotel.requests_to("DELETE", "/v1/tenants/") == []
    assert len(vn.slack.channel_messages("D0REP")) == 1  # reminded once


def test_expiry_releases_exactly_once(vn: Stack) -> None:
    slash(vn, "+919176226528 to +918136966620 for 2s")
    wait_for(lambda: any(a.state == "expired" for a in allocations(vn)), timeout=8)
    time.sleep(1)
    assert len(vn.exotel.requests_to("DELETE", "/v1/tenants/")) == 1
    assert vn.exotel.active() == []
    ended = wait_for(lambda: [m for m in vn.slack.channel_messages("C0FIELD") if m["text"].startswith("🔚")])
    assert ended[0]["text"] == "🔚 080123 45678 was released: its time ran out."
    assert "ended: its time ran out" in vn.slack.channel_messages("C0FIELD")[0]["text"]


def test_a_lease_that_ended_while_down_is_released_at_start(vn: Stack) -> None:
    _, url = slash(vn, "+919176226528 to +918136966620 for 3s")
    later(vn, url)
    vn.stop_app()
    time.sleep(3.5)
    assert vn.exotel.requests_to("DELETE", "/v1/tenants/") == []
    vn.start_app()
    wait_for(lambda: any(a.state == "expired" for a in allocations(vn)), timeout=8)
    time.sleep(0.5)
    assert len(vn.exotel.requests_to("DELETE", "/v1/tenants/")) == 1


def test_a_restart_before_the_reminder_still_reminds_once(tmp_path) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, SWITCHBOARD_VN_REMINDER="2s") as stack:
        _, url = stack.slack.command(
            stack.url, "/vn", "+919176226528 to +918136966620 for 5s", user_id=REP, channel_id="C0FIELD"
        )
        later(stack, url)
        stack.stop_app()
        stack.start_app()
        wait_for(lambda: stack.slack.channel_messages("D0REP"), timeout=6)
        wait_for(lambda: any(a.state == "expired" for a in allocations(stack)), timeout=8)
        assert len(stack.slack.channel_messages("D0REP")) == 1
        assert len(stack.exotel.requests_to("DELETE", "/v1/tenants/")) == 1


def test_exotel_deallocation_ends_the_lease(vn: Stack) -> None:
    import httpx

    _, url = slash(vn, QUICK)
    later(vn, url)
    [allocation] = allocations(vn)
    event = {
        "connection_id": allocation.connection_id,
        "aparty_numbers": allocation.parties["aparty_numbers"],
        "bparty_numbers": allocation.parties["bparty_numbers"],
        "aparty_pins": [1234],
        "bparty_pins": [None],
        "usage": "twoway",
        "state": "vault",
        "greenvn": allocation.green_vn,
        "greenvn_id": allocation.greenvn_id,
    }
    assert httpx.post(vn.exotel.event_urls["deallocation"], json=event).status_code == 200
    wait_for(lambda: allocations(vn)[0].state == "deallocated")
    ended = wait_for(lambda: [m for m in vn.slack.channel_messages("C0FIELD") if m["text"].startswith("🔚")])
    assert ended[0]["text"] == "🔚 080123 45678 was released: Exotel ended it."
    assert vn.exotel.requests_to("DELETE", "/v1/tenants/") == []


@pytest.mark.parametrize(
    ("code", "status", "sentence"),
    [
        (4, 452, "Exotel has no free virtual numbers right now. Try another region or later."),
        (18, 409, "A virtual number already exists for this connection."),
        (16, 400, "Exotel says one of the phone numbers is invalid."),
        (15, 403, "Exotel doesn't offer virtual numbers in that region."),
    ],
)
def test_provider_refusals_are_sentences(vn: Stack, code: int, status: int, sentence: str) -> None:
    vn.exotel.inject(
        "status",
        status=status,
        body=json.dumps([{"success": False, "status": status, "code": code, "message": "raw", "data": None}]),
    )
    _, url = slash(vn, QUICK)
    assert later(vn, url) == sentence
    assert allocations(vn) == []


def test_list_show_extend_release(vn: Stack) -> None:
    _, url = slash(vn, QUICK)
    later(vn, url)
    listed, _ = slash(vn, "list")
    assert "*#1* 080123 45678 — 2 ⇄ 1 people · until" in json.dumps(listed["blocks"], ensure_ascii=False)
    assert slash(vn, "list all")[0]["text"] == "Only Switchboard admins can list everyone's virtual numbers."
    _, url = slash(vn, "show 1")
    assert later(vn, url).startswith("080123 45678 connects")
    _, url = slash(vn, "show +918012345678")
    assert later(vn, url).startswith("080123 45678 connects")
    assert slash(vn, "extend 1 3d")[0]["text"].startswith("#1 now lasts until")
    assert slash(vn, "extend 1 3d", user=ADMIN)[0]["text"].startswith("#1 now lasts until")
    assert slash(vn, "extend 1 2h", user="U0ONCALL")[0]["text"].startswith("Only <@U0REP> (who set it up) or an admin")
    confirm, _ = slash(vn, "release 1")
    button = confirm["blocks"][1]["elements"][0]
    assert button["confirm"]["title"]["text"] == "Release it now?"
    done = click(vn, button["action_id"], button["value"], REP)
    assert later(vn, done["response_url"]) == "✅ Released 080123 45678."
    assert allocations(vn)[0].state == "released"
    assert len(vn.exotel.requests_to("DELETE", "/v1/tenants/")) == 1
    assert slash(vn, "release 1")[0]["text"] == "That virtual number was already released."


def test_parties_and_swap(vn: Stack) -> None:
    _, url = slash(vn, QUICK)
    later(vn, url)
    slash(vn, "parties 1")
    opened = wait_for(lambda: vn.slack.calls_to("views.open"))[0]
    view = opened.args["view"]
    assert view["callback_id"] == "vn_parties"
    meta = json.loads(view["private_metadata"])
    submit_view(
        vn,
        view,
        {
            "aparty": "+919176226528",
            "bparty": "+918136966620, +919000000001",
            "apins": "4321",
            "bpins": "",
            "usage": "oneway",
        },
        metadata=meta,
        view_id=opened.response["view"]["id"],
    )
    sent = wait_for(lambda: vn.exotel.requests_to("PUT", "/v1/tenants/"))[0]
    assert sent.path.endswith("/call-party")
    assert sent.json == {
        "aparty_numbers": ["+919176226528"],
        "bparty_numbers": ["+918136966620", "+919000000001"],
        "aparty_pins": [4321],
        "usage": "oneway",
    }
    result = wait_for(lambda: vn.slack.calls_to("views.update"))[0]  # the modal says how it went
    assert result.args["view_id"] == opened.response["view"]["id"]
    assert "now connects the numbers you gave" in json.dumps(result.args["view"])
    _, url = slash(vn, "swap 1 region KA mobile")
    assert later(vn, url).startswith("✅ #1 now uses 098450 12345")
    swap = vn.exotel.requests_to("PUT", "/v1/tenants/")[-1]
    assert swap.path.endswith("/vn") and swap.json == {"preferences": {"region": "KA", "number_type": "mobile"}}


def test_new_form_errors_and_result(vn: Stack) -> None:
    slash(vn, "new")
    opened = wait_for(lambda: vn.slack.calls_to("views.open"))[0]
    view, view_id = opened.args["view"], opened.response["view"]["id"]
    assert view["callback_id"] == "vn_new"
    bad = submit_view(
        vn,
        "vn_new",
        {"aparty": "+919176226528", "bparty": "+919176226528", "usage": "twoway", "duration": "2h"},
        metadata={"channel": "C0FIELD"},
    )
    assert bad.json() == {
        "response_action": "errors",
        "errors": {"bparty": "091762 26528 is on both sides; a virtual number connects two different sets of people."},
    }
    good = submit_view(
        vn,
        "vn_new",
        {
            "aparty": "+919176226528",
            "bparty": "+918136966620",
            "usage": "oneway",
            "duration": "45m",
            "apins": "1234",
            "channel": "C0FIELD",
        },
        metadata={"channel": "C0FIELD"},
        view_id=view_id,
    )
    assert good.json()["response_action"] == "update"
    update = wait_for(lambda: vn.slack.calls_to("views.update"))[0].args["view"]
    assert update["blocks"][0]["text"]["text"].startswith("✅ 080123 45678 is yours (#1)")


def test_show_keeps_in_step_with_exotel(vn: Stack) -> None:
    _, url = slash(vn, QUICK)
    later(vn, url)
    [allocation] = allocations(vn)
    vn.exotel.allocations[allocation.greenvn_id]["state"] = "vault"  # released at Exotel without an event
    answer, url = slash(vn, "show 1")
    assert answer["text"] == "Checking #1 with Exotel…"
    assert later(vn, url) == "080123 45678: ended by Exotel"
    assert allocations(vn)[0].state == "deallocated"


def test_a_pin_starting_with_zero_is_refused_not_changed(vn: Stack) -> None:
    answer, _ = slash(vn, "+919176226528 to +918136966620 pin 0123")
    assert "starts with 0" in answer["text"] and "123" in answer["text"]
    assert vn.exotel.requests_to("POST", "/v1/tenants/") == []


def test_flexible_sends_strictness_false(vn: Stack) -> None:
    _, url = slash(vn, "+919176226528 to +918136966620 region KA flexible")
    later(vn, url)
    [sent] = vn.exotel.requests_to("POST", "/v1/tenants/")
    assert sent.json["strictness"] is False


def test_an_unclear_allocation_is_reported_then_settled_by_the_next_list(vn: Stack) -> None:
    vn.exotel.refuse_next(status=499, method="POST", after_commit=True)  # Exotel made it, then timed out
    _, url = slash(vn, QUICK)
    assert "may have been created — check `/vn list`" in later(vn, url)
    [row] = allocations(vn)
    assert row.state == "unconfirmed"
    answer, url = slash(vn, "list")
    assert answer["text"] == "Checking with Exotel first…"
    said = later(vn, url)
    listed = wait_for(lambda: vn.slack.responses_to(url))[-1]
    assert "#1 was created at Exotel, but Exotel never said which number it got" in json.dumps(listed["blocks"])
    assert said.startswith("0 active virtual numbers") or said.startswith("No virtual numbers")
    posts = vn.exotel.requests_to("POST", "/v1/tenants/")
    assert len(posts) == 2 and posts[0].json["connection_id"] == posts[1].json["connection_id"]  # sent again, same id
    assert allocations(vn)[0].state == "orphaned"


def test_an_unclear_allocation_that_never_landed_is_made_by_the_next_list(vn: Stack) -> None:
    vn.exotel.refuse_next(status=499, method="POST")  # nothing was made
    _, url = slash(vn, QUICK)
    assert "may have been created" in later(vn, url)
    _, url = slash(vn, "list")
    listed = wait_for(lambda: vn.slack.responses_to(url))[-1]
    assert "#1 was created after all: 080123 45678 until" in json.dumps(listed["blocks"], ensure_ascii=False)
    assert allocations(vn)[0].state == "active"
