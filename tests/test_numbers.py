"""/numbers end to end: signed commands, form submissions and clicks → what AVANSER received and Slack shows."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from bot.domain.numbers import CALL_URI_TAGS
from bot.sandbox import payloads
from bot.sandbox.stack import ADMIN, Stack
from tests.helpers import click, submit_view, wait_for

REP = "U0REP"


@pytest.fixture
def numbers(tmp_path):
    with Stack(tmp_path, outbox_channel_interval=0) as running:
        running.avanser.callback_delay = 0.1
        yield running


def slash(stack: Stack, text: str, user: str = REP, channel: str = "C0SALES") -> tuple[dict[str, Any], str]:
    started = time.monotonic()
    answer, url = stack.slack.command(stack.url, "/numbers", text, user_id=user, channel_id=channel)
    assert answer.status_code == 200
    assert time.monotonic() - started < 3  # acked inside Slack's limit, whatever the provider does
    return (answer.json() if answer.content else {}), url


def reply(stack: Stack, url: str, n: int = 1) -> dict[str, Any]:
    return wait_for(lambda: len(stack.slack.responses_to(url)) >= n and stack.slack.responses_to(url), timeout=15)[
        n - 1
    ]


def text_of(body: dict[str, Any]) -> str:
    return json.dumps(body.get("blocks") or body.get("text"), ensure_ascii=False)


TRANSFER = {
    "name": "Spring sale radio ad",
    "type": "transfer",
    "number": "mobile",
    "answer_point": "02 9008 1500",
    "answer_point_name": "Sydney office",
    "record_call": True,
    "report": "missed",
    "channel": "C0SALES",
}


# -- search ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "query", "heading"),
    [
        ("mobile", {"country": "AU", "number_type": "MOBILE"}, "6 mobile numbers in AU"),
        ("tollfree", {"country": "AU", "number_type": "TOLLFREE"}, "6 tollfree numbers in AU"),
        (
            "near 150 Elizabeth St Sydney NSW radius 5",
            {"country": "AU", "location": "150 Elizabeth St Sydney NSW", "radius": "5"},
            "numbers within 5 km of 150 Elizabeth St",
        ),
        (
            "at -37.81,144.96 radius 10",
            {"country": "AU", "lat": "-37.81", "lng": "144.96", "radius": "10"},
            "numbers within 10 km of -37.81, 144.96",
        ),
        ("prefix 02 9008 1590", {"country": "AU", "number": "61290081590"}, "numbers like (02) 9008 1590"),
        ("szu perth", {"szu": "perth"}, "6 numbers in the perth zone"),
    ],
)
def test_search(numbers: Stack, words: str, query: dict[str, str], heading: str) -> None:
    answer, url = slash(numbers, f"search {words}")
    assert answer["text"].startswith("Searching AVANSER for ")
    result = reply(numbers, url)
    assert numbers.avanser.requests_to("GET", "/v1/numbers")[-1].query == query
    assert heading in result["text"]
    buttons = [b["accessory"] for b in result["blocks"] if b.get("accessory")]
    assert buttons and all(b["text"]["text"] == "Request this number" for b in buttons)


def test_ambiguous_address_offers_the_places(numbers: Stack) -> None:
    _, url = slash(numbers, "search near Richmond")
    choice = reply(numbers, url)
    assert choice["text"] == "“Richmond” matches several places. Which one?"
    buttons = choice["blocks"][1]["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Richmond, NSW, AU", "Richmond, VIC, AU"]
    picked = click(numbers, buttons[1]["action_id"], buttons[1]["value"], REP)
    result = reply(numbers, picked["response_url"])
    assert "(03) 9081" in text_of(result)


def test_bad_search_explains_itself(numbers: Stack) -> None:
    answer, _ = slash(numbers, "search cheap ones")
    assert answer["text"].startswith("Search with `/numbers search mobile`")
    answer, _ = slash(numbers, "search at 200,5")
    assert answer["text"] == "“200,5” isn't a latitude,longitude pair such as -33.87,151.21."


def test_ack_is_fast_while_avanser_is_slow(numbers: Stack) -> None:
    numbers.avanser.inject("timeout", delay=5, count=1)
    started = time.monotonic()
    _, url = slash(numbers, "search mobile")
    assert time.monotonic() - started < 1
    assert "mobile numbers" in reply(numbers, url)["text"]


# -- requesting a number --------------------------------------------------------------------------


def form_shown(stack: Stack, callback_id: str = "numbers_new") -> dict[str, Any]:
    """The form as the app shows it: opened at once, filled in when AVANSER's templates are known."""

    def updates() -> list[Any]:
        return [c for c in stack.slack.calls_to("views.update") if c.args["view"].get("callback_id") == callback_id]

    return dict(wait_for(updates)[-1].args["view"])


