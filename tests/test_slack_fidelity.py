"""The Slack sandbox refuses what real Slack refuses, and Switchboard's modals open in time.

Each rule of the sandbox has a test here that fails if the rule is removed, asserting the answer Slack
gives (its method reference, quoted in bot/sandbox/slack.py). The last tests run every flow that opens
a modal while the providers take 5 s to answer: each must exchange its trigger_id within Slack's 3 s.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.sandbox.server import LoopbackServer
from bot.sandbox.slack import (
    BOT_USER_ID,
    SANDBOX_APP_TOKEN,
    SANDBOX_BOT_TOKEN,
    SlackSandbox,
    manifest_scopes,
)
from bot.sandbox.stack import ADMIN, Stack
from tests.helpers import click, submit_view, wait_for
from tests.recording_attacks import trust_loopback
from tests.test_numbers import TRANSFER, progress

MODAL = {"type": "modal", "title": {"type": "plain_text", "text": "Switchboard"}, "blocks": []}
ROOT = Path(__file__).resolve().parent.parent


class Slack:
    """A sandbox on loopback, called over HTTP the way the app's client calls it."""

    def __init__(self, sandbox: SlackSandbox, server: LoopbackServer) -> None:
        self.sandbox, self.server = sandbox, server
        self.http = httpx.Client(timeout=10)

    def api(self, method: str, token: str = SANDBOX_BOT_TOKEN, **args: Any) -> dict[str, Any]:
        answer = self.http.post(
            f"{self.server.url}/api/{method}", json=args, headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200
        result: dict[str, Any] = answer.json()
        return result

    def post(self, channel: str, text: str, **args: Any) -> dict[str, Any]:
        return self.api("chat.postMessage", channel=channel, text=text, **args)


@pytest.fixture
def make_slack() -> Iterator[Callable[..., Slack]]:
    running: list[Slack] = []

    def make(**options: Any) -> Slack:
        sandbox = SlackSandbox(**options)
        server = LoopbackServer(sandbox.asgi(), name="slack").start()
        sandbox.base_url = server.url
        running.append(Slack(sandbox, server))
        return running[-1]

    yield make
    for slack in running:
        slack.http.close()
        slack.server.stop()


@pytest.fixture
def slack(make_slack: Callable[..., Slack]) -> Slack:
    return make_slack()


# -- scopes ------------------------------------------------------------------------------------------

# What each method's page in Slack's reference names as the bot token's scope.
NEEDED = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "conversations.history": "channels:history",
    "conversations.replies": "channels:history",
    "conversations.info": "channels:read",
    "conversations.open": "im:write",
    "users.info": "users:read",
    "users.profile.get": "users.profile:read",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
}


@pytest.mark.parametrize(("method", "needed"), NEEDED.items())
def test_a_method_without_its_scope_answers_missing_scope(
    make_slack: Callable[..., Slack], method: str, needed: str
) -> None:
    slack = make_slack(scopes={"commands", "users:read.email"})
    answer = slack.api(method, channel="C0SALES", text="hi", user="U0REP", users="U0REP", ts="1.0")
    assert answer == {
        "ok": False,
        "error": "missing_scope",
        "needed": needed,
        "provided": "commands,users:read.email",
    }
    granted = make_slack(scopes={needed, "chat:write"})
    assert granted.api(method, channel="C0SALES", text="hi", user="U0REP", users="U0REP").get("error") not in (
        "missing_scope",
        "unknown_method",
    )


@pytest.mark.parametrize(
    ("channel", "needed"), [("C0SALES", "channels:history"), ("G0SECRET", "groups:history"), ("D0REP", "im:history")]
)
def test_history_needs_the_scope_of_the_conversation_type(
    make_slack: Callable[..., Slack], channel: str, needed: str
) -> None:
    slack = make_slack(scopes={"chat:write", "channels:history", "groups:history", "im:history"} - {needed})
    answer = slack.api("conversations.history", channel=channel)
    assert answer["error"] == "missing_scope" and answer["needed"] == needed


