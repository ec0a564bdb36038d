"""Database restart: PostgreSQL stopped for a few seconds under load, then started again.

Clients keep sending money, each transfer under an idempotency key it retries, unchanged, on
any failure until it is acknowledged; a reader keeps reading its wallets; a probe polls
/readyz. PostgreSQL is stopped twice, ~2.5 s each time: cleanly (``fast``: sessions ended, a
checkpoint), then crashed (``immediate``: recovery on start). While it is away every error is
the retryable SERVICE_UNAVAILABLE (never INTERNAL_SERVER_ERROR, never HTTP 500), /readyz is
503, a socket's new operation is refused with SERVICE_UNAVAILABLE and a socket signing in is
closed with 1013 (try again later). Afterwards the server and a separate worker carry on
without a restart: the worker's jobs lead again, every committed outbox event is published,
every acknowledged key replays its one transaction, and the ledger verifies.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import websockets
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.faults.conftest import Proc, Stack
from tests.faults.report import record
from tests.faults.services import OwnPostgres
from tests.helpers import (
    DEPOSIT as START_DEPOSIT,
)
from tests.helpers import (
    SEND,
    WALLETS,
    GraphQLHTTP,
    SignedUp,
    deposit,
    key,
    settled,
    sign_up,
    wallets,
)

USERS = 6
CLIENTS = 8
FUNDED = Decimal("1000.00")
MODES = ("fast", "immediate")
DOWN_SECONDS = 2.5
RECOVERY_BOUND = 10.0  # seconds from PostgreSQL accepting connections to a transfer acknowledged
JOBS = ("relay", "rate_feed", "scheduler", "notifier")
OK = "ok"
UNAVAILABLE = "HTTP 200 SERVICE_UNAVAILABLE"
DEPOSIT = Decimal("10.00")  # paid on the sandbox's page while PostgreSQL is away, then after
DEPOSITOR = 3
SUBSCRIBE = "subscription { walletUpdated { cursor } }"


@dataclass
class Transfer:
    key: str
    source: int
    target: int
    amount: Decimal
    transaction_id: str = ""


@dataclass
class Load:
    """What the clients saw: answers by kind (a sample body of each failure), acknowledged
    transfers and when, and what /readyz said."""

    users: list[SignedUp]
    answers: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)
    acknowledged: list[Transfer] = field(default_factory=list)
    acknowledged_at: list[float] = field(default_factory=list)
    attempts: int = 0
    ready: Counter[str] = field(default_factory=Counter)
    away_since: float | None = None  # PostgreSQL stopped (pg_ctl stop returned) since
    ready_while_away: list[int] = field(default_factory=list)

    def wallet(self, index: int) -> str:
        wallet: str = self.users[index].user["wallets"][0]["id"]
        return wallet

    def variables(self, transfer: Transfer) -> dict[str, Any]:
        return {
            "i": {
                "fromWalletId": self.wallet(transfer.source),
                "to": {"walletId": self.wallet(transfer.target)},
                "amount": str(transfer.amount),
                "idempotencyKey": transfer.key,
            }
        }

    def acknowledged_since(self, moment: float) -> int:
        return sum(at > moment for at in self.acknowledged_at)

    async def more_acknowledged(self, count: int, since: float | None = None) -> None:
        began = time.monotonic() if since is None else since
        await self.until(lambda: self.acknowledged_since(began) >= count)

    async def until(self, condition: Callable[[], bool], within: float = 30) -> None:
        deadline = time.monotonic() + within
        while not condition():
            assert time.monotonic() < deadline, (self.answers, self.samples)
            await asyncio.sleep(0.05)


async def post(client: GraphQLHTTP, query: str, variables: dict[str, Any], token: str) -> Any:
    """("ok", data), or a label of what went wrong (the HTTP status and the errors' codes, or
    the transport error) and the body."""
    try:
        response = await client.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"authorization": f"Bearer {token}"},
        )
    except httpx.TransportError as e:
        return f"transport {type(e).__name__}", str(e)
    if response.status_code != 200:
        return f"HTTP {response.status_code}", response.text
    body = response.json()
    if body.get("errors"):
        codes = sorted({str(e.get("extensions", {}).get("code")) for e in body["errors"]})
        return f"HTTP 200 {','.join(codes)}", body
    return OK, body["data"]


async def send_until_acknowledged(client: GraphQLHTTP, load: Load, transfer: Transfer) -> None:
    """The client's retry loop: the same key and input, again and again, until acknowledged."""
    token = load.users[transfer.source].access
    while True:
        load.attempts += 1
        label, data = await post(client, SEND, load.variables(transfer), token)
        if label == OK:
            payload = data["sendMoney"]
            assert payload["userErrors"] == [], payload
            transfer.transaction_id = payload["transaction"]["id"]
            load.acknowledged.append(transfer)
            load.acknowledged_at.append(time.monotonic())
            load.answers[OK] += 1
            return
        load.answers[label] += 1
        load.samples.setdefault(label, str(data)[:600])
        await asyncio.sleep(0.1)