def test_new_opens_the_form(numbers: Stack) -> None:
    slash(numbers, "new")
    opened = wait_for(lambda: numbers.slack.calls_to("views.open"))[0].args["view"]
    assert opened["blocks"][0]["text"]["text"].startswith("⏳")  # at once: a trigger_id lasts 3 s
    view = form_shown(numbers)
    assert view["callback_id"] == "numbers_new" and view["title"]["text"] == "Request a number"
    blocks = {b["block_id"]: b for b in view["blocks"]}
    assert blocks["channel"]["element"]["initial_conversation"] == "C0SALES"
    assert {
        "name",
        "type",
        "number",
        "answer_point",
        "record_call",
        "report",
        "email_to",
        "sms_mobile",
        "custom_id",
        "custom_group",
    } <= set(blocks)


def test_request_this_number_button_prefills_it(numbers: Stack) -> None:
    click(numbers, "numbers_pick", json.dumps({"number": "+61290081590", "type": "GEO"}), REP)
    view = form_shown(numbers)
    number = next(b for b in view["blocks"] if b["block_id"] == "number")
    assert number["element"]["initial_value"] == "(02) 9008 1590"


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"answer_point": "12"}, {"answer_point": "“12” isn't a phone number I can read."}),
        ({"answer_point": ""}, {"answer_point": "A transfer needs the phone its calls go to."}),
        (
            {"call_greeting": "ftp://x/greeting.wav"},
            {"call_greeting": "Give a web address starting with http:// or https://."},
        ),
        ({"email_to": "sales@example.com, not-an-email"}, {"email_to": "“not-an-email” isn't an email address."}),
        ({"email_to": "sales@example.com"}, {"email_subject": "Give the report emails a subject."}),
        ({"number": "prefix banana"}, {"number": "“banana” isn't a number or the start of one."}),
        ({"sms_mobile": "0412"}, {"sms_mobile": "“0412” isn't a phone number I can read."}),
    ],
)
def test_form_errors_are_shown_on_the_fields(numbers: Stack, changes: dict[str, str], errors: dict[str, str]) -> None:
    answer = submit_view(numbers, "numbers_new", {**TRANSFER, **changes}, user=ADMIN)
    assert answer.json() == {"response_action": "errors", "errors": errors}
    assert numbers.avanser.requests_to("POST", "/v1/requests") == []


def progress(stack: Stack, channel: str = "C0SALES") -> dict[str, Any]:
    """The request's progress message (the first in the channel), or an empty one before it is posted."""
    messages = stack.slack.channel_messages(channel)
    return messages[0] if messages else {"text": "", "blocks": []}


def test_admin_request_goes_live_and_its_calls_are_posted(numbers: Stack) -> None:
    assert submit_view(numbers, "numbers_new", TRANSFER, user=ADMIN).status_code == 200
    sent = wait_for(lambda: numbers.avanser.requests_to("POST", "/v1/requests"))[0].json
    token = f"token={numbers.webhook_token}"
    assert sent == {
        "name": "Spring sale radio ad",
        "custom_id": sent["custom_id"],
        "service_number": {"country": "AU", "search_type": "number_type", "number_type": "MOBILE"},
        "service": {
            "type": "transfer",
            "answer_point": "61290081500",
            "answer_point_name": "Sydney office",
            "record_call": True,
            "call_reporting": {"report": "missed"},
        },
        "call_uri": f"{numbers.url}/hooks/avanser/call?{token}&{CALL_URI_TAGS}",
        "sms_forward_uri": f"{numbers.url}/hooks/avanser/sms?{token}",
        "callback_uri": f"{numbers.url}/hooks/avanser/request?{token}",
    }
    assert sent["custom_id"].startswith("sb-")
    wait_for(lambda: "is live" in progress(numbers)["text"], timeout=10)
    live = progress(numbers)
    number = next(iter(numbers.avanser.services))
    assert live["text"] == (
        f"✅ {number[3:7] and '0' + number[3:6]} {number[6:9]} {number[9:]} is live — “Spring sale "
        "radio ad”. Its calls and texts will be posted in <#C0SALES>. AVANSER's test call came through."
    )
    test_call = wait_for(lambda: [m for m in numbers.slack.channel_messages("C0SALES") if "Test call" in m["text"]])
    assert test_call[0]["thread_ts"] == live["ts"]  # said in the request's thread, not posted as an alert
    assert not any("call from" in m["text"].lower() for m in numbers.slack.channel_messages("C0SALES"))
    assert numbers.avanser.place_call(number, "+61410203045").status_code == 200
    wait_for(lambda: any("Missed call" in m["text"] for m in numbers.slack.channel_messages("C0SALES")))
    alert = next(m for m in numbers.slack.channel_messages("C0SALES") if "Missed call" in m["text"])
    # Later events thread under the request's message, and are shown in the channel too.
    assert alert["thread_ts"] == live["ts"] and alert["reply_broadcast"] is True


