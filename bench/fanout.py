"""Subscription fan-out: S idle-then-busy WebSocket subscribers, delivery latency and memory.

    .venv/bin/python bench/fanout.py [--subscribers 5000] [--publishers 8] [--seconds 20] \\
        [--two-servers] [--admin-dsn postgresql://postgres@127.0.0.1:5432/postgres] \\
        [--redis-url redis://127.0.0.1:6379/5] [--broker memory|redis] [--no-compression] \\
        [--tick-seconds 2 | --no-rates] [--csv receipts.csv]

What is measured, and why: a wallet app keeps a subscription open on every phone that has the
app in the foreground, so the server must hold many mostly idle sockets cheaply and still push
each ledger change to the right few of them quickly, and each rate tick to all of them.

The script creates a scratch database on the ``--admin-dsn`` server, migrates it and starts
its own ``stacklo serve`` (cheap Argon2: sign-up is setup, not what is measured), whose
sandbox rate feed ticks every ``--tick-seconds`` (``STACKLO_RATE_TICK_SECONDS``, default 2 s
here). S users are signed up and funded through the public API (signUp, startDeposit, the
sandbox payment page), 20 requests at a time. Each user then opens one WebSocket
(``graphql-transport-ws``, authenticated in ``connection_init``) with three subscriptions,
``walletUpdated``, ``transactionUpdated`` and ``rateUpdated(pairs: [{base: USD, quote: NGN}])``:
S sockets, 3 S subscriptions. ``--no-rates`` leaves ``rateUpdated`` out (2 S subscriptions, no
rate figures, the server's default tick unless ``--tick-seconds`` is given), as before ticks.

- Memory per idle connection: the server's VmRSS (``/proc/<pid>/status``; with one uvicorn
  worker the ``stacklo serve`` process is the server) after warm-up and before the sockets
  open, and again once the server's ``stacklo_subscriptions_active`` gauge shows all 3 S
  subscriptions and they have been idle for 3 s; (after - before) / S. It includes everything
  a socket costs there: the uvicorn protocol, the permessage-deflate state the client asked
  for (as browsers do; ``--no-compression`` to compare), each subscription's delivery state
  (its inbox, its task, its share of a feed), the broadcast subscription of each user's
  channel. "Idle" means no transfers: rate ticks keep arriving.
- Delivery: ``sendMoney`` (1.00, ``to: {walletId}``) between random pairs of the subscribed
  users for T seconds, offered at R transfers/s on a fixed schedule with at most P in flight
  (``--rate 0``: P clients back to back, which measures a saturated server, where latency
  is mostly queueing). Each transfer is one transactionUpdated event for
  each party and one walletUpdated for each party. Latency is commit to receipt: the
  transaction's ``completedAt`` (the server's clock when it wrote the completed transaction,
  just before its commit, so the figure slightly overstates) against the subscriber's
  ``time.time()`` when the message is read, on the same machine. Printed: p50/p90/p99/max,
  events/s (every ``next`` message received by any subscriber inside the publishing window,
  rate ticks included, divided by its length), and, after a drain of up to 15 s, lost and
  duplicated deliveries (every completed transfer must reach both parties on both
  subscriptions).
- Rate ticks: meanwhile the feed ticks on its own; each tick goes through the outbox and the
  relay to every socket (one ``rateUpdated`` per tick per socket). Latency is commit to
  receipt again: ``updatedAt`` (the tick's timestamp, set just before its commit) against
  ``time.time()`` at receipt, kept apart from the transfer figures. The ticks counted are
  the distinct ``updatedAt`` values stamped inside the publishing window that any socket
  received (cross-checked against the server's ``rate_ticks`` history: a recorded tick that
  reached nobody is lost on every socket); every socket must receive each of them exactly
  once: the rest are lost (and the sockets that missed some are counted), repeats duplicates.
- GC pauses: the server's ``stacklo_gc_pause_seconds`` (every collection, timed by the
  server itself) read before and after the publishing window: the pauses inside it, per
  generation, which stop the event loop and so every delivery. Beside them, the server's own
  time to write each shared event (a rate tick) to every member socket.

With ``--two-servers`` two ``stacklo serve`` processes and one ``stacklo worker`` (the outbox
relay) share the database and Redis; the servers do not run the relay themselves. Half of the
subscribers connect to each server, the publishers go through the first one only, so half of
the deliveries cross Redis from one process to the other; the worker also runs the rate
ticker, so every tick crosses Redis to both servers. Alone, one server runs the relay and the
ticker in-process and fans out in memory (``--broker redis`` to go through Redis there as
well).

The client, the servers and PostgreSQL share the machine's CPUs: on a small machine the
latency includes the client's own time to read S sockets (each tick is S messages at once),
and is an upper bound.

Targets: S = 5000 sockets on one server, transfer events commit->receipt p99 < 250 ms (goal
100 ms), rate ticks p99 < 500 ms, nothing lost or duplicated, < 100 KB per idle connection.
The figures go to ``bench.common.record`` (``make bench`` collects them); its ratio is the
transfer events' commit->receipt p99 over the 250 ms target, so below 1 is met. ``p50_ms`` and
``p99_ms`` are those transfer events; ``tick_p50_ms`` and ``tick_p99_ms`` the rate ticks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import functools
import json
import os
import random
import re
import secrets
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeVar

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.typing import Subprotocol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    CHEAP_ARGON2,
    DEFAULT_DSN,
    SEND_MONEY,
    UNTHROTTLED,
    BenchError,
    Server,
    User,
    balance,
    cancel_on_sigterm,
    cpu_seconds,
    fetchval,
    flatten,
    fund,
    machine_ticks,
    migrated_database,
    percentile,
    raise_file_limit,
    record,
    redacted,
    running,
    serving,
    sign_up,
    spread_line,
    status_kib,
    wait_ready,
)

TARGET_SUBSCRIBERS = 5000
TARGET_P99_MS = 250.0
TARGET_TICK_P99_MS = 500.0
TARGET_KB_PER_CONNECTION = 100.0
SETUP_CONCURRENCY = 20  # sign-ups, deposits
T = TypeVar("T")
CONNECT_CONCURRENCY = 50  # WebSocket handshakes + connection_init in flight
IDLE_SECONDS = 3.0
DRAIN_SECONDS = 15.0
FUND_TIMEOUT = 60.0
AMOUNT = "1.00"
PROTOCOL = Subprotocol("graphql-transport-ws")

WALLET_SUBSCRIPTION = "subscription { walletUpdated { cursor wallet { id balance { amount } } } }"
TRANSACTION_SUBSCRIPTION = (
    "subscription { transactionUpdated { cursor transaction { reference status completedAt } } }"
)
RATE_SUBSCRIPTION = (
    "subscription { rateUpdated(pairs: [{base: USD, quote: NGN}]) "
    "{ base quote bid ask mid source updatedAt } }"
)
WALLET_OP, TRANSACTION_OP, RATE_OP = "1", "2", "3"


@dataclass
class Subscriber:
    index: int
    user: User
    server: Server
    ws: ClientConnection | None = None
    reader: asyncio.Task[None] | None = None


@dataclass
class Deliveries:
    """What the subscribers read, raw; matched against the transfers afterwards."""

    # (receipt time.time(), subscriber index, reference, status, completedAt)
    transactions: list[tuple[float, int, str, str, str | None]] = field(default_factory=list)
    wallets: list[tuple[float, int]] = field(default_factory=list)
    # (receipt time.time(), subscriber index, updatedAt as sent)
    rates: list[tuple[float, int, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    completes: int = 0
    closes: Counter[str] = field(default_factory=Counter)
    closing: bool = False


@dataclass
class Transfers:
    elapsed: float = 0.0
    sent: dict[str, tuple[int, int]] = field(default_factory=dict)  # reference -> parties
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    user_errors: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


# -------------------------------------------------------------------------- servers ----


PROBLEM = re.compile(
    r'"level":\s*"(warning|error|critical|exception)"|Traceback|^(ERROR|WARNING|CRITICAL)\b',
    re.IGNORECASE,
)


def log_problems(path: Path, shown: int = 12) -> list[str]:
    """The log's warning/error lines (and tracebacks), each cut to 400 characters."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = [line[:400] for line in lines if PROBLEM.search(line)]
    if len(found) > shown:
        found = [*found[:shown], f"... and {len(found) - shown} more"]
    return found


