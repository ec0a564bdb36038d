"""Soak: the production shape at half of its peak transfer rate for minutes, subscribers
connected, every resource sampled; fails when one of them trends upwards.

    .venv/bin/python bench/soak.py [--minutes 10] [--subscribers 200] [--rate R] [--quick]

What runs: a migrated scratch database, ``stacklo serve --workers 2`` and ``stacklo worker``
(the outbox relay and the rate ticker) over Redis, as deployed. ``--users`` users are signed up
and funded through the API; ``--subscribers`` WebSockets (round robin over the users, so a user
has several, like a phone and a laptop) each subscribe to ``transactionUpdated`` and
``walletUpdated`` from the outbox position before the load (``after``: every event from then
on must arrive, exactly once), and one socket in ``--rate-every`` to ``rateUpdated`` as well.

The load is bench/transfers.py's uniform pattern (wrk, ``sendMoney`` of 1.00 between random
pairs of the users): first unpaced for ``--peak-seconds`` to find the peak rate with the
subscribers connected (or ``--rate`` given), then paced to half of it (wrk's ``delay()``,
corrected after every window towards the target) in back-to-back windows of
``--window-seconds`` until ``--minutes`` have passed. After each window: RSS, open file
descriptors and PostgreSQL and Redis sockets of every server process, the connections
``pg_stat_activity`` shows for the scratch database, Redis's ``connected_clients`` (the whole
Redis server: informational), the window's latency percentiles and rate, answers that were
not a completed transfer, and the events the subscribers read.

The judgement leaves out the first ``--warmup-seconds`` (pools fill, caches warm, allocator
arenas grow) and applies to what follows:

- memory: the least-squares slope of each process's RSS, times the judged span, is under 5%
  of its mean RSS over that span;
- file descriptors and sockets: their least-squares trend over the span rises by at most a
  bound (8 descriptors a process, 4 PostgreSQL connections, 2 Redis sockets a process). A
  leak is a trend; a spike is not (wrk opens its connections afresh each window, and a
  process holds both sets for a moment);
- p99: the median of the windows' p99 in the last third is at most 25% (or 5 ms) above the
  median of the second third;
- errors: none (answers that were not a completed transfer, messages a subscriber did not
  expect, sockets closed by the server);
- events: every subscriber received every event of its user since the starting position once
  (counted by cursor), and every rate tick the scratch database recorded in the load window.

Prints a table and a verdict per series, writes ``bench/results/soak-<UTC time>-<commit>.json``
and exits 1 when anything is not flat or an event is missing or duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import secrets
import statistics
import sys
import time
import uuid
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import asyncpg
import httpx
import psutil
import redis.asyncio as aioredis
from strawberry.relay import from_base64
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    CHEAP_ARGON2,
    DEFAULT_DSN,
    UNTHROTTLED,
    BenchError,
    Server,
    User,
    cancel_on_sigterm,
    fetchval,
    flatten,
    migrated_database,
    raise_file_limit,
    redacted,
    running,
    serving,
    wait_ready,
)
from bench.fanout import PROTOCOL, RATE_SUBSCRIPTION, close_each, log_problems, open_each
from bench.suite import RESULTS, git_facts, machine_facts, scrubbed
from bench.transfers import (
    SEND_MONEY,
    UNIFORM_LUA,
    Run,
    find_wrk,
    funded,
    header,
    lua_table,
    setup_users,
    wrk,
)

# The rules (see the module's docstring); the unit test holds them.
RSS_GROWTH = 0.05  # fitted growth over the judged span, as a fraction of the mean
FD_BOUND = 8.0  # trend rise, descriptors of one process
PG_BOUND = 4.0  # trend rise, connections of the scratch database (and sockets a process)
REDIS_BOUND = 2.0  # trend rise, Redis sockets of one process
P99_RISE = 0.25  # last third's median over the second third's, as a fraction
P99_FLOOR_MS = 5.0  # a rise smaller than this is noise whatever its ratio

TRANSACTIONS = (
    "subscription SoakT($after: String) { transactionUpdated(after: $after) "
    "{ cursor transaction { reference status } } }"
)
WALLETS = (
    "subscription SoakW($after: String) { walletUpdated(after: $after) "
    "{ cursor wallet { id balance { amount } } } }"
)
TRANSACTION_OP, WALLET_OP, RATE_OP = "t", "w", "r"
TOPICS = {TRANSACTION_OP: "transaction", WALLET_OP: "wallet"}  # the outbox's topic names
FIELDS = {TRANSACTION_OP: "transactionUpdated", WALLET_OP: "walletUpdated"}
CONNECT_CONCURRENCY = 20
DRAIN_SECONDS = 30.0
RESUBSCRIBE_SECONDS = 0.5
RESUBSCRIBE_MOST = 20  # a socket: past it, a refusal is final (the rest is still measured)


# --------------------------------------------------------------------------- judging ----


Kind = Literal["growth", "rise", "thirds", "zero", "info"]


@dataclass(frozen=True)
class Rule:
    """How a series is judged: ``growth`` (fitted growth under ``limit`` x its mean),
    ``rise`` (fitted growth at most ``limit``, in the series' unit), ``thirds`` (last
    third's median at most ``limit`` above the second third's, or ``floor`` in the series'
    unit), ``zero`` (every sample 0), ``info`` (shown, not judged)."""

    kind: Kind
    limit: float = 0.0
    floor: float = 0.0

    def text(self, unit: str) -> str:
        if self.kind == "growth":
            return f"growth < {self.limit:.0%} of mean"
        if self.kind == "rise":
            return f"trend rise <= {self.limit:g}"
        if self.kind == "thirds":
            return f"last/2nd third median <= +{self.limit:.0%} or +{self.floor:g} {unit}"
        if self.kind == "zero":
            return "none"
        return "(not judged)"


@dataclass(frozen=True)
class Verdict:
    name: str
    unit: str
    rule: str
    samples: int  # judged, after the warm-up
    start: float  # first judged sample
    end: float  # last one
    mean: float
    low: float
    high: float
    slope_per_minute: float  # least squares over the judged samples
    growth: float  # slope x judged span: the trend's rise over the run
    flat: bool | None  # None: not judged (info, or too few samples)
    why: str


def slope(times: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` over ``times`` (per unit of time); 0 for fewer than
    two distinct times."""
    n = len(times)
    if n < 2:
        return 0.0
    mean_t, mean_v = sum(times) / n, sum(values) / n
    spread = sum((t - mean_t) ** 2 for t in times)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values, strict=True)) / spread


