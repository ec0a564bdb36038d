"""PostgreSQL and Redis servers of a scenario's own, so it may kill and restart them.

The machine's servers are never touched: each scenario starts its own on free ports, in a
folder of its own, from the same binaries. A PostgreSQL cluster is made once per test session
(``initdb``, then migrated) and copied for each scenario, which is quicker than migrating again.
PostgreSQL refuses to run as root, so when the tests do, its commands run as ``postgres``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.conftest import free_port


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    root = Path("/usr/lib/postgresql")
    for version in sorted(root.glob("*"), reverse=True) if root.exists() else []:
        candidate = version / "bin" / name
        if candidate.exists():
            return str(candidate)
    raise RuntimeError(f"{name} not found: the fault scenarios need PostgreSQL's server binaries")


def _as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _open_to_postgres(folder: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")


def scratch(prefix: str) -> Path:
    """A folder PostgreSQL's user can reach (pytest's own are private to the test user)."""
    return Path(tempfile.mkdtemp(prefix=prefix))


class OwnPostgres:
    """A PostgreSQL cluster in ``folder``: started, stopped (fast or immediate), restarted."""

    def __init__(self, folder: Path, port: int | None = None):
        self.folder = folder
        self.data = folder / "data"
        self.port = port or free_port()
        self.log = folder / "postgres.log"

    @classmethod
    def initialise(cls, folder: Path) -> OwnPostgres:
        folder.mkdir(parents=True, exist_ok=True)
        _open_to_postgres(folder)
        cluster = cls(folder)
        subprocess.run(
            _as_postgres(
                [
                    _pg_bin("initdb"),
                    "-D",
                    str(cluster.data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "--locale=C",
                ]
            ),
            check=True,
            capture_output=True,
        )
        return cluster

    def copy(self, folder: Path) -> OwnPostgres:
        """A stopped copy of this (stopped) cluster in ``folder``, on a port of its own."""
        folder.mkdir(parents=True, exist_ok=True)
        _open_to_postgres(folder)
        subprocess.run(_as_postgres(["cp", "-a", str(self.data), str(folder / "data")]), check=True)
        return OwnPostgres(folder)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        # fsync off: a scenario kills PostgreSQL's processes, never the machine, and the OS
        # keeps what they wrote; what is tested is PostgreSQL's recovery, not the disk's.
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=200 -c shared_buffers=64MB"
        )
        subprocess.run(
            _as_postgres(
                [
                    _pg_bin("pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    options,
                    "-l",
                    str(self.log),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends sessions and checkpoints; ``immediate`` is a crash (recovery on start)."""
        subprocess.run(
            _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
            check=False,
            capture_output=True,
        )

    def running(self) -> bool:
        done = subprocess.run(
            _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "status"]),
            capture_output=True,
        )
        return done.returncode == 0


class OwnRedis:
    """A Redis server on a port of its own, keeping nothing on disk."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("redis-server not found: the fault scenarios need it")
        self.process = subprocess.Popen(
            [
                server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=(self.folder / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        """Killed, not shut down: clients see their connections drop, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None
