"""sendMoney over real HTTP: the happy path, every refusal, statements and visibility."""

import asyncio
from decimal import Decimal

import pytest

from tests.helpers import (
    GraphQLHTTP,
    SignedUp,
    admin_token,
    deposit,
    key,
    send,
    sign_up,
    wallets,
)


@pytest.fixture
async def funded(client: GraphQLHTTP) -> tuple[SignedUp, SignedUp]:
    alice, bob = (
        await sign_up(client),
        await sign_up(
            client, phoneNumber=f"+23480{key()[:8].translate(str.maketrans('abcdef', '123456'))}"
        ),
    )
    await deposit(client, alice, "1000.00")
    return alice, bob


async def test_send_by_email_phone_and_wallet(
    client: GraphQLHTTP, funded: tuple[SignedUp, SignedUp]
) -> None:
    alice, bob = funded
    bob_phone = (await client.data("{ me { phoneNumber } }", token=bob.access))["me"]["phoneNumber"]
    by_email = await send(client, alice, {"email": bob.email.upper()}, "100.25", note="rent")
    assert by_email["userErrors"] == []
    tx = by_email["transaction"]
    assert tx["status"] == "COMPLETED" and tx["kind"] == "TRANSFER" and tx["description"] == "rent"
    assert tx["amount"] == {"amount": "100.25", "currency": "NGN"}
    assert [s["status"] for s in tx["statusHistory"]] == ["CREATED", "COMPLETED"]
    assert tx["entries"] == [
        {"direction": "DEBIT", "amount": {"amount": "100.25"}, "balanceAfter": {"amount": "899.75"}}
    ]
    assert tx["counterparty"]["displayName"] == "Test P." and tx["counterparty"][
        "email"
    ].startswith(bob.email[0] + "***@")
    assert (await send(client, alice, {"phoneNumber": bob_phone}, "0.75"))["userErrors"] == []
    assert (await send(client, alice, {"walletId": bob.user["wallets"][0]["id"]}, "99"))[
        "userErrors"
    ] == []
    assert (await wallets(client, alice))["NGN"]["balance"]["amount"] == "800.00"
    assert (await wallets(client, bob))["NGN"]["balance"]["amount"] == "200.00"


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        ("0", "INVALID_INPUT"),
        ("-5", "INVALID_INPUT"),
        ("1.001", "INVALID_INPUT"),
        ("1000.01", "INSUFFICIENT_FUNDS"),
        ("1000000000000000", "INVALID_INPUT"),
    ],
)
async def test_bad_amounts(
    client: GraphQLHTTP, funded: tuple[SignedUp, SignedUp], amount: str, code: str
) -> None:
    alice, bob = funded
    result = await send(client, alice, {"email": bob.email}, amount)
    assert result["transaction"] is None
    assert result["userErrors"][0]["code"] == code and result["userErrors"][0]["field"] == [
        "input",
        "amount",
    ]
    assert (await wallets(client, alice))["NGN"]["balance"]["amount"] == "1000.00"


async def test_decimal_floats_are_refused_before_reaching_the_ledger(
    client: GraphQLHTTP, funded: tuple[SignedUp, SignedUp]
) -> None:
    alice, _ = funded
    body = await client.post(
        'mutation($a: Decimal!, $w: ID!) { sendMoney(input: {fromWalletId: $w, to: {email: "x@y.co"}, amount: $a, idempotencyKey: "k"}) { transaction { id } } }',
        {"a": 0.1, "w": alice.user["wallets"][0]["id"]},
        token=alice.access,
    )
    assert "floats" in body["errors"][0]["message"]


async def test_unknown_recipients_all_look_the_same(
    client: GraphQLHTTP, funded: tuple[SignedUp, SignedUp]
) -> None:
    alice, _ = funded
    answers = []
    for to in (
        {"email": "nobody-here@example.com"},
        {"email": "not an email"},
        {"phoneNumber": "+15550000000"},
        {"phoneNumber": "garbage"},
        {"walletId": "V2FsbGV0OjEyMw=="},
        {"walletId": "!!"},
    ):
        result = await send(client, alice, to, "1")
        answers.append((result["transaction"], result["userErrors"]))
    assert all(
        a
        == (
            None,
            [{"code": "NOT_FOUND", "message": "Recipient not found.", "field": ["input", "to"]}],
        )
        for a in answers
    )