@dataclass
class Cluster:
    servers: list[Server]
    worker: asyncio.subprocess.Process | None
    logs: list[Path]
    broker: str
    dsn: str


@contextlib.asynccontextmanager
async def started_cluster(args: argparse.Namespace) -> AsyncIterator[Cluster]:
    """A migrated fresh database, one or two ``stacklo serve`` (and the worker with two)."""
    redis_url = args.redis_url if args.two_servers or args.broker == "redis" else None
    settings = {
        **CHEAP_ARGON2,
        **UNTHROTTLED,
        "STACKLO_ACCESS_TOKEN_TTL_SECONDS": "3600",  # no socket closes with 4403 mid-run
    }
    if args.tick_seconds is not None:  # for the ticker, in serve or in the worker
        settings["STACKLO_RATE_TICK_SECONDS"] = f"{args.tick_seconds:g}"
    async with (
        migrated_database(args.admin_dsn, "stacklo_fanout", redis_url, **settings) as scratch,
        contextlib.AsyncExitStack() as stack,
    ):
        # One server relays in-process; two leave it to the worker.
        server_env = dict(scratch.env)
        server_env["STACKLO_RUN_WORKER_IN_PROCESS"] = "false" if args.two_servers else "true"
        servers = [
            await stack.enter_async_context(
                serving(server_env, scratch.dir / f"server-{name}.log", name=name)
            )
            for name in (["A", "B"] if args.two_servers else ["A"])
        ]
        logs = [s.log for s in servers]
        worker: asyncio.subprocess.Process | None = None
        if args.two_servers:
            logs.append(scratch.dir / "worker.log")
            worker = await stack.enter_async_context(running(scratch.env, logs[-1], "worker"))
        for server in servers:
            await wait_ready(server)
        if worker is not None:
            await asyncio.sleep(1)
            if worker.returncode is not None:
                raise BenchError(f"stacklo worker exited with {worker.returncode}")
        broker = f"Redis {redis_url}" if redis_url else "in-process memory"
        relay = "stacklo worker" if worker else "in-process"
        print(
            f"started {len(servers)} x stacklo serve (pids "
            f"{', '.join(str(s.pid) for s in servers)}) on "
            f"{', '.join(s.base for s in servers)}; relay {relay}; fan-out {broker}; "
            f"database {redacted(scratch.dsn)}",
            flush=True,
        )
        yield Cluster(servers, worker, logs, broker, scratch.dsn)


