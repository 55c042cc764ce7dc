"""The HTTP surface as an attacker meets it: oversized, unsigned, replayed, slow and deeply nested requests,
and a database another process has locked. Real HTTP to the running app; raw sockets where httpx would
refuse to misbehave."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot import guard
from bot.sandbox.signing import signature_headers, slash_command_body
from bot.sandbox.stack import Stack
from tests.helpers import AVANSER_CALL, EXOTEL_CALL, call, inbox, on_app, send, wait_for

MB = 1024 * 1024


# -- raw HTTP ---------------------------------------------------------------------------------------------


def connect(url: str, timeout: float = 10.0) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=timeout)


def read_response(sock: socket.socket) -> tuple[int, bytes, bool]:
    """(status, raw head and body, whether the server closed the connection), reading until close or timeout."""
    data = b""
    closed = False
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep and b"content-length" in head.lower():
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(body) >= length and b"connection: close" not in head.lower():
                    break
    except ConnectionResetError:
        closed = True
    except TimeoutError:
        pass
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    return status, data, closed


def flood(url: str, path: str, size: int, *, chunked: bool = False, headers: str = "") -> tuple[int, int]:
    """POST `size` bytes (declared, or chunked without a length) as fast as the server takes them.

    Returns (status answered, bytes the server took before answering/closing)."""
    sock = connect(url)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}{framing}\r\n\r\n".encode()
    )
    piece = b"[" * 65536
    sent = 0
    sock.settimeout(5)
    try:
        while sent < size:
            frame = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
            sock.sendall(frame)
            sent += len(piece)
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    status, _, _ = read_response(sock)
    sock.close()
    return status, sent


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def slack_post(http: httpx.Client, stack: Stack, body: str, headers: dict[str, str]) -> httpx.Response:
    return http.post(
        f"{stack.url}/slack/events",
        content=body,
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )


def counting_command(stack: Stack, name: str) -> list[str]:
    """Register a slash command that records each time a listener runs."""
    ran: list[str] = []
    bolt = stack.app_server.app.state.bolt  # type: ignore[union-attr]

    @bolt.command(name)
    async def count(ack, body):
        ran.append(body["text"])
        await ack({"text": f"ran {len(ran)}", "response_type": "ephemeral"})

    return ran


# -- 1. body caps before parsing --------------------------------------------------------------------------


def test_declared_20_mb_unsigned_post_is_413_before_a_byte_is_read(stack: Stack, http: httpx.Client) -> None:
    ran = counting_command(stack, "/count")
    sock = connect(stack.url)
    started = time.monotonic()
    sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 20971520\r\n\r\n")  # and no body
    status, raw, closed = read_response(sock)
    assert status == 413 and closed and time.monotonic() - started < 1
    assert b"connection: close" in raw.lower()
    assert ran == []
    assert stack.slack.command(stack.url, "/count", "after", client=http)[0].json()["text"] == "ran 1"


def test_chunked_bodies_are_counted_as_they_arrive(stack: Stack) -> None:
    # Unsigned: refused before a byte of the body is read.
    status, sent = flood(stack.url, "/slack/events", 50 * MB, chunked=True)
    assert status == 401 and sent < 20 * MB
    # Signature headers that look right get the body read, counted, and cut off at 1 MB.
    signed = "".join(f"{k}: {v}\r\n" for k, v in signature_headers("guess", "x").items())
    status, sent = flood(stack.url, "/slack/events", 50 * MB, chunked=True, headers=signed)
    assert status == 413
    assert sent < 20 * MB  # cut off after the cap (plus what the socket buffers held), not after 50 MB
    token = f"?token={stack.webhook_token}"
    status, sent = flood(stack.url, f"/hooks/exotel/call{token}", 5 * MB, chunked=True)
    assert status == 413
    assert inbox(stack) == []


def test_signed_slack_body_over_1_mb_is_413(stack: Stack, http: httpx.Client) -> None:
    ran = counting_command(stack, "/count")
    body = slash_command_body(
        "/count", "x" * (MB + 10), user_id="U0REP", channel_id="C0", response_url="r", trigger_id="t"
    )
    answer = slack_post(http, stack, body, signature_headers(stack.slack.signing_secret, body))
    assert answer.status_code == 413 and ran == []
    small = slash_command_body(
        "/count", "x" * (MB // 2), user_id="U0REP", channel_id="C0", response_url="r", trigger_id="t"
    )
    assert slack_post(http, stack, small, signature_headers(stack.slack.signing_secret, small)).status_code == 200
    assert len(ran) == 1


def test_webhook_body_over_64_kb_is_413_and_nothing_stored(stack: Stack, http: httpx.Client) -> None:
    big = {**EXOTEL_CALL, "padding": "x" * (64 * 1024)}
    answer = http.post(stack.hook_url("/hooks/exotel/call"), params={"token": stack.webhook_token}, json=big)
    assert answer.status_code == 413
    assert inbox(stack) == []
    assert send(http, stack, "POST", "/hooks/exotel/call", EXOTEL_CALL).status_code == 200
    text = http.get(f"{stack.url}/metrics").text
    assert 'switchboard_hook_requests_total{outcome="refused_413",route="exotel.call"} 1.0' in text


def test_memory_stays_flat_under_four_50_mb_unsigned_posts(stack: Stack, http: httpx.Client) -> None:
    signed = "".join(f"{k}: {v}\r\n" for k, v in signature_headers("guess", "x").items())
    before = rss_mb()
    with ThreadPoolExecutor(4) as pool:
        declared = list(pool.map(lambda _: flood(stack.url, "/slack/events", 50 * MB), range(4)))
        chunked = list(
            pool.map(lambda _: flood(stack.url, "/slack/events", 50 * MB, chunked=True, headers=signed), range(4))
        )
    after = rss_mb()
    assert [s for s, _ in declared + chunked] == [413] * 8
    assert after - before < 30, f"RSS {before:.0f} -> {after:.0f} MB"
    assert stack.slack.command(stack.url, "/numbers", "help", client=http)[0].status_code == 200


# -- 2. signature before parsing; replays ------------------------------------------------------------------


def test_unsigned_or_stale_is_401_before_the_body_is_sent(stack: Stack) -> None:
    stale = str(int(time.time()) - 301)
    for headers in ("", f"X-Slack-Request-Timestamp: {stale}\r\nX-Slack-Signature: v0=00\r\n"):
        sock = connect(stack.url)
        sock.sendall(
            f"POST /slack/events HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: 500000\r\n\r\n".encode()
        )  # the body never follows: the answer must not wait for it
        status, _, closed = read_response(sock)
        assert (status, closed) == (401, True)


def test_bad_signature_reaches_no_listener(stack: Stack, http: httpx.Client) -> None:
    ran = counting_command(stack, "/count")
    body = slash_command_body("/count", "x", user_id="U0REP", channel_id="C0", response_url="r", trigger_id="t")
    headers = signature_headers("not-the-secret", body)
    assert slack_post(http, stack, body, headers).status_code == 401
    assert ran == []


def test_the_same_signed_request_replayed_is_handled_once(stack: Stack, http: httpx.Client) -> None:
    ran = counting_command(stack, "/count")
    body = slash_command_body("/count", "buy", user_id="U0REP", channel_id="C0", response_url="r", trigger_id="t")
    headers = signature_headers(stack.slack.signing_secret, body)
    answers = [slack_post(http, stack, body, headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json()["text"] == "ran 1"
    assert [a.content for a in answers[1:]] == [b"", b""]  # Slack's ack: nothing shown, nothing retried
    assert ran == ["buy"]
    # Slack's own retries and new requests carry a new timestamp, hence a new signature.
    later = signature_headers(stack.slack.signing_secret, body, timestamp=int(time.time()) - 2)
    assert slack_post(http, stack, body, later).json()["text"] == "ran 2"
    assert 'switchboard_slack_requests_total{status="replay"} 2.0' in http.get(f"{stack.url}/metrics").text


def test_replay_set_forgets_a_signature_once_it_could_no_longer_be_accepted() -> None:
    now = [1_000_000.0]
    replays = guard.ReplayGuard(clock=lambda: now[0])
    assert replays.first_time("v0=a", 1_000_000)
    assert not replays.first_time("v0=a", 1_000_000)
    now[0] += 299
    assert not replays.first_time("v0=a", 1_000_000)
    assert replays.first_time("v0=b", 1_000_299)
    now[0] += 3  # v0=a's timestamp is now more than 5 minutes old: the verifier refuses it anyway
    assert replays.first_time("v0=c", 1_000_302)
    assert len(replays) == 2


# -- 3. slow bodies, slow heads, deep JSON -----------------------------------------------------------------


@pytest.fixture
def quick_body_timeout(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(guard, "BODY_TIMEOUT", 1.0)
    return 1.0


@pytest.mark.parametrize("path", ["/slack/events", "/hooks/exotel/call"])
def test_a_dripped_body_is_cut_off(tmp_path: Path, quick_body_timeout: float, path: str) -> None:
    with Stack(tmp_path, outbox_channel_interval=0) as stack:
        sock = connect(stack.url)
        started = time.monotonic()
        headers = signature_headers(stack.slack.signing_secret, "x" * 1000)
        sock.sendall(
            (
                f"POST {path}?token={stack.webhook_token} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                + "\r\n"
            ).encode()
        )

        def drip() -> None:
            try:
                for _ in range(40):
                    sock.sendall(b"x")
                    time.sleep(0.1)
            except OSError:
                pass

        dripper = threading.Thread(target=drip)
        dripper.start()
        status, _, closed = read_response(sock)
        took = time.monotonic() - started
        dripper.join()
        assert (status, closed) == (408, True)
        assert quick_body_timeout <= took < quick_body_timeout + 1.5
        assert inbox(stack) == []


def test_the_shipped_body_timeout_is_10_s() -> None:
    assert guard.BODY_TIMEOUT == 10.0 and guard.HEADER_TIMEOUT == 10.0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[" * 200_000 + b"]" * 200_000, 413),  # the attack as reported: over the 64 KB cap
        (b"[" * 30_000 + b"]" * 30_000, 400),  # under the cap: deeper than the parser's recursion limit
        (b'{"a":' * 100 + b"1" + b"}" * 100, 400),  # parses, but nests past MAX_DEPTH
        (json.dumps({**EXOTEL_CALL, "x": [[[1]]]}).encode(), 200),
    ],
)
def test_deep_json_is_refused_never_500(stack: Stack, http: httpx.Client, body: bytes, status: int) -> None:
    answer = http.post(
        stack.hook_url("/hooks/exotel/call"),
        params={"token": stack.webhook_token},
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == status, answer.text
    if status == 400:
        assert "nested deeper than 32" in answer.json()["error"]
    assert len(inbox(stack)) == (status == 200)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Any]:
    """A tiny app behind `switchboard serve`'s uvicorn config, with a 0.5 s head deadline."""
    import uvicorn

    from bot.cli import server_config
    from bot.sandbox.server import free_socket

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    sock = free_socket()
    config = server_config(app, "127.0.0.1", sock.getsockname()[1], "warning", header_timeout=0.5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    sock.close()


def test_serve_cuts_off_a_slow_or_endless_head(served: str) -> None:
    idle = connect(served)  # says nothing at all
    slow = connect(served)
    slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()

    def drip() -> None:
        try:
            for _ in range(30):
                slow.sendall(b"X")
                time.sleep(0.1)
        except OSError:
            pass

    dripper = threading.Thread(target=drip)
    dripper.start()
    assert read_response(slow)[:1] == (408,)
    assert time.monotonic() - started < 1.5
    dripper.join()
    assert read_response(idle)[2] is True  # closed
    big = connect(served)
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        big.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 200_000 + b"\r\n\r\n")
    assert read_response(big)[0] == 431


