"""What the two busiest reads cost: a wallet app's activity screen and a merchant's checkouts.

A migrated scratch database is set up through the API: a viewer with sent and received
transfers, and an ACTIVE merchant whose checkouts were paid from a wallet or in installments,
some refunded, some still open. Then, for each query in turn, ``stacklo serve`` starts on it,
``--clients`` clients send the query (``--first`` rows a page) back to back for ``--seconds``
after a warm-up, and the server stops. Printed per query: latency as the client sees it
(p50/p99/max), requests a second, the server's CPU per request and the SQL statements per
request.

Statements are counted by PostgreSQL: reads run without a transaction, so each statement is
one transaction in ``pg_stat_database`` (commits plus rollbacks). A backend publishes those
counters lazily, but always when it exits, so they are read after the server has stopped and
every session of the database has ended. What an idle server costs (start-up, readiness
checks) is measured once and taken off; what remains above the exact figure is the pool's
connections being opened under load (a few statements each).
tests/api/test_query_counts.py counts the same two queries exactly, per request, at several
page sizes.

    .venv/bin/python bench/reads.py [--seconds 5] [--clients 4] [--first 20]
                                    [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.common import (
    CHEAP_ARGON2,
    DEFAULT_DSN,
    SEND_MONEY,
    UNTHROTTLED,
    BenchError,
    Scratch,
    User,
    admin,
    cpu_seconds,
    fetchval,
    fund,
    graphql,
    latency_line,
    migrated_database,
    percentile,
    record,
    serving,
    sign_up,
    spawn,
    user_errors,
    wait_ready,
)

# What a wallet app's activity screen asks for (balances, the newest transactions with who was
# on the other side, how each went, the legs on the viewer's wallets), and a merchant's
# dashboard (its checkouts with the payment, refunds and plan); tests/api/test_query_counts.py
# counts the statements of the same two.
ACTIVITY = """query Activity($first: Int!) { me {
  wallets { id currency { code } balance { amount currency } availableBalance { amount } }
  transactions(first: $first) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id reference kind status description failureReason createdAt completedAt
      amount { amount currency } fee { amount } convertedAmount { amount currency }
      exchangeRate
      counterparty { displayName email }
      statusHistory { status at reason }
      entries { direction amount { amount } balanceAfter { amount } }
    } }
  } } }"""

CHECKOUTS = """query MerchantCheckouts($first: Int!) { me { merchant {
  id name status pendingSettlement { amount currency }
  checkouts(first: $first) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id reference description status paymentMethod createdAt paidAt expiresAt
      amount { amount currency } refundedAmount { amount }
      payment { reference status fee { amount } counterparty { displayName } }
      refunds { reference status createdAt amount { amount } }
      installmentPlan { product status outstanding { amount }
        installments { sequence dueDate status amount { amount } }
        nextInstallment { dueDate amount { amount } } }
    } }
  } } } }"""

# What the test asserts for each, at every page size, with the session checked on every
# request (one statement; none while the server remembers the viewer).
EXACT = {"activity": 7, "checkouts": 11}

LOG_IN = """mutation BenchLogIn($i: LogInInput!) { logIn(input: $i) {
  session { accessToken } userErrors { code message } } }"""
REGISTER = """mutation BenchRegister($i: RegisterMerchantInput!) { registerMerchant(input: $i) {
  merchant { id } userErrors { code message } } }"""
REVIEW = """mutation BenchReview($i: ReviewMerchantInput!) { reviewMerchant(input: $i) {
  merchant { status } userErrors { code message } } }"""
APPLY = """mutation BenchApply($i: ApplyForCreditInput!) { applyForCredit(input: $i) {
  creditProfile { status } userErrors { code message } } }"""
CREATE = """mutation BenchCheckout($i: CreateCheckoutInput!) { createCheckout(input: $i) {
  checkout { id } userErrors { code message } } }"""
PAY = """mutation BenchPay($i: PayCheckoutInput!) { payCheckout(input: $i) {
  checkout { status } userErrors { code message } } }"""
REFUND = """mutation BenchRefund($i: RefundCheckoutInput!) { refundCheckout(input: $i) {
  checkout { status } userErrors { code message } } }"""
ADMIN_PASSWORD = "bench-admin-password-1"


@dataclass(frozen=True)
class Case:
    name: str
    query: str
    token: str
    rows: Callable[[dict[str, Any]], list[Any]]


# --------------------------------------------------------------------------- set-up ----


async def activity_viewer(http: httpx.AsyncClient, base: str, run: str) -> str:
    """A viewer who sent to and received from three people: 24 transfers, the newest sent."""
    viewer = await sign_up(http, base, "viewer", run, 0, "NGN")
    friends = [await sign_up(http, base, "friend", run, i, "NGN") for i in range(3)]
    await fund(http, base, viewer, "100000")
    for friend in friends:
        await fund(http, base, friend, "10000")
    for i in range(24):
        friend = friends[i % 3]
        sender, recipient = (viewer, friend) if i % 2 else (friend, viewer)
        variables = {
            "input": {
                "fromWalletId": sender.wallet_id,
                "to": {"walletId": recipient.wallet_id},
                "amount": "10.00",
                "idempotencyKey": str(uuid.uuid4()),
            }
        }
        sent = (await graphql(http, base, SEND_MONEY, variables, sender.token))["sendMoney"]
        user_errors(sent, "sendMoney")
    return viewer.token


async def admin_token(http: httpx.AsyncClient, base: str, scratch: Scratch, run: str) -> str:
    """An ADMIN made the way operators make one, signed in."""
    email = f"admin-{run}@example.com"
    made = await spawn(
        scratch.env,
        scratch.dir / "create-admin.log",
        *("create-admin", "--email", email, "--password", ADMIN_PASSWORD),
    )
    if await made.wait() != 0:
        raise BenchError("stacklo create-admin failed (see create-admin.log)")
    variables = {"i": {"email": email, "password": ADMIN_PASSWORD}}
    session = (await graphql(http, base, LOG_IN, variables))["logIn"]
    user_errors(session, "logIn")
    token: str = session["session"]["accessToken"]
    return token


async def merchant_owner(http: httpx.AsyncClient, base: str, scratch: Scratch, run: str) -> str:
    """An ACTIVE merchant with 24 checkouts of every shape, the newest financed and refunded in
    part; its owner's token."""
    owner = await sign_up(http, base, "merchant", run, 0, "NGN")
    borrower = await sign_up(http, base, "borrower", run, 0, "NGN")
    for _ in range(3):
        await fund(http, base, borrower, "400000")
    # Identity review and a year of history are the borrower's facts, not what is measured.
    await admin(
        scratch.dsn,
        "UPDATE users SET kyc_status = 'VERIFIED', created_at = now() - interval '400 days'",
    )
    applied = (
        await graphql(
            http,
            base,
            APPLY,
            {"i": {"monthlyIncome": "900000", "employmentStatus": "EMPLOYED"}},
            borrower.token,
        )
    )["applyForCredit"]
    user_errors(applied, "applyForCredit")
    if applied["creditProfile"]["status"] != "APPROVED":
        raise BenchError(f"applyForCredit: {applied}")
    registered = (
        await graphql(
            http, base, REGISTER, {"i": {"name": "Bench Shoes", "category": "fashion"}}, owner.token
        )
    )["registerMerchant"]
    user_errors(registered, "registerMerchant")
    merchant_id = registered["merchant"]["id"]
    staff = await admin_token(http, base, scratch, run)
    decision = {"i": {"merchantId": merchant_id, "approve": True}}
    reviewed = (await graphql(http, base, REVIEW, decision, staff))["reviewMerchant"]
    user_errors(reviewed, "reviewMerchant")
    for i in range(24):
        created = (
            await graphql(
                http,
                base,
                CREATE,
                {"i": {"merchantId": merchant_id, "amount": "20000", "reference": f"order-{i}"}},
                owner.token,
            )
        )["createCheckout"]
        user_errors(created, "createCheckout")
        checkout_id = created["checkout"]["id"]
        shape = i % 4  # open, wallet, wallet refunded, installments refunded (the newest)
        if shape:
            await pay(http, base, borrower, checkout_id, installments=shape == 3)
        if shape >= 2:
            body = {
                "checkoutId": checkout_id,
                "reason": "returned",
                "amount": "1000.00",
                "idempotencyKey": str(uuid.uuid4()),
            }
            refunded = (await graphql(http, base, REFUND, {"i": body}, owner.token))[
                "refundCheckout"
            ]
            user_errors(refunded, "refundCheckout")
    return owner.token


