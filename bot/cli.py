"""`switchboard` — the command line of the DESIGN contract.

switchboard serve     run the app (HTTP; also Socket Mode when SLACK_APP_TOKEN is set)
switchboard demo      play the story against loopback stand-ins, no credentials needed
switchboard check     validate settings, say which providers are configured, reach Slack
switchboard sandbox   run the stand-ins on their own and print their URLs
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from typing import TYPE_CHECKING, Any

from bot.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("switchboard")


def _secrets(settings: Settings) -> list[str]:
    values = [
        settings.slack_bot_token,
        settings.slack_signing_secret,
        settings.slack_client_secret,
        settings.slack_app_token,
        settings.avanser_password,
        settings.exotel_api_token,
        settings.dtl_password,
        settings.webhook_token,
        settings.metrics_token,
    ]
    secrets = [v.get_secret_value() for v in values if v is not None]
    if settings.db_password:
        secrets.append(settings.db_password)
    return secrets


# A kept-alive connection idle this long is closed.
KEEP_ALIVE_S = 5
# Connections plus requests in flight; beyond it uvicorn answers 503 instead of taking on more.
MAX_CONCURRENCY = 1000


def server_config(app: Any, host: str, port: int, log_level: str = "info", **limits: Any) -> uvicorn.Config:
    """uvicorn's config for `serve`: httptools with a deadline and a size cap on each request's head
    (`bot.guard.guarded_http_protocol`; `limits` overrides its `header_timeout`/`max_header_bytes`),
    keep-alive and concurrency bounded. Bodies are bounded by `bot.guard.Guard` inside the app.

    uvicorn's own `h11_max_incomplete_event_size` bounds heads only with its h11 protocol, which
    answers half as many requests per second as httptools on this app's routes; httptools bounds
    nothing by itself (160 MB of headers grew the process by 160 MB), hence the subclass."""
    import uvicorn

    from bot.guard import guarded_http_protocol

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        log_config=None,
        http=guarded_http_protocol(**limits),
        timeout_keep_alive=KEEP_ALIVE_S,
        limit_concurrency=MAX_CONCURRENCY,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from bot.logs import configure_logging
    from bot.web import create_app

    settings = load_settings()
    settings.require_slack()
    configure_logging(settings.log_level, _secrets(settings))
    if settings.webhook_token is None:
        log.warning("SWITCHBOARD_WEBHOOK_TOKEN is not set: every /hooks/* request will be refused (401)")
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    app = create_app(settings)
    from bot.store import redact_url

    log.info("Switchboard listening on http://%s:%d (database %s)", host, port, redact_url(settings.db))
    server = uvicorn.Server(server_config(app, host, port, settings.log_level.lower()))
    # uvicorn shuts down gracefully on Ctrl-C and then re-raises it; that is a normal stop.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    log.info("Switchboard stopped")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    settings = load_settings()
    print("Settings are valid.")
    rows = [
        (
            "Slack",
            bool(settings.slack_bot_token and settings.slack_signing_secret),
            "SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET",
        ),
        (
            "Slack, many workspaces (OAuth install at /slack/install)",
            settings.many_workspaces,
            "SLACK_CLIENT_ID, SLACK_CLIENT_SECRET",
        ),
        ("Slack Socket Mode", settings.slack_app_token is not None, "SLACK_APP_TOKEN"),
        ("AVANSER (/numbers)", settings.avanser_configured, "AVANSER_USERNAME, AVANSER_PASSWORD"),
        ("Exotel (/vn)", settings.exotel_configured, "EXOTEL_ACCOUNT_SID, EXOTEL_API_KEY, EXOTEL_API_TOKEN"),
        ("DataTechLabs (/call)", settings.dtl_configured, "DTL_API_URL, DTL_USERNAME, DTL_PASSWORD"),
        ("Webhooks (/hooks/*)", settings.webhook_token is not None, "SWITCHBOARD_WEBHOOK_TOKEN"),
        ("AVANSER data feed (lost webhooks, recordings)", settings.feed_configured, "AVANSER_FEED_URL"),
    ]
    if settings.many_workspaces:  # each workspace's token comes from its install, not SLACK_BOT_TOKEN
        rows = [row for row in rows if row[0] != "Slack"]
    for name, ok, needs in rows:
        print(f"  {'configured' if ok else 'not configured':<15} {name}" + ("" if ok else f"  (needs {needs})"))
    if not settings.public_url:
        print("  note: SWITCHBOARD_PUBLIC_URL is not set; providers cannot be given callback URLs.")
    if settings.feed_configured:
        print(f"  note: the AVANSER data feed is read every {settings.feed_interval:g} s (SWITCHBOARD_FEED_INTERVAL).")
    else:
        print("  note: the AVANSER data feed is off (AVANSER_FEED_URL is not set): a lost call webhook stays lost.")
    if args.offline:
        return 0
    status = _check_database(settings)
    if settings.slack_bot_token is not None and not settings.many_workspaces:
        status |= asyncio.run(_check_slack(settings))
    status |= asyncio.run(_check_providers(settings))
    return status


def _running_here(holder: str) -> bool:
    """Whether `host:pid` names a live process (on another host: assumed so)."""
    import os
    import socket

    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_database(settings: Settings) -> int:
    """The database's kind and version, its migrations, and who leads the scheduler; nothing is changed."""
    import datetime

    from bot.scheduler import leader_of
    from bot.store import MIGRATIONS, Store, redact_url

    if not settings.db_is_postgres and not settings.db_path.exists():
        print(f"  Database: SQLite file {settings.db} does not exist yet (`switchboard serve` creates it)")
        return 0
    try:
        store = Store(settings.db, migrations=[])  # open without migrating: check changes nothing
    except Exception as exc:
        why = str(exc).replace(settings.db, redact_url(settings.db))
        print(f"  Database: {redact_url(settings.db)} can't be opened: {why}")
        return 1
    try:
        applied = set(store.applied_migrations())
        pending = [m.version for m in MIGRATIONS if m.version not in applied]
        print(f"  Database: {store.describe()}")
        print(
            f"  Migrations: {len(applied)} applied, schema version {store.schema_version()}"
            + (
                f"; {len(pending)} to apply at the next start: {', '.join(map(str, pending))}"
                if pending
                else "; up to date"
            )
        )
        leader = leader_of(store) if "leader" in store.table_names() else None
        if leader is not None and not store.shared and not _running_here(str(leader.get("holder"))):
            leader = None  # the SQLite process that wrote it is gone (killed before it could say so)
        if leader is None or not leader.get("holder") or leader.get("lock_held") is False:
            print("  Scheduler leader: none (no `switchboard serve` is running on this database)")
        else:
            since = leader.get("since")
            when = (
                datetime.datetime.fromtimestamp(since, datetime.UTC).strftime(" since %Y-%m-%d %H:%M:%S UTC")
                if since
                else ""
            )
            print(f"  Scheduler leader: {leader['holder']}{when}")
    finally:
        store.close()
    return 0


