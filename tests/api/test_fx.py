"""Rates, quotes, conversions, cross-currency transfers and the portfolio, over real HTTP and
WebSocket against a real server (sandbox rate feed, real PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest
import websockets

from tests.api.test_subscriptions import live, next_event
from tests.conftest import Server
from tests.helpers import (
    GraphQLHTTP,
    SignedUp,
    admin_token,
    deposit,
    key,
    send,
    settled,
    sign_up,
    verify_identity,
    wallets,
)

RATES = """query($p: [CurrencyPairInput!]) {
  rates(pairs: $p) { base quote bid ask mid source updatedAt } }"""
QUOTE = """mutation($i: CreateQuoteInput!) { createQuote(input: $i) {
  quote { id rate status expiresAt createdAt sourceAmount { amount currency }
          targetAmount { amount currency } fee { amount currency } }
  userErrors { code message field } } }"""
CONVERT = """mutation($i: ConvertInput!) { convert(input: $i) {
  transaction { id reference kind status amount { amount currency } fee { amount currency }
                convertedAmount { amount currency } exchangeRate
                entries { direction amount { amount currency } } }
  userErrors { code message field } } }"""
REVIEW = """mutation($i: ReviewKycInput!) { reviewKyc(input: $i) {
  user { id kycStatus } userErrors { code message field } } }"""
PORTFOLIO = """query($c: CurrencyCode!) { me { portfolio(valuationCurrency: $c) {
  totalValue { amount currency }
  holdings { wallet { currency { code } balance { amount } } rate value { amount currency } } } } }"""
NODE = "query($id: ID!) { node(id: $id) { ... on Quote { id status } } }"
RATE_SUB = """subscription($p: [CurrencyPairInput!]) {
  rateUpdated(pairs: $p) { base quote bid ask mid updatedAt } }"""


async def quote(
    client: GraphQLHTTP, user: SignedUp, source: str, target: str, **amounts: str
) -> dict[str, Any]:
    result: dict[str, Any] = (
        await client.data(
            QUOTE,
            {"i": {"sourceCurrency": source, "targetCurrency": target, **amounts}},
            token=user.access,
        )
    )["createQuote"]
    return result


async def convert(
    client: GraphQLHTTP, user: SignedUp, quote_id: str, idempotency_key: str | None = None
) -> dict[str, Any]:
    result: dict[str, Any] = (
        await client.data(
            CONVERT,
            {"i": {"quoteId": quote_id, "idempotencyKey": idempotency_key or key()}},
            token=user.access,
        )
    )["convert"]
    return result


async def funded(client: GraphQLHTTP, amount: str = "100000") -> SignedUp:
    user = await sign_up(client)
    await deposit(client, user, amount)
    return user


async def verified(client: GraphQLHTTP, admin: str, user: SignedUp) -> None:
    await verify_identity(client, user, admin)


@pytest.fixture
async def admin(client: GraphQLHTTP, admin_credentials: tuple[str, str]) -> str:
    return await admin_token(client, admin_credentials)


def error_codes(reply: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in reply.get("errors") or []]


# ------------------------------------------------------------------------------ rates


async def test_rates_cover_every_supported_pair_with_bid_below_mid_below_ask(
    client: GraphQLHTTP,
) -> None:
    found = (await client.data(RATES))["rates"]
    pairs = {(r["base"], r["quote"]) for r in found}
    assert len(found) == len(pairs) == 36  # 7 currencies, no crypto/crypto, no X/X
    assert ("BTC", "ETH") not in pairs and ("NGN", "NGN") not in pairs
    for r in found:
        assert Decimal(r["bid"]) < Decimal(r["mid"]) < Decimal(r["ask"]), r
    usd_ngn = next(r for r in found if (r["base"], r["quote"]) == ("USD", "NGN"))
    ngn_usd = next(r for r in found if (r["base"], r["quote"]) == ("NGN", "USD"))
    assert abs(Decimal(usd_ngn["mid"]) * Decimal(ngn_usd["mid"]) - 1) < Decimal("1e-9")
    ngn_gbp = next(r for r in found if (r["base"], r["quote"]) == ("NGN", "GBP"))
    assert ngn_gbp["source"] == "sandbox via USD"  # a cross rate
    assert usd_ngn["source"] == "sandbox"


async def test_rates_for_chosen_pairs_and_unsupported_pairs(client: GraphQLHTTP) -> None:
    found = (
        await client.data(
            RATES, {"p": [{"base": "BTC", "quote": "NGN"}, {"base": "EUR", "quote": "GBP"}]}
        )
    )["rates"]
    assert [(r["base"], r["quote"]) for r in found] == [("BTC", "NGN"), ("EUR", "GBP")]
    for bad in ({"base": "BTC", "quote": "ETH"}, {"base": "USD", "quote": "USD"}):
        reply = await client.post(RATES, {"p": [bad]})
        assert error_codes(reply) == ["INVALID_INPUT"], reply


async def test_rate_updated_delivers_only_the_subscribed_pairs(
    server: Server, client: GraphQLHTTP
) -> None:
    user = await sign_up(client)
    wanted = [{"base": "USD", "quote": "NGN"}, {"base": "BTC", "quote": "USD"}]
    async with live(server.ws_url, user.access, RATE_SUB, {"p": wanted}) as queue:
        seen = [(await next_event(queue, wait=10))["rateUpdated"] for _ in range(6)]
    pairs = [(r["base"], r["quote"]) for r in seen]
    assert set(pairs) == {("USD", "NGN"), ("BTC", "USD")}, pairs
    # Ticks move: the same pair is seen at more than one time.
    assert len({r["updatedAt"] for r in seen if r["base"] == "USD"}) >= 2


async def test_rate_updated_needs_a_signed_in_viewer(server: Server) -> None:
    async with websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        await ws.recv()
        await ws.send(
            json.dumps(
                {"id": "1", "type": "subscribe", "payload": {"query": RATE_SUB, "variables": {}}}
            )
        )
        message = json.loads(await ws.recv())
    assert message["type"] == "error", message
    assert message["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# ------------------------------------------------------------------------------ quotes


async def test_quote_from_a_source_amount_follows_the_rounding_rule(client: GraphQLHTTP) -> None:
    user = await funded(client)
    q = (await quote(client, user, "NGN", "USD", sourceAmount="10000"))["quote"]
    source, fee = Decimal(q["sourceAmount"]["amount"]), Decimal(q["fee"]["amount"])
    target, rate = Decimal(q["targetAmount"]["amount"]), Decimal(q["rate"])
    assert (source, q["sourceAmount"]["currency"]) == (Decimal("10000.00"), "NGN")
    assert fee == Decimal("50.00")  # 0.5% of the source, rounded up
    assert target == ((source - fee) * rate).quantize(Decimal("0.01"), ROUND_DOWN)
    assert q["status"] == "ACTIVE" and q["fee"]["currency"] == "NGN"


async def test_quote_for_an_exact_target_amount(client: GraphQLHTTP) -> None:
    user = await funded(client)
    q = (await quote(client, user, "NGN", "EUR", targetAmount="25.00"))["quote"]
    source, fee = Decimal(q["sourceAmount"]["amount"]), Decimal(q["fee"]["amount"])
    rate = Decimal(q["rate"])
    assert q["targetAmount"] == {"amount": "25.00", "currency": "EUR"}
    assert (source - fee) * rate >= Decimal("25.00")
    # ...and not one kobo more than needed: a kobo less would not pay for it.
    less = source - Decimal("0.01")
    assert (
        less - (less * Decimal("0.005")).quantize(Decimal("0.01"), "ROUND_UP")
        < Decimal("25.00") / rate
    )


@pytest.mark.parametrize(
    ("source", "target", "amounts", "code", "field"),
    [
        ("NGN", "USD", {"sourceAmount": "1000", "targetAmount": "1"}, "INVALID_INPUT", None),
        ("NGN", "USD", {}, "INVALID_INPUT", None),
        ("NGN", "NGN", {"sourceAmount": "1000"}, "INVALID_INPUT", ["input", "targetCurrency"]),
        ("BTC", "ETH", {"sourceAmount": "0.01"}, "INVALID_INPUT", ["input", "targetCurrency"]),
        ("NGN", "USD", {"sourceAmount": "50"}, "LIMIT_EXCEEDED", ["input", "sourceAmount"]),
        ("NGN", "USD", {"sourceAmount": "60000000"}, "LIMIT_EXCEEDED", ["input", "sourceAmount"]),
        ("NGN", "USD", {"sourceAmount": "100.001"}, "INVALID_INPUT", ["input", "sourceAmount"]),
        ("NGN", "USD", {"targetAmount": "-1"}, "INVALID_INPUT", ["input", "targetAmount"]),
        ("NGN", "BTC", {"sourceAmount": "10000"}, "KYC_REQUIRED", None),
    ],
)
async def test_bad_quotes_are_user_errors(
    client: GraphQLHTTP,
    source: str,
    target: str,
    amounts: dict[str, str],
    code: str,
    field: list[str] | None,
) -> None:
    user = await sign_up(client)
    result = await quote(client, user, source, target, **amounts)
    assert result["quote"] is None
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [(code, field)], result


async def test_quotes_need_a_signed_in_viewer(client: GraphQLHTTP) -> None:
    reply = await client.post(
        QUOTE, {"i": {"sourceCurrency": "NGN", "targetCurrency": "USD", "sourceAmount": "500"}}
    )
    assert error_codes(reply) == ["UNAUTHENTICATED"]


# ------------------------------------------------------------------------------ convert


async def test_convert_moves_exactly_the_quote_and_opens_the_target_wallet(
    client: GraphQLHTTP,
) -> None:
    user = await funded(client, "20000")
    q = (await quote(client, user, "NGN", "USD", sourceAmount="10000"))["quote"]
    k = key()
    done = await convert(client, user, q["id"], k)
    assert done["userErrors"] == [], done
    tx = done["transaction"]
    assert (tx["kind"], tx["status"]) == ("EXCHANGE", "COMPLETED")
    assert tx["amount"] == q["sourceAmount"] and tx["fee"] == q["fee"]
    assert tx["convertedAmount"] == q["targetAmount"] and tx["exchangeRate"] == q["rate"]
    own = {(e["direction"], e["amount"]["currency"], e["amount"]["amount"]) for e in tx["entries"]}
    assert own == {
        ("DEBIT", "NGN", q["sourceAmount"]["amount"]),
        ("CREDIT", "USD", q["targetAmount"]["amount"]),
    }
    after = await wallets(client, user)
    assert after["NGN"]["balance"]["amount"] == "10000.00"
    assert after["USD"]["balance"]["amount"] == q["targetAmount"]["amount"]

    # The same key again: the first answer. A new key: the quote is spent.
    again = await convert(client, user, q["id"], k)
    assert again["transaction"]["id"] == tx["id"] and again["userErrors"] == []
    spent = await convert(client, user, q["id"])
    assert [e["code"] for e in spent["userErrors"]] == ["QUOTE_ALREADY_USED"]
    node = (await client.data(NODE, {"id": q["id"]}, token=user.access))["node"]
    assert node == {"id": q["id"], "status": "USED"}
    assert (await wallets(client, user))["USD"]["balance"] == after["USD"]["balance"]


async def test_another_users_quote_is_not_found(client: GraphQLHTTP) -> None:
    owner, thief = await funded(client), await funded(client)
    q = (await quote(client, owner, "NGN", "USD", sourceAmount="1000"))["quote"]
    stolen = await convert(client, thief, q["id"])
    assert [(e["code"], e["field"]) for e in stolen["userErrors"]] == [
        ("NOT_FOUND", ["input", "quoteId"])
    ]
    assert (await client.data(NODE, {"id": q["id"]}, token=thief.access))["node"] is None
    for bogus in ("nonsense", "V2FsbGV0OjE="):
        result = await convert(client, owner, bogus)
        assert [e["code"] for e in result["userErrors"]] == ["NOT_FOUND"]


async def test_converting_more_than_the_balance_is_insufficient_funds(
    client: GraphQLHTTP,
) -> None:
    user = await funded(client, "1000")
    q = (await quote(client, user, "NGN", "GBP", sourceAmount="5000"))["quote"]
    result = await convert(client, user, q["id"])
    assert [e["code"] for e in result["userErrors"]] == ["INSUFFICIENT_FUNDS"]
    assert "GBP" not in await wallets(client, user)  # nothing half-written
    node = (await client.data(NODE, {"id": q["id"]}, token=user.access))["node"]
    assert node["status"] == "ACTIVE"


async def test_one_quote_executed_ten_times_at_once_moves_money_once(
    client: GraphQLHTTP,
) -> None:
    user = await funded(client, "50000")
    q = (await quote(client, user, "NGN", "USD", sourceAmount="20000"))["quote"]
    results = await asyncio.gather(*(convert(client, user, q["id"]) for _ in range(10)))
    winners = [r for r in results if r["transaction"]]
    losers = [r["userErrors"][0]["code"] for r in results if not r["transaction"]]
    assert len(winners) == 1 and losers == ["QUOTE_ALREADY_USED"] * 9, results
    after = await wallets(client, user)
    assert after["NGN"]["balance"]["amount"] == "30000.00"
    assert after["USD"]["balance"]["amount"] == q["targetAmount"]["amount"]


async def test_crypto_needs_kyc_then_buys_and_sells(client: GraphQLHTTP, admin: str) -> None:
    user = await funded(client, "2000000")
    assert [
        e["code"]
        for e in (await quote(client, user, "NGN", "BTC", sourceAmount="150000"))["userErrors"]
    ] == ["KYC_REQUIRED"]
    await verified(client, admin, user)
    buy_q = (await quote(client, user, "NGN", "BTC", sourceAmount="150000"))["quote"]
    bought = await convert(client, user, buy_q["id"])
    assert bought["transaction"]["kind"] == "CRYPTO_BUY", bought
    btc = buy_q["targetAmount"]["amount"]
    assert len(btc.split(".")[1]) == 8  # BTC carries 8 decimals
    assert (await wallets(client, user))["BTC"]["balance"]["amount"] == btc
    sell_q = (await quote(client, user, "BTC", "NGN", sourceAmount=btc))["quote"]
    sold = await convert(client, user, sell_q["id"])
    assert sold["transaction"]["kind"] == "CRYPTO_SELL", sold
    final = await wallets(client, user)
    assert final["BTC"]["balance"]["amount"] == "0.00000000"
    expected = Decimal("2000000") - Decimal("150000") + Decimal(sell_q["targetAmount"]["amount"])
    assert Decimal(final["NGN"]["balance"]["amount"]) == expected
    assert expected < Decimal("2000000")  # spread and fees both ways: a round trip costs


async def test_review_kyc_is_for_staff_and_audited(client: GraphQLHTTP, admin: str) -> None:
    user, other = await sign_up(client), await sign_up(client)
    reply = await client.post(
        REVIEW, {"i": {"userId": other.id, "approve": True}}, token=user.access
    )
    assert error_codes(reply) == ["FORBIDDEN"]
    rejected = (
        await client.data(REVIEW, {"i": {"userId": other.id, "approve": False}}, token=admin)
    )["reviewKyc"]
    assert [(e["code"], e["field"]) for e in rejected["userErrors"]] == [
        ("INVALID_INPUT", ["input", "reason"])
    ]
    rejected = (
        await client.data(
            REVIEW,
            {"i": {"userId": other.id, "approve": False, "reason": "blurry document"}},
            token=admin,
        )
    )["reviewKyc"]
    assert rejected["user"]["kycStatus"] == "REJECTED"
    audit = (
        await client.data(
            '{ auditEvents(action: "kyc.reviewed", first: 5) { edges { node { targetId metadata } } } }',
            token=admin,
        )
    )["auditEvents"]["edges"]
    assert any(e["node"]["metadata"].get("reason") == "blurry document" for e in audit)
    missing = (
        await client.data(REVIEW, {"i": {"userId": "VXNlcjox", "approve": True}}, token=admin)
    )["reviewKyc"]
    assert [e["code"] for e in missing["userErrors"]] == ["NOT_FOUND"]


# ------------------------------------------------------------------ cross-currency sendMoney


async def test_cross_currency_send_delivers_exactly_the_target_amount(
    client: GraphQLHTTP,
) -> None:
    alice, bob = await funded(client, "50000"), await sign_up(client, homeCurrency="USD")
    q = (await quote(client, alice, "NGN", "USD", targetAmount="10.00"))["quote"]
    plain = await send(
        client, alice, {"walletId": bob.user["wallets"][0]["id"]}, q["sourceAmount"]["amount"]
    )
    assert [e["code"] for e in plain["userErrors"]] == ["QUOTE_REQUIRED"]
    wrong_amount = await send(client, alice, {"email": bob.email}, "100", quoteId=q["id"])
    assert [(e["code"], e["field"]) for e in wrong_amount["userErrors"]] == [
        ("INVALID_INPUT", ["input", "amount"])
    ]
    k = key()

    async def send_quoted() -> dict[str, Any]:
        return await send(
            client,
            alice,
            {"email": bob.email},
            q["sourceAmount"]["amount"],
            idempotency_key=k,
            quoteId=q["id"],
        )

    sent = await send_quoted()
    assert sent["userErrors"] == [], sent
    retried = await send_quoted()
    assert retried["transaction"]["id"] == sent["transaction"]["id"]  # the first answer
    assert sent["transaction"]["kind"] == "TRANSFER"
    assert (await wallets(client, bob))["USD"]["balance"]["amount"] == "10.00"
    left = Decimal("50000") - Decimal(q["sourceAmount"]["amount"])
    assert Decimal((await wallets(client, alice))["NGN"]["balance"]["amount"]) == left
    reused = await send(
        client, alice, {"email": bob.email}, q["sourceAmount"]["amount"], quoteId=q["id"]
    )
    assert [e["code"] for e in reused["userErrors"]] == ["QUOTE_ALREADY_USED"]


async def test_cross_currency_send_currency_mismatches(client: GraphQLHTTP) -> None:
    alice, bob = await funded(client, "50000"), await sign_up(client, homeCurrency="USD")
    to_gbp = (await quote(client, alice, "NGN", "GBP", sourceAmount="5000"))["quote"]
    result = await send(
        client, alice, {"walletId": bob.user["wallets"][0]["id"]}, "5000", quoteId=to_gbp["id"]
    )
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [
        ("CURRENCY_MISMATCH", ["input", "to"])
    ]
    # By email, no GBP wallet is as unknown as no such person.
    result = await send(client, alice, {"email": bob.email}, "5000", quoteId=to_gbp["id"])
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [
        ("NOT_FOUND", ["input", "to"])
    ]
    from_usd = (await quote(client, alice, "USD", "NGN", sourceAmount="10"))["quote"]
    result = await send(client, alice, {"email": bob.email}, "10", quoteId=from_usd["id"])
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [
        ("CURRENCY_MISMATCH", ["input", "fromWalletId"])
    ]


# ------------------------------------------------------------------------------ portfolio


async def test_portfolio_values_holdings_at_mid_rates(client: GraphQLHTTP) -> None:
    user = await funded(client, "30000")
    q = (await quote(client, user, "NGN", "EUR", sourceAmount="10000"))["quote"]
    assert (await convert(client, user, q["id"]))["userErrors"] == []
    for valuation, places in (("USD", "0.01"), ("NGN", "0.01")):
        p = (await client.data(PORTFOLIO, {"c": valuation}, token=user.access))["me"]["portfolio"]
        holdings = {h["wallet"]["currency"]["code"]: h for h in p["holdings"]}
        assert set(holdings) == {"NGN", "EUR"}
        total = Decimal(0)
        for h in holdings.values():
            balance, rate = Decimal(h["wallet"]["balance"]["amount"]), Decimal(h["rate"])
            value = Decimal(h["value"]["amount"])
            assert value == (balance * rate).quantize(Decimal(places), ROUND_DOWN)
            assert h["value"]["currency"] == valuation
            total += value
        assert Decimal(p["totalValue"]["amount"]) == total
        if valuation == "NGN":
            assert holdings["NGN"]["rate"] == "1"


# ------------------------------------------------------------------------------ storm


async def test_a_storm_of_conversions_and_cross_currency_sends_keeps_the_ledger_true(
    server: Server, client: GraphQLHTTP
) -> None:
    people = [await funded(client, "500000") for _ in range(4)]
    usd_people = [await sign_up(client, homeCurrency="USD") for _ in range(2)]

    async def one(n: int) -> dict[str, Any]:
        who = people[n % len(people)]
        if n % 2:
            q = (await quote(client, who, "NGN", "USD", sourceAmount=str(1000 + n)))["quote"]
            return await convert(client, who, q["id"])
        q = (await quote(client, who, "NGN", "USD", targetAmount=f"{1 + n % 5}.25"))["quote"]
        return await send(
            client,
            who,
            {"email": usd_people[n % 4 // 2].email},
            q["sourceAmount"]["amount"],
            quoteId=q["id"],
        )

    results = await asyncio.gather(*(one(n) for n in range(40)))
    assert all(r["userErrors"] == [] for r in results), results
    received = sum(Decimal(f"{1 + n % 5}.25") for n in range(0, 40, 2))
    usd = [Decimal((await wallets(client, p))["USD"]["balance"]["amount"]) for p in usd_people]
    assert sum(usd) == received
    verify = subprocess.run(  # noqa: ASYNC221 - the load is over; blocking here is fine
        [sys.executable, "-m", "stacklo", "ledger", "verify"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


async def test_a_conversion_is_pushed_to_the_converters_subscriptions(
    server: Server, client: GraphQLHTTP
) -> None:
    user = await funded(client, "20000")
    await settled(server.database_url)
    tx_sub = (
        "subscription { transactionUpdated { transaction { reference kind "
        "convertedAmount { amount currency } } } }"
    )
    wallet_sub = (
        "subscription { walletUpdated { wallet { currency { code } balance { amount } } } }"
    )
    async with (
        live(server.ws_url, user.access, tx_sub) as txs,
        live(server.ws_url, user.access, wallet_sub) as balances,
    ):
        q = (await quote(client, user, "NGN", "GBP", sourceAmount="5000"))["quote"]
        done = await convert(client, user, q["id"])
        event = (await next_event(txs))["transactionUpdated"]["transaction"]
        assert event == {
            "reference": done["transaction"]["reference"],
            "kind": "EXCHANGE",
            "convertedAmount": q["targetAmount"],
        }
        # The GBP wallet is opened (0.00) and credited in the same transaction: both arrive.
        expected = {"NGN": "15000.00", "GBP": q["targetAmount"]["amount"]}
        seen: dict[str, str] = {}
        while seen != expected:
            wallet = (await next_event(balances))["walletUpdated"]["wallet"]
            seen[wallet["currency"]["code"]] = wallet["balance"]["amount"]


async def test_cross_currency_send_failures_leave_everything_unchanged(
    client: GraphQLHTTP,
) -> None:
    alice, bob = await funded(client, "1000"), await sign_up(client, homeCurrency="USD")
    mallory = await funded(client, "50000")
    too_much = (await quote(client, alice, "NGN", "USD", sourceAmount="5000"))["quote"]
    poor = await send(client, alice, {"email": bob.email}, "5000.00", quoteId=too_much["id"])
    assert [e["code"] for e in poor["userErrors"]] == ["INSUFFICIENT_FUNDS"]
    assert (await client.data(NODE, {"id": too_much["id"]}, token=alice.access))["node"][
        "status"
    ] == "ACTIVE"
    theirs = (await quote(client, mallory, "NGN", "USD", sourceAmount="500"))["quote"]
    stolen = await send(client, alice, {"email": bob.email}, "500.00", quoteId=theirs["id"])
    assert [(e["code"], e["field"]) for e in stolen["userErrors"]] == [
        ("NOT_FOUND", ["input", "quoteId"])
    ]
    assert (await wallets(client, alice))["NGN"]["balance"]["amount"] == "1000.00"
    assert (await wallets(client, bob))["USD"]["balance"]["amount"] == "0.00"


async def test_two_conversions_into_a_missing_wallet_at_once_open_it_once(
    client: GraphQLHTTP,
) -> None:
    user = await funded(client, "50000")
    quotes = [
        (await quote(client, user, "NGN", "GBP", sourceAmount=amount))["quote"]
        for amount in ("10000", "12000")
    ]
    results = await asyncio.gather(*(convert(client, user, q["id"]) for q in quotes))
    assert all(r["userErrors"] == [] for r in results), results
    after = await wallets(client, user)
    received = sum(Decimal(q["targetAmount"]["amount"]) for q in quotes)
    assert Decimal(after["GBP"]["balance"]["amount"]) == received
    assert after["NGN"]["balance"]["amount"] == "28000.00"