async def test_recipient_needs_exactly_one_field(
    client: GraphQLHTTP, funded: tuple[SignedUp, SignedUp]
) -> None:
    alice, bob = funded
    for to in ({}, {"email": bob.email, "walletId": bob.user["wallets"][0]["id"]}):
        result = await send(client, alice, to, "1")
        assert result["userErrors"][0]["code"] == "INVALID_INPUT" and result["userErrors"][0][
            "field"
        ] == ["input", "to"]


async def test_same_wallet_and_other_currency(
    client: GraphQLHTTP, funded: tuple[SignedUp, SignedUp]
) -> None:
    alice, _ = funded
    assert (await send(client, alice, {"email": alice.email}, "1"))["userErrors"][0][
        "code"
    ] == "INVALID_INPUT"
    dollar = await sign_up(client, homeCurrency="USD")
    # By email, a recipient with no wallet in the currency is as unknown as nobody at all:
    # the answer must not reveal which currencies someone holds.
    result = await send(client, alice, {"email": dollar.email}, "1")
    nobody = await send(client, alice, {"email": "nobody-" + dollar.email}, "1")
    assert result["userErrors"][0]["code"] == nobody["userErrors"][0]["code"] == "NOT_FOUND"
    assert result["userErrors"][0]["message"] == nobody["userErrors"][0]["message"]
    # A wallet id is a handle its owner gave out: its currency is no secret to the sender.
    assert (await send(client, alice, {"walletId": dollar.user["wallets"][0]["id"]}, "1"))[
        "userErrors"
    ][0]["code"] == "QUOTE_REQUIRED"
    unknown_quote = await send(client, alice, {"email": dollar.email}, "1", quoteId="UXVvdGU6MQ==")
    assert unknown_quote["userErrors"][0]["code"] == "NOT_FOUND"


async def test_foreign_wallet_ids_are_not_found_and_change_nothing(
    client: GraphQLHTTP, funded: tuple[SignedUp, SignedUp]
) -> None:
    alice, bob = funded
    await deposit(client, bob, "50")
    alice_wallet = alice.user["wallets"][0]["id"]
    stolen = await send(client, bob, {"email": bob.email}, "10", from_wallet=alice_wallet)
    assert stolen["userErrors"] == [
        {"code": "NOT_FOUND", "message": "Wallet not found.", "field": ["input", "fromWalletId"]}
    ]
    from tests.helpers import BANK, DEPOSIT, WITHDRAW

    withdrawn = (
        await client.data(
            WITHDRAW,
            {
                "i": {
                    "walletId": alice_wallet,
                    "amount": "10",
                    "bankAccount": BANK,
                    "idempotencyKey": key(),
                }
            },
            token=bob.access,
        )
    )["requestWithdrawal"]
    assert withdrawn["userErrors"][0]["code"] == "NOT_FOUND" and withdrawn["transaction"] is None
    deposited = (
        await client.data(
            DEPOSIT,
            {"i": {"walletId": alice_wallet, "amount": "10", "idempotencyKey": key()}},
            token=bob.access,
        )
    )["startDeposit"]
    assert deposited["userErrors"][0]["code"] == "NOT_FOUND" and deposited["paymentUrl"] is None
    assert (await wallets(client, alice))["NGN"]["balance"]["amount"] == "1000.00"
    assert (await wallets(client, bob))["NGN"]["balance"]["amount"] == "50.00"
    txs = await client.data(
        "{ me { transactions { edges { node { kind } } } } }", token=alice.access
    )
    assert [e["node"]["kind"] for e in txs["me"]["transactions"]["edges"]] == ["DEPOSIT"]