def test_voicemail_and_prompt_requests(numbers: Stack) -> None:
    voicemail = {
        "name": "After hours",
        "type": "voicemail",
        "number": "szu melbourne",
        "voicemail": "https://audio.example/vm.mp3",
        "report": "missed-voicemail",
        "email_to": "sales@example.com",
        "email_cc": "boss@example.com, ops@example.com",
        "email_bcc": "audit@example.com",
        "email_subject": "Voicemail from __ani__",
        "email_template": "html_email_template",
        "sms_mobile": "0412 999 888",
        "sms_id": "Switchboard",
        "sms_template": "text_sms_template",
        "custom_id": "ad-77",
        "custom_group": "radio",
        "channel": "C0SALES",
    }
    submit_view(numbers, "numbers_new", voicemail, user=ADMIN)
    prompt = {
        "name": "Closed message",
        "type": "prompt",
        "number": "tollfree",
        "call_greeting": "https://audio.example/closed.wav",
        "report": "none",
        "channel": "C0SALES",
    }
    submit_view(numbers, "numbers_new", prompt, user=ADMIN)
    sent = wait_for(
        lambda: (
            len(numbers.avanser.requests_to("POST", "/v1/requests")) == 2
            and numbers.avanser.requests_to("POST", "/v1/requests")
        )
    )
    first, second = sent[0].json, sent[1].json
    assert first["custom_id"] == "ad-77" and first["custom_group"] == "radio"
    assert first["service_number"] == {"country": "AU", "search_type": "szu", "szu": "melbourne"}
    assert first["service"] == {
        "type": "voicemail",
        "voicemail": "https://audio.example/vm.mp3",
        "call_reporting": {
            "report": "missed-voicemail",
            "email": {
                "subject": "Voicemail from __ani__",
                "email_to": ["sales@example.com"],
                "email_cc": ["boss@example.com", "ops@example.com"],
                "email_bcc": ["audit@example.com"],
                "template": "html_email_template",
            },
            "sms": {"mobile": "61412999888", "sms_id": "Switchboard", "template": "text_sms_template"},
        },
    }
    # seed 001's prompt example puts call_reporting beside `service`, not inside it
    assert second["service"] == {"type": "prompt", "call_greeting": "https://audio.example/closed.wav"}
    assert second["call_reporting"] == {"report": "none"}
    assert second["service_number"] == {"country": "AU", "search_type": "number_type", "number_type": "TOLLFREE"}


def test_the_cost_is_unknown_when_the_seeds_rates_dont_name_the_type(numbers: Stack) -> None:
    submit_view(numbers, "numbers_new", TRANSFER, user=REP)  # the sandbox has the seed's one rate: "Test MMT"
    approval = wait_for(lambda: numbers.slack.channel_messages("C0APPROVALS"))[0]
    assert (
        "💲 Cost: unknown — AVANSER's number rates don't say which applies to a mobile number "
        "(Test MMT, rate code 61: setup $0.00, rental $0.00)."
    ) in text_of(approval)


