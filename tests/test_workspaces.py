"""Many workspaces: installed through Slack's OAuth flow, each with its own token, settings, rows and pace.

Two workspaces are installed into one Switchboard the way a browser does it (the app's install page, the
Slack sandbox's authorize page, the redirect with its code and state). What each workspace's people and
webhooks cause is checked on what the Slack sandbox received: which token made each call.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bot.domain.routing import remember_thread, set_route
from bot.domain.workspace import operate
from bot.oauth import BOT_SCOPES
from bot.sandbox import payloads
from bot.sandbox.stack import Stack
from bot.telco.avanser import AvanserClient
from bot.workspaces import team_scope
from commands.workspaces import settings_form
from tests.helpers import TRACKING, call, on_app, send, wait_for

ONE, TWO = "T0ONE", "T0TWO"
OTHER = "+61290081597"  # a tracking number of workspace TWO
MANIFEST = yaml.safe_load((Path(__file__).resolve().parents[1] / "manifest.yml").read_text())


@pytest.fixture
def two(tmp_path: Path, backend: str) -> Iterator[Stack]:
    """Switchboard in many-workspaces mode with ONE (installed by U0REP) and TWO (installed by U0ADMIN)."""
    with Stack(
        tmp_path, outbox_channel_interval=0.0, many_workspaces=True, SWITCHBOARD_DB=backend, SWITCHBOARD_ADMINS=""
    ) as stack:
        assert stack.install(ONE, installer="U0REP", name="One").status_code == 200
        assert stack.install(TWO, installer="U0ADMIN", name="Two").status_code == 200
        enable(stack, ONE, 6999)
        enable(stack, TWO, 7001)
        yield stack


def enable(stack: Stack, team: str, account: int | None = None) -> None:
    """What the operator does once a workspace has installed Switchboard (`switchboard workspace T… --enable`)."""

    def act(services: Any) -> None:
        operate(services.store, team, enable=True, avanser_accounts=[account] if account else None)
        services.installations.forget(team)  # a running Switchboard would see it within a minute
        services.workspaces.forget(team)

    on_app(stack, act)


def final_answer(stack: Stack, url: str) -> str:
    """The last thing a command's response_url was told (after "Asking AVANSER…")."""
    wait_for(lambda: stack.drain(10) and stack.slack.responses_to(url))
    return str(stack.slack.responses_to(url)[-1]["text"])


def tokens(stack: Stack) -> dict[str, str]:
    return {w.team_id: w.bot_token for w in stack.slack.workspaces.values()}


def calls_by(stack: Stack, method: str, team: str) -> list[Any]:
    return [c for c in stack.slack.calls_to(method) if c.team == team]


def route_in(stack: Stack, team: str, number: str, channel: str) -> None:
    def act(services: Any) -> None:
        with team_scope(team):
            set_route(services.store, number, channel, by="U0REP")

    on_app(stack, act)


def command(stack: Stack, team: str, text: str, user: str = "U0REP", name: str = "/numbers") -> httpx.Response:
    response, _ = stack.slack.command(stack.url, name, text, user_id=user, team_id=team)
    assert response.status_code == 200
    return response


# -- the install flow ---------------------------------------------------------------------------------


@pytest.mark.both_backends
def test_install_saves_each_workspace_with_its_own_token(two: Stack) -> None:
    rows = on_app(
        two,
        lambda s: s.store.execute(
            "SELECT team_id, team_name, bot_token, installer FROM installations ORDER BY team_id"
        ).fetchall(),
    )
    assert [(r[0], r[1], r[3]) for r in rows] == [(ONE, "One", "U0REP"), (TWO, "Two", "U0ADMIN")]
    assert {r[0]: r[2] for r in rows} == tokens(two)
    # oauth.v2.access was asked with the app's credentials, on SLACK_API_URL
    assert [c.status for c in two.slack.calls_to("oauth.v2.access")] == [200, 200]
    assert all(c.response["ok"] for c in two.slack.calls_to("oauth.v2.access"))


def test_a_redirect_with_a_wrong_state_or_a_used_code_installs_nothing(two: Stack) -> None:
    code = two.slack.issue_code("T0EVIL")
    forged = httpx.get(f"{two.url}/slack/oauth_redirect", params={"code": code, "state": "made-up"})
    assert forged.status_code == 400
    assert "T0EVIL" not in on_app(two, lambda s: s.installations.installed())
    assert two.slack.calls_to("oauth.v2.access")[-1].args.get("code") != code  # never even exchanged


