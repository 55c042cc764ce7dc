"""A stand-in for Slack on loopback: the Web API the app calls, and the person who types commands.

Web API (`POST /api/<method>`): auth.test, chat.postMessage / update / postEphemeral, views.open /
update / publish / push, conversations.history / replies / info / open, users.info,
users.profile.get, files.getUploadURLExternal / completeUploadExternal — answering as Slack does
(HTTP 200 with `ok`, 429 with `Retry-After`), checking the token, Block Kit limits (`invalid_blocks`
with Slack's JSON pointers) and, as strictly as Slack, what the app may do: the bot token carries
the scopes it was built with (by default those of the repo's `manifest.yml`) and a method without
its scope answers `missing_scope` with `needed` / `provided`; a channel the bot is not in takes posts
only with `chat:write.public` and shows no history; a trigger_id opens one view within 3 s; a
response_url takes 5 posts within 30 minutes; conversations.history shows no thread replies
(conversations.replies does); chat.update edits only the bot's own messages. Each rule names its
source in Slack's reference. The sandbox's clock can be moved (`advance`) so no test waits out a
limit. Every call is recorded. Optional per-channel rate limit, and injected faults (5xx, 429, slow
answers) for a given count or time.

Channels: every channel id the sandbox hasn't been told about is one the bot was invited to (the
README's install step 6); `add_channel()` declares a private one, or one the bot is not in.

`response_url`s point back here (`POST /response/<id>`), so ephemeral answers are recorded too.

Socket Mode: `apps.connections.open` (with the app-level token) hands out a WebSocket URL here;
`socket_command()` sends a slash command envelope down it and returns the app's ack.

The sandbox is also the Slack side of a conversation: `command()` and `interact()` send signed
requests to the app, exactly as Slack would, each with a fresh trigger_id.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import math
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bot.sandbox.blockkit import MESSAGE_TEXT_MAX, check_blocks, check_view
from bot.sandbox.signing import interaction_body, signature_headers, slash_command_body

SANDBOX_BOT_TOKEN = "xoxb-sandbox-token"
SANDBOX_SIGNING_SECRET = "sandbox-signing-secret"
SANDBOX_APP_TOKEN = "xapp-sandbox-token"
TEAM_ID = "T0SANDBOX"
BOT_USER_ID = "U0SWITCHBOARD"
RATE_LIMITED_METHODS = {"chat.postMessage", "chat.update", "chat.postEphemeral"}
MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"

# The scope a bot token needs for each method the sandbox answers, from the "Scopes" fact of each
# method's page in Slack's reference (docs.slack.dev/reference/methods/<method>). None: "No scopes
# required". A dict: the scope depends on the conversation's type ("The scopes and token types
# required to use this method vary by conversation type"; the channels:history scope page lists
# conversations.history and conversations.replies for bot tokens).
HISTORY_SCOPES = {"public": "channels:history", "private": "groups:history", "im": "im:history"}
READ_SCOPES = {"public": "channels:read", "private": "groups:read", "im": "im:read"}
BOT_METHOD_SCOPES: dict[str, str | dict[str, str] | None] = {
    "auth.test": None,
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "views.open": None,
    "views.push": None,
    "views.update": None,
    "views.publish": None,
    "conversations.history": HISTORY_SCOPES,
    "conversations.replies": HISTORY_SCOPES,
    "conversations.info": READ_SCOPES,
    "conversations.open": "im:write",  # a 1:1 DM; mpim:write would be for several users
    "users.info": "users:read",
    "users.profile.get": "users.profile:read",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
}
# apps.connections.open takes only an app-level token with connections:write (its reference page).
APP_METHOD_SCOPES: dict[str, str] = {"apps.connections.open": "connections:write"}
APP_TOKEN_SCOPES = frozenset({"connections:write"})

# handling-user-interaction (docs.slack.dev/interactivity/handling-user-interaction): a trigger_id
# "expires in 3 seconds" and opens one view (views.open lists exchanged_trigger_id /
# expired_trigger_id / invalid_trigger_id); a response_url takes "up to 5 times within 30 minutes".
TRIGGER_TTL = 3.0
RESPONSE_URL_TTL = 30 * 60.0
RESPONSE_URL_USES = 5


def manifest_scopes(path: Path | str | None = None) -> frozenset[str]:
    """The bot scopes a manifest asks for (`oauth_config.scopes.bot`): what installing it grants."""
    manifest = yaml.safe_load(Path(path or MANIFEST).read_text())
    return frozenset(str(scope) for scope in manifest["oauth_config"]["scopes"]["bot"])


@dataclass
class ApiCall:
    method: str
    args: dict[str, Any]
    at: float
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)
    token: str | None = None  # the token the call came with: which workspace's it was
    team: str | None = None  # the workspace that token belongs to


@dataclass
class Workspace:
    """A workspace Switchboard was installed into through OAuth (oauth.v2.access)."""

    team_id: str
    name: str
    bot_token: str
    bot_user_id: str
    installer: str
    scopes: frozenset[str]


@dataclass
class Fault:
    status: int
    remaining: int | None  # None: until `until`
    until: float | None
    retry_after: int | None = None
    delay: float = 0.0
    methods: frozenset[str] | None = None
    after_commit: bool = False  # do the work, then answer the fault (the answer is lost, the post is not)
    team: str | None = None  # only calls made with this workspace's token (None: every call)

    def applies(self, method: str, now: float, team: str | None = None) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        if self.team is not None and team != self.team:
            return False
        if self.until is not None and now > self.until:
            return False
        return self.remaining is None or self.remaining > 0


@dataclass
class Channel:
    """A conversation as the bot sees it: public, private or a DM, and whether the bot is in it."""

    id: str
    private: bool = False
    bot_member: bool = True

    @property
    def kind(self) -> str:
        if self.id[:1] == "D":
            return "im"
        return "private" if self.private else "public"


@dataclass
class Trigger:
    issued_at: float
    user: str
    exchanged: bool = False


class SlackSandbox:
    """State of the fake Slack workspace; thread-safe, read it from tests while the server runs."""

    def __init__(
        self,
        *,
        bot_token: str = SANDBOX_BOT_TOKEN,
        signing_secret: str = SANDBOX_SIGNING_SECRET,
        channel_interval: float | None = None,
        scopes: Iterable[str] | None = None,
        trigger_ttl: float = TRIGGER_TTL,
        response_url_ttl: float = RESPONSE_URL_TTL,
    ) -> None:
        self.bot_token = bot_token
        self.signing_secret = signing_secret
        self.channel_interval = channel_interval  # None: no rate limit; else seconds between posts
        # The bot token's scopes; by default what installing the repo's manifest.yml grants.
        self.scopes = frozenset(manifest_scopes() if scopes is None else scopes)
        self.trigger_ttl = trigger_ttl
        self.response_url_ttl = response_url_ttl
        self.clock_offset = 0.0  # seconds the sandbox's clock is ahead of the real one (`advance`)
        self.channels: dict[str, Channel] = {}  # declared channels; any other is one the bot is in
        self.triggers: dict[str, Trigger] = {}
        self.response_urls: dict[str, float] = {}  # key -> when it was issued (sandbox clock)
        self.base_url = ""  # set by the server that serves `app`
        self._lock = threading.RLock()
        self._ts = itertools.count(1)
        self.calls: list[ApiCall] = []
        self.messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.ephemerals: list[dict[str, Any]] = []
        self.responses: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.views: dict[str, dict[str, Any]] = {}
        self.home: dict[str, dict[str, Any]] = {}
        self.accepted_at: dict[str, list[float]] = defaultdict(list)  # channel -> times of accepted posts
        self.rate_limited = 0
        self.faults: list[Fault] = []
        self.app_token = SANDBOX_APP_TOKEN
        self.uploads: dict[str, dict[str, Any]] = {}  # file id -> {filename, length, content}
        # Many workspaces: the app's OAuth credentials, codes handed out, workspaces installed, tokens revoked.
        self.client_id = "0000000000.0000000001"
        self.client_secret = "sandbox-client-secret"
        self.oauth_codes: dict[str, tuple[str, str, str]] = {}
        self.oauth_redirects: dict[str, str] = {}  # code → the redirect_uri its install was started with
        self.redirect_urls: list[str] = []  # the app's Redirect URLs (manifest oauth_config.redirect_urls)
        self.workspaces: dict[str, Workspace] = {}
        self.revoked: set[str] = set()
        self._http: httpx.Client | None = None
        self.socket_acks: dict[str, dict[str, Any]] = {}
        self._sockets: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]] = []
        self._acked = threading.Condition(self._lock)
        self.users: dict[str, dict[str, Any]] = {
            "U0REP": _user("U0REP", "Riley Rep", "+61 412 345 678"),
            "U0ADMIN": _user("U0ADMIN", "Avery Admin", "+61 400 000 001"),
            "U0ONCALL": _user("U0ONCALL", "Casey On-call", ""),
        }

    # -- control ---------------------------------------------------------------------------

    def inject(
        self,
        status: int,
        *,
        count: int | None = None,
        seconds: float | None = None,
        retry_after: int | None = None,
        delay: float = 0.0,
        methods: set[str] | None = None,
        after_commit: bool = False,
        team: str | None = None,
    ) -> None:
        """Answer the next `count` calls (or all calls for `seconds`) with `status` (only `team`'s, if given)."""
        if count is None and seconds is None:
            count = 1
        with self._lock:
            self.faults.append(
                Fault(
                    status=status,
                    remaining=count,
                    until=None if seconds is None else time.time() + seconds,
                    retry_after=retry_after,
                    delay=delay,
                    methods=frozenset(methods) if methods else None,
                    after_commit=after_commit,
                    team=team,
                )
            )

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def now(self) -> float:
        """The sandbox's clock: real time plus whatever `advance` added."""
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Move the sandbox's clock forward: trigger_ids and response_urls age without a test waiting."""
        with self._lock:
            self.clock_offset += seconds

    def add_channel(self, channel_id: str, *, private: bool = False, bot_member: bool = True) -> Channel:
        """Declare a channel: private (bots see only those they are in), or one the bot was never invited to."""
        channel = Channel(channel_id, private=private, bot_member=bot_member)
        with self._lock:
            self.channels[channel_id] = channel
        return channel

    def channel(self, channel_id: str) -> Channel:
        with self._lock:
            declared = self.channels.get(channel_id)
        if declared is not None:
            return declared
        # Undeclared: a channel the bot was invited to (README, install step 6), or the bot's DM.
        return Channel(channel_id, private=channel_id[:1] == "G", bot_member=True)

    def post_as_user(self, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> str:
        """A message a person wrote (not the bot): something chat.update must refuse to edit."""
        ts = self._next_ts()
        with self._lock:
            self.messages[channel].append(
                {"ts": ts, "user": user, "text": text, "blocks": [], "thread_ts": thread_ts, "edits": 0}
            )
        return ts

    def issue_trigger(self, user_id: str = "U0REP") -> str:
        """A trigger_id as Slack puts in a command or interaction: one views.open within `trigger_ttl` s."""
        trigger_id = f"{next(self._ts)}.{TEAM_ID[1:]}.{uuid.uuid4().hex[:16]}"
        with self._lock:
            self.triggers[trigger_id] = Trigger(issued_at=self.now(), user=user_id)
        return trigger_id

    def calls_to(self, method: str) -> list[ApiCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.status == 200 and c.response.get("ok")]

    def channel_messages(self, channel: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self.messages.get(channel, [])]

    def all_messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m, channel=ch) for ch, msgs in self.messages.items() for m in msgs]

    def peak_posts_per_second(self, channel: str | None = None) -> int:
        """The most posts accepted for one channel within any 1-second window."""
        with self._lock:
            series = [self.accepted_at[channel]] if channel else list(self.accepted_at.values())
        peak = 0
        for times in series:
            start = 0
            for end, t in enumerate(times):
                while t - times[start] >= 1.0:
                    start += 1
                peak = max(peak, end - start + 1)
        return peak

    def new_response_url(self) -> str:
        """A response_url as Slack puts in a command or interaction: 5 posts within `response_url_ttl` s."""
        key = uuid.uuid4().hex
        with self._lock:
            self.response_urls[key] = self.now()
        return f"{self.base_url}/response/{key}"

    # -- the Slack side of a conversation ------------------------------------------------------

    def command(
        self,
        app_url: str,
        command: str,
        text: str = "",
        *,
        user_id: str = "U0REP",
        channel_id: str = "C0SALES",
        client: httpx.Client | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
        team_id: str = TEAM_ID,
    ) -> tuple[httpx.Response, str]:
        """Send a signed slash command to the app (from workspace `team_id`); return its HTTP answer and the
        response_url used."""
        response_url = self.new_response_url()
        body = slash_command_body(
            command,
            text,
            user_id=user_id,
            channel_id=channel_id,
            response_url=response_url,
            trigger_id=self.issue_trigger(user_id),
            team_id=team_id,
        )
        return self._send(app_url, body, client, timestamp, secret), response_url

    def event(self, app_url: str, body: dict[str, Any]) -> httpx.Response:
        """Deliver an Events API body (`bot.sandbox.payloads.event_callback`) to the app, signed."""
        text = json.dumps(body)
        headers = {"Content-Type": "application/json", **signature_headers(self.signing_secret, text)}
        return self._client().post(f"{app_url}/slack/events", content=text, headers=headers)

    def interact(self, app_url: str, payload: dict[str, Any], *, client: httpx.Client | None = None) -> httpx.Response:
        """Send a signed interactivity payload (button click, modal submission) to the app.

        Slack gives every interaction a new trigger_id: the payload's own is replaced by a fresh one,
        unless it is one this sandbox issued (to replay a used or stale trigger on purpose).
        """
        payload = dict(payload)
        with self._lock:
            known = payload.get("trigger_id") in self.triggers
        if not known:
            payload["trigger_id"] = self.issue_trigger(str((payload.get("user") or {}).get("id") or ""))
        return self._send(app_url, interaction_body(payload), client, None, None)

    def _send(
        self,
        app_url: str,
        body: str,
        client: httpx.Client | None,
        timestamp: int | None,
        secret: str | None,
    ) -> httpx.Response:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            **signature_headers(secret or self.signing_secret, body, timestamp),
        }
        url = f"{app_url}/slack/events"
        return (client or self._client()).post(url, content=body, headers=headers)

    def _client(self) -> httpx.Client:
        # One keep-alive client: a fresh httpx.Client costs ~25 ms (it builds an SSL context).
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(timeout=10)
            return self._http

    # -- the Web API ---------------------------------------------------------------------------

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _fault_for(self, method: str, token: str | None = None) -> Fault | None:
        now = time.time()
        workspace = self.workspace_of(token)
        team = workspace.team_id if workspace else TEAM_ID
        with self._lock:
            self.faults = [f for f in self.faults if f.until is None or f.until >= now]
            for fault in self.faults:
                if fault.applies(method, now, team):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    def _rate_limit(self, method: str, channel: str) -> int | None:
        """Seconds to wait if this post would break the per-channel limit, else None (and count it)."""
        if method not in RATE_LIMITED_METHODS:
            return None
        now = time.time()
        with self._lock:
            history = self.accepted_at[channel]
            if self.channel_interval and history and now - history[-1] < self.channel_interval:
                self.rate_limited += 1
                return max(1, math.ceil(self.channel_interval - (now - history[-1])))
            history.append(now)
        return None

    def handle(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        handler = getattr(self, "_api_" + method.replace(".", "_"), None)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        result: dict[str, Any] = handler(args)
        return result

    def refusal(self, method: str, args: dict[str, Any], token: str | None) -> dict[str, Any] | None:
        """What Slack answers before a method runs: a missing or wrong token, or a scope the token lacks."""
        if method == "oauth.v2.access":
            return None  # no token: the app's client id and secret are its arguments
        if method in APP_METHOD_SCOPES:
            expected, other, granted = self.app_token, self.bot_token, APP_TOKEN_SCOPES
            needed: str | None = APP_METHOD_SCOPES[method]
        elif method in BOT_METHOD_SCOPES:
            expected, other, granted = self.bot_token, self.app_token, self.scopes
            rule = BOT_METHOD_SCOPES[method]
            if isinstance(rule, dict):
                channel = str(args.get("channel") or "")
                needed = rule[self.channel(self._channel_id(channel)).kind] if channel else None
            else:
                needed = rule
        else:
            return {"ok": False, "error": "unknown_method"}
        if not token:
            return {"ok": False, "error": "not_authed"}
        if token == other:  # an app-level token for a bot method, or the other way round
            return {"ok": False, "error": "not_allowed_token_type"}
        workspace = self.workspace_of(token)
        if workspace is not None and method in BOT_METHOD_SCOPES:
            granted = workspace.scopes
        elif token != expected:
            return {"ok": False, "error": "token_revoked" if token in self.revoked else "invalid_auth"}
        if needed is not None and needed not in granted:
            # Slack's shape: {"ok": false, "error": "missing_scope", "needed": "...", "provided": "a,b"}
            return {"ok": False, "error": "missing_scope", "needed": needed, "provided": ",".join(sorted(granted))}
        return None

    def _post_refusal(self, channel_id: str) -> dict[str, Any] | None:
        """chat.postMessage's membership rule: a public channel the bot isn't in needs chat:write.public.

        chat.postMessage reference: `not_in_channel`; the chat:write.public scope page: "Send messages
        to channels your Slack app isn't a member of". A private channel the bot isn't in is invisible
        to it (`channel_not_found`).
        """
        channel = self.channel(channel_id)
        if channel.kind == "im" or channel.bot_member:
            return None
        if channel.private:
            return {"ok": False, "error": "channel_not_found"}
        if "chat:write.public" in self.scopes:
            return None
        return {"ok": False, "error": "not_in_channel"}

    def _read_refusal(self, channel_id: str) -> dict[str, Any] | None:
        """History and threads only of conversations the bot is in.

        channels:history scope page: "View messages and other content in public channels that your
        Slack app has been added to" (conversations.history: `not_in_channel`); chat:write.public
        grants no reading.
        """
        if not channel_id:
            return {"ok": False, "error": "channel_not_found"}
        channel = self.channel(channel_id)
        if channel.kind == "im" or channel.bot_member:
            return None
        return {"ok": False, "error": "channel_not_found" if channel.private else "not_in_channel"}

    def _api_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        ws_url = self.base_url.replace("http://", "ws://", 1)
        return {"ok": True, "url": f"{ws_url}/socket-mode?ticket={uuid.uuid4().hex}"}

    # -- several workspaces (OAuth) -----------------------------------------------------------------

    def workspace_of(self, token: str | None) -> Workspace | None:
        with self._lock:
            return next((w for w in self.workspaces.values() if w.bot_token == token), None)

    def issue_code(self, team_id: str, *, name: str = "", installer: str = "U0INSTALLER") -> str:
        """What Slack hands the installer's browser after "Allow": a code for oauth.v2.access."""
        code = f"code-{uuid.uuid4().hex[:12]}"
        with self._lock:
            self.oauth_codes[code] = (team_id, name or f"Workspace {team_id}", installer)
        return code

    async def _authorize_endpoint(self, request: Request) -> Response:
        """Slack's "Add to Slack" page, as the installer's browser meets it: the app's client_id and scopes are
        checked, then (the installer having chosen their workspace and clicked Allow) the browser is sent to
        `redirect_uri` with a one-time code and the same `state`. Which workspace the browser is signed into is
        the sandbox's `team` parameter; `deny=1` is the installer clicking Cancel."""
        query = request.query_params
        if query.get("client_id") != self.client_id:
            return PlainTextResponse("invalid_client_id", status_code=400)
        asked = {s for s in (query.get("scope") or "").replace(" ", ",").split(",") if s}
        if not asked or not asked <= self.scopes:
            return PlainTextResponse(f"invalid_scope: {', '.join(sorted(asked - self.scopes)) or 'none'}", 400)
        # Without redirect_uri Slack uses the app's (first) configured Redirect URL; with one, it must be one of them.
        redirect = query.get("redirect_uri") or (self.redirect_urls[0] if self.redirect_urls else "")
        if not redirect or (self.redirect_urls and not any(redirect.startswith(u) for u in self.redirect_urls)):
            return PlainTextResponse("bad_redirect_uri", status_code=400)
        state = query.get("state") or ""
        if query.get("deny"):
            return Response(
                status_code=302,
                headers={"location": f"{redirect}?{urlencode({'error': 'access_denied', 'state': state})}"},
            )
        code = self.issue_code(
            query.get("team") or TEAM_ID,
            installer=query.get("user") or "U0INSTALLER",
            name=query.get("team_name") or "",
        )
        with self._lock:
            self.oauth_redirects[code] = redirect
        return Response(
            status_code=302, headers={"location": f"{redirect}?{urlencode({'code': code, 'state': state})}"}
        )

    def revoke(self, team_id: str) -> None:
        """The workspace uninstalled the app: its token no longer works."""
        with self._lock:
            workspace = self.workspaces.pop(team_id, None)
            if workspace is not None:
                self.revoked.add(workspace.bot_token)

    def _api_oauth_v2_access(self, args: dict[str, Any]) -> dict[str, Any]:
        # oauth.v2.access reference: client_id, client_secret, code, redirect_uri; errors invalid_client_id,
        # bad_client_secret, invalid_code, bad_redirect_uri. A code works once.
        if args.get("client_id") != self.client_id:
            return {"ok": False, "error": "invalid_client_id"}
        if args.get("client_secret") != self.client_secret:
            return {"ok": False, "error": "bad_client_secret"}
        with self._lock:
            issued = self.oauth_codes.pop(str(args.get("code") or ""), None)
            redirect = self.oauth_redirects.pop(str(args.get("code") or ""), None)
        if issued is None:
            return {"ok": False, "error": "invalid_code"}
        if redirect is not None and args.get("redirect_uri") not in (None, "", redirect):
            return {"ok": False, "error": "bad_redirect_uri"}  # must be the one the install started with
        team_id, name, installer = issued
        workspace = Workspace(
            team_id,
            name,
            f"xoxb-{team_id.lower()}-{uuid.uuid4().hex[:16]}",
            f"U0BOT{team_id[-4:]}",
            installer,
            frozenset(self.scopes),
        )
        with self._lock:
            self.workspaces[team_id] = workspace
        return {
            "ok": True,
            "access_token": workspace.bot_token,
            "token_type": "bot",
            "scope": ",".join(sorted(workspace.scopes)),
            "bot_user_id": workspace.bot_user_id,
            "app_id": "A0SWITCHBOARD",
            "team": {"name": name, "id": team_id},
            "enterprise": None,
            "authed_user": {"id": installer},
            "is_enterprise_install": False,
        }

    def _api_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        workspace = self.workspace_of(args.get("_token"))
        if workspace is not None:
            return {
                "ok": True,
                "url": f"https://{workspace.team_id.lower()}.slack.com/",
                "team": workspace.name,
                "user": "switchboard",
                "team_id": workspace.team_id,
                "user_id": workspace.bot_user_id,
                "bot_id": f"B{workspace.bot_user_id}",
                "is_enterprise_install": False,
            }
        return {
            "ok": True,
            "url": "https://sandbox.slack.com/",
            "team": "Switchboard Sandbox",
            "user": "switchboard",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": "B0SWITCHBOARD",
            "is_enterprise_install": False,
        }

    def _message_errors(self, args: dict[str, Any]) -> dict[str, Any] | None:
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except ValueError:
                return {"ok": False, "error": "invalid_blocks_format"}
            args["blocks"] = blocks
        if not args.get("text") and not blocks:
            return {"ok": False, "error": "no_text"}
        if len(args.get("text") or "") > MESSAGE_TEXT_MAX:
            return {"ok": False, "error": "msg_too_long"}
        if blocks is not None:
            errors = check_blocks(blocks)
            if errors:
                return {
                    "ok": False,
                    "error": "invalid_blocks",
                    "errors": errors,
                    "response_metadata": {"messages": errors},
                }
        return None

    @staticmethod
    def _channel_id(channel: str) -> str:
        # Posting to a user id posts into the bot's DM with that user.
        return "D" + channel[1:] if channel[:1] in ("U", "W") else channel

    def _api_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        problem = self._message_errors(args)
        if problem:
            return problem
        channel = self._channel_id(args["channel"])
        refused = self._post_refusal(channel)
        if refused:
            return refused
        ts = self._next_ts()
        message = {
            "ts": ts,
            "user": BOT_USER_ID,
            "text": args.get("text", ""),
            "blocks": args.get("blocks") or [],
            "thread_ts": args.get("thread_ts"),
            "edits": 0,
            "reply_broadcast": bool(args.get("reply_broadcast")),
        }
        if isinstance(args.get("metadata"), dict):
            message["metadata"] = args["metadata"]
        with self._lock:
            if message["thread_ts"] and not any(m["ts"] == message["thread_ts"] for m in self.messages[channel]):
                return {"ok": False, "error": "thread_not_found"}
            self.messages[channel].append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _api_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        problem = self._message_errors(args)
        if problem:
            return problem
        channel = args["channel"]
        if self.channel(channel).private and not self.channel(channel).bot_member:
            return {"ok": False, "error": "channel_not_found"}
        with self._lock:
            for message in self.messages.get(channel, []):
                if message["ts"] == args.get("ts"):
                    if message["user"] != BOT_USER_ID:
                        # chat.update reference: `cant_update_message` — "Authenticated user does not
                        # have permission to update this message": a bot edits only its own posts.
                        return {"ok": False, "error": "cant_update_message"}
                    message["text"] = args.get("text", message["text"])
                    if "blocks" in args:
                        message["blocks"] = args["blocks"]
                    message["edits"] += 1
                    return {"ok": True, "channel": channel, "ts": message["ts"], "text": message["text"]}
        return {"ok": False, "error": "message_not_found"}

    def _api_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        problem = self._message_errors(args)
        if problem:
            return problem
        if not args.get("user"):
            return {"ok": False, "error": "user_not_found"}
        with self._lock:
            self.ephemerals.append(dict(args))
        return {"ok": True, "message_ts": self._next_ts()}

    def _open_view(self, view: Any, view_id: str | None = None) -> dict[str, Any]:
        if isinstance(view, str):
            view = json.loads(view)
        errors = check_view(view)
        if errors:
            return {"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": errors}}
        view_id = view_id or f"V{next(self._ts):08d}"
        stored = dict(view, id=view_id, hash=uuid.uuid4().hex[:12])
        with self._lock:
            self.views[view_id] = stored
        return {"ok": True, "view": stored}

    def trigger_problem(self, trigger_id: str) -> str | None:
        """Why Slack would refuse this trigger_id now (views.open's errors), or None."""
        with self._lock:
            trigger = self.triggers.get(trigger_id)
            if trigger is None:
                return "invalid_trigger_id"
            if trigger.exchanged:
                return "exchanged_trigger_id"
            if self.now() - trigger.issued_at > self.trigger_ttl:
                return "expired_trigger_id"
        return None

    def _api_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger_id = str(args.get("trigger_id") or "")
        with self._lock:  # one trigger, one view: two racing calls can't both exchange it
            problem = self.trigger_problem(trigger_id)
            if problem:
                return {"ok": False, "error": problem}
            result = self._open_view(args.get("view"))
            if result["ok"]:
                self.triggers[trigger_id].exchanged = True
        return result

    def _api_views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._api_views_open(args)

    def _api_views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id = args.get("view_id")
        if not view_id and args.get("external_id"):
            view_id = next((k for k, v in self.views.items() if v.get("external_id") == args["external_id"]), None)
        if not view_id or view_id not in self.views:
            return {"ok": False, "error": "not_found"}
        return self._open_view(args.get("view"), view_id)

    def _api_views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user_id")
        if not user_id:
            return {"ok": False, "error": "invalid_arguments"}
        result = self._open_view(args.get("view"))
        if result["ok"]:
            with self._lock:
                self.home[user_id] = result["view"]
        return result

    def _api_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        filename, length = args.get("filename"), str(args.get("length") or "")
        if not filename or not length.isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ts):08d}"
        with self._lock:
            self.uploads[file_id] = {"filename": filename, "length": int(length), "content": None}
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _api_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            files = json.loads(args.get("files") or "[]")
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        channel = args.get("channel_id")
        shared = []
        with self._lock:
            for item in files:
                upload = self.uploads.get(item.get("id"))
                if upload is None or upload["content"] is None:
                    return {"ok": False, "error": "file_not_found"}
                shared.append(
                    {
                        "id": item["id"],
                        "name": upload["filename"],
                        "title": item.get("title"),
                        "size": len(upload["content"]),
                    }
                )
            if channel:
                thread_ts = args.get("thread_ts")
                if thread_ts and not any(m["ts"] == thread_ts for m in self.messages.get(channel, [])):
                    return {"ok": False, "error": "thread_not_found"}
                self.messages[channel].append(
                    {
                        "ts": self._next_ts(),
                        "user": BOT_USER_ID,
                        "text": str(args.get("initial_comment") or ""),  # "The message text introducing the file"
                        "blocks": [],
                        "thread_ts": thread_ts,
                        "edits": 0,
                        "files": shared,
                    }
                )
        return {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in shared]}

    def _api_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        refused = self._read_refusal(channel)
        if refused:
            return refused
        oldest = float(args.get("oldest") or 0)
        with self._lock:
            # conversations.replies reference: history "returns only parent messages"; a reply shows in
            # the channel only when it was also sent to the channel (reply_broadcast).
            found = [
                dict(m)
                for m in self.messages.get(channel, [])
                if float(m["ts"]) >= oldest and (not m["thread_ts"] or m.get("reply_broadcast"))
            ]
        found.reverse()  # newest first, as Slack returns them
        limit = int(args.get("limit") or 100)
        _metadata_unless_asked(found, args)
        return {"ok": True, "messages": found[:limit], "has_more": len(found) > limit}

    def _api_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """A thread: its parent first, then its replies, oldest first (conversations.replies reference)."""
        channel = str(args.get("channel") or "")
        refused = self._read_refusal(channel)
        if refused:
            return refused
        ts = str(args.get("ts") or "")
        oldest = float(args.get("oldest") or 0)
        with self._lock:
            messages = self.messages.get(channel, [])
            parent = next((m for m in messages if m["ts"] == ts), None)
            if parent is None:  # "ts must be the timestamp of an existing message"
                return {"ok": False, "error": "thread_not_found"}
            replies = [] if parent["thread_ts"] else [m for m in messages if m["thread_ts"] == ts]
            found = [dict(parent)] + [dict(m) for m in replies if float(m["ts"]) >= oldest]
        limit = int(args.get("limit") or 1000)
        _metadata_unless_asked(found, args)
        return {"ok": True, "messages": found[:limit], "has_more": len(found) > limit}

    def _api_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = str(args.get("channel") or "")
        if not channel_id:
            return {"ok": False, "error": "channel_not_found"}
        channel = self.channel(channel_id)
        if channel.private and not channel.bot_member:
            return {"ok": False, "error": "channel_not_found"}
        return {
            "ok": True,
            "channel": {
                "id": channel.id,
                "is_channel": channel.kind == "public",
                "is_group": channel.kind == "private",
                "is_im": channel.kind == "im",
                "is_private": channel.kind != "public",
                "is_member": channel.bot_member,
            },
        }

    def _api_conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = str(args.get("users") or "").split(",")
        if not users or not users[0]:
            return {"ok": False, "error": "users_list_not_supplied"}
        return {"ok": True, "channel": {"id": self._channel_id(users[0])}}

    def _api_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}

    def _api_users_profile_get(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "profile": user["profile"]}

    # -- the ASGI app --------------------------------------------------------------------------

    def asgi(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/{method}", self._api_endpoint, methods=["POST", "GET"]),
                Route("/oauth/v2/authorize", self._authorize_endpoint, methods=["GET"]),
                Route("/response/{key}", self._response_endpoint, methods=["POST"]),
                Route("/upload/{file_id}", self._upload_endpoint, methods=["POST"]),
                Route("/_sandbox/state", self._state_endpoint, methods=["GET"]),
                WebSocketRoute("/socket-mode", self._socket_endpoint),
            ]
        )

    async def _api_endpoint(self, request: Request) -> Response:
        method = request.path_params["method"]
        args = await _request_args(request)
        token = args.pop("token", None)
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            token = auth.removeprefix("Bearer ")
        elif auth.startswith("Basic ") and method.startswith("oauth."):
            # oauth.v2.access takes the app's credentials as HTTP Basic auth or as client_id/client_secret
            # parameters (Slack's reference); slack-sdk sends Basic.
            try:
                user, _, password = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user = password = ""
            args.setdefault("client_id", user)
            args.setdefault("client_secret", password)
        fault = self._fault_for(method, token)
        if fault is not None and fault.after_commit and self.refusal(method, args, token) is None:
            self.handle(method, dict(args))
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            self._record(method, args, fault.status, {"ok": False, "error": f"injected_{fault.status}"})
            if fault.status == 429:
                return JSONResponse(
                    {"ok": False, "error": "ratelimited"},
                    status_code=429,
                    headers={"Retry-After": str(fault.retry_after or 1)},
                )
            if fault.status >= 500:
                return PlainTextResponse("upstream connect error", status_code=fault.status)
        refused = self.refusal(method, args, token)
        if refused is not None:
            self._record(method, args, 200, refused, token)
            return JSONResponse(refused)
        channel = str(args.get("channel") or "")
        wait = self._rate_limit(method, self._channel_id(channel)) if channel else None
        if wait is not None:
            self._record(method, args, 429, {"ok": False, "error": "ratelimited"}, token)
            return JSONResponse(
                {"ok": False, "error": "ratelimited"}, status_code=429, headers={"Retry-After": str(wait)}
            )
        result = self.handle(method, {**args, "_token": token} if method == "auth.test" else args)
        if not result.get("ok") and method in RATE_LIMITED_METHODS and channel:
            with self._lock:  # a refused post does not use up the channel's allowance
                history = self.accepted_at[self._channel_id(channel)]
                if history:
                    history.pop()
        self._record(method, args, 200, result, token)
        return JSONResponse(result)

    def _record(
        self, method: str, args: dict[str, Any], status: int, result: dict[str, Any], token: str | None = None
    ) -> None:
        workspace = self.workspace_of(token)
        team = workspace.team_id if workspace else (TEAM_ID if token == self.bot_token else None)
        with self._lock:
            self.calls.append(ApiCall(method, args, time.time(), status, result, token, team))

    async def _upload_endpoint(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        content = await request.body()
        with self._lock:
            upload = self.uploads.get(file_id)
            if upload is None:
                return PlainTextResponse("invalid upload url", status_code=404)
            if len(content) != upload["length"]:
                return PlainTextResponse("length mismatch", status_code=400)
            upload["content"] = content
        return PlainTextResponse(f"OK - {len(content)}")

    async def _response_endpoint(self, request: Request) -> Response:
        key = request.path_params["key"]
        try:
            body = json.loads(await request.body())
        except ValueError:
            return PlainTextResponse("invalid_payload", status_code=400)
        with self._lock:
            # "up to 5 times within 30 minutes" (handling-user-interaction#message_responses). Slack's
            # reference doesn't list the answers; these are the bodies hooks.slack.com sends: 404
            # no_service for a URL it never issued, expired_url after 30 min, used_url after 5 posts.
            issued_at = self.response_urls.get(key)
            if issued_at is None:
                return PlainTextResponse("no_service", status_code=404)
            if self.now() - issued_at > self.response_url_ttl:
                return PlainTextResponse("expired_url", status_code=404)
            if len(self.responses[key]) >= RESPONSE_URL_USES:
                return PlainTextResponse("used_url", status_code=404)
        if body.get("blocks") is not None:
            errors = check_blocks(body["blocks"])
            if errors:
                return PlainTextResponse("invalid_blocks", status_code=400)
        with self._lock:
            self.responses[key].append(body)
        return PlainTextResponse("ok")

    async def _socket_endpoint(self, websocket: WebSocket) -> None:
        await websocket.accept()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        entry = (asyncio.get_running_loop(), queue)
        with self._lock:
            self._sockets.append(entry)
        await websocket.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "connection_info": {"app_id": "A0SWITCHBOARD"},
                "debug_info": {"host": "sandbox", "approximate_connection_time": 3600},
            }
        )

        async def pump() -> None:
            while True:
                await websocket.send_json(await queue.get())

        sender = asyncio.create_task(pump())
        try:
            while True:
                message = await websocket.receive_json()
                envelope_id = message.get("envelope_id")
                if envelope_id:
                    with self._acked:
                        self.socket_acks[envelope_id] = message.get("payload") or {}
                        self._acked.notify_all()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            sender.cancel()
            with self._lock:
                self._sockets.remove(entry)

    @property
    def socket_connections(self) -> int:
        with self._lock:
            return len(self._sockets)

    def socket_command(
        self,
        command: str,
        text: str = "",
        *,
        user_id: str = "U0REP",
        channel_id: str = "C0SALES",
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Send a slash command over the app's Socket Mode connection; return the ack's payload."""
        with self._lock:
            if not self._sockets:
                raise RuntimeError("no app is connected in Socket Mode")
            loop, queue = self._sockets[-1]
        envelope_id = uuid.uuid4().hex
        payload = {
            "token": "verification_token",
            "team_id": TEAM_ID,
            "team_domain": "sandbox",
            "channel_id": channel_id,
            "channel_name": "sales",
            "user_id": user_id,
            "user_name": "rep",
            "command": command,
            "text": text,
            "api_app_id": "A0SWITCHBOARD",
            "response_url": self.new_response_url(),
            "trigger_id": self.issue_trigger(user_id),
        }
        envelope = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": "slash_commands",
            "accepts_response_payload": True,
        }
        loop.call_soon_threadsafe(queue.put_nowait, envelope)
        with self._acked:
            if not self._acked.wait_for(lambda: envelope_id in self.socket_acks, timeout):
                raise TimeoutError(f"no ack for {command} {text!r} within {timeout} s")
            return self.socket_acks[envelope_id]

    def responses_to(self, response_url: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.responses.get(response_url.rsplit("/", 1)[-1], []))

    async def _state_endpoint(self, request: Request) -> Response:
        with self._lock:
            return JSONResponse(
                {
                    "calls": len(self.calls),
                    "messages": {ch: len(msgs) for ch, msgs in self.messages.items()},
                    "rate_limited": self.rate_limited,
                }
            )


async def _request_args(request: Request) -> dict[str, Any]:
    """Slack methods take JSON bodies, form bodies or query strings; merge what was sent."""
    args: dict[str, Any] = dict(request.query_params)
    raw = await request.body()
    content_type = request.headers.get("content-type", "")
    if raw:
        if "json" in content_type:
            try:
                body = json.loads(raw)
                if isinstance(body, dict):
                    args.update(body)
            except ValueError:
                pass
        else:
            args.update(dict(parse_qsl(raw.decode(), keep_blank_values=True)))
    return args


def _metadata_unless_asked(messages: list[dict[str, Any]], args: dict[str, Any]) -> None:
    """Message metadata is returned only with include_all_metadata (conversations.history / replies)."""
    if str(args.get("include_all_metadata", "")).lower() not in ("true", "1"):
        for message in messages:
            message.pop("metadata", None)


def _user(user_id: str, name: str, phone: str) -> dict[str, Any]:
    return {
        "id": user_id,
        "team_id": TEAM_ID,
        "name": name.split()[0].lower(),
        "real_name": name,
        "tz": "Australia/Sydney",
        "is_bot": False,
        "profile": {"real_name": name, "display_name": name.split()[0], "phone": phone, "email": ""},
    }