def test_non_admin_request_waits_for_approval(numbers: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    mobile = {"rate_code": 62, "description": "Virtual mobile", "setup_date": "2017-01-07"}
    numbers.avanser.number_rates.append({**mobile, "setup_charge": "5.00", "rental_charge": "15.00"})
    submit_view(numbers, "numbers_new", TRANSFER, user=REP)
    approval = wait_for(lambda: numbers.slack.channel_messages("C0APPROVALS"))[0]
    assert approval["text"] == "@U0REP asks for a tracking number “Spring sale radio ad”."
    assert "💲 Cost: setup $5.00, rental $15.00 (Virtual mobile, rate code 62)" in text_of(approval)
    assert "Waiting for an admin's approval in <#C0APPROVALS>" in progress(numbers)["text"]
    assert numbers.avanser.requests_to("POST", "/v1/requests") == []
    buttons = approval["blocks"][-1]["elements"]
    refused = click(numbers, "numbers_approve", buttons[0]["value"], REP, approval, channel="C0APPROVALS")
    assert reply(numbers, refused["response_url"])["text"] == (
        "Only Switchboard admins can approve or reject number requests."
    )
    click(numbers, "numbers_approve", buttons[0]["value"], ADMIN, approval, channel="C0APPROVALS")
    wait_for(lambda: numbers.avanser.requests_to("POST", "/v1/requests"))
    wait_for(lambda: "is live" in progress(numbers)["text"], timeout=10)
    assert "Approved by <@U0ADMIN>" in text_of(numbers.slack.channel_messages("C0APPROVALS")[0])
    dm = wait_for(lambda: numbers.slack.channel_messages("D0REP"))[0]
    assert dm["text"] == "<@U0ADMIN> approved your request for “Spring sale radio ad”. AVANSER is setting it up now."
    double = click(numbers, "numbers_approve", buttons[0]["value"], ADMIN, approval, channel="C0APPROVALS")
    numbers.drain(5)
    assert numbers.slack.responses_to(double["response_url"]) == []  # a double click is the same click
    monkeypatch.setattr("commands.base.DOUBLE_CLICK_SECONDS", 0.0)  # … and much later:
    again = click(numbers, "numbers_approve", buttons[0]["value"], ADMIN, approval, channel="C0APPROVALS")
    assert reply(numbers, again["response_url"])["text"] == "That request was already decided by <@U0ADMIN>."
    assert len(numbers.avanser.requests_to("POST", "/v1/requests")) == 1


def test_rejected_request_buys_nothing(numbers: Stack) -> None:
    submit_view(numbers, "numbers_new", TRANSFER, user=REP)
    approval = wait_for(lambda: numbers.slack.channel_messages("C0APPROVALS"))[0]
    click(numbers, "numbers_reject", approval["blocks"][-1]["elements"][1]["value"], ADMIN, approval, "C0APPROVALS")
    wait_for(lambda: "was rejected" in progress(numbers)["text"])
    assert progress(numbers)["text"] == (
        "🚫 <@U0REP>'s request for a tracking number “Spring sale radio ad” was "
        "rejected by <@U0ADMIN>. Nothing was bought."
    )
    assert wait_for(lambda: numbers.slack.channel_messages("D0REP"))[0]["text"] == (
        "<@U0ADMIN> rejected your request for “Spring sale radio ad”."
    )
    time.sleep(0.3)
    assert numbers.avanser.requests_to("POST", "/v1/requests") == []


def test_failed_provisioning_says_why(numbers: Stack) -> None:
    numbers.avanser.fail_provisioning.add("+61290081590")
    submit_view(numbers, "numbers_new", {**TRANSFER, "number": "02 9008 1590"}, user=ADMIN)
    wait_for(lambda: "failed" in progress(numbers)["text"], timeout=10)
    assert progress(numbers)["text"] == (
        "❌ The request for a tracking number “Spring sale radio ad” ((02) 9008 1590) "
        "failed: Selected service number is not available. Nothing was bought."
    )


def test_missing_callback_is_replaced_by_polling(tmp_path) -> None:
    with Stack(
        tmp_path, outbox_channel_interval=0, SWITCHBOARD_CALLBACK_WAIT=0.5, SWITCHBOARD_PROPAGATION="1s"
    ) as stack:
        stack.avanser.callback_delay = 0.1
        stack.avanser.send_callbacks = False
        stack.avanser.test_calls = False  # an account without AVANSER's test calls: live after propagation
        submit_view(stack, "numbers_new", TRANSFER, user=ADMIN)
        wait_for(lambda: "is configured" in progress(stack)["text"], timeout=10)
        wait_for(lambda: "is live" in progress(stack)["text"], timeout=10)
        assert "No test call was seen" in progress(stack)["text"]
        assert stack.avanser.callbacks_sent == []
        assert len([r for r in stack.avanser.received if r.method == "GET" and r.path == "/v1/requests"]) >= 1


def test_pending_request_is_polled_after_a_restart(tmp_path) -> None:
    with Stack(
        tmp_path, outbox_channel_interval=0, SWITCHBOARD_CALLBACK_WAIT=600, SWITCHBOARD_PROPAGATION="1s"
    ) as stack:
        stack.avanser.callback_delay = 0.1
        stack.avanser.send_callbacks = False
        stack.avanser.test_calls = False
        submit_view(stack, "numbers_new", TRANSFER, user=ADMIN)
        wait_for(lambda: "Requested" in progress(stack)["text"])
        stack.stop_app()
        stack.extra_settings["SWITCHBOARD_CALLBACK_WAIT"] = 0.3  # the restarted app polls soon
        stack.start_app()
        wait_for(lambda: "is live" in progress(stack)["text"], timeout=10)
        assert len(stack.avanser.requests_to("POST", "/v1/requests")) == 1


# -- managing numbers --------------------------------------------------------------------------------


def provisioned(stack: Stack) -> str:
    submit_view(stack, "numbers_new", TRANSFER, user=ADMIN)
    wait_for(lambda: "is live" in progress(stack)["text"], timeout=10)
    return next(iter(stack.avanser.services))


def test_list_show_route_and_requests(numbers: Stack) -> None:
    number = provisioned(numbers)
    national = "0" + number[3:6] + " " + number[6:9] + " " + number[9:]
    _, url = slash(numbers, "list")
    listed = reply(numbers, url)
    assert f"*{national}* — Spring sale radio ad · transfer → Sydney office (02) 9008 1500 · alerts in <#C0SALES>" in (
        text_of(listed)
    )
    _, url = slash(numbers, f"show {national}")
    assert "*Recording:* on" in text_of(reply(numbers, url))
    refused, _ = slash(numbers, f"route {national} <#C0NEW|new-channel>")  # Riley didn't ask for it
    assert (
        refused["text"]
        == f"Only Switchboard admins or whoever asked for {national} can choose where its calls are posted."
    )
    answer, url = slash(numbers, f"route {national} <#C0NEW|new-channel>", user=ADMIN)
    assert answer["text"] == f"Checking {national} and <#C0NEW>…"
    assert reply(numbers, url)["text"] == (
        f"Calls and texts to {national} will be posted in <#C0NEW>.\nIts route: missed calls only · callers shown · "
        "unclaimed calls escalate to whoever asked for it after 15 min."
    )
    numbers.avanser.place_call(number, "+61410203045")
    wait_for(lambda: numbers.slack.channel_messages("C0NEW"))
    _, url = slash(numbers, "requests")
    assert "✅ *create*" in text_of(reply(numbers, url))
    answer, _ = slash(numbers, "show 02 1234 0000")
    assert answer["text"].startswith("Looking up")


def test_edit_sends_only_what_changed(numbers: Stack) -> None:
    number = provisioned(numbers)
    slash(numbers, f"edit {number}", user=ADMIN)
    view = wait_for(lambda: numbers.slack.calls_to("views.update"))[-1].args["view"]
    prefilled = {
        b["block_id"]: b["element"].get("initial_value")
        for b in view["blocks"]
        if b["element"]["type"] == "plain_text_input"
    }
    assert prefilled["name"] == "Spring sale radio ad" and prefilled["answer_point_name"] == "Sydney office"
    meta = json.loads(view["private_metadata"])
    changed = {**TRANSFER, "answer_point_name": "Sidney Office New"}
    changed.pop("number")
    changed.pop("channel")
    submit_view(numbers, "numbers_edit", changed, user=ADMIN, metadata=meta)
    sent = wait_for(lambda: numbers.avanser.requests_to("POST", "/v1/services/"))[0]
    assert sent.path == f"/v1/services/{number[1:]}"
    assert sent.json == {"service": {"answer_point_name": "Sidney Office New"}}
    wait_for(lambda: numbers.avanser.services[number]["service"]["answer_point_name"] == "Sidney Office New")
    unchanged = submit_view(
        numbers, "numbers_edit", {**changed, "answer_point_name": "Sydney office"}, user=ADMIN, metadata=meta
    )
    assert unchanged.json() == {"response_action": "errors", "errors": {"name": "Nothing was changed."}}


def test_release_asks_then_decommissions(numbers: Stack) -> None:
    number = provisioned(numbers)
    slash(numbers, f"release {number}", user=ADMIN)
    view = wait_for(
        lambda: [
            c for c in numbers.slack.calls_to("views.update") if c.args["view"]["callback_id"] == "numbers_release"
        ]
    )[0].args["view"]
    assert "Its calls are posted in <#C0SALES>" in view["blocks"][0]["text"]["text"]
    submit_view(numbers, view, {}, user=ADMIN)
    wait_for(lambda: numbers.avanser.requests_to("DELETE", "/v1/services/"))
    wait_for(lambda: number not in numbers.avanser.services, timeout=10)
    wait_for(lambda: any("is released" in m["text"] for m in numbers.slack.channel_messages("C0SALES")), timeout=10)

    async def routes() -> list[Any]:
        assert numbers.services is not None
        return numbers.services.store.execute("SELECT number FROM routes").fetchall()

    assert numbers.on_app(routes()) == []


def test_templates_and_accounts(numbers: Stack) -> None:
    _, url = slash(numbers, "templates")
    listed = reply(numbers, url)
    assert "*html_email_template* · email · AU" in text_of(listed)
    preview = next(b["accessory"] for b in listed["blocks"] if b.get("accessory"))
    shown = click(numbers, preview["action_id"], preview["value"], REP)
    preview = text_of(reply(numbers, shown["response_url"]))  # seed 001: a Generic Success, no template text
    assert "*html_email_template* (email, AU) exists — AVANSER answered “Success”" in preview
    refused, _ = slash(numbers, "accounts")
    assert refused["text"] == "Only Switchboard admins can see or switch the AVANSER account."
    _, url = slash(numbers, "accounts", user=ADMIN)
    overview = text_of(reply(numbers, url))
    for part in ("AVANSER account: Test Account", "*Details*", "*Packages*", "*Number rates*", "*Call rates*"):
        assert part in overview
    assert "Test MMT, rate code 61: setup $0.00, rental $0.00" in overview  # the seed's rate, its own shape
    assert "*Transcription rates*" in overview and "*Features*" in overview and "Time Based Routing" in overview
    assert "Switch to Agency Client B" in overview
    _, url = slash(numbers, "accounts 7001", user=ADMIN)
    assert "AVANSER account: Agency Client B" in text_of(reply(numbers, url))


def test_every_step_is_audited(numbers: Stack) -> None:
    provisioned(numbers)

    async def audit() -> list[Any]:
        assert numbers.services is not None
        return numbers.services.store.execute("SELECT actor, action, provider_ref FROM audit ORDER BY id").fetchall()

    rows = numbers.on_app(audit())
    actions = [r[1] for r in rows]
    assert actions[:2] == ["number.create.request", "number.create.submitted"]
    assert "route.set" in actions and "number.create.configured" in actions and "number.create.live" in actions
    assert all(r[2] for r in rows if r[1] in ("number.create.submitted", "number.create.completed"))


def test_template_form_saves_and_delete_button_deletes(numbers: Stack) -> None:
    _, url = slash(numbers, "templates", user=ADMIN)
    listed = reply(numbers, url)
    new_button = listed["blocks"][-1]["elements"][0]
    click(numbers, new_button["action_id"], new_button["value"], ADMIN)
    view = wait_for(lambda: numbers.slack.calls_to("views.open"))[0].args["view"]
    assert view["callback_id"] == "numbers_template" and "`__ani__` caller" in json.dumps(view)
    values = {"name": "missed_sms", "type": "sms", "country": "AU", "content": "Missed __ani__ on __adsource__"}
    refused = submit_view(numbers, "numbers_template", values, user=REP)
    assert refused.json()["errors"] == {"name": "Only Switchboard admins can change templates."}
    submit_view(numbers, "numbers_template", values, user=ADMIN)
    wait_for(lambda: ("missed_sms", "AU", "sms") in numbers.avanser.templates)
    assert numbers.avanser.templates[("missed_sms", "AU", "sms")] == "Missed __ani__ on __adsource__"
    assert (
        wait_for(lambda: numbers.slack.channel_messages("D0ADMIN"))[0]["text"] == "Saved the sms template “missed_sms”."
    )
    delete = next(
        b["elements"][0]
        for b in listed["blocks"]
        if b["type"] == "actions" and b["elements"][0]["text"]["text"] == "Delete"
    )
    done = click(numbers, delete["action_id"], delete["value"], ADMIN)
    assert reply(numbers, done["response_url"])["text"] == "Deleted the template “html_email_template”."
    assert ("html_email_template", "AU", "email") not in numbers.avanser.templates


def test_a_callback_that_beats_the_answer_still_settles_the_request(numbers: Stack) -> None:
    # AVANSER takes the request, calls back at once, and only then answers our POST (here with a 504).
    numbers.avanser.inject("after_commit", status=504, delay=1.5, path="/v1/requests", method="POST")
    submit_view(numbers, "numbers_new", TRANSFER, user=ADMIN)
    wait_for(lambda: "is live" in progress(numbers)["text"], timeout=10)
    time.sleep(2)  # the late answer must not turn it back into "requested"
    assert "is live" in progress(numbers)["text"]
    assert len(numbers.avanser.requests_to("POST", "/v1/requests")) == 1


def test_the_webhook_token_never_reaches_the_audit_table(numbers: Stack) -> None:
    provisioned(numbers)

    async def audit() -> str:
        assert numbers.services is not None
        return json.dumps(numbers.services.store.execute("SELECT * FROM audit").fetchall())

    assert numbers.webhook_token not in numbers.on_app(audit())


def test_edit_of_an_unknown_number_says_so_in_the_modal(numbers: Stack) -> None:
    numbers.avanser.latency = 0.5  # the form opens at once anyway: a trigger_id lasts only 3 s
    slash(numbers, "edit 02 1234 0000", user=ADMIN)
    opened = wait_for(lambda: numbers.slack.calls_to("views.open"))[0].args["view"]
    assert opened["blocks"][0]["text"]["text"] == "⏳ Asking AVANSER…"
    shown = wait_for(lambda: numbers.slack.calls_to("views.update"))[0].args["view"]
    assert shown["blocks"][0]["text"]["text"] == "(02) 1234 0000 isn't one of your active tracking numbers."


def test_a_rep_is_told_on_the_form_when_no_one_can_approve(tmp_path) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, SWITCHBOARD_APPROVALS_CHANNEL=None) as stack:
        answer = submit_view(stack, "numbers_new", TRANSFER, user=REP)
        assert answer.json() == {
            "response_action": "errors",
            "errors": {
                "name": "Only Switchboard admins can do that here, and no approvals channel is set up. "
                "Ask an admin to set SWITCHBOARD_APPROVALS_CHANNEL."
            },
        }
        assert stack.avanser.requests_to("POST", "/v1/requests") == []


