"""`switchboard sandbox` and `switchboard check` as a user runs them, in subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_sandbox_prints_settings_and_check_reaches_every_provider(tmp_path: Path) -> None:
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "sandbox"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert sandbox.stdout is not None
        lines = [sandbox.stdout.readline() for _ in range(17)]
        settings = dict(line.strip().split("=", 1) for line in lines[1:] if "=" in line)
        assert set(settings) == {
            "SLACK_API_URL",
            "SLACK_BOT_TOKEN",
            "SLACK_SIGNING_SECRET",
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
            "AVANSER_FEED_URL",
            "AVANSER_FEED_USERNAME",
            "AVANSER_FEED_PASSWORD",
        }
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **settings}
        check = subprocess.run(
            [sys.executable, "-m", "bot.cli", "check"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        out = check.stdout
        assert "Slack: connected to workspace 'Switchboard Sandbox'" in out
        assert "AVANSER: reachable; accounts: Test Account (6999), Agency Client B (7001)" in out
        assert "Exotel: reachable, credentials accepted" in out
        assert "DataTechLabs: configured" in out
        bad = subprocess.run(
            [sys.executable, "-m", "bot.cli", "check"],
            env={**env, "AVANSER_PASSWORD": "nope"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bad.returncode == 1
        assert "AVANSER: Switchboard couldn't sign in to AVANSER." in bad.stdout
        assert "nope" not in bad.stdout
    finally:
        sandbox.send_signal(signal.SIGINT)
        sandbox.communicate(timeout=20)


def test_check_reports_the_sqlite_database_its_migrations_and_no_leader(tmp_path: Path) -> None:
    from bot.store import MIGRATIONS, Store

    db = tmp_path / "switchboard.db"
    Store(db, migrations=MIGRATIONS[:5]).close()  # an older version's database: the rest would apply at start
    root = str(Path(__file__).resolve().parent.parent)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SWITCHBOARD_DB": str(db), "PYTHONPATH": root}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "check"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Database: SQLite 3." in done.stdout and str(db) in done.stdout
    pending = ", ".join(str(m.version) for m in MIGRATIONS[5:])
    assert (
        f"Migrations: 5 applied, schema version {MIGRATIONS[4].version}; {len(MIGRATIONS) - 5} to apply" in done.stdout
    )
    assert pending in done.stdout
    assert "Scheduler leader: none" in done.stdout
    assert Store(db, migrations=[]).schema_version() == MIGRATIONS[4].version  # check changed nothing