def test_serve_still_answers_normal_requests_on_a_kept_alive_connection(served: str) -> None:
    with httpx.Client() as client:
        for n in range(3):
            answer = client.post(served, content=b"x" * (n * 100_000))
            assert answer.status_code == 200 and len(answer.content) == n * 100_000
        time.sleep(0.8)  # longer than the head deadline: an idle kept-alive connection is not a slow head
        assert client.get(served + "/?q=" + "a" * 30_000).status_code == 200


# -- 4. a locked database never stalls an ack ---------------------------------------------------------------


def hold_lock(db: Path, seconds: float) -> threading.Thread:
    """Another connection (a backup, a second writer) holds the write lock for `seconds`."""
    held = threading.Event()

    def run() -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=run)
    thread.start()
    held.wait(5)
    return thread


def test_a_held_lock_never_delays_an_ack_and_webhooks_get_503(stack: Stack, http: httpx.Client) -> None:
    holder = hold_lock(stack.workdir / "switchboard.db", 6)
    started = time.monotonic()

    def timed(job: Any) -> tuple[float, int]:
        with httpx.Client(timeout=10) as client:
            t = time.monotonic()
            status = job(client).status_code
            return time.monotonic() - t, status

    def hook(n: int) -> Any:
        return lambda client: send(client, stack, "GET", "/hooks/avanser/call", call(n))

    def ack(client: httpx.Client) -> Any:
        return stack.slack.command(stack.url, "/numbers", "help", client=client)[0]

    results: list[tuple[str, float, int]] = []
    with ThreadPoolExecutor(12) as pool:
        futures = [("hook", pool.submit(timed, hook(n))) for n in range(10)]
        futures += [("ack", pool.submit(timed, ack)) for _ in range(5)]
        results = [(kind, *future.result()) for kind, future in futures]
    assert time.monotonic() - started < 5, "everything answered while the lock was still held"
    hooks = [(took, status) for kind, took, status in results if kind == "hook"]
    acks = [(took, status) for kind, took, status in results if kind == "ack"]
    assert all(status == 503 for _, status in hooks), hooks
    assert all(status == 200 and took < 1 for took, status in acks), acks
    assert all(took < 1 for took, _ in hooks), hooks
    health = http.get(f"{stack.url}/healthz")
    assert health.status_code == 503 and "busy" in health.json()["store"]
    holder.join()
    # The provider sends them again; now they are stored, and committed before the 200.
    for n in range(10):
        assert send(http, stack, "GET", "/hooks/avanser/call", call(n)).status_code == 200
    other = sqlite3.connect(stack.workdir / "switchboard.db")
    assert other.execute("SELECT COUNT(*) FROM inbox").fetchone()[0] == 10
    other.close()
    assert http.get(f"{stack.url}/healthz").status_code == 200


