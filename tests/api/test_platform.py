"""Staff views of the whole platform: platformStats, and the resumable activity feed."""

from __future__ import annotations

import pytest

from tests.api.test_subscriptions import live, next_event
from tests.conftest import Server
from tests.helpers import GraphQLHTTP, admin_token, deposit, send, settled, sign_up

STATS = """{ platformStats { userCount activeMerchantCount transactionCount24h
  volume24h { amount currency } activeInstallmentPlans overdueInstallments transfersLastMinute
  transactionsLastHour failedTransactionsLastHour pendingKyc openCheckouts subscribersConnected
  generatedAt } }"""
FEED = """subscription($after: String) { platformActivityEvents(after: $after) {
  cursor transaction { reference kind status } } }"""


@pytest.fixture
async def admin(client: GraphQLHTTP, admin_credentials: tuple[str, str]) -> str:
    return await admin_token(client, admin_credentials)


async def test_platform_stats_for_staff_only(client: GraphQLHTTP, admin: str) -> None:
    alice, bob = await sign_up(client), await sign_up(client)
    await deposit(client, alice, "100")
    await send(client, alice, {"email": bob.email}, "10")
    stats = (await client.data(STATS, token=admin))["platformStats"]
    assert stats["userCount"] >= 3
    assert stats["transfersLastMinute"] >= 1 and stats["transactionCount24h"] >= 2
    assert any(v["currency"] == "NGN" for v in stats["volume24h"])
    assert stats["failedTransactionsLastHour"] <= stats["transactionsLastHour"]
    customer = await client.post(STATS, token=alice.access)
    assert customer["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_activity_feed_resumes_after_a_reconnect(
    server: Server, client: GraphQLHTTP, admin: str
) -> None:
    alice, bob = await sign_up(client), await sign_up(client)
    await deposit(client, alice, "100")
    await settled(server.database_url)
    async with live(server.ws_url, admin, FEED) as feed:
        first = await send(client, alice, {"email": bob.email}, "1")
        while True:
            event = (await next_event(feed, wait=10))["platformActivityEvents"]
            if event["transaction"]["reference"] == first["transaction"]["reference"]:
                break
        cursor = event["cursor"]
    missed = await send(client, alice, {"email": bob.email}, "2")  # while disconnected
    await settled(server.database_url)
    async with live(server.ws_url, admin, FEED, {"after": cursor}) as feed:
        seen = []
        while missed["transaction"]["reference"] not in seen:
            seen.append(
                (await next_event(feed, wait=10))["platformActivityEvents"]["transaction"][
                    "reference"
                ]
            )
        assert first["transaction"]["reference"] not in seen  # nothing twice
