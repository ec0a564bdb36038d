"""The one path every money movement is booked by.

A movement is one ledger transaction, new or reaching its next status, and what it does to
accounts: postings (legs that balance per currency) and holds (funds put aside for a payout
in flight, or given back). Transfers, conversions, deposits, withdrawals and whatever comes
next describe themselves as a ``Movement``; ``book`` takes every one through the same steps,
which the ledger runs as one statement where the rows are (one round trip):

1. lock the accounts it touches, in id order (two opposite movements cannot deadlock);
2. check what needs the locked rows: senders may send, the daily cap;
3. apply the postings and holds to the locked rows (a customer wallet never goes below zero
   nor below what it holds: ``ledger.apply_postings``, ``hold`` and ``release`` are the rules);
4. save the accounts, and write the transaction with its status history and entries, each
   change with its outbox events, so no movement goes unannounced;
5. audit, and store the idempotency answer (or claim the key with it: ``claim``).

The caller commits its unit of work once, after ``book`` (nothing to commit for a unit of
work whose only write is a claiming ``book``: the statement is its own transaction).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.ledger import (
    Answer,
    Booking,
    Cap,
    Claim,
    Posting,
    Refused,
    StatusChange,
    Transaction,
    check_balanced,
    frozen,
    insufficient_funds,
    too_large,
)
from stacklo.domain.models import AuditEvent
from stacklo.domain.outcomes import Outcome, response_of
from stacklo.domain.ports import UnitOfWork
from stacklo.domain.spending import exceeded


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
    # Not claimed yet: the booking claims the key (operation, request hash) with its answer.
    claim: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Movement:
    """What to book. ``change`` is None for a new transaction, else the status change that
    an existing one (already moved to it in memory) is reaching."""

    transaction: Transaction
    postings: Sequence[Posting] = ()
    holds: Sequence[Hold] = ()
    senders: Sequence[Sender] = ()
    cap: Cap | None = None
    change: StatusChange | None = None
    audit: AuditEvent | None = None
    idempotent: Idempotent | None = None

    def accounts(self) -> list[uuid.UUID]:
        return sorted({p.wallet_id for p in self.postings} | {h.wallet_id for h in self.holds})


async def book(uow: UnitOfWork, movement: Movement) -> Outcome:
    """Book ``movement`` in the caller's unit of work; returns its answer."""
    check_balanced(movement.postings)
    tx = movement.transaction
    idem = movement.idempotent
    outcome = _outcome(tx, idem)
    answer = (
        Answer(
            idem.user_id,
            idem.key,
            response_of(outcome),
            Claim(idem.user_id, idem.key, *idem.claim) if idem.claim else None,
        )
        if idem
        else None
    )
    try:
        await uow.ledger.book(
            Booking(
                tx,
                movement.change,
                movement.postings,
                [(h.wallet_id, h.amount) for h in movement.holds],
                [s.wallet_id for s in movement.senders],
                movement.cap,
                movement.audit,
                answer,
            )
        )
    except Refused as refused:
        raise _refusal(movement, refused) from None
    return outcome


async def answer(uow: UnitOfWork, tx: Transaction, idempotent: Idempotent | None) -> Outcome:
    """The answer of a call that books nothing, stored under its idempotency key."""
    outcome = _outcome(tx, idempotent)
    if idempotent is not None:
        await uow.idempotency.save(idempotent.user_id, idempotent.key, response_of(outcome))
    return outcome


def _outcome(tx: Transaction, idempotent: Idempotent | None) -> Outcome:
    if idempotent is None:
        return Outcome(tx)
    return Outcome(tx, idempotent.payment_url, idempotent.error)


def _refusal(movement: Movement, refused: Refused) -> DomainError:
    """The domain's own words for what the locked rows refused."""
    if refused.code == ErrorCode.WALLET_FROZEN.value:
        field = next(
            (s.field for s in movement.senders if str(s.wallet_id) == refused.detail),
            ("input", "fromWalletId"),
        )
        return frozen(field)
    if refused.code == ErrorCode.LIMIT_EXCEEDED.value and movement.cap is not None:
        return exceeded(movement.cap, Decimal(refused.detail or "0"))
    if refused.code == "BALANCE_TOO_LARGE":
        return too_large()
    return insufficient_funds()