async def test_frozen_wallets_cannot_send_or_withdraw_but_can_receive(
    client: GraphQLHTTP, funded: tuple[SignedUp, SignedUp], admin_credentials: tuple[str, str]
) -> None:
    from tests.helpers import BANK, WITHDRAW

    alice, bob = funded
    staff = await admin_token(client, admin_credentials)
    freeze = "mutation($i: FreezeWalletInput!) { freezeWallet(input: $i) { wallet { status } userErrors { code field } } }"
    wallet_id = alice.user["wallets"][0]["id"]
    missing_reason = await client.data(
        freeze, {"i": {"walletId": wallet_id, "frozen": True, "reason": " "}}, token=staff
    )
    assert missing_reason["freezeWallet"]["userErrors"] == [
        {"code": "INVALID_INPUT", "field": ["input", "reason"]}
    ]
    frozen = await client.data(
        freeze,
        {"i": {"walletId": wallet_id, "frozen": True, "reason": "fraud review"}},
        token=staff,
    )
    assert frozen["freezeWallet"] == {"wallet": {"status": "FROZEN"}, "userErrors": []}

    assert (await send(client, alice, {"email": bob.email}, "1"))["userErrors"][0][
        "code"
    ] == "WALLET_FROZEN"
    withdrawal = await client.data(
        WITHDRAW,
        {"i": {"walletId": wallet_id, "amount": "1", "bankAccount": BANK, "idempotencyKey": key()}},
        token=alice.access,
    )
    assert withdrawal["requestWithdrawal"]["userErrors"][0]["code"] == "WALLET_FROZEN"
    await deposit(client, bob, "5")
    assert (await send(client, bob, {"email": alice.email}, "5"))["userErrors"] == []
    assert (await wallets(client, alice))["NGN"]["balance"]["amount"] == "1005.00"

    customer = await client.post(
        freeze, {"i": {"walletId": wallet_id, "frozen": False, "reason": "x"}}, token=alice.access
    )
    assert customer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await client.data(
        freeze, {"i": {"walletId": wallet_id, "frozen": False, "reason": "cleared"}}, token=staff
    )
    assert (await send(client, alice, {"email": bob.email}, "1"))["userErrors"] == []
    audit = await client.data(
        '{ auditEvents(action: "wallet.frozen", first: 5) { edges { node { metadata actor { email } } } } }',
        token=staff,
    )
    assert any(
        e["node"]["metadata"]["reason"] == "fraud review" for e in audit["auditEvents"]["edges"]
    )


async def test_daily_limit_for_unverified_users(client: GraphQLHTTP) -> None:
    alice = await sign_up(client, homeCurrency="USD")
    bob = await sign_up(client, homeCurrency="USD")
    await deposit(client, alice, "100.00")
    assert (await send(client, alice, {"email": bob.email}, "30"))["userErrors"] == []
    over = await send(client, alice, {"email": bob.email}, "20.01")
    assert (
        over["userErrors"][0]["code"] == "LIMIT_EXCEEDED"
        and "20.00 left today" in over["userErrors"][0]["message"]
    )
    assert (await send(client, alice, {"email": bob.email}, "20"))["userErrors"] == []


