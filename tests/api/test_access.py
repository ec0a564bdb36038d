"""Staff-only fields, node ownership, pagination limits, wallets."""

import uuid

import pytest
from strawberry.relay import GlobalID

from tests.conftest import Server
from tests.helpers import LOG_IN, PASSWORD, GraphQLHTTP, admin_token, sign_up, unique_email

USERS = "query($s: String, $f: Int, $a: String) { users(first: $f, after: $a, search: $s) { pageInfo { hasNextPage endCursor } edges { node { email wallets { id } } } } }"
AUDIT = "query($a: String, $actor: ID) { auditEvents(action: $a, actorId: $actor, first: 50) { edges { node { action actor { email } targetType targetId ipAddress metadata createdAt } } } }"


@pytest.mark.parametrize("query", [USERS, AUDIT])
async def test_staff_fields_are_forbidden_for_customers(client: GraphQLHTTP, query: str) -> None:
    customer = await sign_up(client)
    body = await client.post(query, token=customer.access)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = await client.post(query)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_admin_lists_and_searches_users(
    client: GraphQLHTTP, admin_credentials: tuple[str, str]
) -> None:
    token = await admin_token(client, admin_credentials)
    tag = uuid.uuid4().hex[:8]
    for i in range(3):
        await sign_up(client, email=f"{tag}-{i}@example.com")
    first = (await client.data(USERS, {"s": tag, "f": 2}, token=token))["users"]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = (
        await client.data(
            USERS, {"s": tag, "f": 2, "a": first["pageInfo"]["endCursor"]}, token=token
        )
    )["users"]
    emails = [e["node"]["email"] for e in first["edges"] + rest["edges"]]
    assert sorted(emails) == [f"{tag}-{i}@example.com" for i in range(3)]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert all(len(e["node"]["wallets"]) == 1 for e in first["edges"])


async def test_audit_log_records_the_actions(
    client: GraphQLHTTP, admin_credentials: tuple[str, str]
) -> None:
    token = await admin_token(client, admin_credentials)
    user = await sign_up(client)
    await client.data(LOG_IN, {"input": {"email": user.email, "password": "wrong password"}})
    await client.data(LOG_IN, {"input": {"email": user.email, "password": PASSWORD}})
    events = (await client.data(AUDIT, {"actor": user.id}, token=token))["auditEvents"]["edges"]
    actions = [e["node"]["action"] for e in events]
    assert actions == ["user.logged_in", "user.login_failed", "wallet.opened", "user.signed_up"]
    assert all(e["node"]["actor"]["email"] == user.email for e in events)
    assert events[0]["node"]["ipAddress"] == "127.0.0.1"
    assert events[1]["node"]["metadata"] == {"reason": "wrong_password"}
    only_failed = await client.data(
        AUDIT, {"actor": user.id, "a": "user.login_failed"}, token=token
    )
    assert len(only_failed["auditEvents"]["edges"]) == 1


async def test_forwarded_for_is_trusted_only_from_configured_proxies(
    server: Server, admin_credentials: tuple[str, str]
) -> None:
    import httpx

    email = unique_email("xff")
    body = {
        "query": "mutation($i: LogInInput!) { logIn(input: $i) { userErrors { code } } }",
        "variables": {"i": {"email": email, "password": "whatever pass"}},
    }
    headers = {"x-forwarded-for": "198.51.100.7"}
    async with httpx.AsyncClient(base_url=server.base_url) as direct:
        await direct.post("/graphql", json=body, headers=headers)
    proxy = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=server.base_url, transport=proxy) as via_proxy:
        await via_proxy.post("/graphql", json=body, headers=headers)
    client = GraphQLHTTP(server.base_url)
    token = await admin_token(client, admin_credentials)
    events = (await client.data(AUDIT, {"a": "user.login_failed"}, token=token))["auditEvents"][
        "edges"
    ]
    await client.aclose()
    ips = [e["node"]["ipAddress"] for e in events[:2]]
    assert ips == ["198.51.100.7", "127.0.0.1"]  # newest first: the proxied one is trusted


async def test_foreign_and_unknown_node_ids_are_null(
    client: GraphQLHTTP, admin_credentials: tuple[str, str]
) -> None:
    alice, bob = await sign_up(client), await sign_up(client)
    bob_wallet = bob.user["wallets"][0]["id"]
    query = "query($id: ID!) { node(id: $id) { id ... on Wallet { balance { amount } } ... on User { email } } }"
    for foreign in (
        bob.id,
        bob_wallet,
        str(GlobalID("User", str(uuid.uuid4()))),
        "bm9wZQ==",
        "!!",
        str(GlobalID("Nope", "1")),
    ):
        assert (await client.data(query, {"id": foreign}, token=alice.access))["node"] is None
    assert (await client.data(query, {"id": bob_wallet}, token=bob.access))["node"][
        "id"
    ] == bob_wallet
    assert (await client.data(query, {"id": bob.id}))["node"] is None  # anonymous
    staff = await admin_token(client, admin_credentials)
    assert (await client.data(query, {"id": bob.id}, token=staff))["node"]["email"] == bob.email


async def test_connections_cap_first_at_100(
    client: GraphQLHTTP, admin_credentials: tuple[str, str]
) -> None:
    token = await admin_token(client, admin_credentials)
    for bad in (101, -1):
        body = await client.post(USERS, {"f": bad}, token=token)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert body["errors"][0]["extensions"]["field"] == "users"
    body = await client.post(USERS, {"f": 100, "a": "forged"}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["argument"] == "after"
    assert "users" in (await client.data(USERS, {"f": 100}, token=token))


OPEN = "mutation($c: CurrencyCode!) { openWallet(input: {currency: $c}) { wallet { id currency { code decimals kind } balance { amount } heldBalance { amount } availableBalance { amount } status } userErrors { code field } } }"


async def test_open_wallet_and_duplicate(client: GraphQLHTTP) -> None:
    user = await sign_up(client)
    opened = (await client.data(OPEN, {"c": "ETH"}, token=user.access))["openWallet"]
    assert opened["userErrors"] == []
    wallet = opened["wallet"]
    assert wallet["currency"] == {"code": "ETH", "decimals": 18, "kind": "CRYPTO"}
    assert wallet["balance"]["amount"] == "0." + "0" * 18 and wallet["status"] == "ACTIVE"
    again = (await client.data(OPEN, {"c": "ETH"}, token=user.access))["openWallet"]
    assert again == {
        "wallet": None,
        "userErrors": [{"code": "WALLET_EXISTS", "field": ["input", "currency"]}],
    }
    me = await client.data(
        "{ me { wallets { currency { code } } wallet(currency: ETH) { id } } }", token=user.access
    )
    assert [w["currency"]["code"] for w in me["me"]["wallets"]] == ["NGN", "ETH"]
    assert me["me"]["wallet"]["id"] == wallet["id"]
    assert (await client.post(OPEN, {"c": "USD"}))["errors"][0]["extensions"][
        "code"
    ] == "UNAUTHENTICATED"


async def test_currencies(client: GraphQLHTTP) -> None:
    result = await client.data("{ currencies { code name kind decimals } }")
    assert {c["code"]: c["decimals"] for c in result["currencies"]} == {
        "NGN": 2,
        "USD": 2,
        "GBP": 2,
        "EUR": 2,
        "BTC": 8,
        "ETH": 18,
        "USDT": 6,
    }
