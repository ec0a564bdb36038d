"""What the benchmarks share: a scratch database, started ``stacklo`` processes on it, the
GraphQL calls that set users up, process figures (RSS, CPU) and percentiles. Benchmarks print
their figures; nothing here is timed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import resource
import secrets
import signal
import socket
import string
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"

# Sign-up hashes a password: setup, not what is measured, so it is made cheap.
CHEAP_ARGON2: Mapping[str, str] = {
    "STACKLO_ARGON2_TIME_COST": "1",
    "STACKLO_ARGON2_MEMORY_KIB": "1024",
    "STACKLO_ARGON2_PARALLELISM": "1",
}
# The load comes from one address: abuse limits would throttle the benchmark itself.
UNTHROTTLED: Mapping[str, str] = {
    "STACKLO_AUTH_ATTEMPTS_PER_ADDRESS": "1000000/minute",
    "STACKLO_WS_SOCKETS_PER_ADDRESS": "100000",  # the most the server accepts
    # Cost and money buckets: still charged and reported on every request, never empty here.
    "STACKLO_COST_BUCKET_SIZE": "1000000000",
    "STACKLO_COST_RESTORE_PER_SECOND": "1000000000",
    "STACKLO_MONEY_BUCKET_SIZE": "1000000000",
    "STACKLO_MONEY_RESTORE_PER_SECOND": "1000000000",
}


class BenchError(Exception):
    """The benchmark could not run (not a slow result: a broken set-up)."""


def flatten(error: BaseException) -> Iterator[BaseException]:
    """The leaves of nested exception groups, so a bench can report each failure on its own."""
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from flatten(inner)
    else:
        yield error


def cancel_on_sigterm() -> None:
    """SIGTERM unwinds the running task like Ctrl-C does: servers stopped, databases dropped."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


# ------------------------------------------------------------------------ databases ----


def plain_dsn(dsn: str) -> str:
    """libpq/asyncpg form: ``postgresql+asyncpg://`` becomes ``postgresql://``."""
    scheme, rest = dsn.split("://", 1)
    return scheme.split("+", 1)[0] + "://" + rest


def with_database(dsn: str, database: str) -> str:
    return urlsplit(plain_dsn(dsn))._replace(path="/" + database).geturl()