async def pay(
    http: httpx.AsyncClient, base: str, payer: User, checkout_id: str, *, installments: bool
) -> None:
    method = {"method": "INSTALLMENTS", "product": "PAY_IN_4"} if installments else {}
    body = {
        "checkoutId": checkout_id,
        "walletId": payer.wallet_id,
        "idempotencyKey": str(uuid.uuid4()),
        **(method or {"method": "WALLET"}),
    }
    paid = (await graphql(http, base, PAY, {"i": body}, payer.token))["payCheckout"]
    user_errors(paid, "payCheckout")


# ------------------------------------------------------------------------ measuring ----


async def transactions_of(dsn: str, database: str) -> int:
    """Commits plus rollbacks of ``database``, once no session of it is left (a backend
    publishes its counters when it exits)."""
    deadline = time.monotonic() + 30
    while await fetchval(dsn, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", database):
        if time.monotonic() > deadline:
            raise BenchError(f"sessions of {database} still open 30 s after the server stopped")
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.2)  # the last exit's counters
    query = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1"
    return int(await fetchval(dsn, query, database))


async def hammer(
    http: httpx.AsyncClient, base: str, case: Case, first: int, clients: int, seconds: float
) -> tuple[list[float], float]:
    """``clients`` clients sending the query back to back for ``seconds``: latencies (ms) and
    the wall time."""
    samples: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            begun = time.perf_counter()
            data = await graphql(http, base, case.query, {"first": first}, case.token)
            samples.append((time.perf_counter() - begun) * 1000)
            if len(case.rows(data)) != first:
                raise BenchError(f"{case.name}: {len(case.rows(data))} rows, not {first}")

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return samples, time.perf_counter() - started