@pytest.mark.parametrize("method", ["auth.test", "views.open", "views.update", "views.publish", "views.push"])
def test_methods_that_need_no_scope(make_slack: Callable[..., Slack], method: str) -> None:
    answer = make_slack(scopes=set()).api(method, view=MODAL, user_id="U0REP")
    assert answer.get("error") != "missing_scope"


def test_app_level_token_opens_socket_mode_and_nothing_else(slack: Slack) -> None:
    assert slack.api("apps.connections.open", token=SANDBOX_APP_TOKEN)["ok"] is True
    assert slack.api("apps.connections.open")["error"] == "not_allowed_token_type"
    assert slack.api("auth.test", token=SANDBOX_APP_TOKEN)["error"] == "not_allowed_token_type"
    assert slack.api("auth.test", token="xoxb-someone-else")["error"] == "invalid_auth"


def test_the_stack_installs_the_repo_manifest() -> None:
    scopes = manifest_scopes(ROOT / "manifest.yml")
    # files:write: voicemails are uploaded (files.getUploadURLExternal); im:history: a lost reply in a
    # DM's thread is looked for with conversations.replies.
    assert {"files:write", "im:history", "chat:write", "channels:history", "users.profile:read"} <= scopes
    stack = Stack()
    assert stack.slack.scopes == scopes
    assert Stack(slack_scopes={"chat:write"}).slack.scopes == {"chat:write"}


def test_without_files_write_a_voicemail_upload_is_refused(tmp_path: Path) -> None:
    scopes = manifest_scopes() - {"files:write"}
    with Stack(tmp_path, slack_scopes=scopes, outbox_channel_interval=0) as stack:
        assert stack.services is not None
        trust_loopback(stack)

        async def upload() -> int:
            assert stack.services is not None
            outbox = stack.services.outbox
            parent = outbox.post("C0SALES", "Voicemail from 0410 203 045")
            url = stack.hook_url("/healthz")
            return outbox.attach_file(parent, url, "voicemail.mp3", "Voicemail", hosts={"127.0.0.1"})

        row = stack.on_app(upload())
        assert stack.drain(10)

        async def error() -> str:
            assert stack.services is not None
            return str(stack.services.store.execute("SELECT error FROM outbox WHERE id = ?", (row,)).fetchone()[0])

        assert stack.on_app(error()).startswith("missing_scope (needed files:write;")
        assert stack.slack.uploads == {}


# -- channels ----------------------------------------------------------------------------------------


def test_a_public_channel_the_bot_is_not_in_takes_posts_only_with_chat_write_public(
    make_slack: Callable[..., Slack],
) -> None:
    without = make_slack(scopes={"chat:write"})
    without.sandbox.add_channel("C0OUTSIDE", bot_member=False)
    assert without.post("C0OUTSIDE", "hi") == {"ok": False, "error": "not_in_channel"}
    assert without.post("C0SALES", "hi")["ok"] is True  # one the bot was invited to
    assert without.post("U0REP", "hi")["channel"] == "D0REP"  # its own DM
    public = make_slack(scopes={"chat:write", "chat:write.public"})
    public.sandbox.add_channel("C0OUTSIDE", bot_member=False)
    public.sandbox.add_channel("G0SECRET", private=True, bot_member=False)
    assert public.post("C0OUTSIDE", "hi")["ok"] is True
    assert public.post("G0SECRET", "hi") == {"ok": False, "error": "channel_not_found"}


