"""The bank test: concurrent transfers and reads; the total never changes, no balance goes
below zero, and every answer a client got is what the ledger holds."""

from __future__ import annotations

import asyncio
import random

from tests.faults.bank import Bank, LedgerAudit, Retrying, replay_all
from tests.faults.conftest import Stack
from tests.faults.report import record
from tests.helpers import GraphQLHTTP

TELLERS = 8
READERS = 3
ACCOUNTS = 5
SECONDS = 8


async def test_transfers_and_reads_keep_the_total_and_no_balance_goes_negative(
    stack: Stack,
) -> None:
    api = stack.serve()
    setup = GraphQLHTTP(api.base_url)
    bank = await Bank.open(setup, ACCOUNTS)
    clients = [Retrying(api.base_url) for _ in range(TELLERS + READERS + 1)]
    stop = asyncio.Event()
    rng = random.Random(15)
    audit = LedgerAudit(stack.pg.url())
    work = [bank.teller(c, random.Random(rng.random()), stop) for c in clients[:TELLERS]]
    work += [bank.reader(c, random.Random(rng.random()), stop) for c in clients[TELLERS:-1]]
    tasks = [asyncio.create_task(w) for w in [*work, bank.auditor(audit, stop)]]
    await asyncio.sleep(SECONDS)
    stop.set()
    await asyncio.gather(*tasks)

    checker = clients[-1]
    moved = [a for a in bank.acknowledged if a.transaction_id]
    assert len(moved) > 100, len(moved)
    assert bank.audits and all(total == bank.funded for total in bank.audits), bank.audits
    assert bank.reads > 50 and bank.negative_reads == 0
    assert await bank.balances(checker) == bank.expected_balances()
    assert await replay_all(checker, bank.acknowledged) == []
    verified = stack.cli("ledger", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    record(
        "bank",
        faults=0,
        requests=sum(c.requests for c in clients),
        acknowledged=len(bank.acknowledged),
        moved=len(moved),
        audits=len(bank.audits),
        reads=bank.reads,
        negative_reads=bank.negative_reads,
        lost=0,
        duplicated=0,
    )
    await audit.aclose()
    for c in clients:
        await c.aclose()
    await setup.aclose()
