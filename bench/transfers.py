"""Money movement throughput over the public API, next to the same SQL without the server and
next to PostgreSQL's own ceiling, all in one run on one PostgreSQL.

    .venv/bin/python bench/transfers.py [--patterns uniform,merchant,deposits] [--clients 16] \\
        [--seconds 20] [--server-workers 2] [--dsn postgresql://postgres@127.0.0.1:5432/postgres]

Load comes from wrk (a compiled HTTP load generator, ``make bench`` installs it from Debian's
packages) driven by a Lua script per pattern, with one thread and ``--clients`` keep-alive
connections, so the client takes little of the CPU being measured; its own CPU is printed.

Patterns (each on the same server and scratch database, one after another):

- ``uniform``: ``sendMoney`` of 1.00 between random pairs of ``--users`` funded users;
- ``merchant``: ``payCheckout`` of open checkouts of ONE merchant by random customers (every
  payment credits that merchant's payable and the fee account: the checkout case);
- ``deposits``: provider confirmations of deposits started beforehand (the sandbox payment
  page delivers the provider's signed webhook): every credit debits the one provider clearing
  account.

Then, with the server stopped: ``raw``, the uniform pattern against bench/raw_transfer.py (bare
Starlette + asyncpg running the server's own SQL for a transfer: the key lookup, two wallet
reads, the daily total, the booking statement) with the same worker count, and pgbench's
TPC-B-like script with the same client count (the ceiling for a short read-modify-write
transaction on this machine). Printed per run: completed operations per second, latency
percentiles, server and PostgreSQL CPU per operation, wrk's CPU, and ratios: to pgbench, to
the raw baseline, and for the hot-account patterns to the uniform run.

Targets: uniform >= 0.25 x pgbench (p99 under 100 ms at half that rate), and each hot-account
pattern >= 0.5 x uniform.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import secrets
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from strawberry.relay import from_base64, to_base64

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    CHEAP_ARGON2,
    DEFAULT_DSN,
    ROOT,
    UNTHROTTLED,
    BenchError,
    User,
    cancel_on_sigterm,
    cpu_seconds,
    free_port,
    fund,
    graphql,
    log_tail,
    migrated_database,
    record,
    redacted,
    scratch_database,
    serving,
    sign_up,
    user_errors,
    wait_ready,
)

PATTERNS = ("uniform", "merchant", "deposits")
TARGET_PGBENCH, TARGET_HOT = 0.25, 0.5
AMOUNT = "1.00"

SEND_MONEY = (
    "mutation S($input: SendMoneyInput!) { sendMoney(input: $input) "
    "{ transaction { reference status } userErrors { code } } }"
)
PAY_CHECKOUT = (
    "mutation P($input: PayCheckoutInput!) { payCheckout(input: $input) "
    "{ checkout { status } userErrors { code } } }"
)
START_DEPOSIT = (
    "mutation D($input: StartDepositInput!) { startDeposit(input: $input) "
    "{ paymentUrl userErrors { code } } }"
)

# One wrk thread; ``request`` builds each request from the tables the bench writes above it,
# ``response`` counts answers that carry ``ok`` (the operation completed), ``done`` prints JSON.
LUA = r"""
local threads = {}
function setup(thread) table.insert(threads, thread); thread:set("tid", #threads) end
function init(args)
  math.randomseed(os.time() * 1000 + tid); ok = 0; bad = 0; n = 0; sample = ""
end
function response(status, headers, body)
  if status < 400 and string.find(body, ok_marker, 1, true) then ok = ok + 1
  else bad = bad + 1; if sample == "" then sample = body:sub(1, 300) end end
end
function done(summary, latency, requests)
  local o, b, s = 0, 0, ""
  for _, t in ipairs(threads) do
    o = o + t:get("ok"); b = b + t:get("bad"); if s == "" then s = t:get("sample") end
  end
  io.write(string.format(
    '\nWRK {"ok": %d, "bad": %d, "requests": %d, "seconds": %.3f, "errors": %d, ' ..
    '"p50": %.3f, "p90": %.3f, "p99": %.3f, "max": %.3f, "sample": %q}\n',
    o, b, summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write +
      summary.errors.status + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, s))
end
"""

UNIFORM_LUA = r"""
ok_marker = '"COMPLETED"'
function request()
  local i = math.random(#users); local j = math.random(#users - 1); if j >= i then j = j + 1 end
  n = n + 1
  local body = '{"query":' .. query .. ',"variables":{"input":{"fromWalletId":"' ..
    users[i][2] .. '","to":{"walletId":"' .. users[j][2] ..
    '"},"amount":"1.00","idempotencyKey":"' .. run .. tid .. '-' .. n .. '"}}}'
  return wrk.format("POST", "/graphql",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. users[i][1]}, body)
end
"""

MERCHANT_LUA = r"""
ok_marker = '"PAID"'
function request()
  n = n + 1
  local i = math.random(#users)
  local c = checkouts[(n - 1) % #checkouts + 1]
  local body = '{"query":' .. query .. ',"variables":{"input":{"checkoutId":"' .. c ..
    '","walletId":"' .. users[i][2] .. '","method":"WALLET","idempotencyKey":"' ..
    run .. tid .. '-' .. n .. '"}}}'
  return wrk.format("POST", "/graphql",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. users[i][1]}, body)
end
"""

DEPOSITS_LUA = r"""
ok_marker = ''
function request()
  n = n + 1
  return wrk.format("POST", pages[(n - 1) % #pages + 1],
    {["Content-Type"] = "application/x-www-form-urlencoded"}, "outcome=success")
end
"""

RAW_LUA = r"""
ok_marker = '"COMPLETED"'
function request()
  local i = math.random(#users); local j = math.random(#users - 1); if j >= i then j = j + 1 end
  n = n + 1
  local body = '{"user":"' .. users[i][1] .. '","from":"' .. users[i][2] .. '","to":"' ..
    users[j][2] .. '","amount":"1.00","key":"' .. run .. tid .. '-' .. n .. '"}'
  return wrk.format("POST", "/transfer", {["Content-Type"] = "application/json"}, body)
end
"""


@dataclass
class Run:
    name: str
    ok: int
    requests: int
    seconds: float
    p50: float
    p99: float
    p90: float
    max: float
    server_cpu: float  # seconds, the server's processes
    postgres_cpu: float  # seconds, the backends of the scratch database
    wrk_cpu: float  # seconds
    bad: int
    sample: str

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def per_op(self, seconds: float) -> float:
        return 1000 * seconds / self.ok if self.ok else math.nan


# ------------------------------------------------------------------------------ tools ----


def lua_table(rows: list[list[str]] | list[str]) -> str:
    def cell(value: str | list[str]) -> str:
        if isinstance(value, list):
            return "{" + ",".join(json.dumps(v) for v in value) + "}"
        return json.dumps(value)

    return "{" + ",".join(cell(r) for r in rows) + "}"


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (uvicorn's workers)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            with contextlib.suppress(OSError):
                total += cpu_seconds(int(stat.parent.name))
    return total


async def backends_cpu(dsn: str, database: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to ``database`` (same host)."""
    conn = await asyncpg.connect(dsn)
    try:
        pids = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await conn.close()
    found = {}
    for row in pids:
        with contextlib.suppress(OSError):
            found[row["pid"]] = cpu_seconds(row["pid"])
    return found


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two readings; a backend that started in between counts from zero
    (one that ended in between is lost: pools keep theirs)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def find_wrk() -> str:
    found = shutil.which("wrk")
    if not found:
        raise BenchError("wrk is not installed: `make bench` installs it (Debian package wrk)")
    return found


async def wrk(
    name: str,
    base: str,
    script: str,
    clients: int,
    seconds: float,
    server_pid: int,
    admin_dsn: str,
    database: str,
) -> Run:
    """Run wrk with ``script`` for ``seconds``; the server's, PostgreSQL's and wrk's CPU."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script + LUA)
        path = f.name
    try:
        server0, pg0 = tree_cpu(server_pid), await backends_cpu(admin_dsn, database)
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        process = await asyncio.create_subprocess_exec(
            find_wrk(), "-t1", f"-c{clients}", f"-d{math.ceil(seconds)}s", "--timeout", "10s",
            "-s", path, base,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await process.communicate()
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        server1, pg1 = tree_cpu(server_pid), await backends_cpu(admin_dsn, database)
    finally:
        os.unlink(path)
    text = output.decode(errors="replace")
    line = next((x for x in text.splitlines() if x.startswith("WRK ")), None)
    if process.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({process.returncode}):\n{text[-2000:]}")
    got: dict[str, Any] = json.loads(line[4:])
    wrk_cpu = (children1.ru_utime - children0.ru_utime) + (children1.ru_stime - children0.ru_stime)
    return Run(
        name, got["ok"], got["requests"], got["seconds"], got["p50"], got["p99"], got["p90"],
        got["max"], server1 - server0, spent(pg0, pg1), wrk_cpu, got["bad"], got["sample"],
    )  # fmt: skip


def header(run_id: str, query: str, tables: dict[str, str]) -> str:
    lines = [f"local run = {json.dumps(run_id)}", f"local query = {json.dumps(json.dumps(query))}"]
    lines += [f"{name} = {value}" for name, value in tables.items()]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ setup ----


async def setup_users(client: httpx.AsyncClient, base: str, count: int) -> list[User]:
    run, limit = secrets.token_hex(4), asyncio.Semaphore(16)

    async def one(index: int) -> User:
        async with limit:
            user = await sign_up(client, base, "bench", run, index, "NGN")
            await fund(client, base, user, "400000")
            return user

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def funded(dsn: str, count: int) -> None:
    """Wait until every customer wallet shows its deposit (the credit is asynchronous)."""
    deadline = time.monotonic() + 60
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            done = await conn.fetchval(
                "SELECT count(*) FROM wallets WHERE kind = 'CUSTOMER' AND balance > 0"
            )
            if done >= count:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"only {done} of {count} wallets funded after 60 s")
            await asyncio.sleep(0.25)
    finally:
        await conn.close()


async def open_checkouts(dsn: str, owner: User, count: int) -> list[str]:
    """One ACTIVE merchant (owned by ``owner``) and ``count`` open checkouts of 1.00, written
    straight to the database: set-up, not what is measured."""
    merchant = uuid.uuid4()
    user = uuid.UUID(from_base64(owner.wallet_id)[1])
    conn = await asyncpg.connect(dsn)
    try:
        owner_id = await conn.fetchval("SELECT user_id FROM wallets WHERE id = $1", user)
        await conn.execute(
            "INSERT INTO merchants (id, user_id, name, category, settlement_currency, status)"
            " VALUES ($1, $2, 'Bench Shop', 'retail', 'NGN', 'ACTIVE')",
            merchant,
            owner_id,
        )
        ids = await conn.fetch(
            "INSERT INTO checkouts (id, merchant_id, currency, amount, status, expires_at)"
            " SELECT gen_random_uuid(), $1, 'NGN', 1.00, 'OPEN', now() + interval '2 hours'"
            " FROM generate_series(1, $2) RETURNING id",
            merchant,
            count,
        )
    finally:
        await conn.close()
    return [to_base64("Checkout", str(r["id"])) for r in ids]


async def started_deposits(
    client: httpx.AsyncClient, base: str, users: list[User], count: int
) -> list[str]:
    """``count`` deposits of 1.00 started through the API: their payment pages' paths."""
    limit = asyncio.Semaphore(16)

    async def one(index: int) -> str:
        user = users[index % len(users)]
        variables = {
            "input": {"walletId": user.wallet_id, "amount": AMOUNT, "idempotencyKey": str(index)}
        }
        async with limit:
            payload = (await graphql(client, base, START_DEPOSIT, variables, user.token))[
                "startDeposit"
            ]
        user_errors(payload, "startDeposit")
        url: str = payload["paymentUrl"]
        return url.removeprefix(base)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def completed(dsn: str, kind: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        found: int = await conn.fetchval(
            "SELECT count(*) FROM ledger_transactions WHERE kind = $1 AND status = 'COMPLETED'",
            kind,
        )
        return found
    finally:
        await conn.close()


# --------------------------------------------------------------------------- baselines ----


@contextlib.asynccontextmanager
async def raw_server(dsn: str, workers: int, log: Path) -> Any:
    port = free_port()
    env = {**os.environ, "STACKLO_RAW_DSN": dsn, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", "bench.raw_transfer:app", "--port", str(port),
            "--workers", str(workers), "--no-access-log", "--log-level", "warning",
            env=env, stdout=out, stderr=out, cwd=ROOT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient() as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    await client.post(base + "/transfer", content=b"{}")
                    break
                if process.returncode is not None or time.monotonic() > deadline:
                    raise BenchError(f"the raw server did not start:\n{log_tail(log)}")
                await asyncio.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 10)


def find_pgbench() -> str:
    """pgbench on the PATH, else the one the embedded PostgreSQL wheel ships."""
    found = shutil.which("pgbench")
    if found:
        return found
    try:
        with warnings.catch_warnings():  # its platformdirs import warns about XDG_RUNTIME_DIR
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError:
        raise BenchError("pgbench is not on the PATH and the pgserver wheel is missing") from None
    path = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
    if not path.exists():
        raise BenchError("pgbench is neither on the PATH nor in the pgserver wheel")
    return str(path)


async def pgbench(dsn: str, clients: int, seconds: float) -> tuple[float, str]:
    binary = find_pgbench()
    async with scratch_database(dsn, "stacklo_pgbench") as scratch:
        init = await asyncio.create_subprocess_exec(
            binary, "-i", "-q", "-s", "10", scratch,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await init.wait()
        options = ["-c", str(clients), "-j", "2", "-T", str(math.ceil(seconds)), "-M", "prepared"]
        process = await asyncio.create_subprocess_exec(
            binary, *options, scratch, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output = (await process.communicate())[0].decode()
    for line in output.splitlines():
        if line.startswith("tps = "):
            return float(line.split()[2]), "pgbench " + " ".join(options)
    raise BenchError(f"no tps line in pgbench's output:\n{output[-2000:]}")


# ------------------------------------------------------------------------------- main ----


def show(run: Run, clients: int, notes: str = "") -> None:
    print(
        f"{run.name:<10} {run.rate:8.1f}/s  p50 {run.p50:6.1f}  p90 {run.p90:6.1f}  "
        f"p99 {run.p99:6.1f}  max {run.max:7.1f} ms  server {run.per_op(run.server_cpu):5.2f} "
        f"ms/op  postgres {run.per_op(run.postgres_cpu):5.2f} ms/op  wrk "
        f"{100 * run.wrk_cpu / run.seconds:4.0f}% of a core  ({run.ok} ok, "
        f"{run.bad} not, {clients} connections){notes}",
        flush=True,
    )
    if run.bad and run.sample:
        print(f"           first answer not counted: {run.sample[:200]}")


def figures(run: Run) -> dict[str, float | int | str]:
    return {
        "per_second": round(run.rate, 1),
        "p50_ms": run.p50,
        "p90_ms": run.p90,
        "p99_ms": run.p99,
        "max_ms": run.max,
        "server_cpu_ms_per_op": round(run.per_op(run.server_cpu), 3),
        "postgres_cpu_ms_per_op": round(run.per_op(run.postgres_cpu), 3),
        "wrk_cpu_share_of_a_core": round(run.wrk_cpu / run.seconds, 3),
        "ok": run.ok,
        "not_ok": run.bad,
    }


async def measure(args: argparse.Namespace) -> dict[str, Run]:
    runs: dict[str, Run] = {}
    settings = {
        **CHEAP_ARGON2,
        **UNTHROTTLED,
        "STACKLO_ACCESS_TOKEN_TTL_SECONDS": "86400",
        "STACKLO_LOG_LEVEL": "WARNING",
    }
    async with migrated_database(args.dsn, "stacklo_bench", **settings) as scratch:
        name = scratch.dsn.rsplit("/", 1)[1]
        async with serving(
            scratch.env, scratch.dir / "server.log", "--workers", str(args.server_workers)
        ) as server:
            await wait_ready(server)
            print(f"stacklo serve --workers {args.server_workers} on {redacted(scratch.dsn)}")
            limits = httpx.Limits(max_connections=32)
            async with httpx.AsyncClient(timeout=60, limits=limits) as client:
                started = time.perf_counter()
                users = await setup_users(client, server.base, args.users)
                await funded(scratch.dsn, len(users))
                print(f"{len(users)} users signed up and funded in "
                      f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
                table = lua_table([[u.token, u.wallet_id] for u in users])
                room = int(args.seconds * 3000) + 2000  # more than the server can take
                for pattern in args.patterns:
                    run_id = secrets.token_hex(4)
                    if pattern == "uniform":
                        script = header(run_id, SEND_MONEY, {"users": table}) + UNIFORM_LUA
                    elif pattern == "merchant":
                        shop = await open_checkouts(scratch.dsn, users[0], room)
                        customers = lua_table([[u.token, u.wallet_id] for u in users[1:]])
                        script = (
                            header(
                                run_id,
                                PAY_CHECKOUT,
                                {"users": customers, "checkouts": lua_table(shop)},
                            )
                            + MERCHANT_LUA
                        )
                    else:
                        started = time.perf_counter()
                        # enough for the run at the uniform rate and then some (each is paid once)
                        fastest = runs["uniform"].rate if "uniform" in runs else 800.0
                        count = min(args.deposits, int(fastest * args.seconds * 1.5) + 500)
                        pages = await started_deposits(client, server.base, users, count)
                        print(f"{len(pages)} deposits started in "
                              f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
                        script = header(run_id, "", {"pages": lua_table(pages)}) + DEPOSITS_LUA
                    before = await completed(scratch.dsn, "DEPOSIT")
                    run = await wrk(
                        pattern, server.base, script, args.clients, args.seconds,
                        server.pid, args.dsn, name,
                    )  # fmt: skip
                    if pattern == "deposits":  # the page answers a redirect, credited or not
                        run.ok = await completed(scratch.dsn, "DEPOSIT") - before
                        run.bad = max(0, run.requests - run.ok)
                    runs[pattern] = run
                    show(run, args.clients)
                    if pattern == "uniform" and run.rate > 0:
                        # The same load paced to half the rate just reached: each connection
                        # waits before its next request (wrk's delay()), so latency is read
                        # away from saturation.
                        pause = max(0.0, 1000 * args.clients / (run.rate / 2) - run.p50)
                        # fresh idempotency keys: the paced run's are not retries
                        fresh = header(secrets.token_hex(4), SEND_MONEY, {"users": table})
                        paced = fresh + UNIFORM_LUA + f"\nfunction delay() return {pause:.1f} end\n"
                        half = await wrk(
                            "half", server.base, paced, args.clients, args.seconds,
                            server.pid, args.dsn, name,
                        )  # fmt: skip
                        runs["half"] = half
                        show(half, args.clients, f"; paced to ~{run.rate / 2:.0f}/s")
        if not args.skip_raw:
            conn = await asyncpg.connect(scratch.dsn)
            try:
                rows = await conn.fetch(
                    "SELECT user_id, id FROM wallets WHERE kind = 'CUSTOMER' AND balance > 0"
                )
            finally:
                await conn.close()
            people = lua_table([[str(r["user_id"]), str(r["id"])] for r in rows])
            async with raw_server(scratch.dsn, args.server_workers, scratch.dir / "raw.log") as (
                base,
                pid,
            ):
                script = header(secrets.token_hex(4), "", {"users": people}) + RAW_LUA
                run = await wrk(
                    "raw", base, script, args.clients, args.seconds, pid, args.dsn, name
                )
                runs["raw"] = run
                show(run, args.clients)
    return runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="a database on the PostgreSQL to use")
    parser.add_argument("--patterns", default=",".join(PATTERNS))
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--clients", type=int, default=16, help="wrk connections")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--server-workers", type=int, default=2)
    parser.add_argument(
        "--deposits", type=int, default=30_000, help="at most this many started for `deposits`"
    )
    parser.add_argument("--skip-raw", action="store_true")
    parser.add_argument("--skip-pgbench", action="store_true")
    args = parser.parse_args(argv)
    args.patterns = [p.strip() for p in args.patterns.split(",") if p.strip()]
    unknown = set(args.patterns) - set(PATTERNS)
    if unknown:
        parser.error(f"unknown patterns {sorted(unknown)}; choose from {', '.join(PATTERNS)}")
    if args.users < 3 or args.clients < 1 or args.server_workers < 1 or args.seconds <= 0:
        parser.error("--users >= 3, --clients and --server-workers >= 1, --seconds > 0")
    return args


async def run(args: argparse.Namespace) -> int:
    cancel_on_sigterm()
    runs = await measure(args)
    tps, command = (math.nan, "skipped")
    if not args.skip_pgbench:
        tps, command = await pgbench(args.dsn, args.clients, args.seconds)
        print(f"pgbench    {tps:8.1f} TPS  ({command}, scale 10)")
    uniform, raw = runs.get("uniform"), runs.get("raw")
    print()
    for name, done in runs.items():
        if name == "half":
            print(f"{name:<10} p99 {done.p99:.1f} ms at {done.rate:.0f}/s (target p99 < 100 ms)")
            record(
                "transfers.half_load", figures(done), baseline="p99 of 100 ms",
                ratio=done.p99 / 100, target="< 1",
            )  # fmt: skip
            continue
        ratios = []
        if not math.isnan(tps):
            ratios.append(f"{done.rate / tps:.3f} x pgbench")
        if raw is not None and done is not raw:
            ratios.append(f"{done.rate / raw.rate:.3f} x raw")
        if uniform is not None and name in ("merchant", "deposits"):
            ratios.append(f"{done.rate / uniform.rate:.3f} x uniform")
        print(f"{name:<10} {', '.join(ratios)}")
        if name in ("merchant", "deposits") and uniform is not None:
            record(
                f"transfers.{name}", figures(done), baseline="uniform transfers",
                ratio=done.rate / uniform.rate, target=f">= {TARGET_HOT}",
            )  # fmt: skip
        elif not math.isnan(tps):
            target = f">= {TARGET_PGBENCH}" if name == "uniform" else None
            record(
                f"transfers.{name}", figures(done), baseline="pgbench tpcb-like",
                ratio=done.rate / tps, target=target,
            )  # fmt: skip
        else:
            record(f"transfers.{name}", figures(done))
    if not math.isnan(tps):
        record("transfers.pgbench", {"tps": tps, "command": command})
    return 0


def main() -> int:
    args = parse_args()
    try:
        return asyncio.run(run(args))
    except BenchError as e:
        print(f"bench failed: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