GAUGE = re.compile(r"^stacklo_subscriptions_active\s+([0-9.eE+-]+)$", re.MULTILINE)


async def active_subscriptions(client: httpx.AsyncClient, server: Server) -> int:
    text = (await client.get(server.base + "/metrics")).text
    match = GAUGE.search(text)
    return int(float(match.group(1))) if match else 0


_GC = re.compile(r'^stacklo_gc_pause_seconds_(sum|count)\{generation="(\d)"\} (\S+)$', re.M)


async def gc_pauses(client: httpx.AsyncClient, server: Server) -> dict[str, tuple[int, float]]:
    """The server's garbage-collector pauses since it started: generation -> (count, seconds)."""
    text = (await client.get(server.base + "/metrics")).text
    seen: dict[str, dict[str, float]] = {}
    for kind, generation, value in _GC.findall(text):
        seen.setdefault(generation, {})[kind] = float(value)
    return {g: (int(v.get("count", 0)), v.get("sum", 0.0)) for g, v in sorted(seen.items())}


_FANOUT = re.compile(r"^stacklo_subscription_fanout_seconds_(sum|count) (\S+)$", re.M)


async def fanout_seconds(client: httpx.AsyncClient, server: Server) -> tuple[int, float]:
    """Shared events the server fanned out so far, and the seconds their writes took."""
    found = dict(_FANOUT.findall((await client.get(server.base + "/metrics")).text))
    return int(float(found.get("count", 0))), float(found.get("sum", 0))


def gc_since(
    before: dict[str, tuple[int, float]], after: dict[str, tuple[int, float]]
) -> dict[str, tuple[int, float]]:
    """The pauses between two readings, per generation."""
    return {
        g: (count - before.get(g, (0, 0.0))[0], seconds - before.get(g, (0, 0.0))[1])
        for g, (count, seconds) in after.items()
    }


def gc_line(pauses: dict[str, tuple[int, float]]) -> str:
    total = sum(seconds for _, seconds in pauses.values())
    return (
        ", ".join(f"gen{g} {n} x {s * 1000:.0f} ms" for g, (n, s) in pauses.items())
        + f"; {total * 1000:.0f} ms in all"
    )


# ---------------------------------------------------------------------------- users ----


async def setup_users(
    client: httpx.AsyncClient, servers: list[Server], args: argparse.Namespace
) -> list[User]:
    """Sign up and fund S users, SETUP_CONCURRENCY requests at a time, over all servers."""
    run = secrets.token_hex(4)
    limit = asyncio.Semaphore(SETUP_CONCURRENCY)

    def base(index: int) -> str:
        return servers[index % len(servers)].base

    async def one(index: int) -> User:
        async with limit:
            return await sign_up(client, base(index), "fanout", run, index, args.currency)

    async def pay(index: int, user: User) -> None:
        async with limit:
            await fund(client, base(index), user, args.funding)

    async def funded(index: int, user: User) -> bool:
        async with limit:
            return await balance(client, base(index), user) > 0

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:  # the first failure cancels the rest
        signing = [group.create_task(one(i)) for i in range(args.subscribers)]
    users = [task.result() for task in signing]
    signed = time.perf_counter() - started
    async with asyncio.TaskGroup() as group:
        for i, user in enumerate(users):
            group.create_task(pay(i, user))
    pending = list(enumerate(users))
    deadline = time.monotonic() + FUND_TIMEOUT
    while pending:
        done = await asyncio.gather(*(funded(i, u) for i, u in pending))
        pending = [p for p, ok in zip(pending, done, strict=True) if not ok]
        if pending and time.monotonic() > deadline:
            raise BenchError(f"{len(pending)} wallets still unfunded after {FUND_TIMEOUT:.0f} s")
        if pending:
            await asyncio.sleep(0.25)
    print(
        f"signed up {len(users)} users in {signed:.1f} s, funded {args.funding} "
        f"{args.currency} each, {time.perf_counter() - started:.1f} s in all",
        flush=True,
    )
    return users


# ---------------------------------------------------------------------- subscribers ----


def operations(rates: bool) -> list[tuple[str, str]]:
    """The subscriptions every socket starts: (id, query)."""
    ops = [(WALLET_OP, WALLET_SUBSCRIPTION), (TRANSACTION_OP, TRANSACTION_SUBSCRIPTION)]
    return [*ops, (RATE_OP, RATE_SUBSCRIPTION)] if rates else ops


async def open_subscriber(
    sub: Subscriber, deliveries: Deliveries, compression: bool, rates: bool
) -> None:
    """Connect, authenticate in connection_init, wait for the ack, start the subscriptions."""
    ws = await connect(
        sub.server.ws_url,
        subprotocols=[PROTOCOL],
        compression="deflate" if compression else None,
        ping_interval=None,  # the server pings every 20 s; the client answers
        open_timeout=60,
        close_timeout=5,
        max_queue=None,
    )
    try:
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {sub.user.token}"}}
        await ws.send(json.dumps(init))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if reply.get("type") != "connection_ack":
            raise BenchError(f"subscriber {sub.index}: expected connection_ack, got {reply}")
        for op, query in operations(rates):
            await ws.send(json.dumps({"id": op, "type": "subscribe", "payload": {"query": query}}))
    except BaseException:
        await ws.close()
        raise
    sub.ws = ws
    sub.reader = asyncio.create_task(read(sub, ws, deliveries))


