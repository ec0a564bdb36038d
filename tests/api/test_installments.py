"""Buy now, pay later over real HTTP: apply for credit, see the offers, pay in 4, repay an
installment, prepay the rest; and who sees a plan."""

from __future__ import annotations

import asyncpg
import pytest

from tests.api.test_checkout import create, verified_merchant
from tests.conftest import Server
from tests.helpers import GraphQLHTTP, SignedUp, admin_token, deposit, key, sign_up, verify_identity

APPLY = """mutation($i: ApplyForCreditInput!) { applyForCredit(input: $i) {
  creditProfile { status score reasons creditLimit { amount currency }
                  availableCredit { amount } decidedAt }
  userErrors { code message field } } }"""
OFFERS = """query($id: ID!) { checkout(id: $id) { installmentOffers {
  product installmentCount downPayment { amount } installmentAmount { amount }
  intervalDays fee { amount } totalRepayable { amount } } } }"""
PAY = """mutation($i: PayCheckoutInput!) { payCheckout(input: $i) {
  checkout { status paymentMethod installmentPlan { id } }
  transaction { kind amount { amount } }
  installmentPlan { id product status principal { amount } outstanding { amount }
    installments { id sequence dueDate status amount { amount } paidAmount { amount } }
    nextInstallment { id sequence } }
  userErrors { code message field } } }"""
REPAY = """mutation($i: RepayInstallmentInput!) { repayInstallment(input: $i) {
  plan { status outstanding { amount } installments { sequence status } }
  transaction { kind amount { amount } }
  userErrors { code message field } } }"""
PREPAY = """mutation($i: PrepayPlanInput!) { prepayPlan(input: $i) {
  plan { status outstanding { amount } completedAt }
  transaction { kind amount { amount } }
  userErrors { code message field } } }"""
ME = """{ me { creditProfile { status availableCredit { amount } }
  installmentPlans(first: 5) { edges { node { id status } } }
  wallets { balance { amount } } } }"""
PLAN_NODE = "query($id: ID!) { node(id: $id) { ... on InstallmentPlan { id status } } }"


@pytest.fixture
async def admin(client: GraphQLHTTP, admin_credentials: tuple[str, str]) -> str:
    return await admin_token(client, admin_credentials)


async def seasoned_borrower(server: Server, client: GraphQLHTTP, admin: str) -> SignedUp:
    """A verified user whose account is a year old, with money coming in."""
    user = await sign_up(client)
    await verify_identity(client, user, admin)
    for _ in range(3):
        await deposit(client, user, "400000")
    conn = await asyncpg.connect(server.database_url.replace("+asyncpg", ""))
    try:  # the account's age is a fact of the decision: make it a year old
        await conn.execute(
            "UPDATE users SET created_at = now() - interval '400 days' WHERE id = $1::uuid",
            _raw_id(user.id),
        )
    finally:
        await conn.close()
    return user


def _raw_id(global_id: str) -> str:
    import base64

    return base64.b64decode(global_id).decode().split(":", 1)[1]