async def sender(client: GraphQLHTTP, load: Load, rng: random.Random, stop: asyncio.Event) -> None:
    while not stop.is_set():
        source, target = rng.sample(range(USERS), 2)
        amount = Decimal(rng.randint(1, 500)).scaleb(-2)
        await send_until_acknowledged(client, load, Transfer(key(), source, target, amount))


async def reader(client: GraphQLHTTP, load: Load, stop: asyncio.Event) -> None:
    """Reads with a session looked up on every request (the server caches no viewer)."""
    while not stop.is_set():
        load.attempts += 1
        label, data = await post(client, WALLETS, {}, load.users[0].access)
        if label != OK:
            load.answers[f"read {label}"] += 1
            load.samples.setdefault(f"read {label}", str(data)[:600])
        await asyncio.sleep(0.05)


async def probe(client: GraphQLHTTP, load: Load, stop: asyncio.Event) -> None:
    """/readyz, ten times a second."""
    while not stop.is_set():
        sent = time.monotonic()
        try:
            status = (await client.http.get("/readyz")).status_code
        except httpx.TransportError as e:
            load.ready[f"transport {type(e).__name__}"] += 1
        else:
            load.ready[str(status)] += 1
            if load.away_since is not None and sent > load.away_since:
                load.ready_while_away.append(status)
        await asyncio.sleep(0.1)


async def socket_answer(ws: Any) -> str:
    """The next thing the server said on ``ws``: a message's type and codes, or its close."""
    try:
        message = json.loads(await asyncio.wait_for(ws.recv(), 15))
    except ConnectionClosed as closed:
        return f"closed {closed.rcvd.code if closed.rcvd else None}"
    payload = message.get("payload")
    errors = payload if message["type"] == "error" else (payload or {}).get("errors")
    codes = sorted({str(e.get("extensions", {}).get("code")) for e in errors or []})
    return " ".join([message["type"], *codes])


async def open_socket(api: Proc, token: str) -> tuple[Any, str]:
    ws = await websockets.connect(api.ws_url, subprotocols=[Subprotocol("graphql-transport-ws")])
    payload = {"authorization": f"Bearer {token}"}
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    return ws, await socket_answer(ws)


async def subscribe(ws: Any, operation: str) -> str:
    await ws.send(
        json.dumps({"id": operation, "type": "subscribe", "payload": {"query": SUBSCRIBE}})
    )
    return await socket_answer(ws)


@dataclass
class Restart:
    mode: str
    down_seconds: float
    start_seconds: float  # pg_ctl start: crash recovery included
    recovery_seconds: float  # PostgreSQL accepting connections -> a transfer acknowledged
    worker_leading_seconds: float  # PostgreSQL accepting connections -> all four jobs leading