def redacted(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    return parts._replace(netloc=parts.netloc.replace(":" + parts.password + "@", ":***@")).geturl()


async def admin(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(plain_dsn(dsn))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def fetchval(dsn: str, query: str, *args: Any) -> Any:
    """One value from a short-lived connection (a figure to print, not a hot path)."""
    conn = await asyncpg.connect(plain_dsn(dsn))
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def scratch_database(dsn: str, prefix: str) -> AsyncIterator[str]:
    """A new empty database on the server of ``dsn``; yields its DSN, drops it afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"  # generated identifier, not input
    await admin(dsn, f'CREATE DATABASE "{name}"')
    try:
        yield with_database(dsn, name)
    finally:
        await admin(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Scratch:
    dsn: str  # the migrated scratch database
    env: dict[str, str]  # for every process on it: one JWT secret, so tokens work on all
    dir: Path  # data directory and logs


@contextlib.asynccontextmanager
async def migrated_database(
    dsn: str, prefix: str, redis_url: str | None = None, **settings: str
) -> AsyncIterator[Scratch]:
    """A scratch database on the server of ``dsn``, migrated, with a temporary directory and
    the environment to run ``stacklo`` on them; both removed afterwards."""
    async with scratch_database(dsn, prefix) as database:
        with tempfile.TemporaryDirectory(prefix=prefix + "_") as tmp:
            env = base_env(database, tmp, redis_url, **settings)
            log = Path(tmp) / "migrate.log"
            migrate = await spawn(env, log, "migrate")
            if await migrate.wait() != 0:
                raise BenchError(f"stacklo migrate failed:\n{log_tail(log)}")
            yield Scratch(database, env, Path(tmp))


# -------------------------------------------------------------------------- servers ----


def raise_file_limit() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit (the servers inherit it), for benches that hold
    many sockets; returns (old, new)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(
    database_dsn: str, data_dir: str, redis_url: str | None = None, **settings: str
) -> dict[str, str]:
    """The caller's environment without any STACKLO_* (nor a stray DATABASE_URL or REDIS_URL):
    the server runs on its defaults plus ``settings``, a scratch database, a random JWT secret
    and Redis only when ``redis_url`` is given."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("STACKLO_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    alphabet = string.ascii_letters + string.digits
    env.update(
        STACKLO_DATABASE_URL=database_dsn,
        STACKLO_DATA_DIR=data_dir,
        STACKLO_JWT_SECRET="".join(secrets.choice(alphabet) for _ in range(48)),
        **settings,
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def log_tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


async def spawn(env: dict[str, str], log: Path, *arguments: str) -> asyncio.subprocess.Process:
    """``python -m stacklo <arguments>`` in its own process group (so stop_process reaches the
    uvicorn workers too), its output appended to ``log``."""
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "stacklo", *arguments,
            env=env, cwd=ROOT, stdout=out, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


async def stop_process(process: asyncio.subprocess.Process) -> None:
    """SIGTERM to the process's own group (uvicorn workers included), then SIGKILL."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 20)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


@contextlib.asynccontextmanager
async def running(
    env: dict[str, str], log: Path, *arguments: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``stacklo <arguments>`` for the duration of the block, stopped afterwards. If the block
    fails, the log's tail goes to stderr: the reason is usually there."""
    process = await spawn(env, log, *arguments)
    try:
        yield process
    except BaseException:
        print(f"{log.name} (tail):\n{log_tail(log)}", file=sys.stderr)
        raise
    finally:
        await stop_process(process)


@dataclass
class Server:
    name: str  # tells several apart in what is printed
    base: str
    process: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def ws_url(self) -> str:
        return "ws" + self.base.removeprefix("http") + "/graphql"


@contextlib.asynccontextmanager
async def serving(
    env: dict[str, str], log: Path, *arguments: str, name: str = "server"
) -> AsyncIterator[Server]:
    """``stacklo serve`` on a free port, ``arguments`` (e.g. ``--workers 2``) added; not yet
    ready: start several, then wait_ready for each, so they start up side by side."""
    port = free_port()
    async with running(env, log, "serve", "--port", str(port), *arguments) as process:
        yield Server(name, f"http://127.0.0.1:{port}", process, log)


async def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if server.process.returncode is not None:
                raise BenchError(f"server {server.name} exited with {server.process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(server.base + "/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise BenchError(f"server {server.name} did not become ready within 90 s")


@contextlib.asynccontextmanager
async def started_server(dsn: str, workers: int = 1, **settings: str) -> AsyncIterator[Server]:
    """A migrated scratch database and ``stacklo serve --workers <workers>`` on it, ready."""
    async with (
        migrated_database(dsn, "stacklo_bench", **settings) as scratch,
        serving(scratch.env, scratch.dir / "server.log", "--workers", str(workers)) as server,
    ):
        await wait_ready(server)
        print(
            f"started stacklo serve --workers {workers} on {server.base} "
            f"(database {redacted(scratch.dsn)})",
            flush=True,
        )
        yield server


# -------------------------------------------------------------------------- graphql ----

SIGN_UP = """
mutation BenchSignUp($input: SignUpInput!) {
  signUp(input: $input) {
    session { accessToken }
    user { wallets { id currency { code } } }
    userErrors { code message }
  }
}"""

START_DEPOSIT = """
mutation BenchDeposit($input: StartDepositInput!) {
  startDeposit(input: $input) {
    paymentUrl
    transaction { reference status }
    userErrors { code message }
  }
}"""

BALANCES = "query BenchBalances { me { wallets { id balance { amount } } } }"

SEND_MONEY = """
mutation BenchSend($input: SendMoneyInput!) {
  sendMoney(input: $input) {
    transaction { reference status }
    userErrors { code message }
  }
}"""


@dataclass
class User:
    email: str
    token: str
    wallet_id: str


async def graphql(
    client: httpx.AsyncClient,
    base: str,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """``data`` of a successful response; BenchError on HTTP or GraphQL errors (setup only)."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await client.post(
        base + "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    if response.status_code != 200:
        raise BenchError(f"HTTP {response.status_code}: {response.text[:500]}")
    body: dict[str, Any] = response.json()
    if body.get("errors"):
        raise BenchError(f"GraphQL errors: {body['errors']}")
    data: dict[str, Any] = body["data"]
    return data


def user_errors(payload: dict[str, Any], what: str) -> None:
    if payload.get("userErrors"):
        raise BenchError(f"{what}: {payload['userErrors']}")


async def sign_up(
    client: httpx.AsyncClient, base: str, name: str, run: str, index: int, currency: str
) -> User:
    """User ``<name>-<run>-<index>@example.com`` with a ``currency`` wallet."""
    email = f"{name}-{run}-{index}@example.com"
    variables = {
        "input": {
            "email": email,
            "password": "bench-" + secrets.token_hex(10),
            "fullName": f"{name.capitalize()} User {index}",
            "homeCurrency": currency,
        }
    }
    payload = (await graphql(client, base, SIGN_UP, variables))["signUp"]
    user_errors(payload, f"signUp {email}")
    wallets = [w for w in payload["user"]["wallets"] if w["currency"]["code"] == currency]
    if not wallets:
        raise BenchError(f"signUp {email}: no {currency} wallet in {payload['user']['wallets']}")
    return User(email, payload["session"]["accessToken"], wallets[0]["id"])


async def fund(client: httpx.AsyncClient, base: str, user: User, amount: str) -> None:
    """startDeposit, then complete it on the payment page the provider returned."""
    variables = {
        "input": {"walletId": user.wallet_id, "amount": amount, "idempotencyKey": str(uuid.uuid4())}
    }
    payload = (await graphql(client, base, START_DEPOSIT, variables, user.token))["startDeposit"]
    user_errors(payload, f"startDeposit {user.email}")
    url = payload.get("paymentUrl")
    if not url:
        raise BenchError(f"startDeposit {user.email}: no paymentUrl in {payload}")
    response = await client.post(url, data={"outcome": "success"})
    if response.status_code >= 400:
        raise BenchError(f"payment page {url}: HTTP {response.status_code} {response.text[:300]}")


async def balance(client: httpx.AsyncClient, base: str, user: User) -> Decimal:
    me = (await graphql(client, base, BALANCES, token=user.token))["me"]
    for wallet in me["wallets"]:
        if wallet["id"] == user.wallet_id:
            return Decimal(wallet["balance"]["amount"])
    raise BenchError(f"{user.email}: wallet {user.wallet_id} not in me.wallets")


# ---------------------------------------------------------------------------- /proc ----


def status_kib(pid: int, field: str) -> int:
    """A figure from /proc/<pid>/status in KiB: VmRSS (now) or VmHWM (peak since start)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise BenchError(f"{field} not in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs together, from ``/proc/stat``: how busy the whole
    machine was, PostgreSQL and the client included."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


# ---------------------------------------------------------------------------- stats ----


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile, in the samples' unit: always a value that was observed."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def latency_line(samples_ms: list[float]) -> str:
    return (
        f"p50 {percentile(samples_ms, 50):.2f} / p99 {percentile(samples_ms, 99):.2f} / "
        f"max {max(samples_ms, default=float('nan')):.2f} ms (n={len(samples_ms)})"
    )


def latency_figures(samples_ms: list[float], digits: int = 3) -> dict[str, float | int]:
    """latency_line's figures for record(): ``p50_ms`` and ``p99_ms`` are what the suite's
    chart reads as a result's latency."""
    return {
        "p50_ms": round(percentile(samples_ms, 50), digits),
        "p99_ms": round(percentile(samples_ms, 99), digits),
        "max_ms": round(max(samples_ms, default=float("nan")), digits),
        "n": len(samples_ms),
    }


def spread_line(seconds: list[float]) -> str:
    """p50, p90, p99 and max of durations in seconds, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return (
        f"p50 {percentile(ms, 50):.1f}  p90 {percentile(ms, 90):.1f}  "
        f"p99 {percentile(ms, 99):.1f}  max {percentile(ms, 100):.1f}"
    )


# `make bench` (bench/suite.py) names a file here; each benchmark appends its figures to it.
RECORD_ENV = "STACKLO_BENCH_RECORD"


def record(
    bench: str,
    figures: Mapping[str, float | int | str | None],
    *,
    baseline: str | None = None,
    ratio: float | None = None,
    target: str | None = None,
) -> None:
    """Hand one result to the suite: ``figures`` as printed, and, where the benchmark has one,
    its ratio to ``baseline`` (what it is compared with) and the ``target`` it is held to.
    Printed always, so a run by hand shows the same line; written only under `make bench`."""
    entry: dict[str, Any] = {"bench": bench, "figures": dict(figures)}
    if baseline is not None:
        entry.update(baseline=baseline, ratio=ratio, target=target)
        shown = f"{ratio:.2f}" if ratio is not None else "n/a"
        print(f"ratio to {baseline}: {shown}" + (f" (target {target})" if target else ""))
    path = os.environ.get(RECORD_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(entry, default=str) + "\n")