def test_history_and_threads_only_where_the_bot_is(slack: Slack) -> None:
    slack.sandbox.add_channel("C0OUTSIDE", bot_member=False)
    slack.sandbox.add_channel("G0SECRET", private=True, bot_member=False)
    ts = slack.post("C0OUTSIDE", "posted with chat:write.public")["ts"]
    assert slack.api("conversations.history", channel="C0OUTSIDE")["error"] == "not_in_channel"
    assert slack.api("conversations.replies", channel="C0OUTSIDE", ts=ts)["error"] == "not_in_channel"
    assert slack.api("conversations.history", channel="G0SECRET")["error"] == "channel_not_found"
    # /numbers route checks a channel with conversations.info: the manifest asks for channels:read for it.
    slack.sandbox.scopes -= {"channels:read"}
    assert slack.api("conversations.info", channel="C0OUTSIDE")["needed"] == "channels:read"
    slack.sandbox.scopes |= {"channels:read", "groups:read"}
    assert slack.api("conversations.info", channel="C0OUTSIDE")["channel"]["is_member"] is False
    assert slack.api("conversations.info", channel="G0SECRET")["error"] == "channel_not_found"


# -- threads -----------------------------------------------------------------------------------------


def test_history_shows_no_thread_replies_and_replies_shows_the_thread(slack: Slack) -> None:
    meta = {"event_type": "switchboard_outbox", "event_payload": {"row": 7}}
    root = slack.post("C0SALES", "Number requested")["ts"]
    reply = slack.post("C0SALES", "Missed call", thread_ts=root, metadata=meta)["ts"]
    broadcast = slack.post("C0SALES", "Also in the channel", thread_ts=root, reply_broadcast=True)["ts"]
    later = slack.post("C0SALES", "Another alert")["ts"]
    history = slack.api("conversations.history", channel="C0SALES", include_all_metadata="true")
    assert [m["ts"] for m in history["messages"]] == [later, broadcast, root]
    thread = slack.api("conversations.replies", channel="C0SALES", ts=root)
    assert [m["ts"] for m in thread["messages"]] == [root, reply, broadcast]
    assert "metadata" not in thread["messages"][1]
    with_meta = slack.api("conversations.replies", channel="C0SALES", ts=root, include_all_metadata="true")
    assert with_meta["messages"][1]["metadata"] == meta
    assert slack.api("conversations.replies", channel="C0SALES", ts="1.000001")["error"] == "thread_not_found"


# -- chat.update -------------------------------------------------------------------------------------


def test_chat_update_edits_only_the_bots_own_messages(slack: Slack) -> None:
    theirs = slack.sandbox.post_as_user("C0SALES", "U0REP", "who has the Acme number?")
    assert slack.api("chat.update", channel="C0SALES", ts=theirs, text="edited") == {
        "ok": False,
        "error": "cant_update_message",
    }
    assert slack.sandbox.channel_messages("C0SALES")[0]["text"] == "who has the Acme number?"
    ours = slack.post("C0SALES", "Number requested")["ts"]
    assert slack.api("chat.update", channel="C0SALES", ts=ours, text="Number is live")["ok"] is True
    assert slack.sandbox.channel_messages("C0SALES")[1]["user"] == BOT_USER_ID


# -- trigger_ids -------------------------------------------------------------------------------------


def test_a_trigger_id_opens_one_view_within_three_seconds(slack: Slack) -> None:
    assert slack.api("views.open", trigger_id="12345.98765.abcd2358fdea", view=MODAL)["error"] == "invalid_trigger_id"
    assert slack.api("views.open", view=MODAL)["error"] == "invalid_trigger_id"
    fresh = slack.sandbox.issue_trigger()
    assert slack.api("views.open", trigger_id=fresh, view=MODAL)["ok"] is True
    assert slack.api("views.open", trigger_id=fresh, view=MODAL)["error"] == "exchanged_trigger_id"
    assert slack.api("views.push", trigger_id=fresh, view=MODAL)["error"] == "exchanged_trigger_id"
    stale = slack.sandbox.issue_trigger()
    slack.sandbox.advance(2.9)
    late = slack.sandbox.issue_trigger()
    slack.sandbox.advance(0.2)
    assert slack.api("views.open", trigger_id=stale, view=MODAL)["error"] == "expired_trigger_id"
    assert slack.api("views.open", trigger_id=late, view=MODAL)["ok"] is True