async def read(sub: Subscriber, ws: ClientConnection, deliveries: Deliveries) -> None:
    """Record every message; the receipt time is taken before anything else is done."""
    try:
        async for raw in ws:
            now = time.time()
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "next":
                data = (message.get("payload") or {}).get("data") or {}
                if message.get("id") == TRANSACTION_OP and data.get("transactionUpdated"):
                    tx = data["transactionUpdated"]["transaction"]
                    deliveries.transactions.append(
                        (now, sub.index, tx["reference"], tx["status"], tx["completedAt"])
                    )
                elif message.get("id") == WALLET_OP and data.get("walletUpdated"):
                    deliveries.wallets.append((now, sub.index))
                elif message.get("id") == RATE_OP and data.get("rateUpdated"):
                    deliveries.rates.append((now, sub.index, data["rateUpdated"]["updatedAt"]))
                else:
                    deliveries.errors.append(f"subscriber {sub.index}: {raw[:300]!s}")
            elif kind == "ping":
                await ws.send('{"type":"pong"}')
            elif kind == "error":
                deliveries.errors.append(f"subscriber {sub.index}: {raw[:300]!s}")
            elif kind == "complete":
                deliveries.completes += 1
    except ConnectionClosed:
        pass  # a normal close ends the loop quietly, any other raises: both are counted here
    if not deliveries.closing:
        deliveries.closes[f"{ws.close_code} {ws.close_reason or ''}".strip()] += 1


class Held(Protocol):
    """A client socket and the task reading it (fanout's subscribers, the soak's sockets)."""

    ws: ClientConnection | None
    reader: asyncio.Task[None] | None


async def open_each(
    items: Sequence[T], open_one: Callable[[T], Awaitable[None]], concurrency: int
) -> None:
    """``open_one`` for every item, at most ``concurrency`` handshakes in flight."""
    limit = asyncio.Semaphore(concurrency)

    async def one(item: T) -> None:
        async with limit:
            await open_one(item)

    async with asyncio.TaskGroup() as group:
        for item in items:
            group.create_task(one(item))


async def close_each(items: Sequence[Held]) -> None:
    """Close every socket and stop its reader, whatever state either is in."""

    async def one(item: Held) -> None:
        if item.ws is not None:
            with contextlib.suppress(WebSocketException, OSError, TimeoutError):
                await item.ws.close()
        if item.reader is not None:
            item.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await item.reader

    await asyncio.gather(*(one(i) for i in items))


async def open_all(
    subscribers: list[Subscriber], deliveries: Deliveries, compression: bool, rates: bool
) -> None:
    await open_each(
        subscribers,
        lambda sub: open_subscriber(sub, deliveries, compression, rates),
        CONNECT_CONCURRENCY,
    )


async def close_all(subscribers: list[Subscriber], deliveries: Deliveries) -> None:
    deliveries.closing = True
    await close_each(subscribers)


async def wait_subscribed(
    client: httpx.AsyncClient, servers: list[Server], expected: dict[str, int]
) -> None:
    """Until each server's gauge shows every subscription (the server has started them all)."""
    deadline = time.monotonic() + 60 + sum(expected.values()) / 250
    while True:
        counts = {s.name: await active_subscriptions(client, s) for s in servers}
        if all(counts[name] >= n for name, n in expected.items()):
            return
        if time.monotonic() > deadline:
            raise BenchError(f"active subscriptions {counts}, expected {expected}")
        await asyncio.sleep(0.2)


# ----------------------------------------------------------------------- publishers ----


async def transfer(
    client: httpx.AsyncClient, base: str, users: list[User], result: Transfers
) -> None:
    a, b = random.sample(range(len(users)), 2)
    sender, recipient = users[a], users[b]
    body = {
        "query": SEND_MONEY,
        "variables": {
            "input": {
                "fromWalletId": sender.wallet_id,
                "to": {"walletId": recipient.wallet_id},
                "amount": AMOUNT,
                "idempotencyKey": str(uuid.uuid4()),
                "note": "fanout",
            }
        },
    }
    headers = {"authorization": f"Bearer {sender.token}"}
    started = time.perf_counter()
    outcome: str | None = None
    try:
        response = await client.post(base + "/graphql", json=body, headers=headers)
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
                    tx = payload["transaction"]
                    result.sent[tx["reference"]] = (a, b)
                    result.statuses[tx["status"]] += 1
                else:
                    outcome = "empty payload"
    except httpx.HTTPError as e:
        outcome = type(e).__name__
    except ValueError:  # not JSON
        outcome = "invalid JSON"
    result.latencies.append(time.perf_counter() - started)
    if outcome:
        result.errors[outcome] += 1


async def publish(
    client: httpx.AsyncClient,
    base: str,
    users: list[User],
    publishers: int,
    seconds: float,
    rate: float,
) -> Transfers:
    """Closed loop (rate 0): P clients back to back. Open loop: ``rate`` transfers/s on a
    fixed schedule, at most P in flight, so a slow server shows up as latency, not as less load.
    """
    result = Transfers()
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            await transfer(client, base, users, result)

    if rate <= 0:
        await asyncio.gather(*(worker() for _ in range(publishers)))
    else:
        slots = asyncio.Semaphore(publishers)
        tasks: list[asyncio.Task[None]] = []

        async def one() -> None:
            async with slots:
                await transfer(client, base, users, result)

        for n in range(int(seconds * rate)):
            await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - started  # includes the requests still in flight
    return result


