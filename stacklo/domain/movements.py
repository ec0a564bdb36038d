"""The one path every money movement is booked by.

A movement is one ledger transaction, new or reaching its next status, and what it does to
accounts: postings (legs that balance per currency) and holds (funds put aside for a payout
in flight, or given back). Transfers, conversions, deposits, withdrawals and whatever comes
next describe themselves as a ``Movement``; ``book`` takes every one through the same steps:

1. lock the accounts it touches, in id order (two opposite movements cannot deadlock);
2. check what needs the locked rows: senders may send, the movement's own checks (limits);
3. apply the postings and holds to the locked rows (a customer wallet never goes below zero
   nor below what it holds);
4. save the accounts, and write the transaction with its status history and entries; each
   write carries its outbox events in the same statement, so no movement goes unannounced;
5. audit, and store the idempotency result.

The caller opens the unit of work and commits it once, after ``book``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from stacklo.domain.errors import DomainError
from stacklo.domain.ledger import (
    Posting,
    StatusChange,
    Transaction,
    apply_postings,
    ensure_can_send,
    hold,
    release,
)
from stacklo.domain.models import AuditEvent, Wallet
from stacklo.domain.money import MONEY_CONTEXT, Money
from stacklo.domain.outcomes import Outcome, response_of
from stacklo.domain.ports import UnitOfWork

# A rule that needs the locked rows (e.g. a daily limit counted with the sender locked).
Check = Callable[[Mapping[uuid.UUID, Wallet]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Hold:
    """Funds put aside (``amount`` > 0) or given back (< 0) on a customer wallet."""

    wallet_id: uuid.UUID
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Sender:
    """A wallet money leaves; it must not be frozen (``field``: the input to blame)."""

    wallet_id: uuid.UUID
    field: tuple[str, ...] = ("input", "fromWalletId")


@dataclass(frozen=True, slots=True)
class Idempotent:
    """Store the answer under the caller's key (``error``: a refusal the answer carries)."""

    user_id: uuid.UUID
    key: str
    payment_url: str | None = None
    error: DomainError | None = None


@dataclass(frozen=True, slots=True)
class Movement:
    """What to book. ``change`` is None for a new transaction, else the status change that
    an existing one (already moved to it in memory) is reaching."""

    transaction: Transaction
    postings: Sequence[Posting] = ()
    holds: Sequence[Hold] = ()
    senders: Sequence[Sender] = ()
    checks: Sequence[Check] = ()
    change: StatusChange | None = None
    audit: AuditEvent | None = None
    idempotent: Idempotent | None = None

    def accounts(self) -> list[uuid.UUID]:
        return sorted({p.wallet_id for p in self.postings} | {h.wallet_id for h in self.holds})


async def book(uow: UnitOfWork, movement: Movement) -> Outcome:
    """Book ``movement`` in the caller's unit of work; returns its answer."""
    locked = await uow.ledger.lock_wallets(movement.accounts())
    for sender in movement.senders:
        ensure_can_send(locked[sender.wallet_id], sender.field)
    for check in movement.checks:
        await check(locked)
    entries = apply_postings(locked, movement.postings) if movement.postings else []
    _apply_holds(locked, movement.holds)
    tx = movement.transaction
    await uow.ledger.save_wallets(list(locked.values()))
    if movement.change is None:
        await uow.ledger.add(tx, entries)
    else:
        await uow.ledger.settle(tx, movement.change, entries)
    if movement.audit is not None:
        await uow.audit.record(movement.audit)
    return await answer(uow, tx, movement.idempotent)


async def answer(uow: UnitOfWork, tx: Transaction, idempotent: Idempotent | None) -> Outcome:
    """The movement's answer, stored under its idempotency key (if it has one)."""
    if idempotent is None:
        return Outcome(tx)
    outcome = Outcome(tx, idempotent.payment_url, idempotent.error)
    await uow.idempotency.save(idempotent.user_id, idempotent.key, response_of(outcome))
    return outcome


def _apply_holds(locked: Mapping[uuid.UUID, Wallet], holds: Sequence[Hold]) -> None:
    for h in holds:
        wallet = locked[h.wallet_id]
        if h.amount > 0:
            hold(wallet, Money(h.amount, wallet.currency))
        else:
            release(wallet, Money(MONEY_CONTEXT.minus(h.amount), wallet.currency))
