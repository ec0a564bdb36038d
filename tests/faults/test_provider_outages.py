"""Provider outages: a real ``stacklo serve`` over its own PostgreSQL against the fake Paystack
while it times out, answers 500, answers slowly, drops connections and goes away, and then
sends every webhook shuffled and two or three times.

First the breaker, step by step: it opens after the configured run of failures (calls are then
refused without reaching Paystack, ``stacklo_provider_circuit_open`` is 1) and closes on the
first call after its open time once Paystack answers again. Then a seeded storm of deposits
and withdrawals, each with an idempotency key and retried with the same key when it fails,
while the fake cycles through its modes. Afterwards: each deposit Paystack took money for is
credited exactly once (a late ``charge.success`` after a ``charge.failed`` included), each
withdrawal moved exactly what Paystack says it paid out (failed or reversed transfers give the
hold back once), a payout whose answer was lost stays PROCESSING with its hold until
Paystack's word (webhook, a lookup when the client retries, or the worker's reconciler when
nobody does; it also credits paid deposits whose webhook was lost), no hold is left, and
``stacklo ledger verify`` passes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from tests.fakes.paystack_server import Delivery, FakePaystack, Mode
from tests.faults.conftest import Proc, Stack
from tests.faults.report import record
from tests.helpers import BANK, DEPOSIT, WITHDRAW, GraphQLHTTP, SignedUp, key, sign_up

SECRET = "sk_test_" + "o" * 40
FAILURES = 3  # the breaker's threshold in this scenario
OPEN_SECONDS = 2.0
READ_TIMEOUT = 0.6
CONNECT_TIMEOUT = 0.3
GRACE = 3 * (CONNECT_TIMEOUT + READ_TIMEOUT)  # PaystackProvider.unknown_outcome_grace
USERS = 5
ROUNDS = 7
# What the fake does in each storm round, and to which path (None: every call).
CHAOS: list[tuple[Mode | str, str | None]] = [
    ("timeout", "/transfer"),  # the transfer is made, its answer lost
    ("drop", "/transfer"),
    ("slow", None),  # within the client's timeout
    ("error500", None),
    ("down", None),  # connection refused
    ("timeout", "/transaction/initialize"),
    ("drop", None),
]


@dataclass
class Ledger:
    """What the test asked for and was answered."""

    deposits: dict[str, str] = field(default_factory=dict)  # reference -> user id
    withdrawals: dict[str, tuple[str, Decimal]] = field(default_factory=dict)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # reference -> input
    requests: int = 0
    retries: int = 0
    unavailable: int = 0
    transport_errors: int = 0
    replays_same: int = 0


async def metric(base_url: str, name: str) -> float:
    async with httpx.AsyncClient(base_url=base_url) as http:
        text = (await http.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(name) and 'provider="paystack"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def mutate(
    client: GraphQLHTTP,
    user: SignedUp,
    query: str,
    field_name: str,
    i: dict[str, Any],
    book: Ledger,
) -> dict[str, Any] | None:
    """One attempt; None when the answer never came back."""
    book.requests += 1
    try:
        body = await client.post(query, {"i": i}, token=user.access)
    except httpx.HTTPError:
        book.transport_errors += 1
        return None
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"][field_name]
    return result


async def start_deposit(
    client: GraphQLHTTP, user: SignedUp, amount: str, book: Ledger, *, tries: int = 1
) -> dict[str, Any] | None:
    """startDeposit, retried with the same key while the provider is unavailable."""
    i = {"walletId": user.user["wallets"][0]["id"], "amount": amount, "idempotencyKey": key()}
    for attempt in range(tries):
        if attempt:
            book.retries += 1
        result = await mutate(client, user, DEPOSIT, "startDeposit", i, book)
        if result is None:
            continue
        if result["userErrors"]:
            assert result["userErrors"][0]["code"] == "PROVIDER_UNAVAILABLE", result
            assert result["transaction"] is None  # nothing written, the key stays free
            book.unavailable += 1
            continue
        book.deposits[result["transaction"]["reference"]] = user.id
        return result
    return None


async def withdraw(
    client: GraphQLHTTP, user: SignedUp, amount: Decimal, book: Ledger, *, k: str | None = None
) -> dict[str, Any] | None:
    """requestWithdrawal, and once more with the same key: the same transaction comes back."""
    i = {
        "walletId": user.user["wallets"][0]["id"],
        "amount": str(amount),
        "bankAccount": BANK,
        "idempotencyKey": k or key(),
    }
    first = await mutate(client, user, WITHDRAW, "requestWithdrawal", i, book)
    book.retries += 1
    again = await mutate(client, user, WITHDRAW, "requestWithdrawal", i, book)
    result = again or first
    if result is None:
        return None
    tx = result["transaction"]
    if first is not None and again is not None:
        assert again["transaction"]["id"] == first["transaction"]["id"]
        book.replays_same += 1
    if result["userErrors"]:
        assert result["userErrors"][0]["code"] == "PROVIDER_UNAVAILABLE", result
        assert tx["status"] == "FAILED"
        book.unavailable += 1
    book.withdrawals[tx["reference"]] = (user.id, amount)
    book.inputs[tx["reference"]] = i
    return result


def set_mode(fake: FakePaystack, mode: Mode | str, path: str | None) -> None:
    if mode == "down":
        fake.go_down()
        return
    fake.mode_path = path
    fake.mode = mode  # type: ignore[assignment]


def serve(stack: Stack, fake: FakePaystack) -> Proc:
    return stack.serve(
        STACKLO_PAYSTACK_SECRET_KEY=SECRET,
        STACKLO_PAYSTACK_BASE_URL=fake.base_url,
        STACKLO_PAYSTACK_CONNECT_TIMEOUT_SECONDS=str(CONNECT_TIMEOUT),
        STACKLO_PAYSTACK_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT),
        STACKLO_PAYSTACK_BREAKER_FAILURES=str(FAILURES),
        STACKLO_PAYSTACK_BREAKER_OPEN_SECONDS=str(OPEN_SECONDS),
        # Its reconciler settles what nobody asks about again and no webhook tells.
        STACKLO_SCHEDULER_INTERVAL_SECONDS="1",
        STACKLO_DEPOSIT_LOOKUP_AFTER_SECONDS="3",
    )


async def breaker_opens_and_closes(
    api: Proc, fake: FakePaystack, client: GraphQLHTTP, user: SignedUp, book: Ledger
) -> dict[str, float]:
    """FAILURES failed calls open it; refused without a request while open; after
    OPEN_SECONDS the first call goes through and, answered, closes it."""
    fake.mode = "error500"
    for _ in range(FAILURES):
        assert await start_deposit(client, user, "1", book) is None
    assert await metric(api.base_url, "stacklo_provider_circuit_open") == 1
    opened_at = time.monotonic()
    seen = fake.count()
    fake.mode = "ok"  # Paystack is back, but the circuit does not know yet
    refused = await withdraw(client, user, Decimal(5), book)
    assert refused is not None and refused["userErrors"][0]["code"] == "PROVIDER_UNAVAILABLE"
    assert await start_deposit(client, user, "1", book) is None
    assert fake.count() == seen, "an open circuit sends nothing"
    await asyncio.sleep(max(0.0, OPEN_SECONDS + 0.2 - (time.monotonic() - opened_at)))
    assert await start_deposit(client, user, "1", book) is not None
    assert fake.count() == seen + 1
    assert await metric(api.base_url, "stacklo_provider_circuit_open") == 0
    return {
        state: await metric(
            api.base_url,
            f'stacklo_provider_circuit_changes_total{{provider="paystack",state="{state}"',
        )
        for state in ("opened", "half-opened", "closed")
    }


async def test_provider_outages_lose_nothing_and_credit_nothing_twice(stack: Stack) -> None:
    rng = random.Random(20240611)
    fake = FakePaystack(SECRET, slow_seconds=0.3, hang_seconds=2 * READ_TIMEOUT)
    fake.start()
    book = Ledger()
    try:
        api = serve(stack, fake)
        client = GraphQLHTTP(api.base_url)
        users = [await sign_up(client) for _ in range(USERS)]

        # Funding: one paid deposit each, credited by a (duplicated) webhook.
        for user in users:
            assert await start_deposit(client, user, "10000", book) is not None
        funded = set(book.deposits)
        for reference in funded:
            fake.mark_paid(reference)
        fake.deliver(
            api.base_url, [fake.event("charge.success", r) for r in book.deposits], rng=rng
        )

        changes = await breaker_opens_and_closes(api, fake, client, users[0], book)
        assert changes["opened"] >= 1 and changes["closed"] >= 1

        # One payout whose transfer POST fails with a 500: Paystack may or may not have made
        # it, so the hold stays; here it did not, which a retry after the grace finds out.
        fake.fail_next(1, path="/transfer")
        unknown = await withdraw(client, users[1], Decimal(7), book)
        assert unknown is not None and unknown["userErrors"] == []
        assert unknown["transaction"]["status"] == "PROCESSING"
        never_made = unknown["transaction"]["reference"]
        assert never_made not in fake.transfers()
        # Another like it, which its client never asks about again.
        fake.fail_next(1, path="/transfer")
        abandoned = await withdraw(client, users[2], Decimal(3), book)
        assert abandoned is not None and abandoned["transaction"]["status"] == "PROCESSING"

        # The storm.
        for round_no in range(ROUNDS):
            mode, path = CHAOS[round_no % len(CHAOS)]
            set_mode(fake, mode, path)
            ops = []
            for user in users:
                ops.append(start_deposit(client, user, str(rng.randint(1, 500)), book, tries=2))
                ops.append(withdraw(client, user, Decimal(rng.randint(1, 60)), book))
            await asyncio.gather(*ops)
            if mode == "down":
                fake.come_back()
            fake.mode, fake.mode_path = "ok", None
            if round_no % 2:
                await asyncio.sleep(OPEN_SECONDS / 2)  # the circuit recovers now and then
        faults = ROUNDS + FAILURES + 2  # storm rounds, the breaker's failures, the lost 500s

        # Paystack's side: payers pay most deposits (some after a failed attempt), the bank
        # settles every transfer; then every webhook arrives shuffled, 2-3 times each.
        transfers = fake.transfers()
        registered = fake.transactions()
        paid, failed_first = [], []
        for reference in book.deposits:
            if registered.get(reference) != "abandoned":
                continue  # the funding deposits, paid already
            roll = rng.random()
            if roll < 0.6:
                paid.append(reference)
            elif roll < 0.8:
                failed_first.append(reference)
        ends: dict[str, str] = {}
        transfer_events: list[bytes] = []
        late: list[str] = []
        for reference in transfers:
            end = rng.choice(["success", "success", "failed", "reversed"])
            ends[reference] = end
            fake.settle_transfer(reference, end)
            if end == "reversed":
                transfer_events += [
                    fake.event("transfer.success", reference),
                    fake.event("transfer.reversed", reference),
                ]
            elif reference in book.withdrawals and rng.random() < 0.2:
                late.append(reference)  # no webhook yet: the client's retry looks it up
            else:
                transfer_events.append(fake.event(f"transfer.{end}", reference))
        for reference in failed_first:
            fake.mark_paid(reference, "failed")
        for reference in paid:
            fake.mark_paid(reference)
        unheard = paid[::3]  # paid, and their webhooks are lost: the reconciler finds them
        deliveries: list[Delivery] = fake.deliver(
            api.base_url,
            [fake.event("charge.failed", r) for r in failed_first]
            + [fake.event("charge.success", r) for r in paid if r not in unheard],
            rng=rng,
        )
        for reference in failed_first:  # the payer tried again on the same checkout
            fake.mark_paid(reference, "success")
        deliveries += fake.deliver(
            api.base_url,
            [fake.event("charge.success", r) for r in failed_first] + transfer_events,
            rng=rng,
        )
        assert all(d.status_code == 200 for d in deliveries), deliveries

        # The client retries some of its pending withdrawals with the same key once the grace
        # is over; the others it never asks about again, and no webhook comes: the worker's
        # reconciler looks them up.
        retried = late[1::2]
        forgotten = [abandoned["transaction"]["reference"], *late[::2]]
        await asyncio.sleep(GRACE + 0.2)
        for reference in [never_made, *retried]:
            user_id, _ = book.withdrawals[reference]
            user = next(u for u in users if u.id == user_id)
            again = await mutate(
                client, user, WITHDRAW, "requestWithdrawal", book.inputs[reference], book
            )
            assert again is not None and again["transaction"]["reference"] == reference
            expected = "COMPLETED" if ends.get(reference) == "success" else "FAILED"
            assert again["transaction"]["status"] == expected, (reference, again)
        await settled_by_worker(stack.pg.dsn(), forgotten + unheard, within=60)
        async with httpx.AsyncClient(base_url=api.base_url) as http:
            lines = (await http.get("/metrics")).text.splitlines()
        reconciled = {
            kind: float(line.rsplit(" ", 1)[1])
            for line in lines
            for kind in ("deposit", "withdrawal")
            if line.startswith(f'stacklo_reconciled_total{{kind="{kind}"}}')
        }
        assert reconciled["deposit"] >= len(unheard), reconciled
        assert reconciled["withdrawal"] >= len(forgotten), reconciled
        # ...and a late webhook for one of them changes nothing.
        late_hooks = fake.deliver(
            api.base_url,
            [fake.event(f"transfer.{ends[r]}", r) for r in late],
            rng=rng,
        )
        assert all(d.outcome in ("ignored", "duplicate") for d in late_hooks), late_hooks

        db = await asyncpg.connect(stack.pg.dsn())
        try:
            figures = await check_the_books(db, book, funded | set(paid) | set(failed_first), ends)
        finally:
            await db.close()
        verify = stack.cli("ledger", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        outcomes = Counter(d.outcome for d in deliveries)
        record(
            "provider_outages",
            faults=faults,
            requests=book.requests,
            retries=book.retries,
            unavailable=book.unavailable,
            transport_errors=book.transport_errors,
            replays_same_transaction=book.replays_same,
            circuit_opened=changes["opened"],
            webhooks=len(deliveries) + len(late_hooks),
            webhook_outcomes=dict(outcomes),
            late_lookups=1 + len(retried),
            settled_by_reconciler=len(forgotten) + len(unheard),
            **figures,
            credited_twice=0,
            lost=0,
        )
        await client.aclose()
    finally:
        fake.stop()


async def settled_by_worker(dsn: str, references: list[str], within: float) -> None:
    """Every one of ``references`` out of PROCESSING, with nobody asking and no webhook."""
    deadline = time.monotonic() + within
    db = await asyncpg.connect(dsn)
    try:
        while True:
            waiting = await db.fetchval(
                "SELECT count(*) FROM ledger_transactions "
                "WHERE reference = ANY($1::text[]) AND status = 'PROCESSING'",
                references,
            )
            if not waiting:
                return
            assert time.monotonic() < deadline, f"{waiting} of {references} still in flight"
            await asyncio.sleep(0.2)
    finally:
        await db.close()


async def check_the_books(
    db: asyncpg.Connection, book: Ledger, paid: set[str], ends: dict[str, str]
) -> dict[str, int]:
    rows = await db.fetch(
        """SELECT t.reference, t.kind, t.status, t.amount, t.metadata->>'provider_reference' AS linked,
                  w.user_id::text AS owner, count(e.id) AS entries
           FROM ledger_transactions t
           JOIN wallets w ON w.id = coalesce(t.target_wallet_id, t.source_wallet_id)
           LEFT JOIN ledger_entries e ON e.transaction_id = t.id
           WHERE t.kind IN ('DEPOSIT', 'WITHDRAWAL')
           GROUP BY t.id, w.user_id"""
    )
    by_ref = {r["reference"]: r for r in rows}
    credits: Counter[str] = Counter()  # provider reference -> completed credits
    for r in rows:
        if r["kind"] == "DEPOSIT" and r["status"] == "COMPLETED":
            assert r["entries"] == 2
            credits[r["linked"] or r["reference"]] += 1
    for reference in book.deposits:
        want = 1 if reference in paid else 0
        assert credits[reference] == want, (reference, credits[reference], want)
    returned = 0
    expected_net: dict[str, Decimal] = {}
    for reference, (_, amount) in book.withdrawals.items():
        tx = by_ref[reference]
        owner = tx["owner"]
        end = ends.get(reference)  # None: Paystack never made the transfer
        # A reversal may arrive before or after the success it undoes.
        allowed = {"success": {"COMPLETED"}, "reversed": {"COMPLETED", "FAILED"}}
        assert tx["status"] in allowed.get(end or "", {"FAILED"}), (reference, end, tx["status"])
        given_back = 1 if end == "reversed" and tx["status"] == "COMPLETED" else 0
        assert credits[reference] == given_back, (reference, end, credits[reference])
        returned += given_back
        if end == "success":
            expected_net[owner] = expected_net.get(owner, Decimal(0)) + amount
    deposited: dict[str, Decimal] = {}
    for reference in book.deposits:
        if credits[reference]:
            owner = by_ref[reference]["owner"]
            deposited[owner] = deposited.get(owner, Decimal(0)) + by_ref[reference]["amount"]
    wallets = await db.fetch(
        "SELECT user_id::text AS owner, balance, held FROM wallets WHERE kind = 'CUSTOMER' AND currency = 'NGN'"
    )
    for w in wallets:
        assert w["held"] == 0, w
        owner = w["owner"]
        balance = deposited.get(owner, Decimal(0)) - expected_net.get(owner, Decimal(0))
        assert w["balance"] == balance, (w, balance)
    clearing = await db.fetchval(
        "SELECT sum(balance) FROM wallets WHERE kind = 'PROVIDER_CLEARING' AND currency = 'NGN'"
    )
    assert clearing + sum(w["balance"] for w in wallets) == 0  # money conserved
    statuses = Counter((r["kind"], r["status"]) for r in rows)
    return {
        "deposits": sum(1 for r in rows if r["kind"] == "DEPOSIT" and not r["linked"]),
        "deposits_credited": sum(credits[r] for r in book.deposits),
        "paid_after_failure": sum(1 for r in rows if r["linked"] and r["linked"] in book.deposits),
        "withdrawals": len(book.withdrawals),
        "paid_out": sum(1 for e in ends.values() if e == "success"),
        "returned_by_bank": returned,
        "withdrawals_failed": statuses[("WITHDRAWAL", "FAILED")],
        "processing_left": statuses[("WITHDRAWAL", "PROCESSING")],
        "held_left": sum(int(w["held"]) for w in wallets),
    }
