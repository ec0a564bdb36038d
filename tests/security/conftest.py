"""Servers for the security suite: the audit's categories, each a test, so none can regress.

``production``: two ``STACKLO_ENV=production`` instances and a worker over Redis, with the
default abuse limits, a (fake, local) Paystack and Coinbase: what the outside audit ran
against. ``tight``: one test-mode server with small socket limits and short-lived tokens.

Per-address limits see 127.0.0.1 for every test; clients that need an address of their own
speak through the trusted proxy address (``GraphQLHTTP(url, client_address=...)``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.api.test_subscriptions import start_worker
from tests.conftest import Databases, Server, server_env, start_server, stop_server
from tests.fakes.paystack_server import FakePaystack
from tests.fakes.rates_server import FakeCoinbase

PAYSTACK_SECRET = "sk_test_security_" + "s" * 24
REDIS_DB = os.environ.get("STACKLO_TEST_SECURITY_REDIS_DB", "8")
# The limits the test suite relaxes for its shared server: here they are the defaults.
RELAXED = (
    "STACKLO_AUTH_ATTEMPTS_PER_ADDRESS",
    "STACKLO_AUTH_FAILURES_PER_ACCOUNT",
    "STACKLO_WS_SOCKETS_PER_ADDRESS",
    "STACKLO_COST_BUCKET_SIZE",
    "STACKLO_COST_RESTORE_PER_SECOND",
    "STACKLO_MONEY_BUCKET_SIZE",
    "STACKLO_MONEY_RESTORE_PER_SECOND",
)
_addresses = itertools.count(1)


def new_address() -> str:
    """A client address no other test used (a documentation range, never routed)."""
    n = next(_addresses)
    return f"198.51.{n // 250}.{n % 250 + 1}"


@dataclass
class Cluster:
    a: Server
    b: Server
    paystack: FakePaystack
    env: dict[str, str]
    worker_log: Path
    processes: list[object] = field(default_factory=list)


def _server(url: str, env: dict[str, str], log: Path) -> Server:
    process, base = start_server(env, log)
    return Server(base, base.replace("http", "ws", 1) + "/graphql", url, env, log, process)


@pytest.fixture(scope="package")
def production(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    redis.Redis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}").flushdb()
    url = databases.create("security")
    folder = tmp_path_factory.mktemp("production")
    paystack = FakePaystack(PAYSTACK_SECRET)
    coinbase = FakeCoinbase()
    paystack.start()
    coinbase.start()
    env = server_env(
        url,
        folder,
        STACKLO_ENV="production",
        PAYSTACK_SECRET_KEY=PAYSTACK_SECRET,
        STACKLO_PAYSTACK_BASE_URL=paystack.base_url,
        STACKLO_RATE_FEED="coinbase",
        STACKLO_RATE_FEED_URL=coinbase.base_url,
        REDIS_URL=f"redis://127.0.0.1:6379/{REDIS_DB}",
        STACKLO_RUN_WORKER_IN_PROCESS="false",
    )
    for name in RELAXED:
        env.pop(name, None)
    servers: list[Server] = []
    worker = None
    try:
        servers.append(_server(url, env, folder / "a.log"))
        servers.append(_server(url, env, folder / "b.log"))
        worker = start_worker(env, folder / "worker.log")
        yield Cluster(servers[0], servers[1], paystack, env, folder / "worker.log")
    finally:
        if worker is not None:
            stop_server(worker)
        for server in servers:
            stop_server(server.process)
        paystack.stop()
        coinbase.stop()


METRICS_TOKEN = "metrics-" + "m" * 24


@pytest.fixture(scope="package")
def tight(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Test mode (sandbox provider), default abuse limits, small socket limits, 5 s tokens."""
    url = databases.create("tight")
    folder = tmp_path_factory.mktemp("tight")
    env = server_env(url, folder)
    for name in RELAXED:
        env.pop(name, None)
    env.update(
        STACKLO_WS_SOCKETS_PER_ADDRESS="3",
        STACKLO_WS_IDLE_ANONYMOUS_SECONDS="1",
        STACKLO_ACCESS_TOKEN_TTL_SECONDS="5",
        STACKLO_METRICS_TOKEN=METRICS_TOKEN,
    )
    server = _server(url, env, folder / "server.log")
    try:
        yield server
    finally:
        stop_server(server.process)