def test_install_asks_for_exactly_the_manifest_scopes_and_the_manifest_has_the_redirect() -> None:
    assert set(BOT_SCOPES) == set(MANIFEST["oauth_config"]["scopes"]["bot"])
    assert MANIFEST["oauth_config"]["redirect_urls"] == ["https://YOUR-HOST/slack/oauth_redirect"]
    assert {"app_uninstalled", "tokens_revoked"} <= set(MANIFEST["settings"]["event_subscriptions"]["bot_events"])


def test_one_workspace_mode_has_no_install_page(stack: Stack) -> None:
    answer = httpx.get(f"{stack.url}/slack/install")
    assert answer.status_code == 404
    assert "SLACK_CLIENT_ID" in answer.json()["error"]


# -- each workspace's token ------------------------------------------------------------------------------


def test_a_command_uses_its_own_workspaces_token(two: Stack) -> None:
    command(two, ONE, "settings", user="U0REP")  # U0REP installed ONE: an admin there
    opened = wait_for(lambda: two.slack.calls_to("views.open"))
    assert [c.token for c in opened] == [tokens(two)[ONE]]
    refused = command(two, TWO, "settings", user="U0REP")  # …but not in TWO
    assert "Only this workspace's Switchboard admins" in refused.text
    time.sleep(0.3)
    assert len(two.slack.calls_to("views.open")) == 1


@pytest.mark.both_backends
def test_a_webhook_posts_with_the_token_of_its_numbers_workspace(two: Stack, http: httpx.Client) -> None:
    route_in(two, ONE, TRACKING, "C0ONE")
    route_in(two, TWO, OTHER, "C0TWO")
    assert send(http, two, "GET", "/hooks/avanser/call", call(1)).status_code == 200
    assert send(http, two, "GET", "/hooks/avanser/call", call(2, bnum=OTHER)).status_code == 200
    wait_for(lambda: two.slack.channel_messages("C0ONE") and two.slack.channel_messages("C0TWO"))
    posts = two.slack.calls_to("chat.postMessage")
    assert {(c.args["channel"], c.team) for c in posts} == {("C0ONE", ONE), ("C0TWO", TWO)}
    # and each workspace's rows say whose they are
    alerts = on_app(two, lambda s: s.store.execute("SELECT channel, team_id FROM alerts ORDER BY id").fetchall())
    assert sorted(tuple(a) for a in alerts) == [("C0ONE", ONE), ("C0TWO", TWO)]


def test_a_reminder_uses_the_token_of_the_workspace_that_leased_the_number(tmp_path: Path) -> None:
    with Stack(tmp_path, outbox_channel_interval=0.0, many_workspaces=True, SWITCHBOARD_VN_REMINDER="2s") as stack:
        stack.install(ONE, installer="U0REP")
        stack.install(TWO, installer="U0ADMIN")
        enable(stack, TWO)
        response, _ = stack.slack.command(
            stack.url,
            "/vn",
            "+919176226528 to +918136966620 for 4s",
            user_id="U0REP",
            channel_id="C0FIELD",
            team_id=TWO,
        )
        assert response.status_code == 200
        reminder = wait_for(
            lambda: [
                c for c in stack.slack.calls_to("chat.postMessage") if "⏰" in json.dumps(c.args, ensure_ascii=False)
            ]
        )
        assert [c.team for c in reminder] == [TWO]
        jobs = [c.team for c in stack.slack.calls if c.team not in (None, TWO) and c.method != "auth.test"]
        assert jobs == []  # nothing of TWO's lease went through ONE's token


def test_one_workspaces_rate_limits_do_not_slow_the_other(two: Stack, http: httpx.Client) -> None:
    route_in(two, ONE, TRACKING, "C0ONE")
    route_in(two, TWO, OTHER, "C0TWO")
    two.slack.inject(429, seconds=4, retry_after=3, methods={"chat.postMessage"}, team=ONE)
    started = time.monotonic()
    send(http, two, "GET", "/hooks/avanser/call", call(1))
    send(http, two, "GET", "/hooks/avanser/call", call(2, bnum=OTHER))
    wait_for(lambda: two.slack.channel_messages("C0TWO"), timeout=5)
    other_after = time.monotonic() - started
    wait_for(lambda: two.slack.channel_messages("C0ONE"), timeout=15)
    one_after = time.monotonic() - started
    assert other_after < 1.5 < 3 <= one_after, (other_after, one_after)


# -- settings, uninstall, retention --------------------------------------------------------------------------