def test_a_geo_rule_is_refused_on_the_form(numbers: Stack) -> None:
    answer = submit_view(numbers, "numbers_new", {**TRANSFER, "number": "geo"}, user=ADMIN)
    assert answer.json()["response_action"] == "errors"
    assert list(answer.json()["errors"]) == ["number"]
    assert numbers.avanser.requests_to("POST", "/v1/requests") == []


def test_an_unclear_release_is_never_failed_nor_sent_twice(tmp_path) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, SWITCHBOARD_CALLBACK_WAIT="1") as stack:
        stack.avanser.callback_delay = 0.1
        number = provisioned(stack)
        # AVANSER takes the release but its answer is lost, and its request list can't be read just then.
        stack.avanser.inject("after_commit", status=504, delay=0, method="DELETE", path="/v1/services/", count=1)
        stack.avanser.inject("status", status=500, delay=0, method="GET", path="/v1/requests", count=3)
        slash(stack, f"release {number}", user=ADMIN)
        view = wait_for(lambda: [c for c in stack.slack.calls_to("views.update") if c.args["view"].get("callback_id")])
        submit_view(stack, view[0].args["view"], {}, user=ADMIN)
        unclear = wait_for(
            lambda: [m for m in stack.slack.channel_messages("C0SALES") if "no clear answer" in m["text"]]
        )
        assert "never sends it twice" in unclear[0]["text"]
        wait_for(lambda: number not in stack.avanser.services, timeout=10)
        wait_for(lambda: any("is released" in m["text"] for m in stack.slack.channel_messages("C0SALES")), timeout=10)
        assert len(stack.avanser.requests_to("DELETE", "/v1/services/")) == 1