async def test_idempotency_retry_reuse_and_twenty_at_once(
    client: GraphQLHTTP, funded: tuple[SignedUp, SignedUp]
) -> None:
    alice, bob = funded
    k = key()
    first = await send(client, alice, {"email": bob.email}, "10", idempotency_key=k)
    again = await send(client, alice, {"email": bob.email}, "10", idempotency_key=k)
    assert again == first
    reused = await send(client, alice, {"email": bob.email}, "11", idempotency_key=k)
    assert (
        reused["userErrors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"
        and reused["transaction"] is None
    )

    k2 = key()
    answers = await asyncio.gather(
        *(send(client, alice, {"email": bob.email}, "7", idempotency_key=k2) for _ in range(20))
    )
    assert all(a == answers[0] for a in answers)
    assert answers[0]["userErrors"] == []
    assert (await wallets(client, alice))["NGN"]["balance"]["amount"] == "983.00"
    txs = await client.data(
        "{ me { transactions(first: 100, filter: {kinds: [TRANSFER]}) { edges { node { reference } } } } }",
        token=alice.access,
    )
    assert len(txs["me"]["transactions"]["edges"]) == 2


async def test_a_failed_attempt_does_not_consume_the_key(
    client: GraphQLHTTP, funded: tuple[SignedUp, SignedUp]
) -> None:
    alice, bob = funded
    k = key()
    assert (await send(client, alice, {"email": bob.email}, "5000", idempotency_key=k))[
        "userErrors"
    ][0]["code"] == "INSUFFICIENT_FUNDS"
    await deposit(client, alice, "4000")
    assert (await send(client, alice, {"email": bob.email}, "5000", idempotency_key=k))[
        "userErrors"
    ] == []


async def test_statements_history_and_visibility(
    client: GraphQLHTTP, funded: tuple[SignedUp, SignedUp], admin_credentials: tuple[str, str]
) -> None:
    alice, bob = funded
    refs = []
    for amount in ("1", "2", "3"):
        refs.append(
            (await send(client, alice, {"email": bob.email}, amount))["transaction"]["reference"]
        )
    statement = await client.data(
        "query($a: String) { me { wallets { entries(first: 2, after: $a) { pageInfo { hasNextPage endCursor } edges { node { id direction amount { amount } balanceAfter { amount } transaction { reference kind } } } } } } }",
        token=alice.access,
    )
    page = statement["me"]["wallets"][0]["entries"]
    assert [e["node"]["balanceAfter"]["amount"] for e in page["edges"]] == ["994.00", "997.00"]
    assert [e["node"]["transaction"]["reference"] for e in page["edges"]] == [refs[2], refs[1]]
    assert page["pageInfo"]["hasNextPage"] is True

    filtered = await client.data(
        "{ me { transactions(filter: {kinds: [DEPOSIT], statuses: [COMPLETED], currency: NGN}) { edges { node { kind status } } } } }",
        token=alice.access,
    )
    assert [e["node"] for e in filtered["me"]["transactions"]["edges"]] == [
        {"kind": "DEPOSIT", "status": "COMPLETED"}
    ]
    none = await client.data(
        "{ me { transactions(filter: {currency: USD}) { edges { cursor } } } }", token=alice.access
    )
    assert none["me"]["transactions"]["edges"] == []

    query = "query($r: String!) { transaction(reference: $r) { reference entries { direction balanceAfter { amount } } counterparty { displayName } } }"
    seen_by_bob = (await client.data(query, {"r": refs[0]}, token=bob.access))["transaction"]
    assert seen_by_bob["entries"] == [{"direction": "CREDIT", "balanceAfter": {"amount": "1.00"}}]
    assert seen_by_bob["counterparty"]["displayName"] == "Test P."
    stranger = await sign_up(client)
    assert (await client.data(query, {"r": refs[0]}, token=stranger.access))["transaction"] is None
    assert (await client.data(query, {"r": "TXN-NOPE0000"}, token=alice.access))[
        "transaction"
    ] is None
    staff = await admin_token(client, admin_credentials)
    assert (
        len((await client.data(query, {"r": refs[0]}, token=staff))["transaction"]["entries"]) == 2
    )

    tx_id = (await send(client, alice, {"email": bob.email}, "1"))["transaction"]["id"]
    node = "query($id: ID!) { node(id: $id) { ... on Transaction { reference } } }"
    assert (await client.data(node, {"id": tx_id}, token=bob.access))["node"] is not None
    assert (await client.data(node, {"id": tx_id}, token=stranger.access))["node"] is None
    entry_id = page["edges"][0]["node"]["id"]
    entry_node = "query($id: ID!) { node(id: $id) { ... on LedgerEntry { amount { amount } } } }"
    assert (await client.data(entry_node, {"id": entry_id}, token=alice.access))["node"] == {
        "amount": {"amount": "3.00"}
    }
    assert (await client.data(entry_node, {"id": entry_id}, token=bob.access))["node"] is None
    assert Decimal((await wallets(client, bob))["NGN"]["balance"]["amount"]) == Decimal("7")