def test_each_workspace_sets_its_own_alerts_channel(two: Stack, http: httpx.Client) -> None:
    # a number ONE got through a request (AVANSER carried it out) and hasn't routed
    on_app(
        two,
        lambda s: s.store.execute(
            "INSERT INTO number_requests (kind, custom_id, name, number, channel, requester, status, body, created_at,"
            " updated_at, team_id) VALUES ('create', 'c1', 'Ad', ?, 'C0X', 'U0REP', 'completed', '{}', 0, 0, ?)",
            (TRACKING, ONE),
        ),
    )
    defaults = on_app(two, lambda s: s.workspaces.defaults)
    answers = {"admins": ["U0REP", "U0ONCALL"], "alerts_channel": "C0ONEALERTS", "caller_id": "02 9008 1596"}
    submitted = payloads.view_submission(settings_form(defaults, defaults), answers, user="U0REP")
    submitted["team"] = {"id": ONE, "domain": "one"}
    submitted["user"]["team_id"] = submitted["view"]["team_id"] = ONE
    assert two.slack.interact(two.url, submitted).status_code == 200
    saved = wait_for(lambda: on_app(two, lambda s: s.workspaces.config(ONE).alerts_channel))
    assert saved == "C0ONEALERTS"
    assert on_app(two, lambda s: s.workspaces.config(ONE).caller_id) == "+61290081596"
    assert on_app(two, lambda s: s.workspaces.config(TWO).alerts_channel) == "C0ALERTS"  # the environment's
    # a call to it lands in ONE's own alerts channel, posted with ONE's token
    send(http, two, "GET", "/hooks/avanser/call", call(3))
    wait_for(lambda: two.slack.channel_messages("C0ONEALERTS"))
    assert calls_by(two, "chat.postMessage", ONE)[-1].args["channel"] == "C0ONEALERTS"


@pytest.mark.both_backends
def test_uninstall_forgets_the_token_stops_the_jobs_and_purges_after_retention(two: Stack, http: httpx.Client) -> None:
    route_in(two, ONE, TRACKING, "C0ONE")
    for n in range(6):  # alerts posted, a thread, a storm digest: rows that refer to one another
        send(http, two, "GET", "/hooks/avanser/call", call(n))
    wait_for(lambda: two.slack.channel_messages("C0ONE"))
    assert two.drain(20)
    first_post = "SELECT MIN(id) FROM outbox WHERE team_id = ?"
    on_app(two, lambda s: remember_thread(s.store, "request:one", s.store.execute(first_post, (ONE,)).fetchone()[0]))

    def schedule(services: Any) -> None:
        with team_scope(ONE):
            services.scheduler.at(time.time() + 3600, "vn-remind-999", _never, services)

    on_app(two, schedule)
    assert "vn-remind-999" in on_app(two, lambda s: s.scheduler.pending())
    event = payloads.event_callback({"type": "app_uninstalled", "event_ts": f"{time.time():.6f}"}, team_id=ONE)
    assert two.slack.event(two.url, event).status_code == 200
    wait_for(lambda: ONE not in on_app(two, lambda s: s.installations.installed()))
    assert "vn-remind-999" not in on_app(two, lambda s: s.scheduler.pending())
    assert TWO in on_app(two, lambda s: s.installations.installed())
    # its people are told to reinstall; nothing runs with the old token
    _, url = two.slack.command(two.url, "/numbers", "help", user_id="U0REP", team_id=ONE)
    told = wait_for(lambda: two.slack.responses_to(url))
    assert "isn't installed in this workspace" in told[0]["text"]
    # its data is kept until SWITCHBOARD_RETENTION has passed, then purged
    count = "SELECT COUNT(*) FROM routes WHERE team_id = ?"
    assert on_app(two, lambda s: s.store.execute(count, (ONE,)).fetchone()[0]) == 1
    on_app(two, lambda s: s.store.execute("UPDATE installations SET uninstalled_at = 1 WHERE team_id = ?", (ONE,)))
    from bot.domain.workspace import purge_uninstalled

    assert two.on_app(purge_uninstalled(two.services)) == 1
    for table in ("routes", "alerts", "calls", "outbox", "digests"):
        left = on_app(two, lambda s, t=table: s.store.execute(f"SELECT COUNT(*) FROM {t} WHERE team_id = ?", (ONE,)))
        assert left.fetchone()[0] == 0, table
    assert on_app(two, lambda s: s.installations.find(TWO)) is not None


