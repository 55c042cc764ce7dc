"""Fetching a voicemail recording from a telco's URL, as an outsider may have chosen that URL.

A recording URL arrives in a webhook: whoever can make a telco (or its sandbox, or a forged
webhook with a leaked token) send a URL can make Switchboard fetch it and upload what it got to
Slack. So a fetch is bounded in every way:

- **one parser**: the URL is parsed once with `yarl` (what aiohttp itself uses) and that parsed
  object is both checked and fetched; only http/https, no user-info, no backslashes, spaces or
  control characters, the host (lower case, without a trailing dot, IDNA-encoded) in
  `SWITCHBOARD_RECORDING_HOSTS`;
- **public addresses only**: the host is resolved here, every address it resolves to must be
  public (not loopback, private, link-local, CGNAT, multicast, reserved, unspecified, nor an IPv6
  form of one: IPv4-mapped, 6to4, Teredo, NAT64), and the connection goes to exactly the addresses
  that were checked (a resolver that answers only them), so DNS rebinding cannot swap them; TLS
  still verifies the host name;
- **no redirects**: a 3xx is a refusal (the link stays in the alert);
- **size cap**: read to the end, streaming, and stop as soon as `max_bytes` is passed;
- **time caps**: a connect timeout and one deadline for the whole fetch, resolution included.

`RecordingError.retryable` tells a failure a later try may fix (5xx, 429, a refused or reset
connection, the deadline) from one it cannot (a refused URL or address, a redirect, 4xx, too big).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

DEFAULT_TOTAL_TIMEOUT = 60.0  # seconds for the whole fetch: resolve, connect, headers and body
DEFAULT_CONNECT_TIMEOUT = 10.0
CHUNK = 64 * 1024

# Networks that are not public on top of what `ipaddress` flags (explicit, whatever the Python version).
_NOT_PUBLIC_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT, shared address space
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
)
_NOT_PUBLIC_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/128",
        "::1/128",
        "::/96",  # IPv4-compatible (deprecated)
        "100::/64",  # discard
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


class RecordingError(Exception):
    """The recording could not be fetched; `str()` is a sentence fit for the alert's thread."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


def normalise_host(host: str) -> str:
    """How a host name is compared: IDNA-encoded, lower case, no trailing dot."""
    host = host.strip().rstrip(".").lower()
    if not host:
        return ""
    try:
        return (URL.build(scheme="http", host=host).raw_host or "").rstrip(".").lower()
    except ValueError:
        return ""


