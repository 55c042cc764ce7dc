"""Settings: contract names, .env, one clear line per bad value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.settings import Settings, SettingsError, load_settings

CONTRACT_NAMES = {
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "AVANSER_API_URL",
    "AVANSER_USERNAME",
    "AVANSER_PASSWORD",
    "EXOTEL_API_URL",
    "EXOTEL_ACCOUNT_SID",
    "EXOTEL_API_KEY",
    "EXOTEL_API_TOKEN",
    "DTL_API_URL",
    "DTL_USERNAME",
    "DTL_PASSWORD",
    "SWITCHBOARD_DB",
    "SWITCHBOARD_HOST",
    "SWITCHBOARD_PORT",
    "SWITCHBOARD_PUBLIC_URL",
    "SWITCHBOARD_WEBHOOK_TOKEN",
    "SWITCHBOARD_ADMINS",
    "SWITCHBOARD_APPROVALS_CHANNEL",
    "SWITCHBOARD_ALERTS_CHANNEL",
    "SWITCHBOARD_COUNTRY",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [*CONTRACT_NAMES, "SWITCHBOARD_LOG_LEVEL"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_every_contract_name_is_a_setting() -> None:
    aliases = {f.validation_alias.choices[0] for f in Settings.model_fields.values()}  # type: ignore[union-attr]
    assert aliases >= CONTRACT_NAMES


def test_defaults_match_the_design() -> None:
    s = load_settings(env_file=None)
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.avanser_api_url == "https://tapi-sandbox.avanser.com/v1/"
    assert s.exotel_api_url == "https://leadassist.exotel.in/v1/"
    assert str(s.db_path) == "switchboard.db"
    assert (s.host, s.port, s.country) == ("127.0.0.1", 3000, "AU")
    assert s.admins == frozenset() and s.slack_app_token is None


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "SWITCHBOARD_PORT=8080\nSWITCHBOARD_ADMINS=U0ADMIN, U0OTHER\nSLACK_BOT_TOKEN=xoxb-1\n"
    )
    monkeypatch.setenv("SWITCHBOARD_COUNTRY", "in")
    s = load_settings()
    assert s.port == 8080
    assert s.admins == {"U0ADMIN", "U0OTHER"}
    assert s.country == "IN"
    assert s.slack_bot_token is not None and s.slack_bot_token.get_secret_value() == "xoxb-1"
    assert "xoxb-1" not in repr(s)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SWITCHBOARD_PORT", "abc", "SWITCHBOARD_PORT: Input should be a valid integer"),
        ("SWITCHBOARD_PORT", "70000", "SWITCHBOARD_PORT: Input should be less than or equal to 65535"),
        ("SWITCHBOARD_COUNTRY", "Australia", "SWITCHBOARD_COUNTRY: must be a two-letter country code"),
        ("SWITCHBOARD_ADMINS", "bob", "SWITCHBOARD_ADMINS: must be Slack user ids"),
        ("SLACK_API_URL", "slack.com", "SLACK_API_URL: must be an http:// or https:// URL"),
        ("SWITCHBOARD_PUBLIC_URL", "ftp://x", "SWITCHBOARD_PUBLIC_URL: must be an http:// or https:// URL"),
    ],
)
def test_bad_value_names_the_setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_serve_without_slack_credentials_says_which(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("switchboard: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET: not set.")
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_check_reports_configured_providers(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("AVANSER_USERNAME", "u")
    monkeypatch.setenv("AVANSER_PASSWORD", "p")
    assert main(["check", "--offline"]) == 0
    out = capsys.readouterr().out
    assert "configured      AVANSER (/numbers)" in out
    assert "not configured  Exotel (/vn)  (needs EXOTEL_ACCOUNT_SID, EXOTEL_API_KEY, EXOTEL_API_TOKEN)" in out
    assert "not configured  DataTechLabs (/call)" in out
    assert "not configured  AVANSER data feed (lost webhooks, recordings)  (needs AVANSER_FEED_URL)" in out
    assert "the AVANSER data feed is off (AVANSER_FEED_URL is not set)" in out


def test_check_reads_the_data_feed(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from bot.sandbox.avanser import AvanserSandbox
    from bot.sandbox.server import LoopbackServer

    sandbox = AvanserSandbox()
    with LoopbackServer(sandbox.asgi(), name="avanser") as server:
        sandbox.base_url = server.url
        monkeypatch.setenv("AVANSER_FEED_URL", sandbox.feed_url("xml"))
        monkeypatch.setenv("AVANSER_FEED_USERNAME", sandbox.feed_username)
        monkeypatch.setenv("AVANSER_FEED_PASSWORD", sandbox.feed_password)
        monkeypatch.setenv("SWITCHBOARD_FEED_INTERVAL", "2m")
        for name in ("AVANSER_USERNAME", "EXOTEL_ACCOUNT_SID", "DTL_API_URL", "SLACK_BOT_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "configured      AVANSER data feed" in out and "read every 120 s (SWITCHBOARD_FEED_INTERVAL)" in out
    assert "AVANSER data feed: reachable; 0 call(s) today (xml)" in out


def test_check_bad_setting_is_one_line_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "check", "--offline"],
        env={"SWITCHBOARD_PORT": "eighty", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "switchboard: SWITCHBOARD_PORT: Input should be a valid integer, "
        "unable to parse string as an integer "
        "(got 'eighty')"
    ]


def test_audit_csv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import csv
    import io

    from bot.store import Store

    store = Store(tmp_path / "a.db")
    store.audit(
        "U0ADMIN",
        "number.create.submitted",
        subject="+61290081590",
        provider_ref="req-1",
        detail='{"custom_id": "sb-1"}',
    )
    store.audit("U0REP", "route.set", subject="+61290081590")
    store.close()
    monkeypatch.setenv("SWITCHBOARD_DB", str(tmp_path / "a.db"))
    assert main(["audit", "--csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["time_utc", "who", "action", "subject", "provider_ref", "detail"]
    assert rows[1][1:] == ["U0ADMIN", "number.create.submitted", "+61290081590", "req-1", '{"custom_id": "sb-1"}']
    assert rows[2][1:4] == ["U0REP", "route.set", "+61290081590"] and len(rows) == 3
    assert main(["audit", "--since", "2999-01-01"]) == 0
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("SWITCHBOARD_DB", str(tmp_path / "missing.db"))
    assert main(["audit"]) == 2