async def restart(stack: Stack, api: Proc, worker: Proc, load: Load, mode: str) -> Restart:
    """Stop PostgreSQL under the load, look at sockets while it is away, start it again; how
    long it took the server and the worker to carry on."""
    users = load.users
    signed_in, acked = await open_socket(api, users[1].access)
    assert acked == "connection_ack", acked
    own = GraphQLHTTP(api.base_url)
    pay = await start_deposit(own, users[DEPOSITOR])
    worker_log = len(worker.log_text())
    down_at = time.monotonic()
    await asyncio.to_thread(stack.pg.stop, mode)
    load.away_since = time.monotonic()
    # A socket signed in before starts an operation; another signs in.
    sockets = {"subscribe": await subscribe(signed_in, mode)}
    fresh, sockets["connect"] = await open_socket(api, users[2].access)
    await fresh.close()
    # The provider's webhook (here the sandbox's payment page, which delivers it) is told to
    # come back: nothing half-applied, and the provider retries.
    paid = await pay()
    assert paid.status_code == 503, paid.text
    assert paid.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert paid.headers["retry-after"] == "1"
    # Any other route that reads the database answers the same (the sandbox's payout page).
    settle = await own.http.post(
        "/sandbox/paystack/transfers/TXN-AWAY", data={"outcome": "success"}
    )
    assert settle.status_code == 503, settle.text
    assert settle.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    await asyncio.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - down_at)))
    load.away_since = None
    start_began = time.monotonic()
    await asyncio.to_thread(stack.pg.start)
    up_at = time.monotonic()

    async def leading() -> float:
        for job in JOBS:
            await asyncio.to_thread(worker.wait_for_log, f"{job}_leading", 30, worker_log)
        return time.monotonic() - up_at

    leading_again = asyncio.create_task(leading())
    await load.more_acknowledged(20, since=up_at)
    worker_leading = await leading_again

    # The operation is refused for now, the sign-in told to come back (1013, not 4403: the
    # token is fine); the socket signed in before is still open, and signing in works again.
    assert sockets == {"subscribe": "error SERVICE_UNAVAILABLE", "connect": "closed 1013"}
    await signed_in.send(json.dumps({"type": "ping"}))
    assert await socket_answer(signed_in) == "pong"
    await signed_in.close()
    again, acked = await open_socket(api, users[2].access)
    assert acked == "connection_ack", acked
    await again.close()
    paid = await pay()
    assert paid.status_code == 200, paid.text
    await own.aclose()

    return Restart(
        mode,
        down_seconds=round(up_at - down_at, 2),
        start_seconds=round(up_at - start_began, 2),
        recovery_seconds=round(min(a for a in load.acknowledged_at if a > up_at) - up_at, 3),
        worker_leading_seconds=round(worker_leading, 2),
    )


async def start_deposit(
    client: GraphQLHTTP, user: SignedUp
) -> Callable[[], Awaitable[httpx.Response]]:
    """A deposit started, to be paid on the sandbox provider's page: paying it."""
    wallet = user.user["wallets"][0]["id"]
    variables = {"i": {"walletId": wallet, "amount": str(DEPOSIT), "idempotencyKey": key()}}
    started = (await client.data(START_DEPOSIT, variables, token=user.access))["startDeposit"]
    assert started["userErrors"] == [], started

    async def pay() -> httpx.Response:
        return await client.http.post(started["paymentUrl"], data={"outcome": "success"})

    return pay


async def transfers_booked(pg: OwnPostgres) -> int:
    conn = await asyncpg.connect(pg.dsn())
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM ledger_transactions WHERE kind = 'TRANSFER'"
        )
        return count
    finally:
        await conn.close()