# ---------------------------------------------------------------------------- stats ----


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


@dataclass
class Matched:
    latencies: list[float]
    expected: int
    received: int
    duplicates: int
    missing: list[tuple[str, int]]
    foreign: int  # transactionUpdated for transfers the publishers did not see succeed
    not_completed: Counter[str]
    # (completedAt epoch, receipt epoch, subscriber index, reference) per first receipt
    samples: list[tuple[float, float, int, str]]


def match(transfers: Transfers, deliveries: Deliveries) -> Matched:
    """Each completed transfer once to each party; latency from the first receipt."""
    expected = {(ref, party) for ref, parties in transfers.sent.items() for party in parties}
    first: dict[tuple[str, int], float] = {}
    duplicates = foreign = 0
    not_completed: Counter[str] = Counter()
    completed: dict[str, float] = {}
    for received_at, index, ref, status, completed_at in deliveries.transactions:
        key = (ref, index)
        if key not in expected:
            foreign += 1
            continue
        if status != "COMPLETED" or completed_at is None:
            not_completed[status] += 1
            continue
        if key in first:
            duplicates += 1
            continue
        first[key] = received_at
        if ref not in completed:
            completed[ref] = datetime.fromisoformat(completed_at).timestamp()
    samples = [(completed[ref], at, index, ref) for (ref, index), at in first.items()]
    latencies = [at - done for done, at, _, _ in samples]
    missing = sorted(expected - set(first))
    return Matched(
        latencies, len(expected), len(first), duplicates, missing, foreign, not_completed, samples
    )


@functools.cache
def tick_time(updated_at: str) -> float:
    """A rateUpdated ``updatedAt`` (the tick's timestamp) as epoch seconds."""
    return datetime.fromisoformat(updated_at).timestamp()


def rate_receipts(deliveries: Deliveries) -> tuple[dict[tuple[str, int], float], int]:
    """First receipt time per (updatedAt, subscriber), and how many receipts repeated one."""
    first: dict[tuple[str, int], float] = {}
    duplicates = 0
    for received_at, index, updated_at in deliveries.rates:
        key = (updated_at, index)
        if key in first:
            duplicates += 1
        else:
            first[key] = received_at
    return first, duplicates


def window_ticks(first: dict[tuple[str, int], float], start: float, end: float) -> set[str]:
    """The ticks (updatedAt values) stamped inside the window that any subscriber received."""
    return {updated for updated, _ in first if start <= tick_time(updated) <= end}


async def recorded_ticks(dsn: str, start: float, end: float) -> int:
    """Ticks the server wrote to its rate history inside the window (cross-check)."""
    count = await fetchval(
        dsn,
        "SELECT count(DISTINCT observed_at) FROM rate_ticks WHERE observed_at BETWEEN $1 AND $2",
        datetime.fromtimestamp(start, UTC),
        datetime.fromtimestamp(end, UTC),
    )
    return int(count)


@dataclass
class RateMatched:
    ticks: int  # distinct updatedAt inside the window, seen by any subscriber
    recorded: int  # ticks the server recorded inside the window
    latencies: list[float]  # first receipt of each (window tick, socket)
    expected: int  # max(ticks, recorded) x sockets
    duplicates: int  # repeated (tick, socket) receipts, any tick
    short: dict[int, int]  # socket -> window ticks it did not receive

    @property
    def lost(self) -> int:
        return self.expected - len(self.latencies)


def match_rates(
    deliveries: Deliveries, sockets: int, start: float, end: float, recorded: int
) -> RateMatched:
    """Every tick stamped inside the window once to every socket; latency from first receipt."""
    first, duplicates = rate_receipts(deliveries)
    ticks = window_ticks(first, start, end)
    latencies = [at - tick_time(u) for (u, _), at in first.items() if u in ticks]
    everyone = max(len(ticks), recorded)  # a recorded tick nobody received: lost everywhere
    got = Counter(index for updated, index in first if updated in ticks)
    short = {i: everyone - got[i] for i in range(sockets) if got[i] < everyone}
    return RateMatched(len(ticks), recorded, latencies, everyone * sockets, duplicates, short)


def write_csv(path: Path, matched: Matched, subscribers: list[Subscriber]) -> None:
    """One row per transactionUpdated receipt, for looking at the tail over time."""
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["completed_at", "received_at", "latency_ms", "subscriber", "server", "ref"]
        )
        for done, at, index, ref in sorted(matched.samples):
            server = subscribers[index].server.name
            writer.writerow(
                [f"{done:.6f}", f"{at:.6f}", f"{(at - done) * 1000:.2f}", index, server, ref]
            )


# ----------------------------------------------------------------------------- main ----


