"""What `make bench` measures with: wrk, two cores kept apart, and servers run as processes of their own.

The server under test (Switchboard or a bare baseline) runs pinned to one core (`taskset -c 0`); wrk,
the bench itself and the Slack sandbox it hosts run on the other (`taskset -c 1`), so the load
generator never shares a core with what it measures. wrk's Lua drives every request: signed slash
commands are signed here beforehand (wrk's Lua has no HMAC) and cycled from a Lua table; call-URI
webhooks get a fresh `uniqueid` and caller from a Lua counter; a rate-limited storm schedules each
request with `delay()` against a monotonic clock (LuaJIT's ffi).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bot.sandbox.server import free_socket
from bot.sandbox.signing import signature_headers, slash_command_body

REPO = Path(__file__).resolve().parent.parent
SERVER_CORE = 0
LOAD_CORE = 1


# -- the machine --------------------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def pinning() -> bool:
    """Whether server and load can have a core each (taskset present, two cores or more)."""
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pin_self_to_load_core() -> None:
    """The bench process (and the Slack sandbox it serves) keeps off the server's core."""
    if pinning():
        os.sched_setaffinity(0, {LOAD_CORE})


def on_core(core: int | str) -> list[str]:
    """taskset for one core (or a list such as "0,1")."""
    return ["taskset", "-c", str(core)] if pinning() else []


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str:
    path = wrk_path()
    if path is None:
        return "not installed"
    out = subprocess.run([path, "-v"], capture_output=True, text=True).stdout
    return out.splitlines()[0].strip() if out else "wrk"


# -- a server under test -----------------------------------------------------------------------------------


def free_port() -> int:
    sock = free_socket()
    port = int(sock.getsockname()[1])
    sock.close()
    return port