async def _check_providers(settings: Settings) -> int:
    """Reach each configured provider with a call that changes nothing."""
    from bot.services import provider_clients
    from bot.telco.base import ProviderAuthFailed, TelcoError
    from bot.telco.exotel import ExotelNotFound

    avanser, exotel, dtl = provider_clients(settings)
    status = 0
    if avanser is not None:
        try:
            accounts = await avanser.list_accounts()
            names = ", ".join(f"{a.account} ({a.account_id})" for a in accounts) or "none"
            print(f"  AVANSER: reachable; accounts: {names}")
        except TelcoError as exc:
            print(f"  AVANSER: {exc}")
            status = 1
        finally:
            await avanser.aclose()
    if exotel is not None:
        try:
            await exotel.get_allocation("switchboard-check")
            print("  Exotel: reachable, credentials accepted")
        except ExotelNotFound:  # the probe id does not exist: the credentials were accepted
            print("  Exotel: reachable, credentials accepted")
        except (ProviderAuthFailed, TelcoError) as exc:
            print(f"  Exotel: {exc}")
            status = 1
        finally:
            await exotel.aclose()
    if dtl is not None:
        print("  DataTechLabs: configured; not called (its API has no request that places no call)")
        await dtl.aclose()
    status |= await _check_feed(settings)
    return status


async def _check_feed(settings: Settings) -> int:
    """Read today's page of the data feed (a GET: it changes nothing)."""
    from datetime import UTC, datetime

    from bot.services import feed_client
    from bot.telco.base import TelcoError

    feed = feed_client(settings)
    if feed is None:
        return 0
    try:
        pulled = await feed.pull([datetime.now(UTC).date()])
        print(f"  AVANSER data feed: reachable; {len(pulled.records)} call(s) today ({pulled.format})")
        return 0
    except TelcoError as exc:
        print(f"  AVANSER data feed: {exc}")
        return 1
    finally:
        await feed.aclose()