async def bench(cluster: Cluster, args: argparse.Namespace) -> int:
    servers = cluster.servers
    publisher_base = servers[0].base
    limits = httpx.Limits(max_connections=SETUP_CONCURRENCY + args.publishers)
    deliveries = Deliveries()
    per_socket = len(operations(args.rates))  # subscriptions on each socket
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        users = await setup_users(client, servers, args)
        subscribers = [Subscriber(i, u, servers[i % len(servers)]) for i, u in enumerate(users)]
        per_server = Counter(s.server.name for s in subscribers)

        # Warm-up: one socket per server through the whole path, then closed, so the code
        # that runs for the first connection only is not counted per connection.
        warm = [Subscriber(-1, users[i], s) for i, s in enumerate(servers)]
        await open_all(warm, Deliveries(), args.compression, args.rates)
        await wait_subscribed(client, servers, {s.name: per_socket for s in servers})
        await close_all(warm, Deliveries())
        await wait_gauge_zero(client, servers)
        await asyncio.sleep(1)
        before = {s.name: status_kib(s.pid, "VmRSS") for s in servers}

        print(f"opening {len(subscribers)} sockets ({dict(per_server)})...", flush=True)
        started = time.perf_counter()
        await open_all(subscribers, deliveries, args.compression, args.rates)
        opened = time.perf_counter() - started
        await wait_subscribed(client, servers, {n: per_socket * c for n, c in per_server.items()})
        subscribed = time.perf_counter() - started
        await asyncio.sleep(IDLE_SECONDS)
        after = {s.name: status_kib(s.pid, "VmRSS") for s in servers}
        print(
            f"{len(subscribers)} sockets open and acked in {opened:.1f} s, "
            f"{per_socket * len(subscribers)} subscriptions active after {subscribed:.1f} s",
            flush=True,
        )

        offered = f"{args.rate:g} transfers/s offered" if args.rate > 0 else "closed loop"
        print(
            f"publishing: {offered}, up to {args.publishers} in flight, for {args.seconds:g} s...",
            flush=True,
        )
        pids = {s.name: s.pid for s in servers}
        if cluster.worker is not None:
            pids["worker"] = cluster.worker.pid
        cpu_before = {n: cpu_seconds(p) for n, p in pids.items()}
        gc_before = {srv.name: await gc_pauses(client, srv) for srv in servers}
        fanned_before = {srv.name: await fanout_seconds(client, srv) for srv in servers}
        client_cpu = time.process_time()
        machine = machine_ticks()
        window_start = time.time()
        transfers = await publish(
            client, publisher_base, users, args.publishers, args.seconds, args.rate
        )
        window_end = time.time()
        client_cpu = time.process_time() - client_cpu
        busy_ticks, total_ticks = (a - b for a, b in zip(machine_ticks(), machine, strict=True))
        cpu = {n: cpu_seconds(p) - cpu_before[n] for n, p in pids.items()}
        gc_window = {
            srv.name: gc_since(gc_before[srv.name], await gc_pauses(client, srv)) for srv in servers
        }
        fanned: dict[str, tuple[int, float]] = {}
        for srv in servers:
            count, seconds = await fanout_seconds(client, srv)
            before_count, before_seconds = fanned_before[srv.name]
            fanned[srv.name] = (count - before_count, seconds - before_seconds)
        ok = len(transfers.sent)
        # Ticks stamped in the window: the server's count now, and whatever the subscribers
        # receive later (a tick stamped just before the end may commit after this query).
        recorded = await recorded_ticks(cluster.dsn, window_start, window_end) if args.rates else 0
        drain_start = time.perf_counter()
        while time.perf_counter() - drain_start < DRAIN_SECONDS:
            if len(deliveries.transactions) >= 2 * ok and len(deliveries.wallets) >= 2 * ok:
                if not args.rates:
                    break
                first, _ = rate_receipts(deliveries)
                ticks = window_ticks(first, window_start, window_end)
                got = sum(u in ticks for u, _ in first)
                if got >= max(len(ticks), recorded) * len(subscribers):
                    break
            await asyncio.sleep(0.1)
        drained = time.perf_counter() - drain_start
        gc_total = {srv.name: await gc_pauses(client, srv) for srv in servers}
        await close_all(subscribers, deliveries)

    s = len(subscribers)
    matched = match(transfers, deliveries)
    if args.rates:
        recorded = await recorded_ticks(cluster.dsn, window_start, window_end)
    rated = match_rates(deliveries, s, window_start, window_end, recorded)
    if args.csv:
        write_csv(args.csv, matched, subscribers)
    in_window_transfer = sum(
        window_start <= t[0] <= window_end for t in deliveries.transactions
    ) + sum(window_start <= w[0] <= window_end for w in deliveries.wallets)
    in_window_rate = sum(window_start <= r[0] <= window_end for r in deliveries.rates)
    in_window = in_window_transfer + in_window_rate
    window = window_end - window_start
    p99 = percentile(matched.latencies, 99) * 1000
    tick_p99 = percentile(rated.latencies, 99) * 1000
    tick_every = f"a tick every {args.tick_seconds:g} s" if args.rates else ""

    print()
    print("== fan-out ==")
    print(
        f"topology              {len(servers)} x stacklo serve (1 uvicorn worker each), "
        f"relay {'stacklo worker' if cluster.worker else 'in-process'}, fan-out {cluster.broker}"
    )
    print(
        f"subscribers           {s} sockets, {per_socket * s} subscriptions "
        f"({', '.join(f'{n}: {c}' for n, c in sorted(per_server.items()))}) "
        f"(target S = {TARGET_SUBSCRIBERS}: {met(s >= TARGET_SUBSCRIBERS)})"
    )
    print(
        f"compression           {'offered' if args.compression else 'not offered'} by the client "
        f"(the server accepts it only with STACKLO_WS_COMPRESSION=true); "
        f"connect {opened:.1f} s, all subscribed {subscribed:.1f} s"
    )
    for server in servers:
        grown = after[server.name] - before[server.name]
        each = grown / per_server[server.name]
        print(
            f"memory server {server.name}       RSS {before[server.name] / 1024:.1f} MiB -> "
            f"{after[server.name] / 1024:.1f} MiB idle with {per_server[server.name]} sockets: "
            f"{each:.1f} KB per idle connection "
            f"(target < {TARGET_KB_PER_CONNECTION:.0f} KB: {met(each < TARGET_KB_PER_CONNECTION)})"
        )
    print(
        f"publishers            {args.publishers} via server {servers[0].name}, "
        f"{transfers.elapsed:.2f} s: {ok} transfers ({ok / transfers.elapsed:.1f}/s), "
        f"sendMoney latency ms {spread_line(transfers.latencies)}"
    )
    if transfers.user_errors or transfers.errors or set(transfers.statuses) - {"COMPLETED"}:
        print(
            f"publisher outcomes    statuses {dict(transfers.statuses)}, "
            f"userErrors {dict(transfers.user_errors)}, errors {dict(transfers.errors)}"
        )
    for name, (events, seconds) in fanned.items():
        if events:
            print(
                f"shared fan-out {name}      {events} shared events in the window, "
                f"{seconds / events * 1000:.1f} ms each to write to every member socket"
            )
    for name, pauses in gc_window.items():
        print(f"GC pauses server {name}    in the window: {gc_line(pauses)}")
        print(f"                      since start (set-up included): {gc_line(gc_total[name])}")
    busy = ", ".join(f"{n} {c / window:.0%}" for n, c in [*cpu.items(), ("client", client_cpu)])
    print(
        f"CPU in the window     {busy} of one core; machine {busy_ticks / total_ticks:.0%} busy "
        f"({os.cpu_count()} CPUs, PostgreSQL and Redis included)"
    )
    print(
        f"commit->receipt ms    {spread_line(matched.latencies)} "
        f"over {len(matched.latencies)} transactionUpdated "
        f"(target p99 < {TARGET_P99_MS:.0f} ms: {met(p99 < TARGET_P99_MS)})"
    )
    if args.rates:
        print(
            f"rate ticks            commit->receipt ms {spread_line(rated.latencies)} "
            f"over {len(rated.latencies)} deliveries ({rated.ticks} ticks x {s} sockets), "
            f"{tick_every} (target p99 < {TARGET_TICK_P99_MS:.0f} ms: "
            f"{met(tick_p99 < TARGET_TICK_P99_MS)})"
        )
    split = (
        f" ({in_window_transfer} transfer events + {in_window_rate} rateUpdated)"
        if args.rates
        else ""
    )
    print(
        f"delivered             {in_window} next messages{split} in the {window:.2f} s window: "
        f"{in_window / window:.1f} events/s{' (rate ticks included)' if args.rates else ''}"
    )
    print(
        f"transactionUpdated    {matched.received} of {matched.expected} expected "
        f"(missing {len(matched.missing)}, duplicates {matched.duplicates}, "
        f"other {matched.foreign}"
        + (f", not completed {dict(matched.not_completed)}" if matched.not_completed else "")
        + f"), drained in {drained:.1f} s"
    )
    print(
        f"walletUpdated         {len(deliveries.wallets)} deliveries of {2 * ok} expected "
        f"(2 per transfer)"
    )
    if args.rates:
        print(
            f"rateUpdated           {len(rated.latencies)} of {rated.expected} expected "
            f"({rated.ticks} ticks stamped in the window reached a subscriber, the server "
            f"recorded {rated.recorded}): lost {rated.lost} "
            f"({len(rated.short)} sockets missed some), duplicates {rated.duplicates}"
        )
    if matched.missing:
        print(f"  missing e.g.        {matched.missing[:5]} (reference, subscriber)")
    if rated.short:
        print(f"  short e.g.          {sorted(rated.short.items())[:5]} (subscriber, ticks missed)")
    closes = {k: v for k, v in deliveries.closes.items() if v}
    if closes or deliveries.errors or deliveries.completes:
        print(
            f"socket problems       closed by the server {closes}, "
            f"complete {deliveries.completes}, errors {len(deliveries.errors)}"
        )
        for line in deliveries.errors[:5]:
            print(f"  {line}")

    problems = 0
    for log in cluster.logs:
        found = log_problems(log)
        if found:
            problems += 1
            print(f"\n{log.name}: {len(found)} warning/error line(s):")
            for line in found:
                print(f"  {line}")

    lost = len(matched.missing) + max(0, 2 * ok - len(deliveries.wallets))
    print("\n---- summary (for the README) ----")
    print(
        f"- `bench/fanout.py`, {datetime.now(UTC).date()}, {os.cpu_count()} CPUs"
        f"{', --two-servers' if args.two_servers else ''}: {s} subscribers, "
        f"{f'{args.rate:g}/s offered, ' if args.rate > 0 else ''}"
        f"{args.publishers} publishers, {args.seconds:g} s, {ok} transfers "
        f"({ok / transfers.elapsed:.0f}/s)."
    )
    kb = "; ".join(
        f"{n} {(after[n] - before[n]) / per_server[n]:.0f} KB"
        for n in sorted(per_server)  # one entry per server
    )
    print(
        f"- commit->receipt ms {spread_line(matched.latencies)}; "
        f"{in_window / window:.0f} events/s{' (rate ticks included)' if args.rates else ''}; "
        f"idle connection {kb}; lost {lost}."
    )
    if args.rates:
        print(
            f"- rate ticks, {tick_every}: commit->receipt ms {spread_line(rated.latencies)} "
            f"over {len(rated.latencies)} deliveries ({rated.ticks} ticks x {s} sockets); "
            f"lost {rated.lost}, duplicates {rated.duplicates}."
        )
    print("----")
    kb_each = [(after[n] - before[n]) / per_server[n] for n in sorted(per_server)]
    window_gc = sum(sec for pauses in gc_window.values() for _, sec in pauses.values())
    record(
        "fanout",
        {
            "case": f"{s} sockets{', two servers' if args.two_servers else ''}",
            "p50_ms": round(percentile(matched.latencies, 50) * 1000, 1),
            "p99_ms": round(p99, 1),
            "tick_p50_ms": round(percentile(rated.latencies, 50) * 1000, 1),
            "tick_p99_ms": round(tick_p99, 1),
            "kb_per_idle_socket": round(max(kb_each), 1),
            "transfers_per_s": round(ok / transfers.elapsed, 1),
            "events_per_s": round(in_window / window, 1),
            "lost": lost,
            "duplicated": matched.duplicates,
            "ticks_lost": rated.lost,
            "ticks_duplicated": rated.duplicates,
            "gc_pause_ms_in_window": round(window_gc * 1000),
        },
        baseline="the 250 ms target (transfer events, commit->receipt p99)",
        ratio=p99 / TARGET_P99_MS,
        target="< 1",
    )
    return 1 if lost or rated.lost or closes or problems else 0


