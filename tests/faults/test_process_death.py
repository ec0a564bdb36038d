"""The API process SIGKILLed at random moments while clients move money every way there is.

Clients retry every failure with the same idempotency key until they get an answer. Afterwards
every movement a client saw acknowledged exists exactly once, a retry of each returns the same
transaction, balances are what the clients were told, no hold is stuck (``held`` equals the
withdrawals in flight: ``ledger verify`` checks it), and the bank total never moved.
"""

from __future__ import annotations

import asyncio
import base64
import random
import signal
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

import asyncpg

from tests.api.test_checkout import CREATE, PAY, verified_merchant
from tests.api.test_fx import CONVERT, QUOTE
from tests.faults.bank import (
    OPEN_WALLET,
    Acknowledged,
    Bank,
    LedgerAudit,
    Retrying,
    replay_all,
)
from tests.faults.conftest import Stack
from tests.faults.report import record
from tests.helpers import (
    BANK,
    PASSWORD,
    WITHDRAW,
    GraphQLHTTP,
    SignedUp,
    admin_token,
    deposit,
    sign_up,
    unique_email,
)

SEED = 15
KILLS = 3
CUSTOMERS = 4
START = Decimal("100000.00")
MOVERS = 5  # clients converting, paying at checkout and withdrawing
TELLERS = 4  # clients of the bank test (EUR transfers)
BETWEEN_KILLS = 40  # acknowledged movements before each kill and after the last restart


def _uuid(global_id: str) -> uuid.UUID:
    return uuid.UUID(base64.b64decode(global_id).decode().split(":", 1)[1])


class Movers:
    """Conversions, checkout payments and withdrawals, each retried to an answer."""

    def __init__(self, customers: list[SignedUp], owner: SignedUp, merchant: str) -> None:
        self.customers = customers
        self.owner = owner
        self.merchant = merchant
        self.ngn = {c.id: c.user["wallets"][0]["id"] for c in customers}
        self.acknowledged: list[Acknowledged] = []
        self.usd_received: dict[str, Decimal] = {c.id: Decimal(0) for c in customers}

    def _ack(
        self,
        kind: str,
        user: SignedUp,
        doc: str,
        variables: dict[str, Any],
        payload: dict[str, Any],
        amount: Decimal,
    ) -> None:
        error = payload["userErrors"][0]["code"] if payload["userErrors"] else None
        # A quote may run out while its conversion waits for the server to come back.
        assert error in (None, "INSUFFICIENT_FUNDS", "QUOTE_EXPIRED"), payload
        tx = payload.get("transaction")
        self.acknowledged.append(
            Acknowledged(
                kind,
                user,
                variables["i"]["idempotencyKey"],
                variables,
                doc,
                tx["id"] if tx else None,
                error,
                amount,
                user.id,
            )
        )

    async def convert(self, client: Retrying, user: SignedUp, rng: random.Random) -> None:
        amount = Decimal(rng.randint(100, 2000))
        quoted = (
            await client.submit(
                QUOTE,
                {
                    "i": {
                        "sourceCurrency": "NGN",
                        "targetCurrency": "USD",
                        "sourceAmount": str(amount),
                    }
                },
                user.access,
            )
        )["createQuote"]
        assert quoted["userErrors"] == [], quoted
        variables = {"i": {"quoteId": quoted["quote"]["id"], "idempotencyKey": uuid.uuid4().hex}}
        done = (await client.submit(CONVERT, variables, user.access))["convert"]
        self._ack("conversion", user, CONVERT, variables, done, amount)
        if done["transaction"]:
            self.usd_received[user.id] += Decimal(quoted["quote"]["targetAmount"]["amount"])

    async def pay(self, client: Retrying, user: SignedUp, rng: random.Random) -> None:
        amount = Decimal(rng.randint(50, 1500))
        made = (
            await client.submit(
                CREATE,
                {"i": {"merchantId": self.merchant, "amount": str(amount)}},
                self.owner.access,
            )
        )["createCheckout"]
        assert made["userErrors"] == [], made
        variables = {
            "i": {
                "checkoutId": made["checkout"]["id"],
                "walletId": self.ngn[user.id],
                "method": "WALLET",
                "idempotencyKey": uuid.uuid4().hex,
            }
        }
        paid = (await client.submit(PAY, variables, user.access))["payCheckout"]
        self._ack("checkout payment", user, PAY, variables, paid, amount)

    async def withdraw(self, client: Retrying, user: SignedUp, rng: random.Random) -> None:
        amount = Decimal(rng.randint(10, 500))
        variables = {
            "i": {
                "walletId": self.ngn[user.id],
                "amount": str(amount),
                "bankAccount": BANK,
                "idempotencyKey": uuid.uuid4().hex,
            }
        }
        asked = (await client.submit(WITHDRAW, variables, user.access))["requestWithdrawal"]
        self._ack("withdrawal", user, WITHDRAW, variables, asked, amount)

    async def run(self, client: Retrying, rng: random.Random, stop: asyncio.Event) -> None:
        moves = [self.convert, self.pay, self.withdraw]
        while not stop.is_set():
            await rng.choice(moves)(client, rng.choice(self.customers), rng)


