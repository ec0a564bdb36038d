"""Cost-based rate limits as a client sees them: ``extensions.cost`` on every answer, the
RateLimit header fields, RATE_LIMITED with Retry-After when a bucket runs dry, and the refill.

The shared test server's buckets are too large to notice; ``small`` runs one whose cost bucket
holds 100 points refilling 20 a second, and whose money bucket holds 2 mutations."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import Databases, Server, own_server
from tests.helpers import GraphQLHTTP, SignedUp, key, sign_up


async def answer(
    server: Server, query: str, token: str | None = None, **variables: Any
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        return await http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )


def cost(response: httpx.Response) -> dict[str, Any]:
    found: dict[str, Any] = response.json()["extensions"]["cost"]
    return found


async def test_known_queries_cost_what_the_model_says(server: Server) -> None:
    client = GraphQLHTTP(server.base_url)
    user = await sign_up(client)
    await client.aclose()

    # Scalars are free: nothing requested, nothing returned.
    free = cost(await answer(server, "{ __typename }"))
    assert (free["requestedQueryCost"], free["actualQueryCost"]) == (0, 0)

    # `me` is one object; anonymous, it comes back null: 1 requested, 0 actual.
    anonymous = cost(await answer(server, "{ me { email } }"))
    assert (anonymous["requestedQueryCost"], anonymous["actualQueryCost"]) == (1, 0)

    # The seven currencies: the list declares its size, and all seven come back.
    currencies = cost(await answer(server, "{ currencies { code decimals } }"))
    assert (currencies["requestedQueryCost"], currencies["actualQueryCost"]) == (7, 7)

    # me (1) + wallets, a list declaring its size as 7 (one per currency at most): 8
    # requested; the new user has one wallet: me + 1 wallet = 2 actual.
    wallets = cost(await answer(server, "{ me { wallets { id } } }", user.access))
    assert (wallets["requestedQueryCost"], wallets["actualQueryCost"]) == (8, 2)

    # A connection: me (1) + transactions (1) + first x (edge 1 + node 1) + pageInfo (1):
    # 1 + 1 + 5 x 2 + 1 = 13 requested; no transactions yet: me, the connection, pageInfo = 3.
    page = cost(
        await answer(
            server,
            "query($n: Int) { me { transactions(first: $n) { edges { node { id } } "
            "pageInfo { hasNextPage } } } }",
            user.access,
            n=5,
        )
    )
    assert (page["requestedQueryCost"], page["actualQueryCost"]) == (13, 3)

    status = page["throttleStatus"]
    assert set(status) == {"maximumAvailable", "currentlyAvailable", "restoreRate"}
    assert status["maximumAvailable"] == 100_000_000
    assert 0 <= status["currentlyAvailable"] <= status["maximumAvailable"]


async def test_socket_answers_carry_their_cost(server: Server) -> None:
    client = GraphQLHTTP(server.base_url)
    user = await sign_up(client)
    await client.aclose()
    async with websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {user.access}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        query = {"query": "{ currencies { code } }"}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": query}))
        message = json.loads(await ws.recv())
        assert message["type"] == "next"
        spent = message["payload"]["extensions"]["cost"]
        assert (spent["requestedQueryCost"], spent["actualQueryCost"]) == (7, 7)
        assert json.loads(await ws.recv())["type"] == "complete"

        # A subscription is charged once, in full, when it starts; each event says so.
        rates = "subscription { rateUpdated(pairs: [{base: BTC, quote: USD}]) { mid } }"
        await ws.send(json.dumps({"id": "2", "type": "subscribe", "payload": {"query": rates}}))
        for _ in range(2):
            event = json.loads(await ws.recv())
            assert event["type"] == "next", event
            spent = event["payload"]["extensions"]["cost"]
            assert (spent["requestedQueryCost"], spent["actualQueryCost"]) == (1, 1)


@pytest.fixture(scope="module")
def small(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with own_server(
        databases,
        tmp_path_factory,
        "budget",
        STACKLO_MAX_QUERY_COST="100",
        STACKLO_COST_BUCKET_SIZE="100",
        STACKLO_COST_RESTORE_PER_SECOND="20",
        STACKLO_MONEY_BUCKET_SIZE="2",
        STACKLO_MONEY_RESTORE_PER_SECOND="0.001",
    ) as running:
        yield running


@pytest.fixture
async def member(small: Server) -> AsyncIterator[SignedUp]:
    client = GraphQLHTTP(small.base_url)
    yield await sign_up(client)
    await client.aclose()


# Thirty aliases of the signed-in user: 30 requested, 30 returned, so nothing is given back.
THIRTY = "{ " + " ".join(f"m{i}: me {{ email }}" for i in range(30)) + " }"
POLICY = re.compile(r'^"cost";q=100;w=5$')
STATE = re.compile(r'^"cost";r=(\d+);t=(\d+)$')


async def test_the_bucket_empties_then_refills(small: Server, member: SignedUp) -> None:
    allowed = 0
    refused: httpx.Response | None = None
    for _ in range(20):
        response = await answer(small, THIRTY, member.access)
        if response.status_code != 200:
            refused = response
            break
        allowed += 1
        spent = cost(response)
        assert (spent["requestedQueryCost"], spent["actualQueryCost"]) == (30, 30)
        assert POLICY.match(response.headers["ratelimit-policy"])
        state = STATE.match(response.headers["ratelimit"])
        assert state is not None
        assert int(state.group(1)) == spent["throttleStatus"]["currentlyAvailable"] < 100
    assert refused is not None and allowed >= 3  # 100 points hold three 30-point operations

    assert refused.status_code == 429
    retry = int(refused.headers["retry-after"])
    assert 1 <= retry <= 2  # under 30 points short at 20 a second
    body = refused.json()
    assert body.get("data") is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] == retry
    assert error["extensions"]["policy"] == "cost"
    assert body["extensions"]["cost"]["actualQueryCost"] == 0
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] < 30
    assert STATE.match(refused.headers["ratelimit"])

    await asyncio.sleep(retry)
    again = await answer(small, THIRTY, member.access)
    assert again.status_code == 200 and "errors" not in again.json()


async def test_unused_points_are_given_back(small: Server, member: SignedUp) -> None:
    # me (1) + wallets at their declared size (7): 8 requested, 2 returned, 6 given back.
    first = cost(await answer(small, "{ me { wallets { id } } }", member.access))
    second = cost(await answer(small, "{ me { wallets { id } } }", member.access))
    assert (first["requestedQueryCost"], first["actualQueryCost"]) == (8, 2)
    # The second took 2 net, never 8 (refill only adds to what is left).
    spent = (
        first["throttleStatus"]["currentlyAvailable"]
        - second["throttleStatus"]["currentlyAvailable"]
    )
    assert spent <= 2


DEPOSIT = """mutation($i: StartDepositInput!) {
  startDeposit(input: $i) { transaction { id } userErrors { code } } }"""
COUNT = "{ me { transactions(first: 10) { edges { node { id } } } } }"


async def test_money_moving_mutations_have_their_own_tighter_bucket(
    small: Server, member: SignedUp
) -> None:
    def deposit() -> dict[str, Any]:
        wallet = member.user["wallets"][0]["id"]
        return {"walletId": wallet, "amount": "10.00", "idempotencyKey": key()}

    for _ in range(2):
        ok = await answer(small, DEPOSIT, member.access, i=deposit())
        assert ok.status_code == 200, ok.text
        assert ok.json()["data"]["startDeposit"]["userErrors"] == []
        money = cost(ok)["moneyThrottleStatus"]
        assert money["maximumAvailable"] == 2
    assert '"money";q=2;w=2000' in ok.headers["ratelimit-policy"]

    refused = await answer(small, DEPOSIT, member.access, i=deposit())
    assert refused.status_code == 429
    [error] = refused.json()["errors"]
    assert (error["extensions"]["code"], error["extensions"]["policy"]) == ("RATE_LIMITED", "money")
    assert cost(refused)["moneyThrottleStatus"]["currentlyAvailable"] == 0
    # It did not run, and reading is not money: the query bucket still answers.
    listed = await answer(small, COUNT, member.access)
    assert listed.status_code == 200
    assert len(listed.json()["data"]["me"]["transactions"]["edges"]) == 2