async def _check_slack(settings: Settings) -> int:
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.async_client import AsyncWebClient

    assert settings.slack_bot_token is not None
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url, timeout=10
    )
    try:
        answer = await client.auth_test()
    except SlackApiError as exc:
        print(f"  Slack refused the bot token: {exc.response.get('error', exc.response.status_code)}")
        return 1
    except Exception as exc:
        print(f"  Slack could not be reached at {settings.slack_api_url}: {type(exc).__name__}")
        return 1
    print(f"  Slack: connected to workspace {answer.get('team')!r} as {answer.get('user')!r}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Print the audit table: who did what, when, with the provider's request id."""
    import csv
    import datetime

    from bot.store import Store

    settings = load_settings()
    if not settings.db_is_postgres and not settings.db_path.exists():
        raise SettingsError(f"SWITCHBOARD_DB: {settings.db_path} does not exist yet (run `switchboard serve` first)")
    store = Store(settings.db)
    query = "SELECT at, actor, action, subject, provider_ref, detail FROM audit"
    params: tuple[float, ...] = ()
    if args.since:
        try:
            since = datetime.datetime.fromisoformat(args.since)
        except ValueError:
            raise SettingsError(f"--since: “{args.since}” isn't a date like 2026-11-01") from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=datetime.UTC)
        query += " WHERE at >= ?"
        params = (since.timestamp(),)
    rows = store.execute(query + " ORDER BY id", params).fetchall()
    store.close()
    if args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["time_utc", "who", "action", "subject", "provider_ref", "detail"])
        for at, *rest in rows:
            writer.writerow([datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat(timespec="seconds"), *rest])
    else:
        for at, actor, action, subject, ref, _ in rows:
            when = datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
            print(f"{when}  {actor:<14} {action:<28} {subject or ''}" + (f"  [{ref}]" if ref else ""))
    return 0


def cmd_workspace(args: argparse.Namespace) -> int:
    """Many workspaces: list the installed ones, or enable one, give it its AVANSER account, or let it adopt the
    rows written before there were several."""
    import datetime

    from bot.domain.workspace import operate
    from bot.errors import UserError
    from bot.store import Store
    from bot.workspaces import Installations

    settings = load_settings()
    if not settings.db_is_postgres and not settings.db_path.exists():
        raise SettingsError(f"SWITCHBOARD_DB: {settings.db_path} does not exist yet (run `switchboard serve` first)")
    store = Store(settings.db)
    try:
        if args.team is None:
            rows = Installations(store).everything()
            if not rows:
                print("No workspace has installed Switchboard through /slack/install yet.")
            accounts = {
                str(team): f"{current}" + (f" (of {', '.join(map(str, json.loads(allowed)))})" if allowed else "")
                for team, current, allowed in store.execute(
                    "SELECT team_id, avanser_account, avanser_accounts FROM workspace_settings"
                ).fetchall()
                if current is not None
            }

            def day(at: float | None) -> str:
                return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d") if at else "—"

            for team, name, installer, installed, enabled, uninstalled in rows:
                state = "uninstalled " + day(uninstalled) if uninstalled else ("enabled" if enabled else "NOT ENABLED")
                print(
                    f"{team:<12} {name[:28]:<28} installed {day(installed)} by {installer:<12} {state:<22}"
                    f" AVANSER account {accounts.get(team) or '—'}"
                )
            return 0
        enable = True if args.enable else False if args.disable else None
        if enable is None and args.avanser_account is None and not args.adopt:
            raise SettingsError("say what to do: --enable, --disable, --avanser-account N[,N…] and/or --adopt")
        try:
            accounts_given = [int(a) for a in args.avanser_account.split(",")] if args.avanser_account else None
        except ValueError:
            raise SettingsError(
                f"--avanser-account: “{args.avanser_account}” isn't account ids like 6999,7001"
            ) from None
        try:
            for sentence in operate(store, args.team, enable=enable, avanser_accounts=accounts_given, adopt=args.adopt):
                print(sentence)
        except UserError as exc:
            print(exc, file=sys.stderr)
            return 1
        print("A running Switchboard sees the change within a minute.")
        return 0
    finally:
        store.close()


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return run_demo()


