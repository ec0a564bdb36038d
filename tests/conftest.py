"""Fixtures over real services: PostgreSQL on 127.0.0.1 and a real uvicorn server.

The schema is migrated once into a template database; integration tests and the API server
each get their own database cloned from it. Integration tests are isolated by truncating
after each test; API tests by unique users (the server is shared by the session).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from stacklo.data.db import create_engine, migrate
from stacklo.data.ledger import forget_account_ids
from stacklo.data.tables import metadata
from stacklo.data.uow import SqlUnitOfWorkFactory
from tests.helpers import GraphQLHTTP

ADMIN_URL = os.environ.get(
    "STACKLO_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
JWT_SECRET = "test-secret-" + "x" * 40
RUN_ID = uuid.uuid4().hex[:8]

# Cheap Argon2 for tests: the suite hashes hundreds of passwords. Production uses the defaults.
TEST_ENV = {
    "STACKLO_ENV": "test",
    "STACKLO_JWT_SECRET": JWT_SECRET,
    "STACKLO_ARGON2_TIME_COST": "1",
    "STACKLO_ARGON2_MEMORY_KIB": "1024",
    "STACKLO_ARGON2_PARALLELISM": "1",
    "STACKLO_TRUSTED_PROXIES": "127.0.0.2/32",
    # Only USD is limited for unverified users in tests, so the limit path is easy to reach.
    "STACKLO_UNVERIFIED_DAILY_LIMITS": '{"USD": "50"}',
    # The API server relays the outbox itself unless a test runs a separate worker.
    "STACKLO_RUN_WORKER_IN_PROCESS": "true",
    "STACKLO_RELAY_POLL_SECONDS": "0.5",
    # The sandbox rate feed ticks often, so rateUpdated tests do not wait long.
    "STACKLO_RATE_TICK_SECONDS": "0.5",
    # Every test signs up and connects from 127.0.0.1: the abuse limits stay out of the way
    # here; tests/security runs its own servers with the defaults.
    "STACKLO_AUTH_ATTEMPTS_PER_ADDRESS": "100000/minute",
    "STACKLO_AUTH_FAILURES_PER_ACCOUNT": "100000/minute",
    "STACKLO_WS_SOCKETS_PER_ADDRESS": "100000",
    "STACKLO_COST_BUCKET_SIZE": "100000000",
    "STACKLO_COST_RESTORE_PER_SECOND": "100000000",
    "STACKLO_MONEY_BUCKET_SIZE": "100000000",
    "STACKLO_MONEY_RESTORE_PER_SECOND": "100000000",
}


def _dsn(database: str | None = None) -> str:
    url = make_url(ADMIN_URL)
    if database:
        url = url.set(database=database)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _url(database: str) -> str:
    return make_url(ADMIN_URL).set(database=database).render_as_string(hide_password=False)


async def _admin(*statements: str) -> None:
    conn = await asyncpg.connect(_dsn())
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


class Databases:
    def __init__(self) -> None:
        self.template = f"stacklo_test_{RUN_ID}_tpl"
        self.created: list[str] = []

    def create(self, name: str) -> str:
        database = f"stacklo_test_{RUN_ID}_{name}"
        asyncio.run(_admin(f'CREATE DATABASE "{database}" TEMPLATE "{self.template}"'))
        self.created.append(database)
        return _url(database)

    def drop_all(self) -> None:
        statements = [
            f'DROP DATABASE IF EXISTS "{d}" WITH (FORCE)' for d in [*self.created, self.template]
        ]
        asyncio.run(_admin(*statements))


@pytest.fixture(scope="session")
def databases() -> Iterator[Databases]:
    dbs = Databases()
    asyncio.run(_admin(f'CREATE DATABASE "{dbs.template}"'))
    try:
        migrate(_url(dbs.template))
        yield dbs
    finally:
        dbs.drop_all()


@pytest.fixture(scope="session")
def integration_url(databases: Databases) -> str:
    return databases.create("integration")


@pytest.fixture(scope="session")
async def engine(integration_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(integration_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def uow_factory(engine: AsyncEngine) -> AsyncIterator[SqlUnitOfWorkFactory]:
    yield SqlUnitOfWorkFactory(engine)
    tables = ", ".join(t.name for t in metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    forget_account_ids()  # the accounts it remembered are gone with the rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base_url: str
    ws_url: str
    database_url: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(
    env: dict[str, str],
    log: Path,
    port: int | None = None,
    timeout: float = 90,
    args: tuple[str, ...] = (),
) -> tuple[subprocess.Popen[bytes], str]:
    port = port or free_port()
    handle = log.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "stacklo", "serve", "--port", str(port), *args],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}:\n{log.read_text()[-4000:]}"
            )
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server did not become ready:\n{log.read_text()[-4000:]}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def server_env(database_url: str | None, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("STACKLO_") and k != "DATABASE_URL"
    }
    env.update(TEST_ENV)
    env["STACKLO_DATA_DIR"] = str(data_dir)
    if database_url:
        env["STACKLO_DATABASE_URL"] = database_url
    env.update(extra)
    return env


@contextlib.contextmanager
def own_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory, name: str, **settings: str
) -> Iterator[Server]:
    """A server on a database of its own, with the test settings and ``settings`` on top."""
    url = databases.create(name)
    folder = tmp_path_factory.mktemp(name)
    env = server_env(url, folder, **settings)
    log = folder / "server.log"
    process, base = start_server(env, log)
    try:
        yield Server(base, base.replace("http", "ws", 1) + "/graphql", url, env, log, process)
    finally:
        stop_server(process)


@pytest.fixture(scope="session")
def server(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with own_server(databases, tmp_path_factory, "api") as running:
        yield running


@pytest.fixture
async def client(server: Server) -> AsyncIterator[GraphQLHTTP]:
    c = GraphQLHTTP(server.base_url)
    yield c
    await c.aclose()


@pytest.fixture(scope="session")
def admin_credentials(server: Server) -> tuple[str, str]:
    """An ADMIN made the way operators make one: `stacklo create-admin`."""
    from tests.helpers import PASSWORD, unique_email

    email = unique_email("admin")
    result = subprocess.run(
        [sys.executable, "-m", "stacklo", "create-admin", "--email", email, "--password", PASSWORD],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert email in result.stdout
    return email, PASSWORD
