"""Double-entry rules: transaction kinds and statuses, postings, and how they move balances.

A movement is one ledger transaction whose entries sum to zero per currency. Entries are
signed from the account's side: + credits (increases) an account, - debits it. Customer
wallets never go below zero, and never below what is held for in-flight withdrawals.
"""

from __future__ import annotations

import secrets
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.models import AccountKind, AuditEvent, Wallet, WalletStatus
from stacklo.domain.money import MAX_INTEGER_DIGITS, MONEY_CONTEXT, CurrencyCode, Money


class TransactionKind(Enum):
    DEPOSIT = "DEPOSIT"
    WITHDRAWAL = "WITHDRAWAL"
    TRANSFER = "TRANSFER"
    EXCHANGE = "EXCHANGE"
    CRYPTO_BUY = "CRYPTO_BUY"
    CRYPTO_SELL = "CRYPTO_SELL"
    CHECKOUT_PAYMENT = "CHECKOUT_PAYMENT"
    INSTALLMENT_REPAYMENT = "INSTALLMENT_REPAYMENT"
    LATE_FEE = "LATE_FEE"
    SETTLEMENT = "SETTLEMENT"
    REFUND = "REFUND"
    ADJUSTMENT = "ADJUSTMENT"


class TransactionStatus(Enum):
    CREATED = "CREATED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


_S = TransactionStatus
# CREATED -> PROCESSING -> COMPLETED | FAILED | CANCELLED. A movement settled in the same
# database transaction it was created in (a P2P transfer) goes CREATED -> COMPLETED directly;
# terminal states never change.
LEGAL_TRANSITIONS: dict[TransactionStatus, frozenset[TransactionStatus]] = {
    _S.CREATED: frozenset({_S.PROCESSING, _S.COMPLETED, _S.FAILED, _S.CANCELLED}),
    _S.PROCESSING: frozenset({_S.COMPLETED, _S.FAILED, _S.CANCELLED}),
    _S.COMPLETED: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
}
TERMINAL = frozenset({_S.COMPLETED, _S.FAILED, _S.CANCELLED})


def check_transition(current: TransactionStatus, new: TransactionStatus) -> None:
    if new not in LEGAL_TRANSITIONS[current]:
        raise DomainError(
            ErrorCode.INVALID_STATE, f"a {current.value} transaction cannot become {new.value}"
        )


# Crockford base32 without I, L, O, U: references are read aloud and typed by people.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_reference(prefix: str = "TXN") -> str:
    """A public reference like TXN-7Q2K9F4D (40 random bits; uniqueness is enforced by the DB)."""
    return prefix + "-" + "".join(secrets.choice(_ALPHABET) for _ in range(8))


@dataclass(frozen=True, slots=True)
class StatusChange:
    status: TransactionStatus
    at: datetime
    reason: str | None = None


@dataclass(slots=True)
class Transaction:
    id: uuid.UUID
    reference: str
    kind: TransactionKind
    status: TransactionStatus
    currency: CurrencyCode
    amount: Decimal
    created_at: datetime
    fee: Decimal = Decimal(0)
    description: str | None = None
    failure_reason: str | None = None
    initiator_id: uuid.UUID | None = None
    source_wallet_id: uuid.UUID | None = None
    target_wallet_id: uuid.UUID | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    completed_at: datetime | None = None
    converted_currency: CurrencyCode | None = None
    converted_amount: Decimal | None = None
    exchange_rate: Decimal | None = None
    history: list[StatusChange] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        kind: TransactionKind,
        amount: Money,
        now: datetime,
        *,
        status: TransactionStatus = TransactionStatus.CREATED,
        **fields: Any,
    ) -> Transaction:
        tx = cls(
            id=uuid.uuid4(),
            reference=new_reference(),
            kind=kind,
            status=TransactionStatus.CREATED,
            currency=amount.currency,
            amount=amount.amount,
            created_at=now,
            **fields,
        )
        tx.history.append(StatusChange(TransactionStatus.CREATED, now))
        if status is not TransactionStatus.CREATED:
            tx.move_to(status, now)
        return tx

    def move_to(
        self, status: TransactionStatus, now: datetime, reason: str | None = None
    ) -> StatusChange:
        check_transition(self.status, status)
        self.status = status
        if status is TransactionStatus.COMPLETED:
            self.completed_at = now
        if status in (TransactionStatus.FAILED, TransactionStatus.CANCELLED):
            self.failure_reason = reason
        change = StatusChange(status, now, reason)
        self.history.append(change)
        return change

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg: ``amount`` is signed from the account's side (+ credit, - debit)."""

    wallet_id: uuid.UUID
    currency: CurrencyCode
    amount: Decimal
    # Held funds this leg consumes (a withdrawal's debit settles what was held for it).
    release_hold: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Entry:
    wallet_id: uuid.UUID
    currency: CurrencyCode
    amount: Decimal
    balance_after: Decimal


def transfer_postings(source: uuid.UUID, target: uuid.UUID, amount: Money) -> list[Posting]:
    return [
        Posting(source, amount.currency, MONEY_CONTEXT.minus(amount.amount)),
        Posting(target, amount.currency, amount.amount),
    ]


