"""Wallet-to-wallet transfer throughput over the public API, next to PostgreSQL's own ceiling.

    .venv/bin/python bench/transfers.py --start-server [--server-workers 2] \\
        --pgbench-dsn postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/transfers.py --url http://127.0.0.1:8000 --pgbench-dsn ...

What is measured: N users are signed up and funded through the public GraphQL API (signUp,
startDeposit, the sandbox payment page), then C concurrent clients call ``sendMoney`` for T
seconds, each request from a random user to another random one, 1.00 at a time. Every request
is timed end to end with ``time.perf_counter`` (HTTP/1.1 keep-alive, one connection pool of C),
so the figure includes GraphQL parsing, authentication (the per-request session check), the
ledger's double-entry transaction with its row locks, and the response. Printed: successful
transfers per second, p50/p90/p99/max latency, and outcomes (ok, userErrors by code, errors).
A keep-alive connection stays on the uvicorn worker that accepted it, and the kernel need not
spread C connections opened at once evenly (7 of 8 on one of two workers has been seen), so
compare worker counts with C well above W.

Why pgbench: a transfer is, at heart, a short read-modify-write transaction on a few hot rows,
which is what pgbench's TPC-B-like script is. Running it with the same client count on the
same PostgreSQL gives the ceiling for this machine, so ``transfers/s / pgbench TPS`` says how
much of the database's capacity the application keeps, independent of the hardware. The
target is a ratio of at least 0.5.

With ``--start-server`` the script creates a fresh database ``stacklo_bench_<random>`` on the
``--pgbench-dsn`` server, migrates it, runs ``stacklo serve --workers W`` on a free port with
cheap Argon2 (sign-up is setup, not what is measured) and drops the database at the end.
pgbench runs after the server has stopped, on its own scratch database, also dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import re
import secrets
import shutil
import sys
import time
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    CHEAP_ARGON2,
    DEFAULT_DSN,
    SEND_MONEY,
    UNTHROTTLED,
    BenchError,
    User,
    balance,
    cancel_on_sigterm,
    fetchval,
    flatten,
    fund,
    redacted,
    scratch_database,
    sign_up,
    spread_line,
    started_server,
)

TARGET_RATIO = 0.5
FUND_TIMEOUT = 30.0
AMOUNT = "1.00"


@dataclass
class LoadResult:
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    ok_latencies: list[float] = field(default_factory=list)
    ok: int = 0
    ok_statuses: Counter[str] = field(default_factory=Counter)
    user_errors: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0


@dataclass
class PgbenchResult:
    tps: float
    command: str


# --------------------------------------------------------------------------- server ----


def server_settings(args: argparse.Namespace) -> dict[str, str]:
    """What the started server runs with besides its defaults."""
    settings = {**CHEAP_ARGON2, **UNTHROTTLED}
    budget = args.warmup + args.seconds + 600  # setup and polling, generously
    if budget > 900:  # longer than the default access-token lifetime
        settings["STACKLO_ACCESS_TOKEN_TTL_SECONDS"] = str(min(86_400, int(budget)))
    return settings


# ---------------------------------------------------------------------------- users ----


async def wait_funded(client: httpx.AsyncClient, base: str, users: list[User]) -> list[Decimal]:
    """Poll until every wallet shows the deposit (a fresh wallet starts at zero)."""
    deadline = time.monotonic() + FUND_TIMEOUT
    balances: dict[str, Decimal] = {}
    while True:
        pending = [u for u in users if balances.get(u.email, Decimal(0)) <= 0]
        if not pending:
            return [balances[u.email] for u in users]
        if time.monotonic() > deadline:
            raise BenchError(
                f"{len(pending)} of {len(users)} wallets still unfunded after {FUND_TIMEOUT:.0f} s"
                f" (e.g. {pending[0].email})"
            )
        found = await asyncio.gather(*(balance(client, base, u) for u in pending))
        balances.update((u.email, b) for u, b in zip(pending, found, strict=True))
        await asyncio.sleep(0.25)


async def setup_users(client: httpx.AsyncClient, base: str, args: argparse.Namespace) -> list[User]:
    """Sign everyone up, then fund every wallet; at most ``--clients`` requests at a time."""
    run = secrets.token_hex(4)
    limit = asyncio.Semaphore(args.clients)

    async def one(index: int) -> User:
        async with limit:
            return await sign_up(client, base, "bench", run, index, args.currency)

    async def pay(user: User) -> None:
        async with limit:
            await fund(client, base, user, args.funding)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:  # the first failure cancels the rest
        signing = [group.create_task(one(i)) for i in range(args.users)]
    users = [task.result() for task in signing]
    async with asyncio.TaskGroup() as group:
        for user in users:
            group.create_task(pay(user))
    funded = await wait_funded(client, base, users)
    print(
        f"set up {len(users)} users, funded {min(funded)}..{max(funded)} {args.currency} each, "
        f"in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return users


# ----------------------------------------------------------------------------- load ----


async def transfer(
    client: httpx.AsyncClient, base: str, users: list[User], result: LoadResult
) -> None:
    sender, recipient = random.sample(users, 2)
    body = {
        "query": SEND_MONEY,
        "variables": {
            "input": {
                "fromWalletId": sender.wallet_id,
                "to": {"walletId": recipient.wallet_id},
                "amount": AMOUNT,
                "idempotencyKey": str(uuid.uuid4()),
                "note": "bench",
            }
        },
    }
    headers = {"authorization": f"Bearer {sender.token}"}
    started = time.perf_counter()
    outcome: str | None = None
    try:
        response = await client.post(base + "/graphql", json=body, headers=headers)
        latency = time.perf_counter() - started
        if response.status_code != 200:
            outcome = f"HTTP {response.status_code}"
        else:
            reply = response.json()
            if reply.get("errors"):
                codes = [(e.get("extensions") or {}).get("code") for e in reply["errors"]]
                outcome = f"GraphQL {codes[0] or 'error'}"
            else:
                payload = (reply.get("data") or {}).get("sendMoney") or {}
                if payload.get("userErrors"):
                    result.user_errors[payload["userErrors"][0]["code"]] += 1
                elif payload.get("transaction"):
                    result.ok += 1
                    result.ok_statuses[payload["transaction"]["status"]] += 1
                    result.ok_latencies.append(latency)
                else:
                    outcome = "empty payload"
    except httpx.HTTPError as e:
        latency = time.perf_counter() - started
        outcome = type(e).__name__
    except ValueError:  # not JSON
        latency = time.perf_counter() - started
        outcome = "invalid JSON"
    result.latencies.append(latency)
    if outcome:
        result.errors[outcome] += 1


async def load(
    client: httpx.AsyncClient, base: str, users: list[User], clients: int, seconds: float
) -> LoadResult:
    result = LoadResult()
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            await transfer(client, base, users, result)

    await asyncio.gather(*(worker() for _ in range(clients)))
    result.elapsed = time.perf_counter() - started  # includes the requests still in flight
    return result


def outcomes_line(result: LoadResult) -> str:
    parts = [f"ok {result.ok}"]
    if result.ok_statuses and set(result.ok_statuses) != {"COMPLETED"}:
        parts[0] += " (" + ", ".join(f"{k} {v}" for k, v in result.ok_statuses.items()) + ")"
    parts += [f"userError {code} {n}" for code, n in result.user_errors.most_common()]
    parts += [f"error {kind} {n}" for kind, n in result.errors.most_common()]
    return "; ".join(parts)


async def bench_transfers(base: str, args: argparse.Namespace) -> tuple[LoadResult, str]:
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(limits=limits, timeout=30, http1=True, http2=False) as client:
        users = await setup_users(client, base, args)
        before = sum([await balance(client, base, u) for u in users], Decimal(0))
        if args.warmup > 0:
            await load(client, base, users, args.clients, args.warmup)
        print(f"running {args.clients} clients for {args.seconds:g} s...", flush=True)
        result = await load(client, base, users, args.clients, args.seconds)
        after = sum([await balance(client, base, u) for u in users], Decimal(0))
    conservation = f"sum of user balances {before} before, {after} after"
    if after != before:
        conservation += f" (difference {after - before}: fees, or a ledger bug)"
    return result, conservation


# -------------------------------------------------------------------------- pgbench ----


def find_pgbench() -> str:
    found = shutil.which("pgbench")
    if found:
        return found
    try:
        with warnings.catch_warnings():  # its platformdirs import warns about XDG_RUNTIME_DIR
            warnings.simplefilter("ignore")
            import pgserver  # the embedded PostgreSQL wheel ships pgbench
    except ImportError:
        raise BenchError("pgbench not on PATH and the pgserver wheel is not installed") from None
    path = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
    if not path.exists():
        raise BenchError("pgbench not on PATH nor in the pgserver wheel")
    return str(path)


TPS = re.compile(r"^tps = ([0-9.]+) \((?:without initial connection time|excluding connections)")


async def run_command(*command: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    if process.returncode != 0:
        shown = " ".join(redacted(c) for c in command)
        raise BenchError(f"{shown} exited with {process.returncode}:\n{text[-3000:]}")
    return text


async def pgbench(dsn: str, clients: int, seconds: float, scale: int = 10) -> PgbenchResult:
    """TPC-B-like pgbench on a scratch database of the same server; returns its TPS."""
    binary = find_pgbench()
    async with scratch_database(dsn, "stacklo_pgbench") as scratch:
        await run_command(binary, "-i", "-s", str(scale), scratch)
        options = [
            "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(math.ceil(seconds)),
            "-M", "prepared",
        ]  # fmt: skip
        output = await run_command(binary, *options, scratch)
    for line in output.splitlines():
        match = TPS.match(line.strip())
        if match:
            return PgbenchResult(float(match.group(1)), "pgbench " + " ".join(options))
    raise BenchError(f"no tps line in pgbench output:\n{output[-2000:]}")


# ----------------------------------------------------------------------------- main ----


def decimal_string(value: str) -> str:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a decimal amount: {value!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise argparse.ArgumentTypeError("the amount must be positive")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="a running server")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=20, help="measured duration")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured load first")
    parser.add_argument("--currency", default="NGN")
    parser.add_argument("--funding", type=decimal_string, default="100000")
    parser.add_argument(
        "--pgbench-dsn",
        default=DEFAULT_DSN,
        help="a database on the server to compare with (and to host --start-server's)",
    )
    parser.add_argument("--skip-pgbench", action="store_true")
    parser.add_argument(
        "--start-server", action="store_true", help="run stacklo serve here (ignores --url)"
    )
    parser.add_argument(
        "--server-workers",
        type=int,
        default=2,
        help="uvicorn workers to start (with --start-server), else only reported",
    )
    args = parser.parse_args(argv)
    if args.users < 2:
        parser.error("--users must be at least 2")
    if args.clients < 1 or args.server_workers < 1:
        parser.error("--clients and --server-workers must be at least 1")
    if args.seconds <= 0 or args.warmup < 0:
        parser.error("--seconds must be positive and --warmup not negative")
    args.url = args.url.rstrip("/")
    return args


async def run(args: argparse.Namespace) -> int:
    cancel_on_sigterm()  # the server is stopped and the databases dropped
    async with contextlib.AsyncExitStack() as stack:
        base = args.url
        if args.start_server:
            server = started_server(
                args.pgbench_dsn, workers=args.server_workers, **server_settings(args)
            )
            base = (await stack.enter_async_context(server)).base
        result, conservation = await bench_transfers(base, args)
    # The server is stopped by now: pgbench gets the machine to itself.

    workers = f"{args.server_workers}" + (
        " (started here)" if args.start_server else " (as stated by --server-workers)"
    )
    print()
    print("== sendMoney ==")
    print(f"server workers      {workers}")
    print(f"client concurrency  {args.clients} (one httpx pool, HTTP/1.1 keep-alive)")
    print(f"users / currency    {args.users} / {args.currency}, {AMOUNT} per transfer")
    print(f"measured            {result.elapsed:.2f} s after {args.warmup:g} s warm-up")
    print(f"requests            {result.requests}")
    print(f"transfers/s         {result.rate:.1f}")
    print(f"latency ms (all)    {spread_line(result.latencies)}")
    if result.ok != result.requests:
        print(f"latency ms (ok)     {spread_line(result.ok_latencies)}")
    print(f"outcomes            {outcomes_line(result)}")
    print(f"ledger              {conservation}")

    pg: PgbenchResult | None = None
    if not args.skip_pgbench:
        print(
            f"\nrunning pgbench with {args.clients} clients for {args.seconds:g} s...", flush=True
        )
        pg = await pgbench(args.pgbench_dsn, args.clients, args.seconds)
        ratio = result.rate / pg.tps
        print("== pgbench (tpcb-like, scale 10) ==")
        print(f"command             {pg.command}")
        print(f"pgbench TPS         {pg.tps:.1f}")
        print(
            f"ratio               {ratio:.2f} transfers/s per pgbench TPS "
            f"(target >= {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'NOT met'})"
        )

    version = "?"
    with contextlib.suppress(Exception):  # only decorates the summary
        version = str(await fetchval(args.pgbench_dsn, "SHOW server_version"))
    print("\n---- summary (for the README) ----")
    print(
        f"- `bench/transfers.py`, {datetime.now(UTC).date()}, {os.cpu_count()} CPUs, "
        f"PostgreSQL {version}: {args.server_workers} server workers, {args.clients} clients, "
        f"{args.users} users, {args.seconds:g} s."
    )
    print(
        f"- sendMoney: **{result.rate:.0f} transfers/s**; "
        f"latency ms {spread_line(result.latencies)}; {outcomes_line(result)}."
    )
    if pg:
        ratio = result.rate / pg.tps
        print(
            f"- pgbench tpcb-like, same server, {pg.command.removeprefix('pgbench ')}: "
            f"{pg.tps:.0f} TPS; ratio {ratio:.2f} (target >= {TARGET_RATIO}: "
            f"{'met' if ratio >= TARGET_RATIO else 'not met'})."
        )
    print("----")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(run(args))
    except (BenchError, httpx.HTTPError, ExceptionGroup) as e:
        leaves = list(flatten(e))
        if not all(isinstance(x, BenchError | httpx.HTTPError) for x in leaves):
            raise
        for leaf in leaves:
            print(f"transfers bench: {type(leaf).__name__}: {leaf}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except asyncio.CancelledError:  # SIGTERM
        return 143


if __name__ == "__main__":
    sys.exit(main())