def judge(
    name: str,
    unit: str,
    times: Sequence[float],
    values: Sequence[float],
    rule: Rule,
    warmup: float,
) -> Verdict:
    """The verdict on one series (``times`` in seconds since the load started): samples at or
    after ``warmup`` only, so start-up growth (pools, caches, arenas) is not taken for a leak."""
    kept = [(t, v) for t, v in zip(times, values, strict=True) if t >= warmup and math.isfinite(v)]
    ts, vs = [t for t, _ in kept], [v for _, v in kept]
    text = rule.text(unit)
    flat: bool | None
    if len(vs) < 3:
        nan = math.nan
        flat = None if rule.kind == "info" else False
        why = f"{len(vs)} samples after the warm-up: too few to judge"
        return Verdict(name, unit, text, len(vs), nan, nan, nan, nan, nan, nan, nan, flat, why)
    per_second = slope(ts, vs)
    growth = per_second * (ts[-1] - ts[0])
    mean, low, high = statistics.fmean(vs), min(vs), max(vs)
    if rule.kind == "growth":
        flat = growth < rule.limit * mean
        why = f"grew {growth:+.1f} {unit} by its trend, {growth / mean:+.1%} of its mean"
    elif rule.kind == "rise":
        flat = growth <= rule.limit
        why = f"rose {growth:+.1f} by its trend (max-min {high - low:g})"
    elif rule.kind == "thirds":
        k = len(vs) // 3
        second, last = statistics.median(vs[-2 * k : -k]), statistics.median(vs[-k:])
        rise = last - second
        flat = rise <= max(rule.limit * second, rule.floor)
        why = f"2nd third median {second:.1f}, last {last:.1f} ({rise:+.1f} {unit})"
    elif rule.kind == "zero":
        flat = high == 0
        why = f"{sum(vs):g} in all"
    else:
        flat, why = None, ""
    return Verdict(
        name, unit, text, len(vs), vs[0], vs[-1], mean, low, high, per_second * 60, growth,
        flat, why,
    )  # fmt: skip


def rule_for(series: str) -> tuple[str, Rule]:
    """Unit and rule of a series, by its name's first word."""
    kind = series.split(" ", 1)[0]
    return {
        "rss": ("MiB", Rule("growth", RSS_GROWTH)),
        "fds": ("fds", Rule("rise", FD_BOUND)),
        "pg": ("conns", Rule("rise", PG_BOUND)),
        "redis": ("conns", Rule("rise", REDIS_BOUND)),
        "p99": ("ms", Rule("thirds", P99_RISE, P99_FLOOR_MS)),
        "errors": ("", Rule("zero")),
    }.get(kind, ("", Rule("info")))


# ---------------------------------------------------------------------- subscribers ----


def cursor_position(cursor: str) -> int:
    """The outbox position in a subscription cursor (``p|<position>``, base64url): events are
    counted by it, so a duplicate or a gap shows whatever the payload says."""
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    kind, _, position = raw.partition("|")
    if kind != "p" or not position.isdigit():
        raise ValueError(f"not a stream cursor: {cursor!r}")
    return int(position)


def position_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"p|{position}".encode()).decode().rstrip("=")


