"""Subscriptions over real WebSockets, with a client this project did not write (gql)."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import websockets
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from sqlalchemy import make_url
from websockets.exceptions import ConnectionClosed

from tests.conftest import Databases, Server, own_server, server_env, start_server, stop_server
from tests.helpers import (
    GraphQLHTTP,
    SignedUp,
    admin_token,
    deposit,
    send,
    settled,
    sign_up,
)

TX_SUB = "subscription($id: ID, $after: String) { transactionUpdated(id: $id, after: $after) { cursor transaction { id reference status kind amount { amount } } } }"
WALLET_SUB = "subscription($w: ID, $after: String) { walletUpdated(walletId: $w, after: $after) { cursor wallet { id balance { amount } heldBalance { amount } } } }"
QUIET = 1.0  # how long "nothing arrives" is watched for


@contextlib.asynccontextmanager
async def live(
    ws_url: str, token: str, query: str, variables: dict[str, Any] | None = None
) -> AsyncIterator[asyncio.Queue[Any]]:
    """Subscribe with gql's WebSocket transport; events (or the error) land in a queue."""
    transport = WebsocketsTransport(
        url=ws_url,
        init_payload={"authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    queue: asyncio.Queue[Any] = asyncio.Queue()
    async with Client(transport=transport) as session:

        async def run() -> None:
            try:
                async for result in session.subscribe(
                    GraphQLRequest(query, variable_values=variables or {})
                ):
                    await queue.put(result)
            except TransportQueryError as e:
                await queue.put(e)

        task = asyncio.create_task(run())
        await asyncio.sleep(0.4)  # the server subscribes to its channel
        try:
            yield queue
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def next_event(queue: asyncio.Queue[Any], wait: float = 5) -> Any:
    item = await asyncio.wait_for(queue.get(), wait)
    if isinstance(item, Exception):
        raise item
    return item


async def nothing(queue: asyncio.Queue[Any], within: float = QUIET) -> None:
    await asyncio.sleep(within)
    assert queue.empty(), queue.get_nowait()


@pytest.fixture
async def trio(server: Server, client: GraphQLHTTP) -> tuple[SignedUp, SignedUp, SignedUp]:
    alice, bob, carol = await sign_up(client), await sign_up(client), await sign_up(client)
    await deposit(client, alice, "1000")
    await settled(server.database_url)
    return alice, bob, carol


async def test_both_parties_see_a_transfer_and_nobody_else_does(
    server: Server, client: GraphQLHTTP, trio: tuple[SignedUp, SignedUp, SignedUp]
) -> None:
    alice, bob, carol = trio
    async with (
        live(server.ws_url, alice.access, TX_SUB) as alice_tx,
        live(server.ws_url, alice.access, WALLET_SUB) as alice_w,
        live(server.ws_url, bob.access, TX_SUB) as bob_tx,
        live(server.ws_url, bob.access, WALLET_SUB) as bob_w,
        live(server.ws_url, carol.access, TX_SUB) as carol_tx,
        live(server.ws_url, carol.access, WALLET_SUB) as carol_w,
    ):
        sent = await send(client, alice, {"email": bob.email}, "25.00")
        reference = sent["transaction"]["reference"]
        for queue in (alice_tx, bob_tx):
            event = (await next_event(queue))["transactionUpdated"]
            assert event["transaction"]["reference"] == reference
            assert event["transaction"]["status"] == "COMPLETED" and event["cursor"]
        assert (await next_event(alice_w))["walletUpdated"]["wallet"]["balance"] == {
            "amount": "975.00"
        }
        assert (await next_event(bob_w))["walletUpdated"]["wallet"]["balance"] == {
            "amount": "25.00"
        }
        await nothing(carol_tx)
        await nothing(carol_w)


async def test_resume_after_a_cursor_replays_exactly_what_was_missed(
    server: Server, client: GraphQLHTTP, trio: tuple[SignedUp, SignedUp, SignedUp]
) -> None:
    alice, bob, _ = trio
    async with live(server.ws_url, bob.access, TX_SUB) as queue:
        await send(client, alice, {"email": bob.email}, "1")
        cursor = (await next_event(queue))["transactionUpdated"]["cursor"]
    missed = [
        (await send(client, alice, {"email": bob.email}, str(n)))["transaction"]["reference"]
        for n in (2, 3, 4)
    ]
    async with live(server.ws_url, bob.access, TX_SUB, {"after": cursor}) as queue:
        replayed = [
            (await next_event(queue))["transactionUpdated"]["transaction"]["reference"]
            for _ in range(3)
        ]
        assert replayed == missed
        fresh = (await send(client, alice, {"email": bob.email}, "5"))["transaction"]["reference"]
        assert (await next_event(queue))["transactionUpdated"]["transaction"]["reference"] == fresh
        await nothing(queue)  # no duplicate at the seam


async def test_one_transaction_and_one_wallet(
    server: Server, client: GraphQLHTTP, trio: tuple[SignedUp, SignedUp, SignedUp]
) -> None:
    alice, bob, _ = trio
    from tests.helpers import BANK, WITHDRAW, key

    withdrawal = await client.data(
        WITHDRAW,
        {
            "i": {
                "walletId": alice.user["wallets"][0]["id"],
                "amount": "100",
                "bankAccount": BANK,
                "idempotencyKey": key(),
            }
        },
        token=alice.access,
    )
    tx = withdrawal["requestWithdrawal"]["transaction"]
    await settled(server.database_url)
    async with (
        live(server.ws_url, alice.access, TX_SUB, {"id": tx["id"]}) as one,
        live(
            server.ws_url, alice.access, WALLET_SUB, {"w": alice.user["wallets"][0]["id"]}
        ) as wallet,
    ):
        await send(client, alice, {"email": bob.email}, "1")  # another transaction: filtered out
        await client.http.post(
            f"/sandbox/paystack/transfers/{tx['reference']}", data={"outcome": "success"}
        )
        event = (await next_event(one))["transactionUpdated"]["transaction"]
        assert (event["reference"], event["status"]) == (tx["reference"], "COMPLETED")
        await nothing(one)
        balances = [(await next_event(wallet))["walletUpdated"]["wallet"] for _ in range(2)]
        assert [(b["balance"]["amount"], b["heldBalance"]["amount"]) for b in balances] == [
            ("999.00", "100.00"),
            ("899.00", "0.00"),
        ]


async def test_platform_activity_is_for_staff(
    server: Server,
    client: GraphQLHTTP,
    trio: tuple[SignedUp, SignedUp, SignedUp],
    admin_credentials: tuple[str, str],
) -> None:
    alice, bob, _ = trio
    query = "subscription { platformActivity { reference kind status } }"
    async with live(server.ws_url, alice.access, query) as refused:
        with pytest.raises(TransportQueryError) as e:
            await next_event(refused)
    assert e.value.errors and e.value.errors[0]["extensions"]["code"] == "FORBIDDEN"
    staff = await admin_token(client, admin_credentials)
    async with live(server.ws_url, staff, query) as feed:
        reference = (await send(client, alice, {"email": bob.email}, "3"))["transaction"][
            "reference"
        ]
        for _ in range(20):  # other tests' traffic may interleave
            if (await next_event(feed))["platformActivity"]["reference"] == reference:
                break
        else:
            pytest.fail("the staff feed never showed the transfer")


async def test_bad_and_expired_cursors(
    server: Server, trio: tuple[SignedUp, SignedUp, SignedUp]
) -> None:
    alice = trio[0]
    async with live(server.ws_url, alice.access, TX_SUB, {"after": "garbage"}) as queue:
        with pytest.raises(TransportQueryError) as e:
            await next_event(queue)
    assert e.value.errors and e.value.errors[0]["extensions"]["code"] == "INVALID_INPUT"

    dsn = (
        make_url(server.database_url)
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("UPDATE outbox_state SET pruned_through = 1000000000")
        async with live(
            server.ws_url, alice.access, TX_SUB, {"after": "cHwx"}
        ) as queue:  # position 1
            with pytest.raises(TransportQueryError) as e:
                await next_event(queue)
        assert e.value.errors and e.value.errors[0]["extensions"]["code"] == "CURSOR_EXPIRED"
    finally:
        await conn.execute("UPDATE outbox_state SET pruned_through = 0")
        await conn.close()


async def test_anonymous_subscribers_are_unauthenticated(server: Server) -> None:
    async with websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        await ws.recv()
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": "subscription { walletUpdated { cursor } }"},
                }
            )
        )
        message = json.loads(await ws.recv())
    assert (
        message["type"] == "error"
        and message["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    )


# ------------------------------------------------------------- protocol limits


@pytest.fixture(scope="module")
def strict_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """Short init timeout, short-lived tokens, two subscriptions per user."""
    with own_server(
        databases,
        tmp_path_factory,
        "strict",
        STACKLO_WS_INIT_TIMEOUT_SECONDS="1",
        STACKLO_ACCESS_TOKEN_TTL_SECONDS="6",
        STACKLO_SUBSCRIPTIONS_PER_USER="2",
    ) as running:
        yield running


async def _closed_code(ws: Any) -> int:
    """Read until the server closes the socket; the close code it sent."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 15)
    assert ws.close_code is not None
    return int(ws.close_code)


async def test_init_timeout_closes_with_4408(strict_server: Server) -> None:
    async with websockets.connect(
        strict_server.ws_url, subprotocols=["graphql-transport-ws"]
    ) as ws:
        assert await _closed_code(ws) == 4408


async def test_duplicate_subscription_id_closes_with_4409(strict_server: Server) -> None:
    client = GraphQLHTTP(strict_server.base_url)
    user = await sign_up(client)
    await client.aclose()
    async with websockets.connect(
        strict_server.ws_url, subprotocols=["graphql-transport-ws"]
    ) as ws:
        await ws.send(
            json.dumps(
                {"type": "connection_init", "payload": {"authorization": f"Bearer {user.access}"}}
            )
        )
        await ws.recv()
        for _ in range(2):
            await ws.send(
                json.dumps(
                    {
                        "id": "same",
                        "type": "subscribe",
                        "payload": {"query": "subscription { walletUpdated { cursor } }"},
                    }
                )
            )
        assert await _closed_code(ws) == 4409


async def test_per_user_subscription_cap(strict_server: Server) -> None:
    client = GraphQLHTTP(strict_server.base_url)
    user = await sign_up(client)
    await client.aclose()
    # The sign-up's wallet event, published late, would otherwise answer subscription 0 first.
    await settled(strict_server.database_url)
    async with websockets.connect(
        strict_server.ws_url, subprotocols=["graphql-transport-ws"]
    ) as ws:
        await ws.send(
            json.dumps(
                {"type": "connection_init", "payload": {"authorization": f"Bearer {user.access}"}}
            )
        )
        await ws.recv()
        for n in range(3):
            await ws.send(
                json.dumps(
                    {
                        "id": str(n),
                        "type": "subscribe",
                        "payload": {"query": "subscription { walletUpdated { cursor } }"},
                    }
                )
            )
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
    # The refusal comes from the resolver, so it arrives as that subscription's result.
    assert message["id"] == "2" and message["type"] in ("next", "error")
    errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
    assert errors[0]["extensions"]["code"] == "RATE_LIMITED"


async def test_expired_access_token_closes_the_socket_with_4403(strict_server: Server) -> None:
    client = GraphQLHTTP(strict_server.base_url)
    user = await sign_up(client)
    await client.aclose()
    async with websockets.connect(
        strict_server.ws_url, subprotocols=["graphql-transport-ws"]
    ) as ws:
        await ws.send(
            json.dumps(
                {"type": "connection_init", "payload": {"authorization": f"Bearer {user.access}"}}
            )
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        started = asyncio.get_running_loop().time()
        assert await _closed_code(ws) == 4403
        assert asyncio.get_running_loop().time() - started < 10


# ------------------------------------------------- two instances, Redis, a worker

REDIS_DB = os.environ.get("STACKLO_TEST_REDIS_DB", "7")


@pytest.fixture(scope="module")
def cluster(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    url = databases.create("cluster")
    folder = tmp_path_factory.mktemp("cluster")
    env = server_env(
        url,
        folder,
        REDIS_URL=f"redis://127.0.0.1:6379/{REDIS_DB}",
        STACKLO_RUN_WORKER_IN_PROCESS="false",
    )
    a, a_url = start_server(env, folder / "a.log")
    b, b_url = start_server(env, folder / "b.log")
    state: dict[str, Any] = {"env": env, "a": a_url, "b": b_url, "log": folder / "worker.log"}
    state["worker"] = start_worker(env, state["log"])
    try:
        yield state
    finally:
        stop_server(state["worker"])
        stop_server(a)
        stop_server(b)


def start_worker(env: dict[str, str], log: Path, timeout: float = 30) -> "subprocess.Popen[bytes]":
    """A worker, returned once it leads the relay (events committed from then on flow)."""
    seen = log.read_text().count("relay_leading") if log.exists() else 0
    process = subprocess.Popen(
        [sys.executable, "-m", "stacklo", "worker"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout
    while log.read_text().count("relay_leading") <= seen:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker did not start:\n{log.read_text()[-4000:]}")
        time.sleep(0.05)
    return process


async def test_a_transfer_on_instance_a_reaches_a_subscriber_on_b_within_a_second(
    cluster: dict[str, Any],
) -> None:
    a = GraphQLHTTP(cluster["a"])
    alice, bob = await sign_up(a), await sign_up(a)
    await deposit(a, alice, "100")
    ws_b = cluster["b"].replace("http", "ws", 1) + "/graphql"
    async with live(ws_b, bob.access, TX_SUB) as queue:
        started = asyncio.get_running_loop().time()
        reference = (await send(a, alice, {"email": bob.email}, "10"))["transaction"]["reference"]
        event = await next_event(queue, wait=1.0)
        assert event["transactionUpdated"]["transaction"]["reference"] == reference
        assert asyncio.get_running_loop().time() - started < 1.0
    await a.aclose()


async def test_the_workers_rate_feed_reaches_every_instance(cluster: dict[str, Any]) -> None:
    """The worker ticks; instances read the latest rates from Redis and push ticks to
    rateUpdated subscribers, whichever instance they are on."""
    a, b = GraphQLHTTP(cluster["a"]), GraphQLHTTP(cluster["b"])
    query = "{ rates(pairs: [{base: USD, quote: NGN}]) { mid updatedAt source } }"
    seen_a, seen_b = (await a.data(query))["rates"], (await b.data(query))["rates"]
    assert seen_a[0]["source"] == seen_b[0]["source"] == "sandbox"
    user = await sign_up(a)
    ws_b = cluster["b"].replace("http", "ws", 1) + "/graphql"
    sub = "subscription { rateUpdated(pairs: [{base: USD, quote: NGN}]) { mid updatedAt } }"
    async with live(ws_b, user.access, sub) as queue:
        first = (await next_event(queue, wait=5))["rateUpdated"]
        second = (await next_event(queue, wait=5))["rateUpdated"]
    assert second["updatedAt"] > first["updatedAt"]
    await a.aclose()
    await b.aclose()


async def test_a_relay_killed_before_publishing_delivers_after_restart(
    cluster: dict[str, Any],
) -> None:
    a = GraphQLHTTP(cluster["a"])
    alice, bob = await sign_up(a), await sign_up(a)
    await deposit(a, alice, "100")
    ws_b = cluster["b"].replace("http", "ws", 1) + "/graphql"
    async with live(ws_b, bob.access, TX_SUB) as queue:
        cluster["worker"].send_signal(signal.SIGKILL)
        cluster["worker"].wait(10)
        reference = (await send(a, alice, {"email": bob.email}, "7"))["transaction"]["reference"]
        await nothing(queue, 1.5)  # committed, but nobody relays it
        cluster["worker"] = start_worker(cluster["env"], cluster["log"])
        event = await next_event(queue, wait=15)
        assert event["transactionUpdated"]["transaction"]["reference"] == reference
    await a.aclose()


async def test_legacy_graphql_ws_subscriptions_still_work(
    server: Server, client: GraphQLHTTP, trio: tuple[SignedUp, SignedUp, SignedUp]
) -> None:
    alice, bob, _ = trio
    async with websockets.connect(server.ws_url, subprotocols=["graphql-ws"]) as ws:
        await ws.send(
            json.dumps(
                {"type": "connection_init", "payload": {"authorization": f"Bearer {bob.access}"}}
            )
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "start",
                    "payload": {
                        "query": "subscription { walletUpdated { wallet { balance { amount } } } }"
                    },
                }
            )
        )
        await asyncio.sleep(0.4)
        await send(client, alice, {"email": bob.email}, "4.50")
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if message["type"] != "ka":
                break
    assert message["type"] == "data"
    assert message["payload"]["data"]["walletUpdated"]["wallet"]["balance"] == {"amount": "4.50"}


async def test_realtime_metrics_are_exported(
    server: Server, client: GraphQLHTTP, trio: tuple[SignedUp, SignedUp, SignedUp]
) -> None:
    alice, bob, _ = trio
    async with live(server.ws_url, bob.access, TX_SUB) as queue:
        await send(client, alice, {"email": bob.email}, "1")
        await next_event(queue)
        text = (await client.http.get("/metrics")).text
    for name in (
        "stacklo_websocket_connections",
        "stacklo_subscriptions_active",
        "stacklo_outbox_lag_seconds",
        "stacklo_outbox_events_published_total",
        "stacklo_events_delivered_total",
    ):
        assert name in text, name
    delivered = next(
        line for line in text.splitlines() if line.startswith("stacklo_events_delivered_total ")
    )
    assert float(delivered.split()[1]) >= 1


async def test_a_rolled_back_change_publishes_nothing(
    server: Server, client: GraphQLHTTP, trio: tuple[SignedUp, SignedUp, SignedUp]
) -> None:
    alice, bob, _ = trio
    start = "cHww"  # position 0: replay everything first, so nothing earlier is still in flight
    async with (
        live(server.ws_url, alice.access, WALLET_SUB, {"after": start}) as mine,
        live(server.ws_url, bob.access, TX_SUB, {"after": start}) as theirs,
    ):
        opened = (await next_event(mine))["walletUpdated"]["wallet"]["balance"]
        funded = (await next_event(mine))["walletUpdated"]["wallet"]["balance"]
        assert (opened, funded) == ({"amount": "0.00"}, {"amount": "1000.00"})  # sign-up, deposit
        refused = await send(client, alice, {"email": bob.email}, "5000")  # more than alice has
        assert refused["userErrors"][0]["code"] == "INSUFFICIENT_FUNDS"
        await nothing(mine)
        await nothing(theirs)