def parse_recording_url(url: object, hosts: Iterable[str]) -> URL | None:
    """The URL to fetch, parsed once, or None when it is not an allowed http(s) URL.

    The returned `yarl.URL` is what the fetch requests, so the check and the fetch cannot disagree.
    """
    if not isinstance(url, str) or not url or len(url) > 2048:
        return None
    if any(ord(c) <= 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
        return None  # parsers disagree about these: refuse rather than pick an interpretation
    try:
        parsed = URL(url)
        host = parsed.raw_host
        parsed.port  # noqa: B018 - an out-of-range port raises here
    except (ValueError, TypeError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.absolute or not host:
        return None
    if parsed.raw_user is not None or parsed.raw_password is not None or "@" in (parsed.raw_authority or ""):
        return None
    if _numeric_host(host) and not _ip_literal(host):
        return None  # 2130706433, 0x7f.1, 127.1, 0177.0.0.1: numeric forms that sockets read as IPs
    allowed = {normalise_host(h) for h in hosts} - {""}
    if host.rstrip(".").lower() not in allowed:
        return None
    return parsed.with_fragment(None)


def _ip_literal(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return str(ip) == host.lower() or isinstance(ip, ipaddress.IPv6Address)


def _numeric_host(host: str) -> bool:
    """Whether a socket library may read `host` as an address (the WHATWG rule: its last label is a number)."""
    if ":" in host:
        return True
    last = host.rstrip(".").rsplit(".", 1)[-1].lower()
    return last.isdigit() or (last.startswith("0x") and all(c in "0123456789abcdef" for c in last[2:]))


def public_address(address: str) -> bool:
    """Whether `address` (an IP as text) is one Switchboard may connect to for a recording."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded: list[ipaddress.IPv4Address] = []
        if ip.ipv4_mapped is not None:
            embedded.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            embedded.append(ip.sixtofour)
        if ip.teredo is not None:
            embedded.extend(ip.teredo)
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip in _NAT64_LOCAL or any(ip in net for net in _NOT_PUBLIC_V6):
            return False
        if any(not public_address(str(v4)) for v4 in embedded):
            return False
        if embedded:
            return True  # the IPv4 inside decides (6to4 and Teredo are not `is_global` in ipaddress)
    elif any(ip in net for net in _NOT_PUBLIC_V4):
        return False
    flags = (
        ip.is_loopback,
        ip.is_private,
        ip.is_link_local,
        ip.is_multicast,
        ip.is_reserved,
        ip.is_unspecified,
        not ip.is_global,
    )
    return not any(flags)


Resolve = Callable[[str, int], Awaitable[list[tuple[socket.AddressFamily, str]]]]


async def system_resolve(host: str, port: int) -> list[tuple[socket.AddressFamily, str]]:
    """Every (family, address) the system resolver gives for `host`."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    found: list[tuple[socket.AddressFamily, str]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        entry = (socket.AddressFamily(family), str(sockaddr[0]))
        if family in (socket.AF_INET, socket.AF_INET6) and entry not in found:
            found.append(entry)
    return found


class _PinnedResolver(AbstractResolver):
    """Answers aiohttp with the addresses that were checked, for the one host that was checked."""

    def __init__(self, host: str, addresses: list[tuple[socket.AddressFamily, str]]) -> None:
        self.host = host
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host.rstrip(".") != self.host.rstrip("."):
            raise OSError(f"not resolving {host!r}: only the checked host may be connected to")
        return [
            ResolveResult(hostname=host, host=address, port=port, family=fam, proto=0, flags=socket.AI_NUMERICHOST)
            for fam, address in self.addresses
            if family in (socket.AF_UNSPEC, fam)
        ]

    async def close(self) -> None:
        return None


@dataclass
class RecordingFetcher:
    """Fetches recordings under the rules in the module's docstring.

    `allow_private` is for tests only: the sandboxes live on 127.0.0.1. It is a constructor
    argument and nothing else — no setting or environment variable can turn it on.
    """

    allow_private: bool = False
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    resolve: Resolve = system_resolve
    ssl_context: ssl.SSLContext | None = None  # None: the system's CAs (tests pass one that trusts theirs)
    # What happened, for tests and the fault report: the address of every connection that answered.
    peers: list[str] = field(default_factory=list)

    async def fetch(self, url: str, hosts: Iterable[str], max_bytes: int) -> bytes:
        """The whole recording, or RecordingError."""
        parsed = parse_recording_url(url, hosts)
        if parsed is None:
            raise RecordingError("its address is not an allowed recording host", retryable=False)
        try:
            async with asyncio.timeout(self.total_timeout):
                return await self._fetch(parsed, max_bytes)
        except TimeoutError:
            raise RecordingError(
                f"the recording host did not send it within {self.total_timeout:g} s", retryable=True
            ) from None

    async def _fetch(self, url: URL, max_bytes: int) -> bytes:
        host = url.raw_host
        assert host is not None and url.port is not None
        try:
            addresses = await self.resolve(host.rstrip(".") or host, url.port)  # hosts files have no trailing dots
        except OSError as exc:
            raise RecordingError(f"the recording host's name did not resolve ({exc})", retryable=True) from None
        if not addresses:
            raise RecordingError("the recording host's name did not resolve", retryable=True)
        if not self.allow_private and not all(public_address(address) for _family, address in addresses):
            raise RecordingError("the recording host resolves to a private or local address", retryable=False)
        connector = aiohttp.TCPConnector(resolver=_PinnedResolver(host, addresses), use_dns_cache=False, limit=1)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout, connect=self.connect_timeout)
        async with aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            trust_env=False,  # never through a proxy named in the environment
            auto_decompress=False,  # the cap counts the bytes on the wire: no decompression bomb
            cookie_jar=aiohttp.DummyCookieJar(),
        ) as session:
            try:
                async with session.get(
                    url,
                    allow_redirects=False,
                    headers={"Accept-Encoding": "identity"},
                    ssl=self.ssl_context if self.ssl_context is not None else True,
                ) as answer:
                    return await self._read(answer, max_bytes)
            except (aiohttp.ClientError, OSError) as exc:
                raise RecordingError(
                    f"the recording host could not be reached or broke off ({type(exc).__name__})", retryable=True
                ) from None

    async def _read(self, answer: aiohttp.ClientResponse, max_bytes: int) -> bytes:
        # The connection is released early when the whole answer is already in (a short body): its protocol
        # still knows the socket's peer.
        protocol = answer.connection.protocol if answer.connection is not None else getattr(answer, "_protocol", None)
        transport = getattr(protocol, "transport", None)
        peer = transport.get_extra_info("peername") if transport is not None else None
        self.peers.append(str(peer[0]) if peer else "?")
        status = answer.status
        if 300 <= status < 400:
            raise RecordingError(
                f"the recording host answered with a redirect (HTTP {status}), which is not followed", retryable=False
            )
        if status in (408, 425, 429) or status >= 500:
            raise RecordingError(f"the recording host answered HTTP {status}", retryable=True)
        if status != 200:
            raise RecordingError(f"the recording host answered HTTP {status}", retryable=False)
        too_big = RecordingError(f"the recording is larger than {_size(max_bytes)}", retryable=False)
        if answer.content_length is not None and answer.content_length > max_bytes:
            raise too_big
        body = bytearray()
        async for chunk in answer.content.iter_chunked(CHUNK):
            body += chunk
            if len(body) > max_bytes:
                raise too_big
        return bytes(body)


def _size(count: int) -> str:
    megabytes = count / (1024 * 1024)
    return f"{megabytes:g} MB" if megabytes >= 1 else f"{count:,} bytes"