async def idle_cost(scratch: Scratch, dsn: str, database: str) -> int:
    """Statements a server runs with no request: start-up, readiness checks, shutdown."""
    before = await transactions_of(dsn, database)
    async with serving(scratch.env, scratch.dir / "idle.log", "--workers", "1") as server:
        await wait_ready(server)
    return await transactions_of(dsn, database) - before


async def measure(
    http: httpx.AsyncClient,
    scratch: Scratch,
    args: argparse.Namespace,
    database: str,
    case: Case,
    idle: int,
) -> None:
    before = await transactions_of(args.dsn, database)
    log = scratch.dir / f"{case.name}.log"
    async with serving(scratch.env, log, "--workers", "1") as server:
        await wait_ready(server)
        # Warm-up: parse and validation caches, pooled connections, prepared statements.
        warm, _ = await hammer(http, server.base, case, args.first, args.clients, 1.0)
        cpu = cpu_seconds(server.pid)
        samples, took = await hammer(
            http, server.base, case, args.first, args.clients, args.seconds
        )
        cpu = cpu_seconds(server.pid) - cpu
    statements = await transactions_of(args.dsn, database) - before - idle
    requests = len(warm) + len(samples)
    per_request = statements / requests
    print(f"{case.name}: {args.clients} clients, first: {args.first}, {args.seconds:g} s")
    print(f"   {latency_line(samples)}; {len(samples) / took:.0f} requests/s")
    print(
        f"   server CPU {cpu * 1000 / len(samples):.2f} ms a request; SQL statements a request "
        f"{per_request:.2f} (the test counts {EXACT[case.name]}, the session checked every time)"
    )
    record(
        "reads",
        {
            "case": f"{case.name}, first {args.first}, {args.clients} clients",
            "p50_ms": round(percentile(samples, 50), 2),
            "p99_ms": round(percentile(samples, 99), 2),
            "max_ms": round(max(samples), 2),
            "n": len(samples),
            "requests_per_s": round(len(samples) / took, 1),
            "server_cpu_ms_per_request": round(cpu * 1000 / len(samples), 2),
            "sql_per_request": round(per_request, 2),
        },
    )


async def run(args: argparse.Namespace) -> int:
    if not 1 <= args.first <= 20:
        raise BenchError("--first: 1 to 20 (the rows set up)")
    settings = {**CHEAP_ARGON2, **UNTHROTTLED}
    async with (
        migrated_database(args.dsn, "stacklo_bench", **settings) as scratch,
        httpx.AsyncClient(timeout=60) as http,
    ):
        database = urlsplit(scratch.dsn).path.lstrip("/")
        run_id = str(time.monotonic_ns())
        # The set-up verifies users behind the server's back: it must not remember viewers.
        setup = {**scratch.env, "STACKLO_VIEWER_CACHE_SECONDS": "0"}
        async with serving(setup, scratch.dir / "setup.log", "--workers", "1") as server:
            await wait_ready(server)
            viewer = await activity_viewer(http, server.base, run_id)
            owner = await merchant_owner(http, server.base, scratch, run_id)
        print("set up: a viewer with 24 transfers, a merchant with 24 checkouts", flush=True)
        idle = await idle_cost(scratch, args.dsn, database)
        cases = (
            Case("activity", ACTIVITY, viewer, lambda d: d["me"]["transactions"]["edges"]),
            Case(
                "checkouts",
                CHECKOUTS,
                owner,
                lambda d: d["me"]["merchant"]["checkouts"]["edges"],
            ),
        )
        for case in cases:
            await measure(http, scratch, args, database, case, idle)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per query, after warm-up")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--first", type=int, default=20, help="rows a page, 1 to 20")
    parser.add_argument(
        "--dsn", default=DEFAULT_DSN, help="a PostgreSQL server to make a scratch database on"
    )
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