def test_tokens_revoked_for_the_bot_uninstalls(two: Stack) -> None:
    event = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["U0BOTTONE"]}, "event_ts": "1"}
    assert two.slack.event(two.url, payloads.event_callback(event, team_id=TWO)).status_code == 200
    wait_for(lambda: TWO not in on_app(two, lambda s: s.installations.installed()))
    audit = on_app(two, lambda s: s.store.execute("SELECT action, team_id FROM audit WHERE action LIKE 'workspace.%'"))
    assert ("workspace.uninstalled", TWO) in [tuple(r) for r in audit]


async def _never(services: Any) -> None:
    raise AssertionError("an uninstalled workspace's job ran")


def test_each_workspaces_avanser_calls_run_in_its_own_account(stack: Stack) -> None:
    """One AVANSER user, an account per workspace: calls for two accounts, interleaved, each answered by its own
    account (AVANSER's selected account is the user's, so every call must switch, or wait, first)."""
    wanted: contextvars.ContextVar[int | None] = contextvars.ContextVar("account", default=None)

    async def run() -> tuple[list[str], int]:
        settings = stack.settings
        assert settings is not None and settings.avanser_username and settings.avanser_password
        client = AvanserClient(
            settings.avanser_api_url, settings.avanser_username, settings.avanser_password.get_secret_value()
        )
        client.account_for = wanted.get

        async def details(account: int) -> str:
            wanted.set(account)
            return str((await client.account_details())[0].client_id)

        try:
            answers = await asyncio.gather(*(details(a) for a in [6999, 7001] * 6))
        finally:
            await client.aclose()
        return answers, len(stack.avanser.requests_to("POST", "/v1/accounts"))

    answers, switches = stack.on_app(run())
    assert answers == ["6999", "7001"] * 6
    assert 2 <= switches <= 12  # calls for the account already selected share it


# -- the operator decides which workspaces work, and in which AVANSER account ---------------------------------


def test_a_workspace_the_operator_has_not_enabled_is_told_so_and_nothing_is_done(two: Stack) -> None:
    assert two.install("T0NEW", installer="U0ONCALL").status_code == 200
    answer = command(two, "T0NEW", "settings", user="U0ONCALL")  # its installer, an admin there
    assert "not switched on yet" in answer.json()["text"] and "switchboard workspace T0NEW --enable" in answer.text
    time.sleep(0.3)
    assert two.slack.calls_to("views.open") == []
    assert two.avanser.requests_to("GET", "/v1/") == []


def test_each_workspace_works_in_its_own_avanser_account_and_cannot_switch_to_anothers(two: Stack) -> None:
    _, url = two.slack.command(two.url, "/numbers", "accounts", user_id="U0REP", team_id=ONE)
    shown = final_answer(two, url)
    assert "Test Account" in shown and "Agency Client B" not in shown  # 6999 only
    _, url = two.slack.command(two.url, "/numbers", "accounts 7001", user_id="U0REP", team_id=ONE)
    assert "Account 7001 isn't one of this workspace's AVANSER accounts (6999)" in final_answer(two, url)
    _, url = two.slack.command(two.url, "/numbers", "accounts", user_id="U0ADMIN", team_id=TWO)
    assert "Agency Client B" in final_answer(two, url)


def test_a_workspace_without_an_avanser_account_makes_no_avanser_call(two: Stack) -> None:
    assert two.install("T0NEW", installer="U0ONCALL").status_code == 200
    enable(two, "T0NEW")
    before = len(two.avanser.requests_to("GET", "/v1/"))
    _, url = two.slack.command(two.url, "/numbers", "list", user_id="U0ONCALL", team_id="T0NEW")
    assert "has no AVANSER account yet" in final_answer(two, url)
    assert len(two.avanser.requests_to("GET", "/v1/")) == before


def test_the_operators_command_lists_and_enables_workspaces(
    two: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    assert two.settings is not None
    monkeypatch.setenv("SWITCHBOARD_DB", two.settings.db)
    two.install("T0NEW", installer="U0ONCALL", name="New client")
    assert main(["workspace"]) == 0
    listed = capsys.readouterr().out
    assert "T0NEW" in listed and "NOT ENABLED" in listed and "AVANSER account 6999" in listed
    assert main(["workspace", "T0NEW", "--avanser-account", "6999"]) == 1  # ONE's
    assert "already T0ONE's" in capsys.readouterr().err
    assert main(["workspace", "T0NEW", "--enable"]) == 0
    assert "T0NEW is enabled." in capsys.readouterr().out
    found = on_app(two, lambda s: s.installations.find("T0NEW"))
    assert found.enabled_at is not None
