"""Deposits and withdrawals end to end: the sandbox, signed webhooks, Paystack over HTTP."""

import asyncio
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from stacklo.config import Settings
from stacklo.integrations.paystack import sign
from tests.conftest import (
    JWT_SECRET,
    Databases,
    Server,
    own_server,
    server_env,
)
from tests.fakes.paystack_server import FakePaystack
from tests.helpers import (
    BANK,
    DEPOSIT,
    WITHDRAW,
    GraphQLHTTP,
    SignedUp,
    admin_token,
    deposit,
    key,
    send,
    sign_up,
    wallets,
)

SANDBOX_SECRET = Settings(jwt_secret=JWT_SECRET).sandbox_secret
TX = "query($r: String!) { transaction(reference: $r) { status failureReason statusHistory { status reason } entries { amount { amount } } } }"


def charge(
    reference: str, amount_minor: int, currency: str = "NGN", event: str = "charge.success"
) -> bytes:
    return json.dumps(
        {
            "event": event,
            "data": {
                "id": random.randrange(10**9),
                "reference": reference,
                "amount": amount_minor,
                "currency": currency,
            },
        }
    ).encode()


async def webhook(server_url: str, body: bytes, secret: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-paystack-signature"] = sign(secret, body)
    async with httpx.AsyncClient(base_url=server_url) as http:
        return await http.post("/webhooks/paystack", content=body, headers=headers)


async def withdraw(
    client: GraphQLHTTP, user: SignedUp, amount: str, bank: dict[str, str] = BANK
) -> dict[str, object]:
    result = await client.data(
        WITHDRAW,
        {
            "i": {
                "walletId": user.user["wallets"][0]["id"],
                "amount": amount,
                "bankAccount": bank,
                "idempotencyKey": key(),
            }
        },
        token=user.access,
    )
    return result["requestWithdrawal"]  # type: ignore[no-any-return]


async def test_sandbox_deposit_success_and_failure(client: GraphQLHTTP) -> None:
    user = await sign_up(client)
    started = await deposit(client, user, "2500.50")
    assert started["paymentUrl"].startswith(client.base_url + "/sandbox/paystack/checkout/")
    assert (await wallets(client, user))["NGN"]["balance"]["amount"] == "2500.50"
    done = (await client.data(TX, {"r": started["transaction"]["reference"]}, token=user.access))[
        "transaction"
    ]
    assert done["status"] == "COMPLETED"
    assert [s["status"] for s in done["statusHistory"]] == ["CREATED", "PROCESSING", "COMPLETED"]
    assert done["entries"] == [{"amount": {"amount": "2500.50"}}]

    declined = await deposit(client, user, "10", outcome="failure")
    failed = (
        await client.data(TX, {"r": declined["transaction"]["reference"]}, token=user.access)
    )["transaction"]
    assert failed["status"] == "FAILED" and failed["entries"] == []
    assert (await wallets(client, user))["NGN"]["balance"]["amount"] == "2500.50"


async def test_webhook_signatures_replays_and_mismatches(
    server: Server, client: GraphQLHTTP, admin_credentials: tuple[str, str]
) -> None:
    user = await sign_up(client)
    started = (
        await client.data(
            DEPOSIT,
            {
                "i": {
                    "walletId": user.user["wallets"][0]["id"],
                    "amount": "100",
                    "idempotencyKey": key(),
                }
            },
            token=user.access,
        )
    )["startDeposit"]
    reference = started["transaction"]["reference"]
    body = charge(reference, 10000)

    for secret in (None, "wrong-secret"):
        refused = await webhook(server.base_url, body, secret)
        assert refused.status_code == 401
    tampered = body.replace(b"10000", b"99999")
    response = await webhook(server.base_url, tampered, None)
    assert response.status_code == 401
    assert (await wallets(client, user))["NGN"]["balance"]["amount"] == "0.00"

    mismatch = await webhook(server.base_url, charge(reference, 9999), SANDBOX_SECRET)
    assert mismatch.json() == {"status": "review_required"}
    wrong_currency = await webhook(server.base_url, charge(reference, 10000, "USD"), SANDBOX_SECRET)
    assert wrong_currency.json() == {"status": "duplicate"}  # one charge.success per reference
    assert (await wallets(client, user))["NGN"]["balance"]["amount"] == "0.00"
    pending = (await client.data(TX, {"r": reference}, token=user.access))["transaction"]
    assert pending["status"] == "PROCESSING"
    staff = await admin_token(client, admin_credentials)
    events = await client.data(
        '{ auditEvents(action: "deposit.review_required") { edges { node { targetId metadata } } } }',
        token=staff,
    )
    review = next(
        e["node"] for e in events["auditEvents"]["edges"] if e["node"]["targetId"] == reference
    )
    assert review["metadata"]["received"] == {"amount_minor": 9999, "currency": "NGN"}

    # A good deposit, its webhook replayed: credited exactly once.
    other = (
        await client.data(
            DEPOSIT,
            {
                "i": {
                    "walletId": user.user["wallets"][0]["id"],
                    "amount": "40",
                    "idempotencyKey": key(),
                }
            },
            token=user.access,
        )
    )["startDeposit"]
    good = charge(other["transaction"]["reference"], 4000)
    answers = await asyncio.gather(
        *(webhook(server.base_url, good, SANDBOX_SECRET) for _ in range(5))
    )
    assert sorted(a.json()["status"] for a in answers) == ["credited"] + ["duplicate"] * 4
    assert (await wallets(client, user))["NGN"]["balance"]["amount"] == "40.00"

    unknown = await webhook(server.base_url, charge("TXN-UNKNOWN1", 100), SANDBOX_SECRET)
    assert unknown.json() == {"status": "unknown_reference"}
    ignored = await webhook(
        server.base_url, b'{"event": "subscription.create", "data": {}}', SANDBOX_SECRET
    )
    assert ignored.json() == {"status": "ignored"}


async def test_deposits_and_withdrawals_are_fiat_only(client: GraphQLHTTP) -> None:
    user = await sign_up(client, homeCurrency="BTC")
    result = (
        await client.data(
            DEPOSIT,
            {
                "i": {
                    "walletId": user.user["wallets"][0]["id"],
                    "amount": "0.1",
                    "idempotencyKey": key(),
                }
            },
            token=user.access,
        )
    )["startDeposit"]
    assert result["userErrors"][0]["code"] == "INVALID_INPUT" and result["transaction"] is None


async def test_withdrawal_holds_then_posts_or_releases(server: Server, client: GraphQLHTTP) -> None:
    user = await sign_up(client)
    await deposit(client, user, "1000")
    paid = await withdraw(client, user, "300")
    assert paid["userErrors"] == [] and paid["transaction"]["status"] == "PROCESSING"
    held = (await wallets(client, user))["NGN"]
    assert (
        held["balance"]["amount"],
        held["heldBalance"]["amount"],
        held["availableBalance"]["amount"],
    ) == ("1000.00", "300.00", "700.00")
    # Held money cannot be spent twice.
    assert (await withdraw(client, user, "700.01"))["userErrors"][0]["code"] == "INSUFFICIENT_FUNDS"
    assert (await send(client, user, {"email": (await sign_up(client)).email}, "700.01"))[
        "userErrors"
    ][0]["code"] == "INSUFFICIENT_FUNDS"

    async with httpx.AsyncClient(base_url=server.base_url) as http:
        ok = await http.post(
            f"/sandbox/paystack/transfers/{paid['transaction']['reference']}",
            data={"outcome": "success"},
        )
        assert ok.json() == {"status": "paid_out"}
        failed = await withdraw(client, user, "200")
        no = await http.post(
            f"/sandbox/paystack/transfers/{failed['transaction']['reference']}",
            data={"outcome": "failure"},
        )
        assert no.json() == {"status": "released"}
        reversed_ = await withdraw(client, user, "100")
        back = await http.post(
            f"/sandbox/paystack/transfers/{reversed_['transaction']['reference']}",
            data={"outcome": "reversed"},
        )
        assert back.json() == {"status": "released"}
        again = await http.post(
            f"/sandbox/paystack/transfers/{paid['transaction']['reference']}",
            data={"outcome": "failure"},
        )
        assert again.json()["status"] in ("ignored", "duplicate")
    final = (await wallets(client, user))["NGN"]
    assert (final["balance"]["amount"], final["heldBalance"]["amount"]) == ("700.00", "0.00")
    gone = (await client.data(TX, {"r": failed["transaction"]["reference"]}, token=user.access))[
        "transaction"
    ]
    assert gone["status"] == "FAILED" and gone["failureReason"] == "The bank transfer failed."


@pytest.mark.parametrize(
    ("bank", "field"),
    [
        ({**BANK, "bankCode": "abc"}, "bankCode"),
        ({**BANK, "accountNumber": "12"}, "accountNumber"),
        ({**BANK, "accountName": "\u0000"}, "accountName"),
    ],
)
async def test_bad_bank_accounts(client: GraphQLHTTP, bank: dict[str, str], field: str) -> None:
    user = await sign_up(client)
    await deposit(client, user, "10")
    result = await withdraw(client, user, "1", bank)
    assert result["userErrors"][0]["field"] == ["input", "bankAccount", field]


# ----------------------------------------------------------------- real Paystack adapter

PAYSTACK_SECRET = "sk_test_" + "p" * 40


@pytest.fixture(scope="module")
def paystack() -> Iterator[FakePaystack]:
    with FakePaystack(PAYSTACK_SECRET, slow_seconds=3.0) as fake:
        yield fake


@pytest.fixture(scope="module")
def paystack_server(
    databases: Databases, paystack: FakePaystack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with own_server(
        databases,
        tmp_path_factory,
        "paystack",
        PAYSTACK_SECRET_KEY=PAYSTACK_SECRET,
        STACKLO_PAYSTACK_BASE_URL=paystack.base_url,
        # The reconciler's lookups would count against the breaker these tests step through:
        # it runs once at start (nothing to look up yet), tests/faults covers it.
        STACKLO_SCHEDULER_INTERVAL_SECONDS="3600",
    ) as running:
        yield running


async def test_paystack_deposit_is_credited_by_a_paystack_signed_webhook(
    paystack_server: Server, paystack: FakePaystack
) -> None:
    paystack.reset()
    client = GraphQLHTTP(paystack_server.base_url)
    user = await sign_up(client)
    started = (
        await client.data(
            DEPOSIT,
            {
                "i": {
                    "walletId": user.user["wallets"][0]["id"],
                    "amount": "150.75",
                    "idempotencyKey": key(),
                }
            },
            token=user.access,
        )
    )["startDeposit"]
    assert started["userErrors"] == [] and started["paymentUrl"].startswith(paystack.base_url)
    sent = next(r for r in paystack.requests if r.path == "/transaction/initialize")
    assert (
        sent.json["amount"] == 15075
        and sent.json["reference"] == started["transaction"]["reference"]
    )
    assert sent.authorization == f"Bearer {PAYSTACK_SECRET}"
    credited = await webhook(
        paystack_server.base_url,
        charge(started["transaction"]["reference"], 15075),
        PAYSTACK_SECRET,
    )
    assert credited.json() == {"status": "credited"}
    # The sandbox's key means nothing to a Paystack-configured server.
    assert (
        await webhook(paystack_server.base_url, charge("TXN-X", 1), SANDBOX_SECRET)
    ).status_code == 401
    assert (await wallets(client, user))["NGN"]["balance"]["amount"] == "150.75"
    await client.aclose()


async def test_provider_down_loses_nothing_and_leaves_nothing_stuck(
    paystack_server: Server, paystack: FakePaystack
) -> None:
    paystack.reset()
    client = GraphQLHTTP(paystack_server.base_url)
    user = await sign_up(client)
    started = (
        await client.data(
            DEPOSIT,
            {
                "i": {
                    "walletId": user.user["wallets"][0]["id"],
                    "amount": "500",
                    "idempotencyKey": key(),
                }
            },
            token=user.access,
        )
    )["startDeposit"]
    await webhook(
        paystack_server.base_url,
        charge(started["transaction"]["reference"], 50000),
        PAYSTACK_SECRET,
    )

    paystack.mode = "error500"
    down = (
        await client.data(
            DEPOSIT,
            {
                "i": {
                    "walletId": user.user["wallets"][0]["id"],
                    "amount": "1",
                    "idempotencyKey": key(),
                }
            },
            token=user.access,
        )
    )["startDeposit"]
    assert down["transaction"] is None and down["userErrors"][0]["code"] == "PROVIDER_UNAVAILABLE"

    result = await withdraw(client, user, "200")
    assert result["userErrors"][0]["code"] == "PROVIDER_UNAVAILABLE"
    assert result["transaction"]["status"] == "FAILED"
    after = (await wallets(client, user))["NGN"]
    assert (after["balance"]["amount"], after["heldBalance"]["amount"]) == ("500.00", "0.00")
    txs = await client.data(
        "{ me { transactions { edges { node { kind status } } } } }", token=user.access
    )
    assert [e["node"] for e in txs["me"]["transactions"]["edges"]] == [
        {"kind": "WITHDRAWAL", "status": "FAILED"},
        {"kind": "DEPOSIT", "status": "COMPLETED"},
    ]

    paystack.mode = "ok"  # two failures are below the breaker's threshold: calls flow again
    recovered = await withdraw(client, user, "200")
    assert recovered["userErrors"] == [] and recovered["transaction"]["status"] == "PROCESSING"
    assert paystack.count("POST", "/transfer") >= 1
    await client.aclose()


def test_ledger_verify_passes_after_all_of_the_above(
    server: Server, paystack_server: Server
) -> None:
    for s in (server, paystack_server):
        result = subprocess.run(
            [sys.executable, "-m", "stacklo", "ledger", "verify"],
            env=s.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "ledger verify: OK" in result.stdout


def test_ledger_verify_names_violations(databases: Databases, tmp_path: Path) -> None:
    url = databases.create("corrupt")
    env = server_env(url, tmp_path)

    async def corrupt() -> None:
        import asyncpg
        from sqlalchemy import make_url

        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "INSERT INTO wallets (id, kind, currency, balance) VALUES (gen_random_uuid(), 'FEES', 'NGN', 5)"
            )
        finally:
            await conn.close()

    asyncio.run(corrupt())
    result = subprocess.run(
        [sys.executable, "-m", "stacklo", "ledger", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "each account's balance equals the sum of its entries" in result.stdout
    assert Decimal("5") == Decimal(result.stdout.split("'balance': Decimal('")[1].split("'")[0])


async def test_deposit_and_withdrawal_retries_return_the_first_result(client: GraphQLHTTP) -> None:
    user = await sign_up(client)
    wallet = user.user["wallets"][0]["id"]
    k = key()
    first = await client.data(
        DEPOSIT,
        {"i": {"walletId": wallet, "amount": "300", "idempotencyKey": k}},
        token=user.access,
    )
    again = await asyncio.gather(
        *(
            client.data(
                DEPOSIT,
                {"i": {"walletId": wallet, "amount": "300", "idempotencyKey": k}},
                token=user.access,
            )
            for _ in range(5)
        )
    )
    assert all(a == first for a in again)
    other = await client.data(
        DEPOSIT,
        {"i": {"walletId": wallet, "amount": "301", "idempotencyKey": k}},
        token=user.access,
    )
    assert other["startDeposit"]["userErrors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"
    paid = await client.http.post(first["startDeposit"]["paymentUrl"], data={"outcome": "success"})
    assert paid.json() == {"status": "credited"}

    wk = key()
    request = {
        "i": {"walletId": wallet, "amount": "120", "bankAccount": BANK, "idempotencyKey": wk}
    }
    answers = await asyncio.gather(
        *(client.data(WITHDRAW, request, token=user.access) for _ in range(10))
    )
    references = {a["requestWithdrawal"]["transaction"]["reference"] for a in answers}
    assert len(references) == 1
    state = (await wallets(client, user))["NGN"]
    assert (state["balance"]["amount"], state["heldBalance"]["amount"]) == ("300.00", "120.00")
