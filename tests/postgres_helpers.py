"""A throwaway PostgreSQL cluster for the shared-state tests: ``initdb`` in a temporary folder, the
server on a free loopback port, a fresh database per test.

PostgreSQL's server programs come from Debian (``apt-get install -y postgresql``; ``.ci/run``
installs it). They refuse to run as root, so as root the cluster belongs to the ``postgres`` user.
A missing PostgreSQL skips the tests here and fails them in CI.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from absent import tool_missing
from waiting import wait_until


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def require_postgres() -> Path:
    folder = _bin_dir()
    if folder is None:
        tool_missing(
            "PostgreSQL's server programs are missing: apt-get update && apt-get install -y postgresql"
        )
    return folder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """A running PostgreSQL server; :meth:`database` makes a new empty database and gives its address."""

    def __init__(self, port: int) -> None:
        self.port = port

    def database(self) -> str:
        import psycopg

        name = "t" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgresql://ipyimagegen@127.0.0.1:{self.port}/{name}"


@contextlib.contextmanager
def postgres_cluster() -> Iterator[Cluster]:
    """A cluster in a new folder directly under the temporary folder (the postgres user must reach it)."""
    programs = require_postgres()
    folder = Path(tempfile.mkdtemp(prefix="ipyimagegen-pg-"))
    try:
        with _running(programs, folder) as cluster:
            yield cluster
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _listening(server: subprocess.Popen[bytes], port: int) -> bool:
    """Whether the PostgreSQL ``server`` listens on ``port`` now (it must not have exited)."""
    if server.poll() is not None:
        raise RuntimeError(f"PostgreSQL did not start: it exited with code {server.returncode}")
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def _connects(url: str) -> bool:
    """Whether PostgreSQL takes a connection at ``url`` now."""
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


@contextlib.contextmanager
def _running(programs: Path, folder: Path) -> Iterator[Cluster]:
    data = folder / "pgdata"
    data.mkdir(parents=True)
    run_as: list[str] = []
    if os.geteuid() == 0:  # the server refuses root: the cluster is the postgres user's
        user = pwd.getpwnam("postgres")
        for path in (folder, data):
            os.chown(path, user.pw_uid, user.pw_gid)
        run_as = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*run_as, str(programs / "initdb"), "-D", str(data), "-A", "trust", "-U", "ipyimagegen", "--no-sync"],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    server = subprocess.Popen(
        [
            *run_as, str(programs / "postgres"), "-D", str(data), "-p", str(port), "-k", str(folder),
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: _listening(server, port), timeout=60, interval=0.1, message="PostgreSQL to listen")
        cluster = Cluster(port)
        # the port is open a moment before the server takes connections
        wait_until(
            lambda: _connects(cluster.url("postgres")),
            timeout=30,
            interval=0.1,
            message="PostgreSQL to take connections",
        )
        yield cluster
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
