"""Clients that retry like a careful customer, and the Jepsen-style bank workload.

``Retrying.submit`` sends one operation until it gets an answer, after any failure (a refused
or dropped connection, a 5xx, a retryable GraphQL error), always with the same variables and so
the same idempotency key: Stripe's promise is that such a retry answers with the first result.

``Bank`` is the Jepsen bank test: customers funded with a known total in one currency, tellers
moving money between them at random, readers checking every balance they see is never
negative, and an auditor reading the customers' total in one database snapshot (``stacklo
ledger verify --json``), which must always equal what was funded.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
from sqlalchemy.exc import SQLAlchemyError

from stacklo.data.db import create_engine
from stacklo.data.ledger_check import verify
from tests.helpers import SEND, SignedUp, deposit, sign_up

# Errors a client may retry with the same key: the server did not (or may not have) finished.
RETRYABLE_CODES = {"SERVICE_UNAVAILABLE", "INTERNAL_SERVER_ERROR"}
OPEN_WALLET = """mutation($i: OpenWalletInput!) { openWallet(input: $i) {
  wallet { id currency { code } } userErrors { code message } } }"""
BALANCES = "{ me { wallets { id currency { code } balance { amount } heldBalance { amount } } } }"


@dataclass
class Retrying:
    """An HTTP client that retries any failure of one operation with the same variables."""

    base_url: str
    timeout: float = 10
    patience: float = 180  # give up on one operation after this long without an answer
    failures: Counter[str] = field(default_factory=Counter)
    requests: int = 0

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def submit(
        self, document: str, variables: dict[str, Any] | None, token: str | None
    ) -> dict[str, Any]:
        """The operation's ``data``, once an attempt gets one that is not a retryable error."""
        headers = {"authorization": f"Bearer {token}"} if token else {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.patience
        pause = 0.05
        while True:
            self.requests += 1
            try:
                response = await self.http.post(
                    "/graphql", json={"query": document, "variables": variables}, headers=headers
                )
            except httpx.TransportError as e:
                self.failures[type(e).__name__] += 1
            else:
                if response.status_code >= 500:
                    self.failures[f"HTTP {response.status_code}"] += 1
                else:
                    body = response.json()
                    codes = {
                        (e.get("extensions") or {}).get("code") for e in body.get("errors") or []
                    }
                    if not codes & RETRYABLE_CODES and body.get("data") is not None:
                        assert not codes, body  # a non-retryable error is a bug in the test
                        data: dict[str, Any] = body["data"]
                        return data
                    if not codes:
                        raise AssertionError(f"no data and no error: {body}")
                    for code in codes:
                        self.failures[str(code)] += 1
            if loop.time() > deadline:
                raise AssertionError(f"no answer within {self.patience} s: {dict(self.failures)}")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)


@dataclass(frozen=True)
class Acknowledged:
    """What a client was told: the key it sent, and the transaction (or refusal) it got."""

    kind: str
    user: SignedUp
    key: str
    variables: dict[str, Any]
    document: str
    transaction_id: str | None
    error: str | None
    amount: Decimal
    source: str | None = None  # user ids whose available balance it moved
    target: str | None = None