async def test_database_restart_under_load(stack: Stack) -> None:
    worker, api = await asyncio.gather(
        asyncio.to_thread(stack.worker),
        asyncio.to_thread(
            stack.serve,
            STACKLO_RUN_WORKER_IN_PROCESS="false",
            # Every request looks its session up, so signing in meets the outage too.
            STACKLO_VIEWER_CACHE_SECONDS="0",
        ),
    )
    for job in JOBS:
        await asyncio.to_thread(worker.wait_for_log, f"{job}_leading", 30)
    setup = GraphQLHTTP(api.base_url)
    users = list(await asyncio.gather(*(sign_up(setup) for _ in range(USERS))))
    await asyncio.gather(*(deposit(setup, user, str(FUNDED)) for user in users))
    await settled(stack.pg.url())

    load = Load(users)
    stop = asyncio.Event()
    clients = [GraphQLHTTP(api.base_url) for _ in range(CLIENTS + 2)]
    rng = random.Random("database-restart")
    tasks = [
        asyncio.create_task(sender(clients[i], load, random.Random(rng.random()), stop))
        for i in range(CLIENTS)
    ]
    tasks.append(asyncio.create_task(reader(clients[CLIENTS], load, stop)))
    tasks.append(asyncio.create_task(probe(clients[CLIENTS + 1], load, stop)))
    restarts = []
    for mode in MODES:
        await load.more_acknowledged(20)  # under way
        restarts.append(await restart(stack, api, worker, load, mode))
    await asyncio.sleep(0.5)  # /readyz seen ready again
    stop.set()
    await asyncio.gather(*tasks)

    # Every error was the retryable one; /readyz said 503 while PostgreSQL was away.
    failures = {label for label in load.answers if label != OK}
    assert failures <= {UNAVAILABLE, f"read {UNAVAILABLE}"}, (load.answers, load.samples)
    assert UNAVAILABLE in failures, load.answers  # the outage was felt
    assert set(load.ready) <= {"200", "503"}, load.ready
    assert load.ready_while_away and set(load.ready_while_away) == {503}, load.ready_while_away
    assert (await setup.http.get("/readyz")).status_code == 200
    for each in restarts:
        assert each.recovery_seconds < RECOVERY_BOUND, each

    # Every acknowledged key replays its one transaction; nothing booked twice or unasked.
    async def replay(client: GraphQLHTTP, transfers: list[Transfer]) -> None:
        for transfer in transfers:
            token = users[transfer.source].access
            label, data = await post(client, SEND, load.variables(transfer), token)
            assert label == OK, (label, data)
            assert data["sendMoney"]["transaction"]["id"] == transfer.transaction_id

    await asyncio.gather(
        *(replay(c, load.acknowledged[i :: len(clients)]) for i, c in enumerate(clients))
    )
    expected = [FUNDED] * USERS
    expected[DEPOSITOR] += DEPOSIT * len(restarts)
    for transfer in load.acknowledged:
        expected[transfer.source] -= transfer.amount
        expected[transfer.target] += transfer.amount
    found = [Decimal((await wallets(setup, u))["NGN"]["balance"]["amount"]) for u in users]
    assert found == expected
    assert sum(found) == FUNDED * USERS + DEPOSIT * len(restarts)
    assert await transfers_booked(stack.pg) == len(load.acknowledged)

    # Every event committed before, during and after the outages is published.
    await settled(stack.pg.url(), within=15)
    verify = await asyncio.to_thread(stack.cli, "ledger", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert api.alive() and worker.alive()
    for c in [setup, *clients]:
        await c.aclose()
    assert "unexpected_error" not in api.log_text() + worker.log_text()
    assert "Exception in ASGI application" not in api.log_text()

    record(
        "database_restart",
        faults=len(restarts),
        requests=load.attempts,
        acknowledged=len(load.acknowledged),
        unavailable=load.answers[UNAVAILABLE] + load.answers[f"read {UNAVAILABLE}"],
        internal_errors=0,
        lost=0,
        duplicated=0,
        readyz_503=load.ready["503"],
        recovery_seconds=max(r.recovery_seconds for r in restarts),
        worker_leading_seconds=max(r.worker_leading_seconds for r in restarts),
        restarts=[vars(r) for r in restarts],
    )