@dataclass
class Tally:
    """Every socket's messages together, for each window's figures."""

    events: int = 0
    errors: int = 0
    resubscribed: int = 0  # subscriptions refused or ended by the server, subscribed again
    closing: bool = False
    closes: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.errors += 1
        if len(self.samples) < 10:
            self.samples.append(text[:300])


@dataclass
class Socket:
    index: int
    user: User
    user_id: uuid.UUID
    rates: bool
    # outbox positions as received, per operation (compact: the run may bring a million)
    positions: dict[str, array[int]] = field(
        default_factory=lambda: {op: array("q") for op in TOPICS}
    )
    out_of_order: int = 0
    ticks: list[str] = field(default_factory=list)  # rateUpdated updatedAt, as received
    after: int = 0  # where the subscriptions started
    last: dict[str, int] = field(default_factory=dict)  # op -> last position received
    ended: set[str] = field(default_factory=set)  # ops the server refused or ended
    resubscribed: int = 0
    ws: ClientConnection | None = None
    reader: asyncio.Task[None] | None = None


async def open_socket(sock: Socket, url: str, after: int, tally: Tally) -> None:
    """Connect, authenticate in connection_init, subscribe from ``after``, start reading."""
    ws = await connect(
        url, subprotocols=[PROTOCOL], ping_interval=None, open_timeout=60, close_timeout=5,
        max_queue=None,  # a client late in reading should not look like a slow server
    )  # fmt: skip
    try:
        init = {
            "type": "connection_init",
            "payload": {"authorization": f"Bearer {sock.user.token}"},
        }
        await ws.send(json.dumps(init))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if reply.get("type") != "connection_ack":
            raise BenchError(f"socket {sock.index}: expected connection_ack, got {reply}")
        sock.after = after
        for op in (TRANSACTION_OP, WALLET_OP, RATE_OP) if sock.rates else TOPICS:
            await ws.send(subscribe(sock, op))
    except BaseException:
        await ws.close()
        raise
    sock.ws = ws
    sock.reader = asyncio.create_task(read(sock, ws, tally))


def subscribe(sock: Socket, op: str) -> str:
    """The ``subscribe`` message of ``op``, from the last position it received (first from
    the starting one): what a client does when told to subscribe again."""
    if op == RATE_OP:
        payload: dict[str, Any] = {"query": RATE_SUBSCRIPTION}
    else:
        after = position_cursor(sock.last.get(op, sock.after))
        query = TRANSACTIONS if op == TRANSACTION_OP else WALLETS
        payload = {"query": query, "variables": {"after": after}}
    return json.dumps({"id": op, "type": "subscribe", "payload": payload})


async def again(sock: Socket, ws: ClientConnection, op: str) -> None:
    """Subscribe ``op`` again shortly, as SERVICE_UNAVAILABLE asks."""
    await asyncio.sleep(RESUBSCRIBE_SECONDS)
    with contextlib.suppress(WebSocketException, OSError):
        await ws.send(subscribe(sock, op))


async def read(sock: Socket, ws: ClientConnection, tally: Tally) -> None:
    last = {op: -1 for op in TOPICS}
    retries: set[asyncio.Task[None]] = set()
    try:
        async for raw in ws:
            message = json.loads(raw)
            kind, op = message.get("type"), message.get("id")
            if kind == "next":
                data = (message.get("payload") or {}).get("data") or {}
                if op in TOPICS and data.get(FIELDS[op]):
                    position = cursor_position(data[FIELDS[op]]["cursor"])
                    sock.positions[op].append(position)
                    if position < last[op]:  # an equal one is a duplicate, counted apart
                        sock.out_of_order += 1
                    last[op] = sock.last[op] = position
                    tally.events += 1
                elif op == RATE_OP and data.get("rateUpdated"):
                    sock.ticks.append(data["rateUpdated"]["updatedAt"])
                    tally.events += 1
                else:
                    sock.ended.add(op)  # refused (an error as its event): it completes next
                    tally.problem(f"socket {sock.index}: {raw!s}")
            elif kind == "ping":
                await ws.send('{"type":"pong"}')
            elif kind in ("error", "complete"):
                if kind == "error" or op not in sock.ended:
                    tally.problem(f"socket {sock.index}: {raw!s}")
                sock.ended.discard(op)
                if sock.resubscribed >= RESUBSCRIBE_MOST:
                    continue
                sock.resubscribed += 1
                tally.resubscribed += 1
                retry = asyncio.create_task(again(sock, ws, op))
                retries.add(retry)
                retry.add_done_callback(retries.discard)
    except ConnectionClosed:
        pass
    if not tally.closing:
        tally.closes[f"{ws.close_code} {ws.close_reason or ''}".strip()] += 1
        tally.problem(f"socket {sock.index} closed: {ws.close_code} {ws.close_reason}")


async def open_all(sockets: list[Socket], url: str, after: int, tally: Tally) -> None:
    await open_each(sockets, lambda sock: open_socket(sock, url, after, tally), CONNECT_CONCURRENCY)