@dataclass
class Bank:
    """Customers holding ``each`` in ``currency``; the total never changes while they only
    transfer among themselves."""

    currency: str
    customers: list[SignedUp]
    wallets: dict[str, str]  # user id -> wallet id in ``currency``
    each: Decimal
    acknowledged: list[Acknowledged] = field(default_factory=list)
    audits: list[Decimal] = field(default_factory=list)
    reads: int = 0
    negative_reads: int = 0

    @property
    def funded(self) -> Decimal:
        return self.each * len(self.customers)

    @classmethod
    async def open(
        cls, http: Any, accounts: int, each: str = "1000.00", currency: str = "EUR"
    ) -> Bank:
        """Sign ``accounts`` customers up and fund each with ``each`` through the provider."""
        customers: list[SignedUp] = []
        wallets: dict[str, str] = {}
        for _ in range(accounts):
            user = await sign_up(http)
            wallet = next(
                (w["id"] for w in user.user["wallets"] if w["currency"]["code"] == currency), None
            )
            if wallet is None:
                opened = (await http.data(OPEN_WALLET, {"i": {"currency": currency}}, user.access))[
                    "openWallet"
                ]
                assert opened["userErrors"] == [], opened
                wallet = opened["wallet"]["id"]
            await deposit(http, user, each, wallet_id=wallet)
            customers.append(user)
            wallets[user.id] = wallet
        return cls(currency, customers, wallets, Decimal(each))

    async def teller(self, client: Retrying, rng: random.Random, stop: asyncio.Event) -> None:
        """Transfers between random customers until ``stop``, each retried to an answer."""
        while not stop.is_set():
            source, target = rng.sample(self.customers, 2)
            amount = Decimal(rng.randint(1, 5000)).scaleb(-2)
            variables = {
                "i": {
                    "fromWalletId": self.wallets[source.id],
                    "to": {"walletId": self.wallets[target.id]},
                    "amount": str(amount),
                    "idempotencyKey": uuid.uuid4().hex,
                }
            }
            sent = (await client.submit(SEND, variables, source.access))["sendMoney"]
            error = sent["userErrors"][0]["code"] if sent["userErrors"] else None
            assert error in (None, "INSUFFICIENT_FUNDS"), sent
            self.acknowledged.append(
                Acknowledged(
                    "transfer",
                    source,
                    variables["i"]["idempotencyKey"],
                    variables,
                    SEND,
                    sent["transaction"]["id"] if sent["transaction"] else None,
                    error,
                    amount,
                    source.id,
                    target.id,
                )
            )

    async def reader(self, client: Retrying, rng: random.Random, stop: asyncio.Event) -> None:
        """Reads a random customer's balances through the API: never negative, never less
        than what is held."""
        while not stop.is_set():
            user = rng.choice(self.customers)
            found = (await client.submit(BALANCES, None, user.access))["me"]["wallets"]
            for wallet in found:
                self.reads += 1
                balance = Decimal(wallet["balance"]["amount"])
                held = Decimal(wallet["heldBalance"]["amount"])
                if balance < 0 or held < 0 or held > balance:
                    self.negative_reads += 1
            await asyncio.sleep(0.02)

    async def auditor(
        self, audit: Callable[[], Awaitable[dict[str, Any] | None]], stop: asyncio.Event
    ) -> None:
        """The customers' total in one snapshot, as often as the verifier can run; ``audit``
        gives None when it cannot read (the database is down), which is not a wrong total."""
        while not stop.is_set():
            report = await audit()
            if report is not None:
                assert report["ok"], report["violations"]
                self.audits.append(Decimal(report["customerBalances"].get(self.currency, "0")))
            await asyncio.sleep(0.2)

    def expected_balances(self) -> dict[str, Decimal]:
        """Each customer's balance from what the clients were told."""
        expected = {user.id: self.each for user in self.customers}
        for ack in self.acknowledged:
            if ack.transaction_id is not None and ack.source and ack.target:
                expected[ack.source] -= ack.amount
                expected[ack.target] += ack.amount
        return expected

    async def balances(self, client: Retrying) -> dict[str, Decimal]:
        found: dict[str, Decimal] = {}
        for user in self.customers:
            wallets = (await client.submit(BALANCES, None, user.access))["me"]["wallets"]
            wallet = next(w for w in wallets if w["id"] == self.wallets[user.id])
            found[user.id] = Decimal(wallet["balance"]["amount"])
        return found


async def replay_all(client: Retrying, acknowledged: list[Acknowledged]) -> list[str]:
    """Send every operation that moved money again with its key; what answered differently.

    Refusals are not sent again: a refused request leaves its key free, so a retry of one
    may succeed now, which is the documented behaviour, not a second movement."""
    differing: list[str] = []
    for ack in acknowledged:
        if ack.transaction_id is None:
            continue
        data = await client.submit(ack.document, ack.variables, ack.user.access)
        payload = next(iter(data.values()))
        transaction = payload.get("transaction")
        again = transaction["id"] if transaction else None
        if again != ack.transaction_id:
            differing.append(f"{ack.kind} {ack.key}: {ack.transaction_id} then {again}")
    return differing


class LedgerAudit:
    """``stacklo ledger verify``'s checks and totals, in one snapshot, from this process (a
    process per audit would read a few times a minute, not several times a second)."""

    def __init__(self, database_url: str):
        self._engine = create_engine(database_url, pool_size=1, max_overflow=0)

    async def __call__(self) -> dict[str, Any] | None:
        try:
            report = await verify(self._engine)
        except (OSError, SQLAlchemyError, asyncpg.PostgresError):
            return None  # the database is away: no reading, which is not a wrong total
        return {
            "ok": report.ok,
            "violations": report.violations,
            "customerBalances": {c: str(v) for c, v in report.customer_balances.items()},
        }

    async def aclose(self) -> None:
        await self._engine.dispose()
