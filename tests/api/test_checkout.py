"""Merchants and checkouts over real HTTP and WebSocket: the whole story, who sees what, bad
input, and settlement by the worker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.test_subscriptions import live, next_event
from tests.conftest import Databases, Server, own_server
from tests.helpers import (
    GraphQLHTTP,
    SignedUp,
    admin_token,
    deposit,
    key,
    settled,
    sign_up,
    verify_identity,
)

REGISTER = """mutation($i: RegisterMerchantInput!) { registerMerchant(input: $i) {
  merchant { id name category status settlementCurrency } userErrors { code message field } } }"""
REVIEW = """mutation($i: ReviewMerchantInput!) { reviewMerchant(input: $i) {
  merchant { id status reviewReason } userErrors { code message field } } }"""
CREATE = """mutation($i: CreateCheckoutInput!) { createCheckout(input: $i) {
  checkout { id status amount { amount currency } reference expiresAt }
  userErrors { code message field } } }"""
PAY = """mutation($i: PayCheckoutInput!) { payCheckout(input: $i) {
  checkout { id status paymentMethod paidAt }
  transaction { id kind status amount { amount } fee { amount } }
  installmentPlan { id }
  userErrors { code message field } } }"""
REFUND = """mutation($i: RefundCheckoutInput!) { refundCheckout(input: $i) {
  checkout { id status refundedAmount { amount } }
  transaction { kind amount { amount } fee { amount } }
  userErrors { code message field } } }"""
CHECKOUT = """query($id: ID!) { checkout(id: $id) {
  id status reference description amount { amount currency } refundedAmount { amount }
  merchant { name category } payment { kind } refunds { kind amount { amount } }
  installmentOffers { product } installmentPlan { id } } }"""
BOOKS = """query($id: ID!) { node(id: $id) { ... on Merchant { name
  pendingSettlement { amount currency }
  salesSummary { checkoutCount grossVolume { amount } refundedVolume { amount }
                 fees { amount } netVolume { amount } installmentVolume { amount } }
  checkouts(first: 10) { edges { node { id status } } } } } }"""
ME = "{ me { roles merchant { id status } wallets { id currency { code } balance { amount } } } }"
TX_SUB = "subscription { transactionUpdated { transaction { kind status amount { amount } } } }"


async def verified_merchant(
    client: GraphQLHTTP, admin: str, **register: str
) -> tuple[SignedUp, str]:
    owner = await sign_up(client)
    await verify_identity(client, owner, admin)
    made = (
        await client.data(
            REGISTER,
            {"i": {"name": "Ada's Shoes", "category": "fashion", **register}},
            owner.access,
        )
    )["registerMerchant"]
    assert made["userErrors"] == [] and made["merchant"]["status"] == "PENDING_REVIEW", made
    merchant_id: str = made["merchant"]["id"]
    approved = (
        await client.data(REVIEW, {"i": {"merchantId": merchant_id, "approve": True}}, admin)
    )["reviewMerchant"]
    assert approved["merchant"]["status"] == "ACTIVE", approved
    return owner, merchant_id


async def create(
    client: GraphQLHTTP, owner: SignedUp, merchant_id: str, amount: str, **more: str
) -> dict[str, Any]:
    reply: dict[str, Any] = (
        await client.data(
            CREATE, {"i": {"merchantId": merchant_id, "amount": amount, **more}}, owner.access
        )
    )["createCheckout"]
    return reply


async def pay(
    client: GraphQLHTTP, payer: SignedUp, checkout_id: str, idempotency_key: str | None = None
) -> dict[str, Any]:
    wallet = payer.user["wallets"][0]["id"]
    reply: dict[str, Any] = (
        await client.data(
            PAY,
            {
                "i": {
                    "checkoutId": checkout_id,
                    "walletId": wallet,
                    "method": "WALLET",
                    "idempotencyKey": idempotency_key or key(),
                }
            },
            payer.access,
        )
    )["payCheckout"]
    return reply


async def refund(
    client: GraphQLHTTP, who: SignedUp, checkout_id: str, amount: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "checkoutId": checkout_id,
        "reason": "returned",
        "idempotencyKey": key(),
    }
    if amount is not None:
        body["amount"] = amount
    reply: dict[str, Any] = (await client.data(REFUND, {"i": body}, who.access))["refundCheckout"]
    return reply


@pytest.fixture
async def admin(client: GraphQLHTTP, admin_credentials: tuple[str, str]) -> str:
    return await admin_token(client, admin_credentials)


def ledger_verified(server: Server) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stacklo", "ledger", "verify"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def test_the_whole_story(server: Server, client: GraphQLHTTP, admin: str) -> None:
    owner, merchant_id = await verified_merchant(client, admin)
    me = (await client.data(ME, token=owner.access))["me"]
    assert "MERCHANT" in me["roles"] and me["merchant"] == {"id": merchant_id, "status": "ACTIVE"}

    made = await create(
        client, owner, merchant_id, "1000.00", reference="order-1", description="Red shoes"
    )
    assert made["userErrors"] == [] and made["checkout"]["status"] == "OPEN"
    assert made["checkout"]["amount"] == {"amount": "1000.00", "currency": "NGN"}
    checkout_id = made["checkout"]["id"]

    payer = await sign_up(client)
    await deposit(client, payer, "1500")
    await settled(server.database_url)  # the deposit's events are out before we listen
    async with (
        live(server.ws_url, payer.access, TX_SUB) as payer_events,
        live(server.ws_url, owner.access, TX_SUB) as owner_events,
    ):
        paid = await pay(client, payer, checkout_id)
        assert paid["userErrors"] == [], paid
        assert (
            paid["checkout"]["status"] == "PAID" and paid["checkout"]["paymentMethod"] == "WALLET"
        )
        assert paid["transaction"]["kind"] == "CHECKOUT_PAYMENT"
        assert (paid["transaction"]["amount"], paid["transaction"]["fee"]) == (
            {"amount": "1000.00"},
            {"amount": "15.00"},
        )
        assert paid["installmentPlan"] is None
        for queue in (payer_events, owner_events):
            event = await next_event(queue, wait=10)
            assert event["transactionUpdated"]["transaction"]["kind"] == "CHECKOUT_PAYMENT"

    # The payer sees the checkout, not the merchant's reference; the owner sees both.
    as_payer = (await client.data(CHECKOUT, {"id": checkout_id}, payer.access))["checkout"]
    assert as_payer["status"] == "PAID" and as_payer["reference"] is None
    assert as_payer["merchant"] == {"name": "Ada's Shoes", "category": "fashion"}
    assert as_payer["payment"] == {"kind": "CHECKOUT_PAYMENT"}
    assert as_payer["installmentOffers"] == [] and as_payer["installmentPlan"] is None
    as_owner = (await client.data(CHECKOUT, {"id": checkout_id}, owner.access))["checkout"]
    assert as_owner["reference"] == "order-1"

    books = (await client.data(BOOKS, {"id": merchant_id}, owner.access))["node"]
    assert books["pendingSettlement"] == {"amount": "985.00", "currency": "NGN"}
    assert books["salesSummary"]["checkoutCount"] == 1
    assert books["salesSummary"]["netVolume"] == {"amount": "985.00"}
    assert [e["node"]["id"] for e in books["checkouts"]["edges"]] == [checkout_id]

    part = await refund(client, owner, checkout_id, "100")
    assert part["userErrors"] == [] and part["checkout"]["status"] == "PAID", part
    assert part["checkout"]["refundedAmount"] == {"amount": "100.00"}
    assert part["transaction"]["fee"] == {"amount": "1.50"}
    over = await refund(client, owner, checkout_id, "900.01")
    assert [e["code"] for e in over["userErrors"]] == ["INVALID_INPUT"]
    rest = await refund(client, owner, checkout_id)
    assert rest["checkout"]["status"] == "REFUNDED"
    assert rest["checkout"]["refundedAmount"] == {"amount": "1000.00"}
    other = (await create(client, owner, merchant_id, "5"))["checkout"]["id"]
    by_status = """query($id: ID!, $s: CheckoutStatus) { node(id: $id) { ... on Merchant {
      checkouts(status: $s) { edges { node { id status } } } } } }"""
    for status, expected in (("REFUNDED", [checkout_id]), ("OPEN", [other]), ("PAID", [])):
        found = await client.data(by_status, {"id": merchant_id, "s": status}, owner.access)
        edges = found["node"]["checkouts"]["edges"]
        assert [e["node"]["id"] for e in edges] == expected, status
    seen = (await client.data(CHECKOUT, {"id": checkout_id}, payer.access))["checkout"]
    assert [r["amount"]["amount"] for r in seen["refunds"]] == ["100.00", "900.00"]
    wallets = (await client.data(ME, token=payer.access))["me"]["wallets"]
    assert wallets[0]["balance"] == {"amount": "1500.00"}
    ledger_verified(server)


async def test_a_foreign_merchants_books_and_checkouts_stay_hidden(
    client: GraphQLHTTP, admin: str
) -> None:
    owner, merchant_id = await verified_merchant(client, admin)
    made = await create(client, owner, merchant_id, "10", reference="secret-ref")
    checkout_id = made["checkout"]["id"]
    stranger = await sign_up(client)
    assert (await client.data(BOOKS, {"id": merchant_id}, stranger.access))["node"] is None
    reply = await client.post(
        "query($id: ID!) { checkout(id: $id) { reference merchant { name pendingSettlement { amount } } } }",
        {"id": checkout_id},
        token=stranger.access,
    )
    assert reply["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    plain = (await client.data(CHECKOUT, {"id": checkout_id}, stranger.access))["checkout"]
    assert plain["reference"] is None and plain["refunds"] == [] and plain["payment"] is None
    anonymous = await client.data(CHECKOUT, {"id": checkout_id})
    assert anonymous["checkout"] is None
    foreign = await create(client, stranger, merchant_id, "10")
    assert [(e["code"], e["message"]) for e in foreign["userErrors"]] == [
        ("NOT_FOUND", "Merchant not found.")
    ]
    refund_attempt = await refund(client, stranger, checkout_id)
    assert [e["code"] for e in refund_attempt["userErrors"]] == ["NOT_FOUND"]


async def test_review_needs_the_right_and_a_reason_to_refuse(
    client: GraphQLHTTP, admin: str
) -> None:
    owner = await sign_up(client)
    refused = (
        await client.data(REGISTER, {"i": {"name": "Shop", "category": "food"}}, owner.access)
    )["registerMerchant"]
    assert [e["code"] for e in refused["userErrors"]] == ["KYC_REQUIRED"]
    owner, merchant_id = await verified_merchant(client, admin)
    customer = await sign_up(client)
    forbidden = await client.post(
        REVIEW, {"i": {"merchantId": merchant_id, "approve": False}}, customer.access
    )
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    no_reason = (
        await client.data(REVIEW, {"i": {"merchantId": merchant_id, "approve": False}}, admin)
    )["reviewMerchant"]
    assert [e["code"] for e in no_reason["userErrors"]] == ["INVALID_INPUT"]
    suspended = (
        await client.data(
            REVIEW, {"i": {"merchantId": merchant_id, "approve": False, "reason": "fraud"}}, admin
        )
    )["reviewMerchant"]
    assert suspended["merchant"]["status"] == "SUSPENDED"
    assert suspended["merchant"]["reviewReason"] == "fraud"
    cannot = await create(client, owner, merchant_id, "10")
    assert [e["code"] for e in cannot["userErrors"]] == ["INVALID_STATE"]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("amount", "0", "INVALID_INPUT"),
        ("amount", "-5", "INVALID_INPUT"),
        ("amount", "10.001", "INVALID_INPUT"),
        ("amount", "1000000000000000", "INVALID_INPUT"),
        ("description", "a\u0000b", "INVALID_INPUT"),
        ("description", "x" * 501, "INVALID_INPUT"),
        ("reference", "r" * 65, "INVALID_INPUT"),
        ("merchantId", "not-an-id", "NOT_FOUND"),
        ("merchantId", "TWVyY2hhbnQ6bm90LWEtdXVpZA==", "NOT_FOUND"),
    ],
)
async def test_bad_checkout_input_is_a_user_error(
    client: GraphQLHTTP, admin: str, field: str, value: str, code: str
) -> None:
    owner, merchant_id = await verified_merchant(client, admin)
    body = {"merchantId": merchant_id, "amount": "10", field: value}
    reply = (await client.data(CREATE, {"i": body}, owner.access))["createCheckout"]
    assert reply["checkout"] is None
    assert [e["code"] for e in reply["userErrors"]] == [code]


async def test_paying_twice_and_racing(client: GraphQLHTTP, admin: str) -> None:
    owner, merchant_id = await verified_merchant(client, admin)
    checkout_id = (await create(client, owner, merchant_id, "50"))["checkout"]["id"]
    payers = [await sign_up(client) for _ in range(5)]
    for p in payers:
        await deposit(client, p, "100")
    replies = await asyncio.gather(*(pay(client, p, checkout_id) for p in payers))
    winners = [r for r in replies if not r["userErrors"]]
    assert len(winners) == 1
    assert all(
        [e["code"] for e in r["userErrors"]] == ["INVALID_STATE"]
        for r in replies
        if r not in winners
    )
    unknown = await pay(client, payers[0], "Q2hlY2tvdXQ6bm9wZQ==")
    assert [e["code"] for e in unknown["userErrors"]] == ["NOT_FOUND"]


@pytest.fixture(scope="module")
def settling(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Sales settle as soon as the worker looks (every 0.2 s)."""
    with own_server(
        databases,
        tmp_path_factory,
        "settling",
        STACKLO_SETTLEMENT_DELAY_SECONDS="0",
        STACKLO_SCHEDULER_INTERVAL_SECONDS="0.2",
    ) as running:
        yield running