async def close_all(sockets: list[Socket], tally: Tally) -> None:
    tally.closing = True
    await close_each(sockets)


async def user_ids(dsn: str, users: list[User]) -> dict[str, uuid.UUID]:
    """Each user's id (the outbox's audience), by wallet global id."""
    wallets = {uuid.UUID(from_base64(u.wallet_id)[1]): u.wallet_id for u in users}
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id, user_id FROM wallets WHERE id = ANY($1::uuid[])", list(wallets)
        )
    finally:
        await conn.close()
    return {wallets[r["id"]]: r["user_id"] for r in rows}


@dataclass
class EventCheck:
    expected: int = 0  # deliveries: events x the sockets of their audience
    received: int = 0
    missing: int = 0
    duplicates: int = 0
    foreign: int = 0  # positions the socket's user was not in the audience of
    out_of_order: int = 0
    sockets_short: int = 0
    by_topic: dict[str, dict[str, int]] = field(default_factory=dict)
    ticks: int = 0  # rate ticks the scratch database recorded in the load window
    tick_sockets: int = 0
    tick_expected: int = 0
    tick_received: int = 0
    tick_missing: int = 0
    tick_duplicates: int = 0
    tick_foreign: int = 0  # stamps not in this database: another Stacklo on the same Redis

    @property
    def ok(self) -> bool:
        return not (
            self.missing or self.duplicates or self.foreign or self.out_of_order
            or self.tick_missing or self.tick_duplicates
        )  # fmt: skip


async def expected_events(dsn: str, after: int) -> dict[tuple[uuid.UUID, str], set[int]]:
    """(user, topic) -> the outbox positions after ``after`` whose audience has the user."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT member, topic, array_agg(position) AS positions"
            " FROM outbox_events, unnest(audience) AS member"
            " WHERE position > $1 AND topic = ANY($2::text[]) GROUP BY member, topic",
            after,
            list(TOPICS.values()),
        )
    finally:
        await conn.close()
    return {(r["member"], r["topic"]): set(r["positions"]) for r in rows}


def check_events(
    sockets: list[Socket], expected: dict[tuple[uuid.UUID, str], set[int]]
) -> EventCheck:
    """Each socket against its user's events: missing, duplicated, foreign (by cursor)."""
    check = EventCheck()
    for sock in sockets:
        short = False
        for op, topic in TOPICS.items():
            want = expected.get((sock.user_id, topic), set())
            got = sock.positions[op]
            seen = set(got)
            missing = len(want - seen)
            counts = check.by_topic.setdefault(topic, Counter())
            counts["expected"] += len(want)
            counts["received"] += len(got)
            counts["missing"] += missing
            counts["duplicates"] += len(got) - len(seen)
            check.expected += len(want)
            check.received += len(got)
            check.missing += missing
            check.duplicates += len(got) - len(seen)
            check.foreign += len(seen - want)
            short = short or missing > 0
        check.out_of_order += sock.out_of_order
        check.sockets_short += short
    check.by_topic = {k: dict(v) for k, v in check.by_topic.items()}
    return check


async def check_ticks(
    dsn: str, sockets: list[Socket], start: datetime, end: datetime, check: EventCheck
) -> None:
    """Every tick this database recorded between ``start`` and ``end`` once on every rate
    socket; stamps from elsewhere (another instance publishing on the same Redis) apart."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT DISTINCT observed_at FROM rate_ticks WHERE observed_at > $1"
            " AND observed_at <= $2",
            start,
            end,
        )
        ours_any = {
            r["observed_at"]
            for r in await conn.fetch("SELECT DISTINCT observed_at FROM rate_ticks")
        }
    finally:
        await conn.close()
    window = {r["observed_at"] for r in rows}
    check.ticks = len(window)
    check.tick_sockets = sum(s.rates for s in sockets)
    for sock in (s for s in sockets if s.rates):
        stamps = [datetime.fromisoformat(t) for t in sock.ticks]
        inside = [s for s in stamps if s in window]
        check.tick_expected += len(window)
        check.tick_received += len(inside)
        check.tick_missing += len(window - set(inside))
        check.tick_duplicates += len(inside) - len(set(inside))
        check.tick_foreign += sum(s not in ours_any for s in stamps)


# ------------------------------------------------------------------------- sampling ----


@dataclass
class Sample:
    t: float  # seconds since the paced load started
    values: dict[str, float]  # series name -> value


class Sampler:
    """What each window leaves behind, per process of the deployment."""

    def __init__(
        self,
        serve: int,
        worker: int,
        admin: asyncpg.Connection,
        database: str,
        redis: aioredis.Redis,
        pg_port: int,
        redis_port: int,
    ) -> None:
        self.admin, self.database, self.redis = admin, database, redis
        self.pg_port, self.redis_port = pg_port, redis_port
        self.serve = psutil.Process(serve)
        self.children = {c.pid for c in self.serve.children()}
        self.processes = self._named(worker)
        self.problems: list[str] = []

    def _named(self, worker: int) -> dict[str, psutil.Process]:
        """``serve`` (uvicorn's supervisor), ``serve/1``... (its workers), ``worker``."""
        found = {"serve": self.serve}
        children = [
            c
            for c in self.serve.children(recursive=True)
            if "resource_tracker" not in " ".join(c.cmdline())
        ]
        for n, child in enumerate(sorted(children, key=lambda c: c.pid), 1):
            found[f"serve/{n}"] = child
        found["worker"] = psutil.Process(worker)
        return found

    def _sockets(self, process: psutil.Process, port: int) -> int:
        return sum(
            1
            for c in process.net_connections(kind="tcp")
            if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
        )

    async def sample(self, t: float) -> Sample:
        values: dict[str, float] = {}
        for name, process in self.processes.items():
            try:
                values[f"rss {name}"] = process.memory_info().rss / 2**20
                values[f"fds {name}"] = process.num_fds()
                values[f"pg sockets {name}"] = self._sockets(process, self.pg_port)
                values[f"redis sockets {name}"] = self._sockets(process, self.redis_port)
            except psutil.Error as e:
                self.problems.append(f"{name} (pid {process.pid}) at {t:.0f} s: {e}")
        new = {c.pid for c in self.serve.children()} - self.children
        if new:  # uvicorn replaced a worker that died
            self.problems.append(f"serve's workers restarted by {t:.0f} s (new pids {new})")
            self.children |= new
        values["pg connections (database)"] = await self.admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", self.database
        )
        info = await self.redis.info("clients")
        values["info redis connected_clients (whole server)"] = info["connected_clients"]
        values["info client rss"] = psutil.Process().memory_info().rss / 2**20
        return Sample(t, values)