async def test_sigkill_mid_storm_loses_and_doubles_nothing(stack: Stack) -> None:
    rng = random.Random(SEED)
    api = stack.serve()
    setup = GraphQLHTTP(api.base_url)
    admin_email = unique_email("admin")
    made = stack.cli("create-admin", "--email", admin_email, "--password", PASSWORD)
    assert made.returncode == 0, made.stderr
    admin = await admin_token(setup, (admin_email, PASSWORD))
    owner, merchant = await verified_merchant(setup, admin)
    customers = []
    for _ in range(CUSTOMERS):
        user = await sign_up(setup)
        await deposit(setup, user, str(START))
        opened = (await setup.data(OPEN_WALLET, {"i": {"currency": "USD"}}, user.access))[
            "openWallet"
        ]
        assert opened["userErrors"] == [], opened
        customers.append(user)
    bank = await Bank.open(setup, 4)
    movers = Movers(customers, owner, merchant)

    clients = [Retrying(api.base_url) for _ in range(MOVERS + TELLERS + 2)]
    audit = LedgerAudit(stack.pg.url())
    stop = asyncio.Event()
    work = [movers.run(c, random.Random(rng.random()), stop) for c in clients[:MOVERS]]
    work += [bank.teller(c, random.Random(rng.random()), stop) for c in clients[MOVERS:-2]]
    work += [bank.reader(clients[-2], random.Random(rng.random()), stop), bank.auditor(audit, stop)]
    tasks = [asyncio.create_task(w) for w in work]

    def acks() -> int:
        return len(movers.acknowledged) + len(bank.acknowledged)

    async def work_done(count: int) -> None:
        # Kills are spaced by work, not time: a busy machine gets as many movements in.
        target = acks() + count
        while acks() < target:  # noqa: ASYNC110 (the lists are filled by the clients' tasks)
            await asyncio.sleep(0.05)

    for _ in range(KILLS):
        await work_done(BETWEEN_KILLS)
        await asyncio.sleep(rng.uniform(0, 0.3))  # a random moment in the stream of requests
        api.kill(signal.SIGKILL)
        await asyncio.to_thread(api.start)  # same port: the clients' retries find it again
    await work_done(BETWEEN_KILLS)
    stop.set()
    await asyncio.gather(*tasks)

    checker = clients[-1]
    acknowledged = movers.acknowledged + bank.acknowledged
    kinds = Counter(a.kind for a in acknowledged if a.transaction_id)
    assert all(
        kinds[k] > 0 for k in ("conversion", "checkout payment", "withdrawal", "transfer")
    ), kinds

    # Exactly once: each acknowledged movement is one transaction, and there is no other.
    conn = await asyncpg.connect(stack.pg.dsn())
    try:
        rows = await conn.fetch(
            "SELECT id, kind, status FROM ledger_transactions WHERE kind <> 'DEPOSIT'"
        )
    finally:
        await conn.close()
    in_ledger = {r["id"]: (r["kind"], r["status"]) for r in rows}
    told = [_uuid(a.transaction_id) for a in acknowledged if a.transaction_id]
    assert len(told) == len(set(told)), "two acknowledgements name one transaction"
    assert set(told) <= set(in_ledger), "an acknowledged movement is missing"
    unexplained = set(in_ledger) - set(told)
    assert unexplained == set(), [in_ledger[i] for i in unexplained]

    # Every retry of an acknowledged key answers with the first transaction.
    assert await replay_all(checker, acknowledged) == []

    # Balances are what the clients were told.
    failed = {i for i, (kind, status) in in_ledger.items() if status in ("FAILED", "CANCELLED")}
    for user in customers:
        spent = sum(
            (
                a.amount
                for a in movers.acknowledged
                if a.source == user.id
                and a.transaction_id
                and _uuid(a.transaction_id) not in failed
            ),
            Decimal(0),
        )
        wallets = (
            await checker.submit(
                "{ me { wallets { currency { code } balance { amount } heldBalance { amount } } } }",
                None,
                user.access,
            )
        )["me"]["wallets"]
        found = {w["currency"]["code"]: w for w in wallets}
        available = Decimal(found["NGN"]["balance"]["amount"]) - Decimal(
            found["NGN"]["heldBalance"]["amount"]
        )
        assert available == START - spent, user.id
        assert Decimal(found["USD"]["balance"]["amount"]) == movers.usd_received[user.id]
    assert await bank.balances(checker) == bank.expected_balances()
    assert bank.audits and all(total == bank.funded for total in bank.audits)
    assert bank.negative_reads == 0

    verified = stack.cli("ledger", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    failures = Counter[str]()
    for c in clients:
        failures.update(c.failures)
    assert failures, "the kills were not noticed by any client"
    record(
        "process_death",
        faults=KILLS,
        requests=sum(c.requests for c in clients),
        failed_attempts=sum(failures.values()),
        # Requests the kill cut off after they were sent: their outcome was unknown to the client.
        cut_mid_request=failures["ReadError"] + failures["RemoteProtocolError"],
        failure_kinds=dict(failures),
        acknowledged=len(acknowledged),
        moved=dict(kinds),
        audits=len(bank.audits),
        lost=0,
        duplicated=0,
    )
    await audit.aclose()
    for c in clients:
        await c.aclose()
    await setup.aclose()