async def wait_gauge_zero(client: httpx.AsyncClient, servers: list[Server]) -> None:
    deadline = time.monotonic() + 30
    while any([await active_subscriptions(client, s) for s in servers]):
        if time.monotonic() > deadline:
            raise BenchError("warm-up subscriptions still active after 30 s")
        await asyncio.sleep(0.1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--subscribers", type=int, default=5000, help="S: sockets, one user each")
    parser.add_argument("--publishers", type=int, default=8, help="P: sendMoney in flight")
    parser.add_argument("--seconds", type=float, default=20, help="T: publishing window")
    parser.add_argument(
        "--rate",
        type=float,
        default=50,
        help="offered transfers/s, open loop with at most P in flight (0: P back to back)",
    )
    parser.add_argument(
        "--two-servers", action="store_true", help="two serve + one worker over Redis"
    )
    parser.add_argument(
        "--admin-dsn",
        default=DEFAULT_DSN,
        help="where the scratch database is created and dropped",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument(
        "--broker",
        choices=["memory", "redis"],
        default="memory",
        help="fan-out of a single server (two servers always use Redis)",
    )
    parser.add_argument(
        "--no-compression",
        dest="compression",
        action="store_false",
        help="do not offer permessage-deflate",
    )
    parser.add_argument(
        "--csv", type=Path, help="write every transactionUpdated receipt and its latency here"
    )
    parser.add_argument(
        "--tick-seconds",
        type=float,
        help="STACKLO_RATE_TICK_SECONDS for the servers and the worker (default 2, as the "
        "server's; with --no-rates the server's own default unless given)",
    )
    parser.add_argument(
        "--no-rates",
        dest="rates",
        action="store_false",
        help="no rateUpdated subscriptions and no rate figures",
    )
    parser.add_argument("--currency", default="NGN")
    parser.add_argument("--funding", default="1000", help="deposited into every wallet")
    args = parser.parse_args(argv)
    if args.subscribers < (4 if args.two_servers else 2):
        parser.error("--subscribers must be at least 2 (4 with --two-servers)")
    if args.publishers < 1 or args.seconds <= 0:
        parser.error("--publishers must be at least 1 and --seconds positive")
    if args.tick_seconds is None and args.rates:
        args.tick_seconds = 2.0
    if args.tick_seconds is not None and not 0.05 <= args.tick_seconds <= 3600:
        parser.error("--tick-seconds must be between 0.05 and 3600 (the server's bounds)")
    return args


async def run(args: argparse.Namespace) -> int:
    cancel_on_sigterm()  # the servers are stopped and the database dropped
    async with started_cluster(args) as cluster:
        return await bench(cluster, args)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    old, new = raise_file_limit()
    if new < 2 * args.subscribers + 200:
        print(f"warning: open-file limit {new} may be too low", file=sys.stderr)
    elif new != old:
        print(f"open-file limit {old} -> {new}", flush=True)
    try:
        return asyncio.run(run(args))
    except (BenchError, httpx.HTTPError, WebSocketException, OSError, ExceptionGroup) as e:
        leaves = list(flatten(e))
        known = BenchError | httpx.HTTPError | WebSocketException | OSError
        if not all(isinstance(x, known) for x in leaves):
            raise
        for leaf in leaves[:10]:
            print(f"fanout bench: {type(leaf).__name__}: {leaf}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except asyncio.CancelledError:  # SIGTERM
        return 143


if __name__ == "__main__":
    sys.exit(main())
