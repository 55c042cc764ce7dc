"""Voicemail recordings fetched as an attacker would have them fetched (issue 12, "Bounded fetches").

Real HTTP servers on 127.0.0.1 and 127.0.0.2 (`tests/recording_attacks.py`); the fetcher trusts
loopback only where a test passes `allow_private=True`, never from a setting.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import subprocess
import time

import httpx
import pytest

from bot.recordings import RecordingError, RecordingFetcher, parse_recording_url, public_address
from bot.sandbox.server import free_socket
from bot.sandbox.stack import Stack
from bot.settings import load_settings
from tests.helpers import flat, messages, route, wait_for
from tests.recording_attacks import (
    MB,
    file_settled,
    hostile_server,
    later_alert_wait,
    notices,
    payload,
    recording_attacks,
    trust_loopback,
    upload_row,
    voicemail,
)

ALLOWED = {"allowed.example", "recordings.example"}


# -- one parser: what is checked is what is fetched ----------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://evil\\@localhost/",  # urllib: host localhost; WHATWG: host evil
        "http://allowed.example\\@127.0.0.1/",
        "http://127.0.0.1\\@allowed.example/",  # urllib said allowed.example
        "http://allowed.example@127.0.0.1/",  # user-info: the host is 127.0.0.1
        "http://allowed.example:80@127.0.0.1/",
        "http://allowed.example%2f@127.0.0.1/",
        "http://user:pw@allowed.example/vm.mp3",  # user-info refused even on an allowed host
        "http://127.0.0.1#@allowed.example/",  # the host is 127.0.0.1, the rest a fragment
        "http://127.0.0.1?@allowed.example/",
        "http://allowed.example.evil.example/",
        "http://evil.example/allowed.example",
        "http://allowed.example\t/vm.mp3",  # control characters and spaces: parsers disagree
        "http://allowed.example /vm.mp3",
        " http://allowed.example/vm.mp3",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",  # 127.0.0.1 in decimal
        "http://0x7f.1/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "ftp://allowed.example/vm.mp3",
        "file:///etc/passwd",
        "gopher://allowed.example/",
        "//allowed.example/vm.mp3",
        "http:/allowed.example/vm.mp3",
        "http://allowed.example:99999/vm.mp3",
        "",
        None,
    ],
)
def test_parser_confusion_urls_are_refused(url: str | None) -> None:
    assert parse_recording_url(url, ALLOWED) is None
    settings = load_settings(env_file=None, SWITCHBOARD_RECORDING_HOSTS=",".join(ALLOWED))
    assert not settings.recording_allowed(url)  # the queue-time check is the same function


@pytest.mark.parametrize(
    ("url", "fetched"),
    [
        ("https://allowed.example/vm.mp3", "https://allowed.example/vm.mp3"),
        ("HTTPS://ALLOWED.Example/vm.mp3", "https://allowed.example/vm.mp3"),
        ("https://allowed.example./vm.mp3", "https://allowed.example./vm.mp3"),
        ("http://recordings.example:8080/a/b.mp3?sig=x%2By", "http://recordings.example:8080/a/b.mp3?sig=x%2By"),
        ("https://allowed.example/vm.mp3#t=10", "https://allowed.example/vm.mp3"),
    ],
)
def test_allowed_urls_are_fetched_exactly_as_parsed(url: str, fetched: str) -> None:
    parsed = parse_recording_url(url, ALLOWED)
    assert parsed is not None and str(parsed) == fetched


def test_allowlist_entries_are_compared_normalised() -> None:
    assert parse_recording_url("https://xn--bcher-kva.example/v.mp3", {"Bücher.Example."}) is not None
    assert parse_recording_url("https://bücher.example/v.mp3", {"xn--bcher-kva.example"}) is not None
    assert parse_recording_url("https://allowed.example/v.mp3", set()) is None  # empty: links only


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.0.0.2",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # CGNAT
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "::",
        "::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "::127.0.0.1",  # IPv4-compatible
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "2001:db8::1",
        "not an address",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not public_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "2002:808:808::1"])
def test_public_addresses(address: str) -> None:
    assert public_address(address)


# -- connect only to public addresses, the ones that were checked ------------------------------------


@pytest.mark.parametrize(
    ("target", "host"),
    [
        ("http://127.0.0.2:{inside}/vm.mp3", "127.0.0.2"),
        ("http://127.0.0.1:{outside}/vm.mp3", "127.0.0.1"),
        ("http://localhost:{outside}/vm.mp3", "localhost"),  # a name that resolves to loopback
        ("http://LOCALHOST.:{outside}/vm.mp3", "localhost"),
        ("http://[::1]:{outside}/vm.mp3", "::1"),
        ("http://10.0.0.1/vm.mp3", "10.0.0.1"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://[::ffff:127.0.0.1]:{outside}/vm.mp3", "::ffff:127.0.0.1"),
        ("http://0.0.0.0:{outside}/vm.mp3", "0.0.0.0"),
    ],
)
def test_local_addresses_are_never_connected_to(target: str, host: str) -> None:
    with hostile_server("127.0.0.1") as (outside, out), hostile_server("127.0.0.2") as (inside, ins):
        url = target.format(inside=ins.port, outside=out.port)
        assert parse_recording_url(url, {host}) is not None  # the host is allowed: only its address is wrong
        fetcher = RecordingFetcher()  # no escape hatch: as in production
        started = time.monotonic()
        with pytest.raises(RecordingError) as refused:
            asyncio.run(fetcher.fetch(url, {host}, MB))
        assert not refused.value.retryable
        assert refused.value.reason == "the recording host resolves to a private or local address"
        assert time.monotonic() - started < 1.0  # refused before any connect
        assert fetcher.peers == [] and outside.total_hits == 0 and inside.total_hits == 0


def test_any_private_address_among_several_refuses_the_host() -> None:
    async def resolve(host: str, port: int) -> list[tuple[socket.AddressFamily, str]]:
        return [(socket.AF_INET, "93.184.216.34"), (socket.AF_INET, "127.0.0.1")]

    with hostile_server("127.0.0.1") as (outside, server):
        fetcher = RecordingFetcher(resolve=resolve)
        with pytest.raises(RecordingError, match="private or local address"):
            asyncio.run(fetcher.fetch(f"http://recordings.example:{server.port}/vm.mp3", ALLOWED, MB))
        assert outside.total_hits == 0


def test_dns_rebinding_cannot_swap_the_checked_address() -> None:
    # The name is public when checked, then 127.0.0.1: the connection goes to the checked address only.
    answers = iter([[(socket.AF_INET, "93.184.216.34")]])
    calls: list[str] = []

    async def rebinding(host: str, port: int) -> list[tuple[socket.AddressFamily, str]]:
        calls.append(host)
        return next(answers, [(socket.AF_INET, "127.0.0.1")])

    with hostile_server("127.0.0.1") as (outside, server):
        fetcher = RecordingFetcher(resolve=rebinding, connect_timeout=0.5, total_timeout=2)
        with pytest.raises(RecordingError) as failed:
            asyncio.run(fetcher.fetch(f"http://recordings.example:{server.port}/vm.mp3", ALLOWED, MB))
        assert failed.value.retryable  # 93.184.216.34 is unreachable from here, or does not serve the port
        assert calls == ["recordings.example"]  # resolved once; aiohttp never resolved it again
        assert outside.total_hits == 0


def test_pinned_connection_goes_to_the_resolved_address() -> None:
    # Trusting loopback: the name resolves to 127.0.0.1 first, 127.0.0.2 afterwards; the fetch uses the first.
    answers = iter([[(socket.AF_INET, "127.0.0.1")]])

    async def rebinding(host: str, port: int) -> list[tuple[socket.AddressFamily, str]]:
        return next(answers, [(socket.AF_INET, "127.0.0.2")])

    with free_socket() as probe:
        port = probe.getsockname()[1]  # one port, on both addresses
    with hostile_server("127.0.0.1", port) as (outside, _), hostile_server("127.0.0.2", port) as (inside, _):
        fetcher = RecordingFetcher(allow_private=True, resolve=rebinding)
        body = asyncio.run(fetcher.fetch(f"http://recordings.example:{port}/vm.mp3", ALLOWED, MB))
        assert body.startswith(b"ID3") and outside.total_hits == 1 and inside.total_hits == 0
        assert fetcher.peers == ["127.0.0.1"]


# -- no redirects, size and time caps (fetcher on its own) -------------------------------------------


def fetch(url: str, max_bytes: int = MB, **options: float) -> tuple[bytes | None, RecordingError | None, float]:
    fetcher = RecordingFetcher(allow_private=True, **options)
    started = time.monotonic()
    try:
        return asyncio.run(fetcher.fetch(url, {"127.0.0.1"}, max_bytes)), None, time.monotonic() - started
    except RecordingError as exc:
        return None, exc, time.monotonic() - started


@pytest.mark.parametrize("target", ["http://127.0.0.2:{port}/vm.mp3", "http://localhost:{port}/vm.mp3"])
def test_a_redirect_is_not_followed(target: str) -> None:
    with hostile_server("127.0.0.1") as (outside, server), hostile_server("127.0.0.2") as (inside, ins):
        outside.redirect_to = target.format(port=ins.port)
        body, error, _ = fetch(f"{server.url}/redirect.mp3")
        assert body is None and error is not None and not error.retryable
        assert "redirect (HTTP 302)" in error.reason
        assert inside.total_hits == 0 and outside.hits == {"/redirect.mp3": 1}


def test_read_to_the_end_streamed_without_content_length() -> None:
    with hostile_server() as (_, server):
        body, error, _ = fetch(f"{server.url}/size/{6 * MB}.mp3", max_bytes=20 * MB)
        assert error is None and body == payload(6 * MB)


def test_over_the_cap_stops_reading_as_soon_as_it_is_passed() -> None:
    with hostile_server() as (hostile, server):
        body, error, _ = fetch(f"{server.url}/size/{200 * MB}.mp3", max_bytes=MB)
        assert body is None and error is not None and not error.retryable
        assert error.reason == "the recording is larger than 1 MB"
        time.sleep(0.2)
        assert hostile.streamed[f"/size/{200 * MB}.mp3"] < 20 * MB  # it stopped, not read 200 MB


def test_a_declared_size_over_the_cap_is_refused_before_reading() -> None:
    with hostile_server() as (_, server):
        _, error, elapsed = fetch(f"{server.url}/declared/{50 * MB}.mp3", max_bytes=MB)
        assert error is not None and error.reason == "the recording is larger than 1 MB" and elapsed < 1


def test_a_slow_drip_hits_the_total_time_cap() -> None:
    with hostile_server() as (_, server):
        _, error, elapsed = fetch(f"{server.url}/drip.mp3", total_timeout=1.0)
        assert error is not None and error.retryable and "within 1 s" in error.reason
        assert 0.9 < elapsed < 2.0


def test_a_host_that_never_answers_hits_the_total_time_cap() -> None:
    with hostile_server() as (_, server):
        _, error, elapsed = fetch(f"{server.url}/hang.mp3", total_timeout=1.0)
        assert error is not None and error.retryable and elapsed < 2.0


@pytest.mark.parametrize(("code", "retryable"), [(503, True), (500, True), (429, True), (404, False), (403, False)])
def test_status_codes(code: int, retryable: bool) -> None:
    with hostile_server() as (_, server):
        _, error, _ = fetch(f"{server.url}/status/{code}.mp3")
        assert error is not None and error.retryable is retryable and f"HTTP {code}" in error.reason


def test_a_refused_connection_is_retryable() -> None:
    with hostile_server() as (_, server):
        port = server.port
    _, error, _ = fetch(f"http://127.0.0.1:{port}/vm.mp3")
    assert error is not None and error.retryable and "could not be reached" in error.reason


# -- end to end: the outbox, the alert's thread, and the channel's other messages --------------------


def test_the_attacks_as_figures() -> None:
    figures = recording_attacks()
    print("recording attacks:", json.dumps(figures))
    assert figures["internal_fetches"] == 0
    assert figures["stuck_messages"] == 0 and figures["later_alert_wait_s"] < 2.0
    assert figures["bytes_uploaded"] == figures["file_size"] == 6 * MB and figures["byte_exact"]
    assert figures["tries_of_the_503"] == 3
    assert figures["pass"]


def test_a_503_recording_is_tried_3_times_then_the_thread_says_so(tmp_path, http: httpx.Client) -> None:
    with hostile_server() as (hostile, server), Stack(tmp_path, SWITCHBOARD_RECORDING_HOSTS="127.0.0.1") as stack:
        route(stack)
        trust_loopback(stack)
        voicemail(http, stack, 1, f"{server.url}/status/503.mp3")
        wait_for(lambda: notices(stack), timeout=15)
        assert stack.drain(10)
        alert, notice = stack.slack.channel_messages("C0SALES")
        assert "▶ Play the voicemail" in flat(alert) and f"{server.url}/status/503.mp3" in flat(alert)
        assert notice["thread_ts"] == alert["ts"]
        assert notice["text"] == (
            "📼 I couldn't attach the voicemail recording here (the recording host answered HTTP 503;"
            " tried 3 times). The *▶ Play the voicemail* link in the alert above still works."
        )
        assert hostile.hits["/status/503.mp3"] == 3 and stack.slack.uploads == {}
        row = upload_row(stack)
        assert row["status"] == "failed" and row["attempts"] == 3
        time.sleep(0.5)
        assert hostile.hits["/status/503.mp3"] == 3  # and never again


def test_a_hanging_recording_does_not_hold_back_the_channel(tmp_path, http: httpx.Client) -> None:
    # The real pace (1.05 s between posts in a channel) and the real 60 s time cap.
    with hostile_server() as (hostile, server), Stack(tmp_path, SWITCHBOARD_RECORDING_HOSTS="127.0.0.1") as stack:
        route(stack)
        trust_loopback(stack)
        voicemail(http, stack, 1, f"{server.url}/hang.mp3")
        wait_for(lambda: hostile.hits["/hang.mp3"] == 1)
        waits = [later_alert_wait(http, stack, n) for n in (2, 3, 4)]
        assert max(waits) < 2.0, waits
        assert upload_row(stack)["status"] == "pending"  # still waiting for its recording, on its own lane


def test_over_the_cap_setting_keeps_the_link_and_says_so(tmp_path, http: httpx.Client) -> None:
    with (
        hostile_server() as (_, server),
        Stack(
            tmp_path,
            SWITCHBOARD_RECORDING_HOSTS="127.0.0.1",
            SWITCHBOARD_RECORDING_MAX_MB="1",
            outbox_channel_interval=0,
        ) as stack,
    ):
        route(stack)
        trust_loopback(stack)
        voicemail(http, stack, 1, f"{server.url}/size/{MB + 1}.mp3")
        voicemail(http, stack, 2, f"{server.url}/size/{MB}.mp3")
        wait_for(lambda: notices(stack) and stack.slack.uploads and file_settled(stack), timeout=15)
        assert stack.drain(10)
        [notice] = notices(stack)
        assert "(the recording is larger than 1 MB)" in notice["text"]
        [upload] = stack.slack.uploads.values()
        assert upload["content"] == payload(MB)  # exactly at the cap is fine


def test_recordings_stay_links_without_allowed_hosts(stack: Stack, http: httpx.Client) -> None:
    with hostile_server() as (hostile, server):
        route(stack)
        voicemail(http, stack, 1, f"{server.url}/vm.mp3")
        [message] = messages(stack, "C0SALES")
        time.sleep(0.3)
        assert "▶ Play the voicemail" in flat(message) and hostile.total_hits == 0 and stack.slack.uploads == {}


def test_the_size_cap_setting() -> None:
    assert load_settings(env_file=None).recording_max_bytes == 20 * MB
    assert load_settings(env_file=None, SWITCHBOARD_RECORDING_MAX_MB="2.5").recording_max_bytes == int(2.5 * MB)
    from bot.settings import SettingsError

    with pytest.raises(SettingsError, match="SWITCHBOARD_RECORDING_MAX_MB"):
        load_settings(env_file=None, SWITCHBOARD_RECORDING_MAX_MB="0")


def test_more_hanging_files_than_file_lanes_still_leave_messages_alone(tmp_path) -> None:
    with hostile_server() as (hostile, server), Stack(tmp_path) as stack:
        trust_loopback(stack)

        async def queue_files() -> None:
            assert stack.services is not None
            outbox = stack.services.outbox
            for n in range(outbox.file_concurrency + 4):
                channel = f"C0VM{n % 3}"
                parent = outbox.post(channel, f"Voicemail {n}")
                outbox.attach_file(parent, f"{server.url}/hang.mp3", "vm.mp3", "Voicemail", hosts={"127.0.0.1"})

        stack.on_app(queue_files())
        wait_for(lambda: sum(len(stack.slack.channel_messages(f"C0VM{n}")) for n in range(3)) == 8)
        wait_for(lambda: hostile.hits["/hang.mp3"] == 4)  # every file lane is taken, and hangs

        async def post_later() -> None:
            assert stack.services is not None
            for n in range(3):
                stack.services.outbox.post(f"C0VM{n}", "later")

        started = time.monotonic()
        stack.on_app(post_later())
        wait_for(lambda: all(stack.slack.channel_messages(f"C0VM{n}")[-1]["text"] == "later" for n in range(3)))
        assert time.monotonic() - started < 2.0
        assert hostile.hits["/hang.mp3"] == 4  # files wait for a lane; messages never did


def test_tls_still_checks_the_host_name_on_the_pinned_address(tmp_path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    name = ["-subj", "/CN=recordings.example", "-addext", "subjectAltName=DNS:recordings.example"]
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), *name],
        check=True,
        capture_output=True,
    )
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    async def to_loopback(host: str, port: int) -> list[tuple[socket.AddressFamily, str]]:
        return [(socket.AF_INET, "127.0.0.1")]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nID3ok")
        await writer.drain()
        writer.close()

    async def run() -> tuple[bytes, RecordingError]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_tls)
        port = server.sockets[0].getsockname()[1]
        fetcher = RecordingFetcher(
            allow_private=True, resolve=to_loopback, ssl_context=ssl.create_default_context(cafile=str(cert))
        )
        hosts = {"recordings.example", "other.example"}
        async with server:
            body = await fetcher.fetch(f"https://recordings.example:{port}/vm.mp3", hosts, MB)
            try:
                await fetcher.fetch(f"https://other.example:{port}/vm.mp3", hosts, MB)
            except RecordingError as exc:
                return body, exc
        raise AssertionError("a certificate for another name was accepted")

    body, refused = asyncio.run(run())
    assert body == b"ID3ok"
    assert "ClientConnectorCertificateError" in refused.reason