# ----------------------------------------------------------------------------- load ----


def next_pause(pause_ms: float, clients: int, target: float, achieved: float) -> float:
    """wrk's per-connection pause for the next window: each connection makes a request and
    then waits, so a window ran at ``clients`` / (latency + pause); moving the pause by the
    difference between the target cycle and the one observed lands on ``target`` if latency
    holds. Never below 0 (then the server is saturated: the rate shows it); halved when
    nothing completed (the pause outlasted the window, or the server stalled)."""
    if target <= 0:
        return pause_ms
    if achieved <= 0:
        return pause_ms / 2
    return max(0.0, pause_ms + 1000 * clients / target - 1000 * clients / achieved)


def paced_script(table: str, pause_ms: float) -> str:
    """bench/transfers.py's uniform pattern with fresh idempotency keys, paced by ``delay()``."""
    fresh = header(secrets.token_hex(4), SEND_MONEY, {"users": table})
    return fresh + UNIFORM_LUA + f"\nfunction delay() return {pause_ms:.1f} end\n"


def window_values(run: Run, events: int, errors: int) -> dict[str, float]:
    return {
        "p99 transfers": run.p99,
        "p50 transfers": run.p50,
        "transfers per second": run.rate,
        "events per second": events / run.seconds,
        "errors (not completed, socket errors)": run.bad + errors,
        "server cpu ms/transfer": run.per_op(run.server_cpu),
    }


# ----------------------------------------------------------------------------- main ----


async def soak(args: argparse.Namespace) -> int:
    find_wrk()
    settings = {
        **CHEAP_ARGON2,
        **UNTHROTTLED,
        "STACKLO_ACCESS_TOKEN_TTL_SECONDS": "86400",  # no socket closes with 4403 mid-run
        "STACKLO_LOG_LEVEL": "WARNING",
    }
    started_at = datetime.now(UTC)
    async with (
        migrated_database(args.dsn, "stacklo_bench_soak", args.redis_url, **settings) as scratch,
        serving(
            scratch.env, scratch.dir / "serve.log", "--workers", str(args.server_workers),
            name="serve",
        ) as server,
        running(scratch.env, scratch.dir / "worker.log", "worker") as worker,
    ):  # fmt: skip
        await wait_ready(server)
        await asyncio.sleep(1)
        if worker.returncode is not None:
            raise BenchError(f"stacklo worker exited with {worker.returncode}")
        database = scratch.dsn.rsplit("/", 1)[1]
        print(
            f"stacklo serve --workers {args.server_workers} (pid {server.pid}) and stacklo worker "
            f"(pid {worker.pid}) over {redacted(args.redis_url)}; database "
            f"{redacted(scratch.dsn)}",
            flush=True,
        )
        admin = await asyncpg.connect(args.dsn)
        redis = aioredis.Redis.from_url(args.redis_url)
        logs = [scratch.dir / "serve.log", scratch.dir / "worker.log"]
        try:
            deployment = Deployment(scratch.dsn, database, server, worker, admin, redis, logs)
            return await measure(args, deployment, started_at)
        finally:
            await admin.close()
            await redis.aclose()