def test_route_only_our_numbers_only_where_the_bot_can_post(numbers: Stack) -> None:
    number = provisioned(numbers)
    numbers.slack.add_channel("G0SECRET", private=True, bot_member=False)
    _, url = slash(numbers, f"route {number} <#G0SECRET|secret>", user=ADMIN)
    assert reply(numbers, url)["text"] == "I can't see <#G0SECRET>. Invite @Switchboard to it first, then try again."
    _, url = slash(numbers, "route 02 9999 0000 <#C0NEW|new>", user=ADMIN)  # a number that isn't ours
    assert reply(numbers, url)["text"] == "(02) 9999 0000 isn't one of your active tracking numbers."
    routes = dict(numbers.on_app(_routes(numbers)))
    assert routes == {number: "C0SALES"}


async def _routes(stack: Stack) -> list[tuple[str, str]]:
    assert stack.services is not None
    return stack.services.store.execute("SELECT number, channel FROM routes").fetchall()


def test_pending_confirmation_counts_as_done(tmp_path) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, SWITCHBOARD_CALLBACK_WAIT=0.3) as stack:
        stack.avanser.callback_delay = 0.1
        stack.avanser.send_callbacks = False
        stack.avanser.test_calls = False
        stack.avanser.final_status = "pending_confirmation"  # "Request is completed, waiting to send confirmation"
        submit_view(stack, "numbers_new", TRANSFER, user=ADMIN)
        wait_for(lambda: "is configured" in progress(stack)["text"], timeout=10)


