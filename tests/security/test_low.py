"""LOW: enumeration, lenient amounts, 500s from client input, missing security headers.

- A transfer's refusal never depends on whether its recipient exists: sender-side checks
  come first, and by email or phone a recipient without a wallet in the currency is as
  unknown as nobody.
- Amounts are plain ASCII decimals, never rounded.
- Nothing a client sends answers 500; every refusal is JSON.
- Every answer carries the security headers; GraphiQL has a CSP; GraphQL answers are no-store.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from stacklo.config import Settings
from stacklo.integrations.paystack import sign
from tests.conftest import JWT_SECRET, Server
from tests.helpers import (
    BANK,
    DEPOSIT,
    WITHDRAW,
    GraphQLHTTP,
    SignedUp,
    deposit,
    key,
    send,
    sign_up,
    unique_email,
    wallets,
)
from tests.security.conftest import new_address
from tests.security.helpers import raw

SANDBOX_SECRET = Settings(jwt_secret=JWT_SECRET).sandbox_secret


async def _funded(client: GraphQLHTTP, amount: str = "100", **overrides: Any) -> SignedUp:
    user = await sign_up(client, **overrides)
    await deposit(client, user, amount)
    return user


# ------------------------------------------------------------------------------ enumeration


@pytest.mark.parametrize(
    ("currency", "amount", "code"),
    [("NGN", "999999999.00", "INSUFFICIENT_FUNDS"), ("USD", "999.00", "LIMIT_EXCEEDED")],
)
async def test_a_refusal_reads_the_same_for_known_and_unknown_recipients(
    tight: Server, currency: str, amount: str, code: str
) -> None:
    client = GraphQLHTTP(tight.base_url, client_address=new_address())
    alice = await _funded(client, homeCurrency=currency)
    bob = await sign_up(client, homeCurrency=currency)
    answers = []
    for to in ({"email": bob.email}, {"email": unique_email("nobody")}):
        result = await send(client, alice, to, amount)
        answers.append(result["userErrors"])
    assert answers[0] == answers[1] and answers[0][0]["code"] == code
    await client.aclose()


async def test_a_recipients_currencies_are_not_revealed(tight: Server) -> None:
    client = GraphQLHTTP(tight.base_url, client_address=new_address())
    alice = await _funded(client)
    dollars_only = await sign_up(client, homeCurrency="USD")
    known = await send(client, alice, {"email": dollars_only.email}, "1")
    unknown = await send(client, alice, {"email": unique_email("nobody")}, "1")
    assert known["userErrors"] == unknown["userErrors"]
    assert known["userErrors"][0]["code"] == "NOT_FOUND"
    await client.aclose()


# --------------------------------------------------------------------------- amounts


@pytest.mark.parametrize(
    "amount", ["1_0.00", "\u0661\u0660", "1e1", " 10", "10.", ".5", "+10", "0x10", "Infinity"]
)
async def test_amounts_are_plain_ascii_decimals(tight: Server, amount: str) -> None:
    client = GraphQLHTTP(tight.base_url, client_address=new_address())
    alice = await _funded(client)
    bob = await sign_up(client)
    body = (
        await raw(
            client,
            """mutation($i: SendMoneyInput!) { sendMoney(input: $i) { transaction { id } } }""",
            {
                "i": {
                    "fromWalletId": alice.user["wallets"][0]["id"],
                    "to": {"email": bob.email},
                    "amount": amount,
                    "idempotencyKey": key(),
                }
            },
            token=alice.access,
        )
    ).json()
    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await wallets(client, bob))["NGN"]["balance"]["amount"] == "0.00"
    await client.aclose()


@pytest.mark.parametrize(
    "amount", ["0.0099999999999999999999999999999", "10.001", "1000000000000000"]
)
async def test_amounts_are_never_rounded_nor_absurd(tight: Server, amount: str) -> None:
    client = GraphQLHTTP(tight.base_url, client_address=new_address())
    alice = await _funded(client)
    bob = await sign_up(client)
    result = await send(client, alice, {"email": bob.email}, amount)
    assert result["transaction"] is None
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [
        ("INVALID_INPUT", ["input", "amount"])
    ]
    assert (await wallets(client, bob))["NGN"]["balance"]["amount"] == "0.00"
    await client.aclose()


async def test_bank_details_take_ascii_digits_only(tight: Server) -> None:
    client = GraphQLHTTP(tight.base_url, client_address=new_address())
    alice = await _funded(client)
    result = await client.data(
        WITHDRAW,
        {
            "i": {
                "walletId": alice.user["wallets"][0]["id"],
                "amount": "10",
                "bankAccount": {**BANK, "accountNumber": "\u0660\u0661\u0662\u0663\u0664\u0665"},
                "idempotencyKey": key(),
            }
        },
        token=alice.access,
    )
    refused = result["requestWithdrawal"]
    assert refused["transaction"] is None
    assert [(e["code"], e["field"][-1]) for e in refused["userErrors"]] == [
        ("INVALID_INPUT", "accountNumber")
    ]
    assert (await wallets(client, alice))["NGN"]["heldBalance"]["amount"] == "0.00"
    await client.aclose()


# ---------------------------------------------------------------------- never a 500


async def _signed_webhook(base_url: str, payload: dict[str, Any]) -> httpx.Response:
    body = json.dumps(payload).encode()
    async with httpx.AsyncClient(base_url=base_url) as http:
        return await http.post(
            "/webhooks/paystack",
            content=body,
            headers={
                "content-type": "application/json",
                "x-paystack-signature": sign(SANDBOX_SECRET, body),
            },
        )


async def test_an_absurd_deposit_is_refused_and_an_absurd_payment_is_held_for_review(
    tight: Server,
) -> None:
    client = GraphQLHTTP(tight.base_url, client_address=new_address())
    user = await sign_up(client)
    wallet = user.user["wallets"][0]["id"]
    huge = (
        await client.data(
            DEPOSIT,
            {
                "i": {
                    "walletId": wallet,
                    "amount": "99999999999999999999999.00",
                    "idempotencyKey": key(),
                }
            },
            token=user.access,
        )
    )["startDeposit"]
    assert [e["code"] for e in huge["userErrors"]] == ["INVALID_INPUT"]
    started = (
        await client.data(
            DEPOSIT,
            {"i": {"walletId": wallet, "amount": "10", "idempotencyKey": key()}},
            token=user.access,
        )
    )["startDeposit"]
    paid = await client.http.post(
        started["paymentUrl"], data={"outcome": "success", "amount_minor": "9" * 30}
    )
    assert paid.status_code == 200 and paid.json() == {"status": "review_required"}
    not_a_number = await client.http.post(
        started["paymentUrl"], data={"outcome": "success", "amount_minor": "1e30"}
    )
    assert not_a_number.status_code == 400 and "error" in not_a_number.json()
    assert (await wallets(client, user))["NGN"]["balance"]["amount"] == "0.00"
    await client.aclose()


@pytest.mark.parametrize(
    "reference", ["TXN-\x00AAAA", "r" * 5000, "TXN AAAA", "<script>", "\ud7ff" * 3]
)
async def test_a_signed_webhook_with_an_unusable_reference_is_a_400(
    tight: Server, reference: str
) -> None:
    response = await _signed_webhook(
        tight.base_url,
        {
            "event": "charge.success",
            "data": {"id": 7, "reference": reference, "amount": 100, "currency": "NGN"},
        },
    )
    assert response.status_code == 400 and "malformed event" in response.json()["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/sandbox/paystack/transfers/TXN-%00AAAA",
        "/sandbox/paystack/transfers/" + "R" * 5000,
        "/sandbox/paystack/checkout/TXN-%00AAAA?amount=1&currency=NGN&sig=x",
    ],
)
async def test_sandbox_pages_refuse_references_that_are_not_ours(tight: Server, path: str) -> None:
    async with httpx.AsyncClient(base_url=tight.base_url) as http:
        response = await http.post(path, data={"outcome": "success"})
    assert response.status_code == 404 and "error" in response.json()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\xff\xfe\xfd not utf-8", "application/json"),
        (b"[" * 100_000, "application/json"),
        (b'{"query": "{ __typename }", "variables": ' + b"[" * 100_000 + b"}", "application/json"),
    ],
)
async def test_bodies_that_are_not_json_are_400s(
    tight: Server, body: bytes, content_type: str
) -> None:
    async with httpx.AsyncClient(base_url=tight.base_url) as http:
        response = await http.post("/graphql", content=body, headers={"content-type": content_type})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    "path",
    [
        "/graphiql-assets/%2e%2e",
        "/graphiql-assets/%2e%2e/%2e%2e/config.py",
        "/graphiql-assets/..%2f..%2fconfig.py",
        "/graphiql-assets/%00",
        "/nowhere",
    ],
)
async def test_paths_that_lead_nowhere_are_json_404s(tight: Server, path: str) -> None:
    # A raw request line: no client-side normalisation of the path.
    host, port = tight.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw_answer = await reader.read()
    writer.close()
    head, _, payload = raw_answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    assert status in (400, 404), head
    assert b"application/json" in head.lower()
    assert json.loads(payload)["errors"][0]["extensions"]["code"] in ("NOT_FOUND", "BAD_REQUEST")


# ------------------------------------------------------------------------------ headers


async def test_every_answer_carries_the_security_headers(tight: Server) -> None:
    async with httpx.AsyncClient(base_url=tight.base_url) as http:
        answers = [
            await http.post("/graphql", json={"query": "{ __typename }"}),
            await http.get("/healthz"),
            await http.get("/nowhere"),
            await http.get("/graphql", headers={"accept": "text/html"}),
        ]
        for response in answers:
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        graphql, _, _, page = answers
        assert graphql.headers["cache-control"] == "no-store"
        policy = page.headers["content-security-policy"]
        nonce = policy.split("'nonce-")[1].split("'")[0]
        assert f'<script nonce="{nonce}">' in page.text
        assert (
            "script-src 'self' 'nonce-" in policy
            and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        )
        second = await http.get("/graphql", headers={"accept": "text/html"})
        assert nonce not in second.headers["content-security-policy"]  # one per page


async def test_a_subscription_over_plain_http_is_a_bad_request(tight: Server) -> None:
    client = GraphQLHTTP(tight.base_url, client_address=new_address())
    user = await sign_up(client)
    for accept in ("application/json", "text/event-stream"):
        response = await client.http.post(
            "/graphql",
            json={"query": "subscription { walletUpdated { cursor } }"},
            headers={"authorization": f"Bearer {user.access}", "accept": accept},
        )
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "BAD_REQUEST" and "WebSocket" in error["message"]
    await client.aclose()


async def test_batched_requests_are_refused(tight: Server) -> None:
    async with httpx.AsyncClient(base_url=tight.base_url) as http:
        response = await http.post(
            "/graphql", json=[{"query": "{ __typename }"}, {"query": "{ __typename }"}]
        )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