@dataclass
class Deployment:
    """What is soaked, and the connections that sample it."""

    dsn: str  # the scratch database
    database: str  # its name, for pg_stat_activity
    server: Server
    worker: asyncio.subprocess.Process
    admin: asyncpg.Connection  # on the admin database: not counted among the scratch's
    redis: aioredis.Redis
    logs: list[Path]


async def measure(args: argparse.Namespace, d: Deployment, started_at: datetime) -> int:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=32)) as client:
        began = time.perf_counter()
        users = await setup_users(client, d.server.base, args.users)
        await funded(d.dsn, len(users))
    print(f"{len(users)} users signed up and funded in {time.perf_counter() - began:.1f} s")
    ids = await user_ids(d.dsn, users)
    after = int(await fetchval(d.dsn, "SELECT coalesce(max(position), 0) FROM outbox_events"))
    sockets = []
    for i in range(args.subscribers):
        user = users[i % len(users)]
        sockets.append(Socket(i, user, ids[user.wallet_id], rates=i % args.rate_every == 0))
    tally = Tally()
    try:
        return await soak_with(args, d, users, sockets, tally, after, started_at)
    finally:
        await close_all(sockets, tally)


async def soak_with(
    args: argparse.Namespace,
    d: Deployment,
    users: list[User],
    sockets: list[Socket],
    tally: Tally,
    after: int,
    started_at: datetime,
) -> int:
    began = time.perf_counter()
    await open_all(sockets, d.server.ws_url, after, tally)
    rate_sockets = [s for s in sockets if s.rates]
    deadline = time.monotonic() + 30
    while any(not s.ticks for s in rate_sockets):  # live: each has had a tick
        if time.monotonic() > deadline:
            raise BenchError("rate sockets without a tick after 30 s")
        await asyncio.sleep(0.2)
    ticks_from = datetime.now(UTC)
    print(
        f"{len(sockets)} sockets ({len(rate_sockets)} with rateUpdated) subscribed from outbox "
        f"position {after} in {time.perf_counter() - began:.1f} s",
        flush=True,
    )
    table = lua_table([[u.token, u.wallet_id] for u in users])
    peak = None if args.rate else await peak_run(args, d, table)
    target: float = peak.rate / 2 if peak else args.rate
    sampler = Sampler(
        d.server.pid, d.worker.pid, d.admin, d.database, d.redis,
        urlsplit(d.dsn).port or 5432, urlsplit(args.redis_url).port or 6379,
    )  # fmt: skip
    load_from = datetime.now(UTC)
    samples = await paced_load(args, d, table, target, peak, sampler, tally)
    load_to = datetime.now(UTC)

    # The relay publishes what is left, the sockets read it: then every event is counted.
    drain = time.perf_counter()
    while time.perf_counter() - drain < DRAIN_SECONDS:
        left = "SELECT count(*) FROM outbox_events WHERE published_at IS NULL"
        if not await fetchval(d.dsn, left):
            break
        await asyncio.sleep(0.2)
    expected = await expected_events(d.dsn, after)
    want = sum(len(expected.get((s.user_id, t), ())) for s in sockets for t in TOPICS.values())
    while time.perf_counter() - drain < DRAIN_SECONDS:
        if sum(len(p) for s in sockets for p in s.positions.values()) >= want:
            break
        await asyncio.sleep(0.2)
    drained = time.perf_counter() - drain
    await close_all(sockets, tally)
    events = check_events(sockets, expected)
    await check_ticks(d.dsn, sockets, ticks_from, load_to, events)
    return await report(
        args, samples, sampler, events, tally, peak, target, drained, d.logs, started_at,
        load_from, load_to,
    )  # fmt: skip


async def peak_run(args: argparse.Namespace, d: Deployment, table: str) -> Run:
    """bench/transfers.py's uniform pattern, unpaced, with the subscribers connected."""
    script = header(secrets.token_hex(4), SEND_MONEY, {"users": table}) + UNIFORM_LUA
    peak = await wrk(
        "peak", d.server.base, script, args.clients, args.peak_seconds, d.server.pid, args.dsn,
        d.database,
    )  # fmt: skip
    if peak.rate <= 0:
        raise BenchError(f"no transfer completed in the peak run: {peak.sample}")
    print(
        f"peak {peak.rate:.1f} transfers/s (p50 {peak.p50:.1f} / p99 {peak.p99:.1f} ms, "
        f"{peak.bad} not completed) with the subscribers connected: soaking at "
        f"{peak.rate / 2:.1f}/s",
        flush=True,
    )
    return peak