async def test_apply_offers_pay_in_4_repay_prepay(
    server: Server, client: GraphQLHTTP, admin: str
) -> None:
    borrower = await seasoned_borrower(server, client, admin)
    bad = (
        await client.data(
            APPLY, {"i": {"monthlyIncome": "-1", "employmentStatus": "EMPLOYED"}}, borrower.access
        )
    )["applyForCredit"]
    assert [e["code"] for e in bad["userErrors"]] == ["INVALID_INPUT"]
    applied = (
        await client.data(
            APPLY,
            {"i": {"monthlyIncome": "900000", "employmentStatus": "EMPLOYED"}},
            borrower.access,
        )
    )["applyForCredit"]
    profile = applied["creditProfile"]
    assert applied["userErrors"] == [] and profile["status"] == "APPROVED", applied
    assert profile["reasons"] and 640 <= profile["score"] <= 850
    assert profile["creditLimit"]["currency"] == "NGN"
    assert profile["availableCredit"] == {"amount": profile["creditLimit"]["amount"]}

    owner, merchant_id = await verified_merchant(client, admin)
    checkout_id = (await create(client, owner, merchant_id, "20000"))["checkout"]["id"]
    offers = (await client.data(OFFERS, {"id": checkout_id}, borrower.access))["checkout"]
    by_product = {o["product"]: o for o in offers["installmentOffers"]}
    assert set(by_product) == {"PAY_IN_4", "PAY_IN_3_MONTHLY", "PAY_IN_6_MONTHLY"}
    assert by_product["PAY_IN_4"]["downPayment"] == {"amount": "5000.00"}
    assert by_product["PAY_IN_4"]["intervalDays"] == 14
    assert by_product["PAY_IN_6_MONTHLY"]["fee"] == {"amount": "1000.00"}
    # No credit, no offers.
    stranger = await sign_up(client)
    none = (await client.data(OFFERS, {"id": checkout_id}, stranger.access))["checkout"]
    assert none["installmentOffers"] == []

    wallet = borrower.user["wallets"][0]["id"]
    paid = (
        await client.data(
            PAY,
            {
                "i": {
                    "checkoutId": checkout_id,
                    "walletId": wallet,
                    "method": "INSTALLMENTS",
                    "product": "PAY_IN_4",
                    "idempotencyKey": key(),
                }
            },
            borrower.access,
        )
    )["payCheckout"]
    assert paid["userErrors"] == [], paid
    plan = paid["installmentPlan"]
    assert paid["checkout"]["paymentMethod"] == "INSTALLMENTS"
    assert paid["checkout"]["installmentPlan"] == {"id": plan["id"]}
    assert (plan["product"], plan["status"]) == ("PAY_IN_4", "ACTIVE")
    assert [i["status"] for i in plan["installments"]] == ["PAID"] + ["SCHEDULED"] * 3
    assert plan["outstanding"] == {"amount": "15000.00"}
    assert plan["nextInstallment"]["sequence"] == 2

    second = plan["installments"][1]["id"]
    repaid = (
        await client.data(
            REPAY,
            {"i": {"installmentId": second, "walletId": wallet, "idempotencyKey": key()}},
            borrower.access,
        )
    )["repayInstallment"]
    assert repaid["userErrors"] == [] and repaid["transaction"]["kind"] == "INSTALLMENT_REPAYMENT"
    assert [i["status"] for i in repaid["plan"]["installments"]] == ["PAID"] * 2 + ["SCHEDULED"] * 2
    again = (
        await client.data(
            REPAY,
            {"i": {"installmentId": second, "walletId": wallet, "idempotencyKey": key()}},
            borrower.access,
        )
    )["repayInstallment"]
    assert [e["code"] for e in again["userErrors"]] == ["INVALID_STATE"]
    foreign = (
        await client.data(
            PREPAY,
            {"i": {"planId": plan["id"], "walletId": wallet, "idempotencyKey": key()}},
            stranger.access,
        )
    )["prepayPlan"]
    assert [e["code"] for e in foreign["userErrors"]] == ["NOT_FOUND"]
    assert (await client.data(PLAN_NODE, {"id": plan["id"]}, stranger.access))["node"] is None

    done = (
        await client.data(
            PREPAY,
            {"i": {"planId": plan["id"], "walletId": wallet, "idempotencyKey": key()}},
            borrower.access,
        )
    )["prepayPlan"]
    assert done["userErrors"] == [] and done["plan"]["status"] == "COMPLETED"
    assert done["transaction"]["amount"] == {"amount": "10000.00"}
    me = (await client.data(ME, token=borrower.access))["me"]
    assert me["creditProfile"]["availableCredit"] == {"amount": profile["creditLimit"]["amount"]}
    assert me["installmentPlans"]["edges"][0]["node"] == {"id": plan["id"], "status": "COMPLETED"}
    assert me["wallets"][0]["balance"] == {"amount": "1180000.00"}  # 1,200,000 - 20,000


async def test_credit_needs_kyc_and_offers_need_credit(client: GraphQLHTTP, admin: str) -> None:
    user = await sign_up(client)
    refused = (
        await client.data(
            APPLY, {"i": {"monthlyIncome": "1000", "employmentStatus": "STUDENT"}}, user.access
        )
    )["applyForCredit"]
    assert [e["code"] for e in refused["userErrors"]] == ["KYC_REQUIRED"]
    me = (await client.data(ME, token=user.access))["me"]
    assert me["creditProfile"] == {"status": "NONE", "availableCredit": {"amount": "0.00"}}
    owner, merchant_id = await verified_merchant(client, admin)
    checkout_id = (await create(client, owner, merchant_id, "10000"))["checkout"]["id"]
    await deposit(client, user, "5000")
    declined = (
        await client.data(
            PAY,
            {
                "i": {
                    "checkoutId": checkout_id,
                    "walletId": user.user["wallets"][0]["id"],
                    "method": "INSTALLMENTS",
                    "product": "PAY_IN_4",
                    "idempotencyKey": key(),
                }
            },
            user.access,
        )
    )["payCheckout"]
    assert [e["code"] for e in declined["userErrors"]] == ["CREDIT_DECLINED"]