def test_a_command_that_writes_says_the_store_is_busy(stack: Stack, http: httpx.Client) -> None:
    holder = hold_lock(stack.workdir / "switchboard.db", 2)
    started = time.monotonic()
    answer, _ = stack.slack.command(stack.url, "/call", "phone +61 412 345 678", client=http)
    assert time.monotonic() - started < 1
    assert answer.status_code == 200 and "database is busy" in answer.json()["text"]
    holder.join()
    answer, _ = stack.slack.command(stack.url, "/call", "phone +61 412 345 678", client=http)
    assert "busy" not in answer.json()["text"]


def test_an_event_arriving_during_a_lock_is_503_so_slack_sends_it_again(stack: Stack, http: httpx.Client) -> None:
    event = {
        "token": "t",
        "team_id": "T0SANDBOX",
        "api_app_id": "A0SWITCHBOARD",
        "type": "event_callback",
        "event_id": "Ev0LOCKED",
        "event_time": int(time.time()),
        "event": {"type": "app_home_opened", "user": "U0REP", "channel": "D0REP", "tab": "home"},
    }
    body = json.dumps(event)
    headers = {"Content-Type": "application/json"}
    holder = hold_lock(stack.workdir / "switchboard.db", 2)
    first = http.post(
        f"{stack.url}/slack/events",
        content=body,
        headers={**headers, **signature_headers(stack.slack.signing_secret, body)},
    )
    assert first.status_code == 503
    holder.join()
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"}
    later = signature_headers(stack.slack.signing_secret, body, timestamp=int(time.time()) + 1)
    assert (
        http.post(f"{stack.url}/slack/events", content=body, headers={**headers, **retry, **later}).status_code == 200
    )
    wait_for(lambda: stack.slack.home.get("U0REP"))