async def paced_load(
    args: argparse.Namespace,
    d: Deployment,
    table: str,
    target: float,
    peak: Run | None,
    sampler: Sampler,
    tally: Tally,
) -> list[Sample]:
    """Windows of paced wrk back to back for ``--minutes``, a sample after each (and one
    before the first)."""
    pause = max(0.0, 1000 * args.clients / target - (peak.p50 if peak else 0.0))
    pause = min(pause, 250.0 * args.window_seconds)  # a few requests a connection per window
    samples = [await sampler.sample(0.0)]
    print(
        f"{'t s':>6} {'per s':>7} {'p50':>6} {'p99':>7} {'events/s':>9} {'errors':>6}  "
        "RSS MiB / fds per process; pg connections",
        flush=True,
    )
    seconds = args.minutes * 60
    load_start = time.monotonic()
    while (elapsed := time.monotonic() - load_start) < seconds - 0.5:
        length = max(1, min(args.window_seconds, math.ceil(seconds - elapsed)))
        events, errors = tally.events, tally.errors
        run = await wrk(
            "window", d.server.base, paced_script(table, pause), args.clients, length,
            d.server.pid, args.dsn, d.database,
        )  # fmt: skip
        sample = await sampler.sample(time.monotonic() - load_start)
        sample.values.update(window_values(run, tally.events - events, tally.errors - errors))
        samples.append(sample)
        pause = next_pause(pause, args.clients, target, run.requests / run.seconds)
        v = sample.values
        processes = "  ".join(
            f"{n} {v.get(f'rss {n}', math.nan):.0f}/{v.get(f'fds {n}', math.nan):.0f}"
            for n in sampler.processes
        )
        print(
            f"{sample.t:6.0f} {run.rate:7.1f} {run.p50:6.1f} {run.p99:7.1f} "
            f"{v['events per second']:9.0f} {v['errors (not completed, socket errors)']:6.0f}  "
            f"{processes}; pg {v['pg connections (database)']:.0f}",
            flush=True,
        )
        if run.bad and run.sample:
            print(f"       first answer not counted: {run.sample[:200]}")
    return samples


def series(samples: list[Sample]) -> dict[str, tuple[list[float], list[float]]]:
    """Series name -> (times, values), in the order they first appear."""
    found: dict[str, tuple[list[float], list[float]]] = {}
    for sample in samples:
        for name, value in sample.values.items():
            times, values = found.setdefault(name, ([], []))
            times.append(sample.t)
            values.append(float(value))
    return found


def verdicts(samples: list[Sample], warmup: float) -> list[Verdict]:
    found = []
    for name, (times, values) in series(samples).items():
        unit, rule = rule_for(name)
        found.append(judge(name, unit, times, values, rule, warmup))
    return found


def show(verdict: Verdict) -> str:
    state = {True: "flat", False: "NOT FLAT", None: ""}[verdict.flat]
    if verdict.name.startswith("errors"):
        state = {True: "none", False: "ERRORS", None: ""}[verdict.flat]
    return (
        f"{verdict.name:44s} {verdict.start:9.1f} {verdict.end:9.1f} {verdict.low:9.1f} "
        f"{verdict.high:9.1f} {verdict.slope_per_minute:+9.3f}  {state:8s} {verdict.rule}"
        + (f"; {verdict.why}" if verdict.why else "")
    )


async def report(
    args: argparse.Namespace,
    samples: list[Sample],
    sampler: Sampler,
    events: EventCheck,
    tally: Tally,
    peak: Run | None,
    target: float,
    drained: float,
    logs: list[Path],
    started_at: datetime,
    load_from: datetime,
    load_to: datetime,
) -> int:
    judged = verdicts(samples, args.warmup_seconds)
    print(
        f"\n== soak: {args.minutes:g} min at {target:.1f} transfers/s, {args.subscribers} "
        f"subscribers; judged after the first {args.warmup_seconds:g} s =="
    )
    print(
        f"{'series':44s} {'start':>9s} {'end':>9s} {'min':>9s} {'max':>9s} {'slope/min':>9s}  "
        "verdict"
    )
    for verdict in judged:
        print(show(verdict))
    done = [s.values.get("transfers per second", 0.0) for s in samples[1:]]
    print(
        f"\ntransfers: {statistics.fmean(done) if done else 0:.1f}/s on average "
        f"(target {target:.1f}/s{f', peak {peak.rate:.1f}/s' if peak else ', --rate'})"
    )
    for topic, counts in events.by_topic.items():
        print(
            f"{topic + 'Updated':20s} {counts['received']} received of {counts['expected']} "
            f"expected: missing {counts['missing']}, duplicates {counts['duplicates']}"
        )
    print(
        f"{'events':20s} foreign {events.foreign}, out of order {events.out_of_order}, sockets "
        f"short {events.sockets_short}; drained in {drained:.1f} s; subscriptions refused or "
        f"ended by the server and subscribed again from their last cursor: {tally.resubscribed}"
    )
    print(
        f"{'rateUpdated':20s} {events.tick_received} received of {events.tick_expected} expected "
        f"({events.ticks} ticks x {events.tick_sockets} sockets): missing {events.tick_missing}, "
        f"duplicates {events.tick_duplicates}; "
        f"{events.tick_foreign} from another instance on the same Redis, ignored"
    )
    problems = list(sampler.problems)
    if tally.closes:
        problems.append(f"sockets closed by the server: {dict(tally.closes)}")
    problems += [f"socket: {s}" for s in tally.samples[:5]]
    for log in logs:
        found = log_problems(log)
        problems += [f"{log.name}: {line}" for line in found]
    for line in problems:
        print(f"problem: {line}")
    not_flat = [v.name for v in judged if v.flat is False]
    ok = not not_flat and events.ok and not problems
    machine = await asyncio.to_thread(machine_facts, args.dsn, args.redis_url)  # runs its own loop
    path = write(
        args, samples, judged, events, problems, peak, target, started_at, load_from, load_to, ok,
        machine, tally.resubscribed,
    )  # fmt: skip
    print(f"\nresults: {scrubbed(str(path))}")
    if ok:
        print("verdict: flat")
        return 0
    print(
        "verdict: NOT flat"
        + (f" ({', '.join(not_flat)})" if not_flat else "")
        + ("" if events.ok else "; events missing or duplicated")
        + ("; problems above" if problems else "")
    )
    return 1