class Server:
    """A server process on the server core; `ready` is the path that answers once it is up."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        logdir: str,
        *,
        ready: str = "/",
        cores: int | str = SERVER_CORE,
    ) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logfile = Path(logdir) / f"{name}-{self.port}.log"
        argv = [a.replace("{port}", str(self.port)) for a in args]
        started = time.monotonic()
        with open(self.logfile, "wb") as log:
            self.process = subprocess.Popen(
                [*on_core(cores), sys.executable, "-m", *argv],
                cwd=REPO,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                status = httpx.get(self.url + ready, timeout=0.5).status_code
                if ready == "/" or status == 200:
                    break
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"{name} exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{name} did not answer {ready} within 30 s: {self.log_tail()}")
            time.sleep(0.02)
        self.startup_s = time.monotonic() - started

    def log_tail(self, chars: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return self.logfile.read_text(errors="replace")[-chars:]
        return ""

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


# -- Lua scripts ---------------------------------------------------------------------------------------------


def lua_string(value: str) -> str:
    out = []
    for ch in value:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif 32 <= code < 127:
            out.append(ch)
        else:
            out.extend(f"\\{b}" for b in ch.encode())
    return '"' + "".join(out) + '"'


# Shared by every script: the verdict of each answer, and a JSON summary printed by done().
LUA_COMMON = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
bad = 0
sent = 0
got = 0
function check(status, body)
  got = got + 1
  if status ~= 200 or body == nil or not string.find(body, EXPECT, 1, true) then bad = bad + 1 end
end
response = function(status, headers, body) check(status, body) end
function done(summary, latency, requests)
  local b, s, g = 0, 0, 0
  for _, t in ipairs(threads) do b = b + t:get("bad"); s = s + t:get("sent"); g = g + t:get("got") end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bad":%d,"sent":%d,"answered":%d,'
    .. '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,'
    .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%f}\n',
    summary.requests, summary.duration, b, s, g, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def signed_commands_lua(secret: str, response_url: str, count: int, text: str = "help") -> str:
    """`count` signed `/numbers <text>` requests (distinct trigger ids, signed now), cycled in order."""
    entries = []
    for i in range(count):
        body = slash_command_body(
            "/numbers",
            text,
            user_id="U0REP",
            channel_id="C0SALES",
            response_url=response_url,
            trigger_id=f"{i}.T0SANDBOX.bench{time.time_ns() % 10**9}",
        )
        headers = signature_headers(secret, body)
        entries.append(
            "{"
            + ", ".join(
                lua_string(v) for v in (headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"], body)
            )
            + "}"
        )
    return (
        'EXPECT = "response_type"\n'
        + LUA_COMMON
        + "local signed = {\n"
        + ",\n".join(entries)
        + "\n}\nlocal formatted = {}\n"
        + "function init(args)\n"
        + "  for k, s in ipairs(signed) do\n"
        + '    formatted[k] = wrk.format("POST", "/slack/events", {["Content-Type"] = '
        + '"application/x-www-form-urlencoded", ["X-Slack-Request-Timestamp"] = s[1], ["X-Slack-Signature"] = s[2]}'
        + ", s[3])\n  end\nend\n"
        + "function request()\n  sent = sent + 1\n  return formatted[(sent - 1) % #formatted + 1]\nend\n"
    )


# A call-URI webhook: the seed's parameters, then a fresh uniqueid, callid and caller from the counter, and
# a tracking number (bnum) chosen by the counter among TRACKING (one: a one-channel storm).
LUA_CALLS = r"""
local counter = 0
function next_call()
  counter = counter + 1
  local n = OFFSET + counter
  local bnum = TRACKING[(n % #TRACKING) + 1]
  return wrk.format("GET", PREFIX .. "&bnum=" .. bnum .. "&uniqueid=ECS-bench-" .. n .. "&callid=" .. n
    .. "&ani=%2B61-0412" .. string.format("%06d", n % 1000000))
end
function request()
  sent = sent + 1
  return next_call()
end
"""

# Rate limit: each request waits for its slot (QUOTA requests at RATE per second, from the first slot); once
# QUOTA are answered the thread stops and says so, and the bench ends wrk.
LUA_SCHEDULE = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local t0 = nil
local slots = 0
function delay()
  local now = now_ms()
  if t0 == nil then t0 = now end
  if slots >= QUOTA then return 3600000 end
  local due = t0 + slots * 1000 / RATE
  slots = slots + 1
  if due > now then return math.floor(due - now) end
  return 0
end
response = function(status, headers, body)
  check(status, body)
  if got == QUOTA then
    io.stdout:write("BENCH_QUOTA_DONE\n")
    io.stdout:flush()
    wrk.thread:stop()
  end
end
"""


def spread_lua(urls: list[str]) -> str:
    """Lua appended to a script so that wrk's threads (one per URL) each load one server, and count calls from
    an offset of their own (the ids stay distinct across threads)."""
    targets = ", ".join(
        "{" + lua_string(u.split("://", 1)[1].rsplit(":", 1)[0]) + ", " + lua_string(u.rsplit(":", 1)[1]) + "}"
        for u in urls
    )
    return (
        f"local targets = {{{targets}}}\n"
        "local made = 0\n"
        "function setup(thread)\n"
        "  made = made + 1\n"
        "  local t = targets[(made - 1) % #targets + 1]\n"
        "  thread.addr = wrk.lookup(t[1], t[2])[1]\n"
        '  thread:set("OFFSET", OFFSET + made * 10000000)\n'
        "  table.insert(threads, thread)\n"
        "end\n"
    )


class Group:
    """Several processes measured as one server (replicas, and the PostgreSQL they share)."""

    def __init__(self, servers: list[Server], extra_pids: Any = None) -> None:
        self.servers = servers
        self.extra_pids = extra_pids  # a callable giving more pids to count (PostgreSQL's processes)

    def cpu_seconds(self) -> float:
        total = sum(s.cpu_seconds() for s in self.servers)
        for pid in self.extra_pids() if self.extra_pids else []:
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += pid_cpu_seconds(pid)
        return total

    def alive(self) -> bool:
        return all(s.process.poll() is None for s in self.servers)


def pid_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def calls_lua(
    call: dict[str, str], token: str, tracking: list[str], *, offset: int = 0, quota: int = 0, rate: float = 0
) -> str:
    prefix = "/hooks/avanser/call?" + urlencode({"token": token, **call})
    head = (
        'EXPECT = "\\"ok\\":true"\n'
        f"PREFIX = {lua_string(prefix)}\n"
        f"OFFSET = {offset}\n"
        "TRACKING = {" + ", ".join(lua_string(urlencode({"b": t})[2:]) for t in tracking) + "}\n"
    )
    script = head + LUA_COMMON + LUA_CALLS
    if quota:
        script = f"QUOTA = {quota}\nRATE = {rate}\n" + script + LUA_SCHEDULE
    return script


# -- running wrk ---------------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    connections: int
    seconds: float
    requests: int
    good: int  # answered 200 with the expected body
    errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    server_cpu: float | None = None  # share of its core the server used over the run
    wrk_cpu: float | None = None  # share of its core wrk used
    ended_at: float = 0.0  # time.monotonic() when wrk returned (or its quota was done)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.good / self.seconds if self.seconds else 0.0

    @property
    def per_cpu_s(self) -> float | None:
        """Requests answered per second of the server's CPU time: the server's cost, whatever share of its core
        other processes on the machine left it."""
        return self.good / (self.server_cpu * self.seconds) if self.server_cpu else None

    def summary(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "seconds": round(self.seconds, 2),
            "requests": self.requests,
            "good": self.good,
            "errors": {k: v for k, v in self.errors.items() if v},
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p90_ms": round(self.p90_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "max_ms": round(self.max_ms, 2),
            "server_cpu": None if self.server_cpu is None else round(self.server_cpu, 2),
            "per_server_cpu_s": None if self.per_cpu_s is None else round(self.per_cpu_s),
            "wrk_cpu": None if self.wrk_cpu is None else round(self.wrk_cpu, 2),
        }


class Wrk:
    """One wrk run in the background; `result()` waits for it (or ends it early with `stop()`)."""

    def __init__(
        self,
        url: str,
        script: str,
        *,
        connections: int,
        seconds: float,
        scriptdir: str,
        server: Server | Group | None = None,
        timeout_s: int = 10,
        threads: int = 1,
    ) -> None:
        path = wrk_path()
        if path is None:
            raise RuntimeError("wrk is not installed")
        self.connections = connections
        self.server = server
        self.script = Path(scriptdir) / f"wrk-{time.time_ns()}.lua"
        self.script.write_text(script)
        self.quota_done = threading.Event()
        self.quota_at = 0.0
        self.lines: list[str] = []
        self._cpu0 = server.cpu_seconds() if server else None
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [
                *on_core(LOAD_CORE),
                path,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                f"--timeout={timeout_s}s",
                "-s",
                str(self.script),
                url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("BENCH_QUOTA_DONE"):
                self.quota_at = time.monotonic()
                self.quota_done.set()
            self.lines.append(line)

    def stop(self) -> None:
        """End the run now; wrk still prints its summary."""
        if self.process.returncode is None:  # not poll(): result() reaps wrk itself, with os.wait4
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGINT)

    def result(self, timeout: float = 600) -> WrkResult:
        deadline = time.monotonic() + timeout
        while True:  # wait4: this wrk's own CPU time, not that of another wrk running beside it
            pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
            if pid:
                self.process.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                self.process.kill()
                raise TimeoutError("wrk did not finish")
            time.sleep(0.01)
        ended = time.monotonic()
        self._reader.join(5)
        wall = ended - self.started
        wrk_cpu = (usage.ru_utime + usage.ru_stime) / wall
        server_cpu = None
        if isinstance(self.server, Group):
            alive = self.server.alive()
        else:
            alive = self.server is not None and self.server.process.poll() is None
        if self.server is not None and self._cpu0 is not None and alive:
            server_cpu = (self.server.cpu_seconds() - self._cpu0) / wall
        marked = [line for line in self.lines if line.startswith("BENCH_JSON ")]
        if not marked:
            raise RuntimeError("wrk gave no summary:\n" + "".join(self.lines)[-2000:])
        raw = json.loads(marked[-1].removeprefix("BENCH_JSON "))
        errors = {k: raw[k] for k in ("connect", "read", "write", "timeout")}
        errors["bad_answer"] = raw["bad"]
        seconds = raw["duration_us"] / 1e6
        if self.quota_done.is_set():  # the quota's last answer, not when wrk was told to stop
            seconds = self.quota_at - self.started
        return WrkResult(
            connections=self.connections,
            seconds=seconds,
            requests=raw["answered"],
            good=raw["answered"] - raw["bad"],
            errors=errors,
            p50_ms=raw["p50_us"] / 1000,
            p90_ms=raw["p90_us"] / 1000,
            p99_ms=raw["p99_us"] / 1000,
            max_ms=raw["max_us"] / 1000,
            server_cpu=server_cpu,
            wrk_cpu=wrk_cpu,
            ended_at=self.quota_at or ended,
            raw=raw,
        )


def run_wrk(url: str, script: str, *, connections: int, seconds: float, scriptdir: str, **kw: Any) -> WrkResult:
    return Wrk(url, script, connections=connections, seconds=seconds, scriptdir=scriptdir, **kw).result()


# -- what Slack shows ----------------------------------------------------------------------------------------

CALLER = re.compile(r"0412 \d{3} \d{3}")


def callers_shown(messages: list[dict[str, Any]]) -> dict[str, int]:
    """How many messages show each bench caller (in a message's text or blocks, or a digest's lines: once
    per message)."""
    seen: dict[str, int] = {}
    for message in messages:
        for number in set(CALLER.findall(json.dumps(message, ensure_ascii=False))):
            seen[number] = seen.get(number, 0) + 1
    return seen


def national_caller(ani: str) -> str:
    """`+61-0412000123` → `0412 000 123`, as the app shows a bench caller."""
    digits = ani[-6:]
    return f"0412 {digits[:3]} {digits[3:]}"