def test_a_refused_view_does_not_use_up_the_trigger(slack: Slack) -> None:
    trigger = slack.sandbox.issue_trigger()
    bad = dict(MODAL, title={"type": "plain_text", "text": "x" * 25})
    assert slack.api("views.open", trigger_id=trigger, view=bad)["error"] == "invalid_arguments"
    assert slack.api("views.open", trigger_id=trigger, view=MODAL)["ok"] is True


def test_the_trigger_expiry_can_be_set_short(make_slack: Callable[..., Slack]) -> None:
    slack = make_slack(trigger_ttl=0.0)
    slack.sandbox.advance(0.001)
    trigger = slack.sandbox.issue_trigger()
    slack.sandbox.advance(0.001)
    assert slack.api("views.open", trigger_id=trigger, view=MODAL)["error"] == "expired_trigger_id"


def test_commands_and_interactions_carry_fresh_triggers(stack: Stack) -> None:
    stack.slack.command(stack.url, "/vn", "new")
    opened = wait_for(lambda: stack.slack.calls_to("views.open"))[0]
    assert stack.slack.triggers[opened.args["trigger_id"]].exchanged
    click(stack, "vn_extend_custom", "1", "U0REP")  # the payload's "1.2.click" is not Slack's: replaced
    extend = wait_for(lambda: stack.slack.calls_to("views.open")[1:])[0]
    assert extend.args["trigger_id"] != "1.2.click" and extend.response["ok"] is True


def test_socket_mode_commands_carry_fresh_triggers(tmp_path: Path) -> None:
    with Stack(tmp_path, SLACK_APP_TOKEN=SANDBOX_APP_TOKEN) as stack:
        wait_for(lambda: stack.slack.socket_connections == 1)
        stack.slack.socket_command("/vn", "new")
        opened = wait_for(lambda: stack.slack.calls_to("views.open"))[0]
        assert stack.slack.triggers[opened.args["trigger_id"]].exchanged


# -- response_url ------------------------------------------------------------------------------------


def test_a_response_url_takes_five_posts(slack: Slack) -> None:
    url = slack.sandbox.new_response_url()
    for n in range(5):
        assert slack.http.post(url, json={"text": f"update {n}"}).status_code == 200
    sixth = slack.http.post(url, json={"text": "one too many"})
    assert (sixth.status_code, sixth.text) == (404, "used_url")
    assert len(slack.sandbox.responses_to(url)) == 5


def test_a_response_url_expires_after_thirty_minutes(slack: Slack) -> None:
    url = slack.sandbox.new_response_url()
    slack.sandbox.advance(29 * 60)
    assert slack.http.post(url, json={"text": "still in time"}).status_code == 200
    slack.sandbox.advance(61)
    late = slack.http.post(url, json={"text": "too late"})
    assert (late.status_code, late.text) == (404, "expired_url")
    made_up = slack.http.post(f"{slack.server.url}/response/not-one-of-slacks", json={"text": "x"})
    assert (made_up.status_code, made_up.text) == (404, "no_service")


def test_the_response_url_expiry_can_be_set_short(make_slack: Callable[..., Slack]) -> None:
    slack = make_slack(response_url_ttl=0.0)
    url = slack.sandbox.new_response_url()
    slack.sandbox.advance(0.001)
    assert slack.http.post(url, json={"text": "late"}).text == "expired_url"


# -- every modal opens in time while the providers are slow --------------------------------------------

SLOW = 5.0  # seconds each AVANSER / Exotel answer takes: more than a trigger_id lives


def numbers_new(stack: Stack) -> None:
    stack.slack.command(stack.url, "/numbers", "new", user_id=ADMIN)


def numbers_edit(stack: Stack) -> None:
    number = provisioned_then_slow(stack)
    stack.slack.command(stack.url, "/numbers", f"edit {number}", user_id=ADMIN)