def check_balanced(postings: Sequence[Posting]) -> None:
    """Every currency's legs sum to zero; anything else is a bug, never a user error."""
    totals: dict[CurrencyCode, Decimal] = defaultdict(Decimal)
    for p in postings:
        if p.amount == 0:
            raise ValueError("a posting moves a non-zero amount")
        totals[p.currency] = MONEY_CONTEXT.add(totals[p.currency], p.amount)
    unbalanced = {c.value: str(t) for c, t in totals.items() if t != 0}
    if unbalanced:
        raise ValueError(f"unbalanced postings: {unbalanced}")


def apply_postings(wallets: dict[uuid.UUID, Wallet], postings: Iterable[Posting]) -> list[Entry]:
    """Apply legs to locked wallets in memory and return the entries with running balances.

    Raises INSUFFICIENT_FUNDS when a customer wallet would spend more than is available.
    The caller writes the wallets and entries back in the same database transaction.
    """
    postings = list(postings)
    check_balanced(postings)
    entries: list[Entry] = []
    for p in postings:
        wallet = wallets[p.wallet_id]
        if wallet.currency is not p.currency:
            raise ValueError("posting currency differs from the account's")
        balance = MONEY_CONTEXT.add(wallet.balance, p.amount)
        held = MONEY_CONTEXT.subtract(wallet.held, p.release_hold)
        if wallet.kind is AccountKind.CUSTOMER and (balance < held or held < 0):
            raise insufficient_funds()
        if abs(balance).adjusted() >= MAX_INTEGER_DIGITS:
            raise too_large()
        wallet.balance, wallet.held = balance, held
        entries.append(Entry(p.wallet_id, p.currency, p.amount, balance))
    return entries


def hold(wallet: Wallet, amount: Money) -> None:
    """Reserve funds for an in-flight withdrawal: balance stays, available shrinks."""
    if wallet.available_money.amount < amount.amount:
        raise insufficient_funds()
    wallet.held = MONEY_CONTEXT.add(wallet.held, amount.amount)


def release(wallet: Wallet, amount: Money) -> None:
    if wallet.held < amount.amount:
        raise ValueError("releasing more than is held")
    wallet.held = MONEY_CONTEXT.subtract(wallet.held, amount.amount)


def ensure_can_send(wallet: Wallet, field: tuple[str, ...] = ("input", "fromWalletId")) -> None:
    if wallet.status is WalletStatus.FROZEN:
        raise frozen(field)


def insufficient_funds() -> DomainError:
    return DomainError(
        ErrorCode.INSUFFICIENT_FUNDS, "Not enough available balance.", ("input", "amount")
    )


def too_large() -> DomainError:
    return DomainError(
        ErrorCode.LIMIT_EXCEEDED,
        "This would take an account past the largest balance the ledger holds.",
        ("input", "amount"),
    )


def frozen(field: tuple[str, ...]) -> DomainError:
    return DomainError(
        ErrorCode.WALLET_FROZEN, "This wallet is frozen and cannot send money.", field
    )


def mask_email(email: str) -> str:
    """a***@example.com: enough to recognise a contact, not enough to harvest addresses."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def display_name(full_name: str) -> str:
    """ "Ada Obi" -> "Ada O.": counterparties see who, not everything."""
    parts = full_name.split()
    if len(parts) < 2:
        return full_name
    return f"{parts[0]} {parts[-1][0]}."


# ------------------------------------------------------------------------------ booking
#
# What the movement path hands the ledger to book in one call (``LedgerRepository.book``):
# the storage applies the rules above to the locked rows where they are, and refuses with the
# same error codes (``Refused``). A test holds the two implementations to the same answers.


@dataclass(frozen=True, slots=True)
class Cap:
    """A daily cap: what ``user_id`` sent and withdrew in ``currency`` on ``day`` (UTC), plus
    ``amount``, may not pass ``limit`` (counted with the sender locked)."""

    user_id: uuid.UUID
    currency: CurrencyCode
    day: date
    limit: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Claim:
    """The idempotency key, claimed by the booking itself with its answer (one round trip for
    a use case that claimed nothing before); ``KeyTaken`` if another call holds it."""

    user_id: uuid.UUID
    key: str
    operation: str
    request_hash: str


@dataclass(frozen=True, slots=True)
class Answer:
    """The stored answer of an idempotency key: claimed earlier in the unit of work
    (``claim`` None) or by the booking."""

    user_id: uuid.UUID
    key: str
    response: dict[str, Any]
    claim: Claim | None = None


@dataclass(frozen=True, slots=True)
class Booking:
    """A transaction (new, or reaching ``change``) with what it does to accounts."""

    transaction: Transaction
    change: StatusChange | None
    postings: Sequence[Posting]
    holds: Sequence[tuple[uuid.UUID, Decimal]]  # + put aside, - given back
    senders: Sequence[uuid.UUID]
    cap: Cap | None
    audit: AuditEvent | None
    answer: Answer | None


class Refused(Exception):
    """The locked rows refuse the movement: ``code`` is one of INSUFFICIENT_FUNDS,
    WALLET_FROZEN, LIMIT_EXCEEDED (``detail``: the amount used already) and BALANCE_TOO_LARGE
    (``detail``: the wallet concerned)."""

    def __init__(self, code: str, detail: str | None):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


class KeyTaken(Exception):
    """The booking's idempotency claim found the key taken: replay the first answer."""
