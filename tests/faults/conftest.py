"""The fault suite's stack: its own PostgreSQL and Redis, and Stacklo's processes over them.

Every scenario gets a copy of one migrated cluster (``own_pg``) and a Redis of its own
(``own_redis``), so it may stop, kill and restart them; ``stack`` starts ``stacklo serve`` and
``stacklo worker`` processes against them, on fixed ports, and kills or restarts them.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stacklo.data.db import migrate
from tests.conftest import free_port, server_env, start_server
from tests.faults.services import OwnPostgres, OwnRedis, scratch


@pytest.fixture(scope="session")
def pg_template() -> Iterator[OwnPostgres]:
    """One cluster, initialised and migrated once, then stopped: each scenario copies it."""
    folder = scratch("stacklo-pg-template-")
    cluster = OwnPostgres.initialise(folder)
    cluster.start()
    try:
        migrate(cluster.url())
    finally:
        cluster.stop("fast")
    yield cluster
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def own_pg(pg_template: OwnPostgres) -> Iterator[OwnPostgres]:
    folder = scratch("stacklo-pg-")
    cluster = pg_template.copy(folder)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Proc:
    """One ``stacklo`` process: started, killed (any signal) and started again, same port."""

    argv: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def start(self) -> None:
        self.starts += 1
        if self.port is not None:  # serve: wait for /readyz
            self.process, _ = start_server(self.env, self.log, port=self.port, args=())
            return
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            self.argv, env=self.env, stdout=handle, stderr=subprocess.STDOUT
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(30)

    def restart(self) -> None:
        self.kill()
        self.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for_log(self, needle: str, timeout: float = 30, since: int = 0) -> None:
        """Until ``needle`` appears in the log past byte ``since``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_text()[since:]:
                return
            time.sleep(0.1)
        raise AssertionError(
            f"{needle!r} not in the log within {timeout} s:\n{self.log_text()[-3000:]}"
        )


@dataclass
class Stack:
    """Stacklo over a scenario's own PostgreSQL and Redis."""

    pg: OwnPostgres
    redis: OwnRedis | None
    folder: Path
    procs: list[Proc] = field(default_factory=list)

    def env(self, **settings: str) -> dict[str, str]:
        extra = dict(settings)
        if self.redis is not None:
            extra.setdefault("STACKLO_REDIS_URL", self.redis.url)
        return server_env(self.pg.url(), self.folder / "data", **extra)

    def serve(self, name: str = "api", **settings: str) -> Proc:
        """``stacklo serve`` (relaying the outbox itself unless ``worker`` is started too)."""
        proc = Proc(
            [sys.executable, "-m", "stacklo", "serve"],
            self.env(**settings),
            self.folder / f"{name}.log",
            port=free_port(),
        )
        proc.start()
        self.procs.append(proc)
        return proc

    def worker(self, name: str = "worker", **settings: str) -> Proc:
        """``stacklo worker``: relay, rate feed, schedulers and notifier (needs Redis)."""
        proc = Proc(
            [sys.executable, "-m", "stacklo", "worker"],
            self.env(**settings),
            self.folder / f"{name}.log",
        )
        proc.start()
        self.procs.append(proc)
        return proc

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "stacklo", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def close(self) -> None:
        for proc in self.procs:
            proc.kill(signal.SIGTERM)


@pytest.fixture
def stack(own_pg: OwnPostgres, own_redis: OwnRedis, tmp_path: Path) -> Iterator[Stack]:
    (tmp_path / "data").mkdir(exist_ok=True)
    running = Stack(own_pg, own_redis, tmp_path)
    try:
        yield running
    finally:
        running.close()