def numbers_release(stack: Stack) -> None:
    number = provisioned_then_slow(stack)
    stack.slack.command(stack.url, "/numbers", f"release {number}", user_id=ADMIN)


def search_request_this_number(stack: Stack) -> None:
    _, url = stack.slack.command(stack.url, "/numbers", "search mobile")
    listed = wait_for(lambda: stack.slack.responses_to(url), timeout=SLOW + 10)[0]
    button = next(b["accessory"] for b in listed["blocks"] if b.get("accessory", {}).get("action_id") == "numbers_pick")
    click(stack, button["action_id"], button["value"], "U0REP")


def templates_new(stack: Stack) -> None:
    _, url = stack.slack.command(stack.url, "/numbers", "templates", user_id=ADMIN)
    listed = wait_for(lambda: stack.slack.responses_to(url), timeout=SLOW + 10)[0]
    button = listed["blocks"][-1]["elements"][0]
    click(stack, button["action_id"], button["value"], ADMIN)


def vn_new(stack: Stack) -> None:
    stack.slack.command(stack.url, "/vn", "new", channel_id="C0FIELD")


def vn_parties(stack: Stack) -> None:
    allocated_then_slow(stack, "2h")
    stack.slack.command(stack.url, "/vn", "parties 1", channel_id="C0FIELD")


def reminder_extend(stack: Stack) -> None:
    allocated_then_slow(stack, "3s")
    reminder = wait_for(lambda: stack.slack.channel_messages("D0REP"), timeout=10)[0]
    button = next(b for b in reminder["blocks"][1]["elements"] if b["text"]["text"] == "Extend…")
    click(stack, button["action_id"], button["value"], "U0REP", reminder, channel="D0REP")


def provisioned_then_slow(stack: Stack) -> str:
    submit_view(stack, "numbers_new", TRANSFER, user=ADMIN)
    wait_for(lambda: "is live" in progress(stack)["text"], timeout=15)
    slow_providers(stack)
    return next(iter(stack.avanser.services))


def allocated_then_slow(stack: Stack, duration: str) -> None:
    _, url = stack.slack.command(stack.url, "/vn", f"+919176226528 to +918136966620 for {duration}")
    wait_for(lambda: stack.slack.responses_to(url), timeout=10)
    slow_providers(stack)


def slow_providers(stack: Stack) -> None:
    stack.avanser.latency = SLOW
    stack.exotel.latency = SLOW


@pytest.mark.slow
@pytest.mark.parametrize(
    "open_modal",
    [
        numbers_new,
        numbers_edit,
        numbers_release,
        search_request_this_number,
        templates_new,
        vn_new,
        vn_parties,
        reminder_extend,
    ],
    ids=lambda f: f.__name__,
)
def test_every_modal_opens_in_time_while_the_providers_are_slow(
    tmp_path: Path, open_modal: Callable[[Stack], None]
) -> None:
    with Stack(tmp_path, outbox_channel_interval=0, SWITCHBOARD_VN_REMINDER="1s") as stack:
        stack.avanser.callback_delay = 0.1
        if open_modal in (numbers_new, vn_new, search_request_this_number, templates_new):
            slow_providers(stack)
        open_modal(stack)
        opened = wait_for(lambda: [c for c in stack.slack.calls if c.method == "views.open"], timeout=SLOW + 10)[0]
        # The sandbox answers expired_trigger_id to a views.open more than 3 s after the trigger.
        assert opened.response.get("ok") is True, opened.response
        view = opened.args["view"]
        view = json.loads(view) if isinstance(view, str) else view
        assert view["type"] == "modal"
        if open_modal in (numbers_edit, numbers_release):  # the modal is filled when AVANSER answers
            updated = wait_for(lambda: stack.slack.calls_to("views.update"), timeout=SLOW + 10)[0]
            assert updated.args["view_id"] == opened.response["view"]["id"]