def write(
    args: argparse.Namespace,
    samples: list[Sample],
    judged: list[Verdict],
    events: EventCheck,
    problems: list[str],
    peak: Run | None,
    target: float,
    started_at: datetime,
    load_from: datetime,
    load_to: datetime,
    ok: bool,
    machine: dict[str, Any],
    resubscribed: int,
) -> Path:
    """``bench/results/soak-<UTC time>-<commit>.json``, written whole or not at all."""
    git = git_facts()
    results = {
        "date": started_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "command": ["bench/soak.py", *(redacted(a) if "://" in a else a for a in sys.argv[1:])],
        "settings": {k: v for k, v in vars(args).items() if k not in ("dsn", "redis_url")},
        "rules": {
            "warmup_seconds": args.warmup_seconds,
            "rss_growth_fraction": RSS_GROWTH,
            "fd_bound": FD_BOUND,
            "pg_bound": PG_BOUND,
            "redis_bound": REDIS_BOUND,
            "p99_rise_fraction": P99_RISE,
            "p99_floor_ms": P99_FLOOR_MS,
        },
        "machine": machine,
        "git": git,
        "peak": None
        if peak is None
        else {
            "per_second": peak.rate,
            "p50_ms": peak.p50,
            "p99_ms": peak.p99,
            "not_ok": peak.bad,
        },
        "target_per_second": round(target, 1),
        "load": {"from": load_from.isoformat(), "to": load_to.isoformat()},
        "verdicts": [asdict(v) for v in judged],
        "events": {**asdict(events), "ok": events.ok, "resubscribed": resubscribed},
        "problems": [scrubbed(p) for p in problems],
        "flat": ok,
        "samples": [
            {"t": round(s.t, 1), **{k: round(v, 3) for k, v in s.values.items()}} for s in samples
        ],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"soak-{started_at:%Y%m%dT%H%M%SZ}-{git.get('commit') or 'unknown'}.json"
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=10, help="of paced load")
    parser.add_argument("--subscribers", type=int, default=200, help="WebSockets")
    parser.add_argument("--rate", type=float, help="transfers/s (default: half the peak)")
    parser.add_argument(
        "--quick", action="store_true", help="1 minute, short windows: checks the script"
    )
    parser.add_argument("--users", type=int, default=100, help="sending and receiving")
    parser.add_argument("--rate-every", type=int, default=4, help="1 socket in N: rateUpdated")
    parser.add_argument("--clients", type=int, default=16, help="wrk connections")
    parser.add_argument("--peak-seconds", type=float, default=20)
    parser.add_argument("--window-seconds", type=int, default=10, help="one sample each")
    parser.add_argument("--warmup-seconds", type=float, default=120, help="not judged")
    parser.add_argument("--server-workers", type=int, default=2)
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="a database on the PostgreSQL to use")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes, args.peak_seconds, args.window_seconds = 1, 5, 5
        args.warmup_seconds = min(args.warmup_seconds, 15)
    if args.minutes <= 0 or args.window_seconds < 1 or args.subscribers < 1 or args.users < 2:
        parser.error("--minutes > 0, --window-seconds >= 1, --subscribers >= 1, --users >= 2")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    if args.rate_every < 1:
        parser.error("--rate-every must be at least 1")
    return args


async def run(args: argparse.Namespace) -> int:
    cancel_on_sigterm()  # the servers are stopped and the database dropped
    return await soak(args)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_file_limit()
    try:
        return asyncio.run(run(args))
    except (BenchError, httpx.HTTPError, WebSocketException, OSError, ExceptionGroup) as e:
        leaves = list(flatten(e))
        known = BenchError | httpx.HTTPError | WebSocketException | OSError
        if not all(isinstance(x, known) for x in leaves):
            raise
        for leaf in leaves[:10]:
            print(f"soak: {type(leaf).__name__}: {leaf}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except asyncio.CancelledError:  # SIGTERM
        return 143


if __name__ == "__main__":
    sys.exit(main())