async def test_the_worker_settles_to_the_owners_wallet(settling: Server) -> None:
    client = GraphQLHTTP(settling.base_url)
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "stacklo",
            "create-admin",
            "--email",
            "settle-admin@example.com",
            "--password",
            "correct horse battery",
        ],
        env=settling.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    admin = await admin_token(client, ("settle-admin@example.com", "correct horse battery"))
    owner, merchant_id = await verified_merchant(client, admin)
    payer = await sign_up(client)
    await deposit(client, payer, "300")
    checkout_id = (await create(client, owner, merchant_id, "200"))["checkout"]["id"]
    assert (await pay(client, payer, checkout_id))["userErrors"] == []
    pending = None
    for _ in range(100):
        books = (await client.data(BOOKS, {"id": merchant_id}, owner.access))["node"]
        pending = books["pendingSettlement"]["amount"]
        if pending == "0.00":
            break
        await asyncio.sleep(0.1)
    assert pending == "0.00"
    wallets = (await client.data(ME, token=owner.access))["me"]["wallets"]
    assert wallets[0]["balance"] == {"amount": "197.00"}
    # Settled: the refund comes from the owner's wallet.
    back = await refund(client, owner, checkout_id, "20")
    assert back["userErrors"] == [] and back["transaction"]["fee"] == {"amount": "0.30"}
    wallets = (await client.data(ME, token=owner.access))["me"]["wallets"]
    assert wallets[0]["balance"] == {"amount": "177.30"}
    await client.aclose()
    ledger_verified(settling)
