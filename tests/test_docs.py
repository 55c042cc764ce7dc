"""manifest.yml, the registered listeners and the README say the same thing (sqlite-utils test_docs)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.sandbox.stack import Stack
from commands import FAMILIES

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = yaml.safe_load((ROOT / "manifest.yml").read_text())
README = (ROOT / "README.md").read_text()


def test_manifest_commands_are_the_registered_commands(stack: Stack) -> None:
    manifest = {c["command"] for c in MANIFEST["features"]["slash_commands"]}
    assert manifest == {f.command for f in FAMILIES}
    for command in manifest:  # the running app answers each one (Bolt answers 404 to an unknown one)
        answer, _ = stack.slack.command(stack.url, command, "help")
        assert answer.status_code == 200
        assert answer.json()["text"].startswith(f"{command} — ")
    unknown, _ = stack.slack.command(stack.url, "/nonsense", "help")
    assert unknown.status_code == 404


def test_manifest_usage_hints_come_from_the_families() -> None:
    hints = {c["command"]: c["usage_hint"] for c in MANIFEST["features"]["slash_commands"]}
    assert hints == {f.command: f.usage_hint for f in FAMILIES}


def test_manifest_urls_point_at_the_one_slack_route() -> None:
    urls = [c["url"] for c in MANIFEST["features"]["slash_commands"]]
    urls += [
        MANIFEST["settings"]["event_subscriptions"]["request_url"],
        MANIFEST["settings"]["interactivity"]["request_url"],
    ]
    assert set(urls) == {"https://YOUR-HOST/slack/events"}
    assert "app_home_opened" in MANIFEST["settings"]["event_subscriptions"]["bot_events"]
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is True


def test_readme_lists_every_subcommand() -> None:
    for family in FAMILIES:
        for sub in family.entries():
            words = " ".join(p for p in (family.command, sub.name, sub.usage) if p)
            assert f"`{words}`" in README, f"README is missing `{words}`"


def test_readme_opens_with_the_two_commands() -> None:
    code = re.search(r"```(?:sh|bash)?\n(.*?)```", README, re.S)
    assert code is not None
    commands = [line.split("#")[0].strip() for line in code.group(1).splitlines()]
    assert commands == ["make demo", "make test"]
    assert README.index("```") < README.index("## Install into a real Slack workspace") < README.index("## Settings")


def test_readme_settings_table_names_every_setting() -> None:
    from bot.settings import Settings

    for field in Settings.model_fields.values():
        name = field.validation_alias.choices[0]  # type: ignore[union-attr]
        assert f"`{name}`" in README, f"README settings table is missing {name}"