async def test_a_scheduled_job_that_meets_a_locked_store_runs_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from bot import services as services_module
    from bot.store import StoreBusy

    monkeypatch.setattr(services_module, "STORE_BUSY_RETRY_S", 0.1)
    scheduler = services_module.PatientScheduler()
    await scheduler.start()
    runs: list[str] = []

    async def job(name: str) -> None:
        runs.append(name)
        if len(runs) < 3:
            raise StoreBusy("database is locked")

    scheduler.at(time.time(), "vn-expire-1", job, "lease")
    for _ in range(100):
        if len(runs) == 3:
            break
        await asyncio.sleep(0.05)
    await scheduler.stop()
    assert runs == ["lease", "lease", "lease"]


# -- 5. /healthz proves a write -----------------------------------------------------------------------------


def test_healthz_commits_a_write(stack: Stack, http: httpx.Client) -> None:
    before = time.time()
    answer = http.get(f"{stack.url}/healthz")
    assert answer.status_code == 200 and answer.json()["store"] == "writable"
    other = sqlite3.connect(stack.workdir / "switchboard.db")
    rows = other.execute("SELECT checked_at FROM health").fetchall()
    other.close()
    assert len(rows) == 1 and rows[0][0] >= before


def test_healthz_is_503_on_a_full_disk_and_a_read_only_database(stack: Stack, http: httpx.Client) -> None:
    http.get(f"{stack.url}/healthz")

    def fill(services: Any) -> int:
        # The database may not grow past its size now: what a full disk looks like to SQLite.
        store = services.store
        pages = store.execute("PRAGMA page_count").fetchone()[0]
        store.execute(f"PRAGMA max_page_count = {pages}")
        for size in (4000, 1000, 100, 10):  # use up the free pages too
            try:
                while True:
                    store.execute(
                        "INSERT INTO audit (at, actor, action, detail) VALUES (0, 'fill', 'fill', ?)", ("x" * size,)
                    )
            except sqlite3.OperationalError:
                pass
        return int(pages)

    pages = on_app(stack, fill)
    full = http.get(f"{stack.url}/healthz")
    assert full.status_code == 503 and full.json()["store"] == "not writable: database or disk is full"
    on_app(stack, lambda s: s.store.execute(f"PRAGMA max_page_count = {pages + 1000}"))
    assert http.get(f"{stack.url}/healthz").status_code == 200
    on_app(stack, lambda s: s.store.execute("PRAGMA query_only = ON"))
    read_only = http.get(f"{stack.url}/healthz")
    assert read_only.status_code == 503 and "readonly" in read_only.json()["store"]
    # A webhook that can't be committed is never acknowledged: 503, and the provider sends it again.
    refused = send(http, stack, "GET", "/hooks/avanser/call", AVANSER_CALL)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    on_app(stack, lambda s: s.store.execute("PRAGMA query_only = OFF"))
    assert http.get(f"{stack.url}/healthz").status_code == 200
    assert send(http, stack, "GET", "/hooks/avanser/call", AVANSER_CALL).status_code == 200
    assert len(inbox(stack)) == 1


# -- 6. /metrics behind a token -----------------------------------------------------------------------------


def test_metrics_need_the_bearer_token_when_one_is_set(tmp_path: Path, http: httpx.Client) -> None:
    with Stack(tmp_path, SWITCHBOARD_METRICS_TOKEN="metrics-secret-value") as stack:
        url = f"{stack.url}/metrics"
        assert http.get(url).status_code == 401
        assert http.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert http.get(url, headers={"Authorization": "Basic bWV0cmljcy1zZWNyZXQtdmFsdWU="}).status_code == 401
        ok = http.get(url, headers={"Authorization": "Bearer metrics-secret-value"})
        assert ok.status_code == 200 and "switchboard_outbox_pending" in ok.text


def test_metrics_open_without_a_token_and_the_log_says_so_once(
    tmp_path: Path, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING"), Stack(tmp_path) as stack:
        assert http.get(f"{stack.url}/metrics").status_code == 200
        assert http.get(f"{stack.url}/metrics").status_code == 200
    said = [r for r in caplog.records if "SWITCHBOARD_METRICS_TOKEN is not set" in r.getMessage()]
    assert len(said) == 1