def cmd_sandbox(args: argparse.Namespace) -> int:
    from bot.sandbox.avanser import AvanserSandbox
    from bot.sandbox.dtl import DtlSandbox
    from bot.sandbox.exotel import ExotelSandbox
    from bot.sandbox.server import LoopbackServer
    from bot.sandbox.slack import SlackSandbox

    slack = SlackSandbox(channel_interval=args.slack_rate_limit)
    avanser, exotel, dtl = AvanserSandbox(), ExotelSandbox(), DtlSandbox()
    for provider in (avanser, exotel, dtl):
        provider.latency = args.provider_latency
    servers = []
    for name, sandbox, port in (
        ("slack", slack, args.slack_port),
        ("avanser", avanser, 0),
        ("exotel", exotel, 0),
        ("dtl", dtl, 0),
    ):
        server = LoopbackServer(sandbox.asgi(), port=port, name=f"{name}-sandbox").start()
        sandbox.base_url = server.url
        servers.append(server)
    if args.app_url:
        token = f"token={args.webhook_token}" if args.webhook_token else ""
        exotel.event_urls = {
            k: f"{args.app_url}/hooks/exotel/{k}?{token}" for k in ("call", "deallocation", "verification")
        }
    print("Sandboxes running on loopback (Ctrl-C to stop). Settings that point Switchboard at them:")
    print(f"SLACK_API_URL={slack.base_url}/api/")
    print(f"SLACK_BOT_TOKEN={slack.bot_token}")
    print(f"SLACK_SIGNING_SECRET={slack.signing_secret}")
    print(f"AVANSER_API_URL={avanser.base_url}/v1/")
    print(f"AVANSER_USERNAME={avanser.username}")
    print(f"AVANSER_PASSWORD={avanser.password}")
    print(f"AVANSER_FEED_URL={avanser.feed_url('json')}")
    print(f"AVANSER_FEED_USERNAME={avanser.feed_username}")
    print(f"AVANSER_FEED_PASSWORD={avanser.feed_password}")
    print(f"EXOTEL_API_URL={exotel.base_url}/v1/")
    print(f"EXOTEL_ACCOUNT_SID={exotel.account_sid}")
    print(f"EXOTEL_API_KEY={exotel.username}")
    print(f"EXOTEL_API_TOKEN={exotel.password}")
    print(f"DTL_API_URL={dtl.base_url}")
    print(f"DTL_USERNAME={dtl.username}")
    print(f"DTL_PASSWORD={dtl.password}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers:
            server.request_stop()
        for server in servers:
            server.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard", description="Switchboard: phone numbers in Slack.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the app")
    serve.add_argument("--host", help="listen address (default SWITCHBOARD_HOST)")
    serve.add_argument("--port", type=int, help="listen port (default SWITCHBOARD_PORT)")
    serve.set_defaults(func=cmd_serve)
    audit = sub.add_parser("audit", help="print the audit table (who did what, when)")
    audit.add_argument("--csv", action="store_true", help="as CSV, for a spreadsheet")
    audit.add_argument("--since", help="only from this date (ISO 8601, UTC)")
    audit.set_defaults(func=cmd_audit)
    workspace = sub.add_parser(
        "workspace", help="many workspaces: list them; enable one, give it its AVANSER account (operator)"
    )
    workspace.add_argument("team", nargs="?", help="the workspace's team id (T…); none: list every workspace")
    switch = workspace.add_mutually_exclusive_group()
    switch.add_argument("--enable", action="store_true", help="let it use Switchboard (and so the telco accounts)")
    switch.add_argument("--disable", action="store_true", help="stop it: its people are told to ask you")
    workspace.add_argument(
        "--avanser-account",
        metavar="ID[,ID…]",
        help="its own AVANSER accounts: the first is used, /numbers accounts switches between them (none shared)",
    )
    workspace.add_argument(
        "--adopt", action="store_true", help="give it the rows written before there were several workspaces"
    )
    workspace.set_defaults(func=cmd_workspace)
    demo = sub.add_parser("demo", help="play the whole story against loopback stand-ins")
    demo.set_defaults(func=cmd_demo)
    check = sub.add_parser("check", help="validate settings and reach Slack")
    check.add_argument("--offline", action="store_true", help="only validate; contact nothing")
    check.set_defaults(func=cmd_check)
    sandbox = sub.add_parser("sandbox", help="run the stand-ins for Slack and the providers")
    sandbox.add_argument("--slack-port", type=int, default=0)
    sandbox.add_argument(
        "--slack-rate-limit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds between posts to one channel before answering 429",
    )
    sandbox.add_argument(
        "--provider-latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="make every AVANSER, Exotel and DataTechLabs answer take this long",
    )
    sandbox.add_argument("--app-url", help="where Exotel events are sent (a running Switchboard)")
    sandbox.add_argument("--webhook-token", help="SWITCHBOARD_WEBHOOK_TOKEN of that Switchboard")
    sandbox.set_defaults(func=cmd_sandbox)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SettingsError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