def test_the_form_follows_the_service_type_keeping_what_was_typed(numbers: Stack) -> None:
    slash(numbers, "new", user=ADMIN)
    view = form_shown(numbers)
    inputs = [b["block_id"] for b in view["blocks"] if b["type"] == "input"]
    assert {"answer_point", "call_whisper", "record_call", "voicemail"} <= set(inputs)  # a transfer's fields
    email_templates = next(b for b in view["blocks"] if b["block_id"] == "email_template")["element"]
    assert [o["value"] for o in email_templates["options"]] == ["html_email_template"]  # AVANSER's, by type
    sms_templates = next(b for b in view["blocks"] if b["block_id"] == "sms_template")["element"]
    assert [o["value"] for o in sms_templates["options"]] == ["text_sms_template"]
    typed = {"name": "After hours", "type": "voicemail", "email_to": "sales@example.com"}
    view["state"] = payloads.view_state(view, typed)
    view["id"] = numbers.slack.calls_to("views.open")[0].response["view"]["id"]  # Slack sends the view with its id
    chosen = payloads.block_actions_in_view("numbers_form_type", "", user=ADMIN, view=view)
    chosen["actions"] = [
        {"action_id": "numbers_form_type", "type": "static_select", "selected_option": {"value": "voicemail"}}
    ]
    numbers.slack.interact(numbers.url, chosen)
    rebuilt = wait_for(
        lambda: (
            numbers.slack.calls_to("views.update")[-1].args["view"]["blocks"] != view["blocks"]
            and numbers.slack.calls_to("views.update")[-1].args["view"]
        )
    )
    fields = {b["block_id"]: b for b in rebuilt["blocks"] if b["type"] == "input"}
    assert "answer_point" not in fields and "call_whisper" not in fields and "record_call" not in fields
    assert fields["voicemail"]["label"]["text"] == "Voicemail greeting audio URL"
    assert fields["name"]["element"]["initial_value"] == "After hours"
    assert fields["email_to"]["element"]["initial_value"] == "sales@example.com"
    assert [o["value"] for o in fields["email_template"]["element"]["options"]] == ["html_email_template"]


def test_requests_show_callback_delivery_and_admins_see_the_bodies(numbers: Stack) -> None:
    provisioned(numbers)
    record = numbers.avanser.requests[-1]
    record["callback"] = {"last_update": "2026-11-22T10:00:00+10:00", "status": "failed", "http_reply": 503}
    _, url = slash(numbers, "requests")
    listed = reply(numbers, url)
    assert "⚠️ callback failed (HTTP 503)" in text_of(listed)
    assert "couldn't reach Switchboard's callback URL for 1 of these" in text_of(listed)
    assert "accessory" not in json.dumps(listed["blocks"][0])  # Details are for admins
    _, url = slash(numbers, "requests", user=ADMIN)
    button = reply(numbers, url)["blocks"][0]["accessory"]
    assert button["text"]["text"] == "Details"
    shown = click(numbers, button["action_id"], button["value"], ADMIN)
    details = text_of(reply(numbers, shown["response_url"]))
    assert "Request (as AVANSER received it)" in details and "Acknowledgment" in details and "Callback" in details
    assert "Spring sale radio ad" in details
    assert numbers.webhook_token not in details and "token=••••" in details
