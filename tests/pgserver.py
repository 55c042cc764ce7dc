"""A throwaway PostgreSQL for the tests and the bench: Debian's `postgresql` package, started in a temp dir.

    python -m tests.pgserver run -- pytest -q      # start one, export SWITCHBOARD_TEST_PG, run, stop
    python -m tests.pgserver url                    # or: print where one would come from, and why not

`make test` uses `run`. The server is initdb'd in a fresh temporary directory (as the `postgres` user
when run as root: initdb refuses root), listens on 127.0.0.1 at a free port and on a socket in that
directory, and is stopped and deleted afterwards. Its one role, `switchboard`, has a password (so the
tests see a URL with a secret in it, as production does). Durability is turned off (`fsync=off`): it
is a test server. When no PostgreSQL can be had (no package and no root to install it), the command
still runs, without SWITCHBOARD_TEST_PG, and this says why: the PostgreSQL tests then skip, saying so.
A SWITCHBOARD_TEST_PG already set is used as it is (a database of your own).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ENV = "SWITCHBOARD_TEST_PG"
USER = "switchboard"
DATABASE = "switchboard"


class Unavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


def bindir(install: bool = True) -> Path:
    """Where initdb, pg_ctl and postgres are; as root, apt-get installs `postgresql` when they are missing."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        print("pgserver: installing Debian's postgresql package (apt-get)", file=sys.stderr, flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
        if subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], **quiet).returncode != 0:  # type: ignore[call-overload]
            subprocess.run(["apt-get", "update", "-q"], **quiet)  # type: ignore[call-overload]
            subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], **quiet)  # type: ignore[call-overload]
        return bindir(install=False)
    if os.geteuid() == 0:
        raise Unavailable("PostgreSQL is not installed and apt-get is not available to install it")
    raise Unavailable("PostgreSQL is not installed (Debian: `sudo apt-get install postgresql`)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    """One PostgreSQL cluster in a temporary directory; `url` reaches its `switchboard` database."""

    def __init__(self, *, durable: bool = False, prefix: list[str] | None = None) -> None:
        self.durable = durable  # the bench's server keeps PostgreSQL's defaults: fsync, synchronous commit
        self.prefix = prefix or []  # e.g. taskset: the bench keeps the server on the server's core
        self.bin = bindir()
        self.root = Path(tempfile.mkdtemp(prefix="switchboard-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.password = secrets.token_urlsafe(12)
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise Unavailable("running as root and there is no `postgres` user to run the server as") from None
            runner = shutil.which("runuser")
            if runner is None:
                raise Unavailable("running as root and `runuser` is missing")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.root.chmod(0o700)
            self.as_user = [runner, "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str) -> None:
        prefix = [a for a in args if a in self.prefix]
        rest = list(args[len(prefix) :])
        done = subprocess.run([*prefix, *self.as_user, *rest], capture_output=True, text=True)
        if done.returncode != 0:
            raise Unavailable(f"{Path(rest[0]).name} failed: {(done.stderr or done.stdout).strip()[-500:]}")

    def pids(self) -> list[int]:
        """The postmaster and its children (for CPU accounting)."""
        try:
            main = int((self.data / "postmaster.pid").read_text().split()[0])
            children = Path(f"/proc/{main}/task/{main}/children").read_text().split()
        except (OSError, ValueError, IndexError):
            return []
        return [main, *map(int, children)]

    def start(self) -> PgServer:
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self.as_user:
            shutil.chown(pwfile, "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        pwfile.unlink()
        # In postgresql.conf, so a plain `pg_ctl start` (the restart test) brings the same server back.
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {self.port}\nunix_socket_directories = '{self.root}'\nlisten_addresses = '127.0.0.1'\n"
                "max_connections = 200\n"
            )
            if not self.durable:
                conf.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        self._run(
            *self.prefix, str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w", "start"
        )
        self._run(str(self.bin / "createdb"), "-h", str(self.root), "-p", str(self.port), "-U", USER, DATABASE)
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Unavailable):
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running() -> Iterator[PgServer]:
    server = PgServer()
    try:
        yield server.start()
    finally:
        server.stop()


def new_schema(url: str) -> str:
    """`url`, with its tables in a new empty schema of its own (a fresh database, in effect)."""
    import uuid
    from urllib.parse import quote

    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-c search_path={schema}')}"


def redacted(url: str) -> str:
    """The URL without its password (for messages)."""
    head, at, tail = url.rpartition("@")
    if not at or "://" not in head:
        return url
    scheme, _, userinfo = head.partition("://")
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{tail}"


def main(argv: list[str]) -> int:
    if len(argv) >= 1 and argv[0] == "run":
        command = argv[argv.index("--") + 1 :] if "--" in argv else argv[1:]
        if os.environ.get(ENV):
            print(f"PostgreSQL tests: using {ENV}={redacted(os.environ[ENV])}", flush=True)
            return subprocess.call(command)
        try:
            started = time.monotonic()
            server = PgServer().start()
        except Unavailable as exc:
            print(f"PostgreSQL tests will be SKIPPED: {exc}", flush=True)
            return subprocess.call(command)
        print(
            f"PostgreSQL tests: a throwaway server ({server.bin.parent.name}) at {redacted(server.url)},"
            f" started in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        try:
            env = {**os.environ, ENV: server.url, f"{ENV}_DATA": str(server.data), f"{ENV}_BIN": str(server.bin)}
            return subprocess.call(command, env=env)
        finally:
            server.stop()
    if argv[:1] == ["url"]:
        try:
            print(f"initdb in {bindir(install=False)}")
        except Unavailable as exc:
            print(f"no PostgreSQL: {exc}")
            return 1
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
