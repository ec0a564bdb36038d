"""Wallets, their statements, and transactions: the ledger as clients see it."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import Enum

import strawberry
from strawberry import relay

from stacklo.domain import ledger, models
from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.models import WalletStatus
from stacklo.domain.money import Money
from stacklo.domain.ports import StatementEntry
from stacklo.schema.common import (
    Connection,
    Currency,
    CurrencyCode,
    MoneyType,
    decode_cursor,
    encode_cursor,
    page_size,
)
from stacklo.schema.context import Info
from stacklo.schema.limits import cost

strawberry.enum(ledger.TransactionKind, name="TransactionKind")
strawberry.enum(ledger.TransactionStatus, name="TransactionStatus")


def first_arg(info: Info, first: int | None) -> int:
    s = info.context.services.settings
    return page_size(first, s.default_page_size, s.max_page_size)


@strawberry.type
class Wallet(relay.Node):
    id: relay.NodeID[str]
    status: WalletStatus
    created_at: datetime
    _wallet: strawberry.Private[models.Wallet]

    @classmethod
    def of(cls, w: models.Wallet) -> Wallet:
        return cls(id=str(w.id), status=w.status, created_at=w.created_at, _wallet=w)

    @strawberry.field
    def currency(self) -> Currency:
        return Currency.of(self._wallet.currency)

    @strawberry.field(description="Everything booked to the wallet.")
    def balance(self) -> MoneyType:
        return MoneyType.of(self._wallet.balance_money)

    @strawberry.field(
        description="Held for operations still in flight (withdrawals being paid out)."
    )
    def held_balance(self) -> MoneyType:
        return MoneyType.of(self._wallet.held_money)

    @strawberry.field(description="balance - heldBalance: what the owner can spend now.")
    def available_balance(self) -> MoneyType:
        return MoneyType.of(self._wallet.available_money)

    @strawberry.field(description="The wallet's statement, newest first, with the running balance.")
    async def entries(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[LedgerEntry]:
        limit = first_arg(info, first)
        parts = decode_cursor(after, 1)
        if parts and not parts[0].isdigit():
            raise DomainError(ErrorCode.INVALID_INPUT, "after is not a valid cursor", ("after",))
        async with info.context.services.uow(read_only=True) as uow:
            page = await uow.ledger.statement(
                self._wallet.id, first=limit, after=int(parts[0]) if parts else None
            )
        return Connection[LedgerEntry].build(
            [(encode_cursor(e.id), LedgerEntry.of(e)) for e in page.items],
            has_next=page.has_next,
            has_previous=after is not None,
        )


@strawberry.enum
class EntryDirection(Enum):
    DEBIT = "DEBIT"
    CREDIT = "CREDIT"


@strawberry.input
class TransactionFilter:
    kinds: list[ledger.TransactionKind] | None = None
    statuses: list[ledger.TransactionStatus] | None = None
    currency: CurrencyCode | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@strawberry.type
class TransactionStatusChange:
    status: ledger.TransactionStatus
    at: datetime
    reason: str | None


@strawberry.type
class Counterparty:
    display_name: str
    email: str | None = strawberry.field(description="Masked, e.g. a***@example.com.")


@strawberry.type
class LedgerEntry(relay.Node):
    id: relay.NodeID[str]
    created_at: datetime
    _entry: strawberry.Private[StatementEntry]

    @classmethod
    def of(cls, e: StatementEntry) -> LedgerEntry:
        return cls(id=str(e.id), created_at=e.created_at, _entry=e)

    @strawberry.field
    def direction(self) -> EntryDirection:
        return EntryDirection.CREDIT if self._entry.amount > 0 else EntryDirection.DEBIT

    @strawberry.field
    def amount(self) -> MoneyType:
        return MoneyType.of(Money(abs(self._entry.amount), self._entry.currency))

    @strawberry.field
    def balance_after(self) -> MoneyType:
        return MoneyType.of(Money(self._entry.balance_after, self._entry.currency))

    @strawberry.field
    async def transaction(self, info: Info) -> Transaction:
        tx = await info.context.loaders.transactions.load(self._entry.transaction_id)
        assert tx is not None
        return Transaction.of(tx)


@strawberry.type
class Transaction(relay.Node):
    id: relay.NodeID[str]
    reference: str = strawberry.field(description="Public reference, e.g. TXN-7Q2K9F4D.")
    kind: ledger.TransactionKind
    status: ledger.TransactionStatus
    description: str | None
    failure_reason: str | None
    created_at: datetime
    completed_at: datetime | None
    _tx: strawberry.Private[ledger.Transaction]

    @classmethod
    def of(cls, t: ledger.Transaction) -> Transaction:
        return cls(
            id=str(t.id),
            reference=t.reference,
            kind=t.kind,
            status=t.status,
            description=t.description,
            failure_reason=t.failure_reason,
            created_at=t.created_at,
            completed_at=t.completed_at,
            _tx=t,
        )

    @strawberry.field(description="What left the source wallet (or, for a deposit, what arrived).")
    def amount(self) -> MoneyType:
        return MoneyType.of(self._tx.money)

    @strawberry.field
    def fee(self) -> MoneyType:
        return MoneyType.of(Money(self._tx.fee, self._tx.currency))

    @strawberry.field(description="What the target received when currencies differ.")
    def converted_amount(self) -> MoneyType | None:
        t = self._tx
        if t.converted_amount is None or t.converted_currency is None:
            return None
        return MoneyType.of(Money(t.converted_amount, t.converted_currency))

    @strawberry.field
    def exchange_rate(self) -> Decimal | None:
        return self._tx.exchange_rate

    @strawberry.field(metadata=cost(size=4))
    async def status_history(self, info: Info) -> list[TransactionStatusChange]:
        changes = await info.context.loaders.history.load(self._tx.id)
        return [TransactionStatusChange(status=c.status, at=c.at, reason=c.reason) for c in changes]

    @strawberry.field(
        description="Ledger entries on the viewer's own wallets (all entries for staff).",
        metadata=cost(size=5),
    )
    async def entries(self, info: Info) -> list[LedgerEntry]:
        viewer = await info.context.require_viewer()
        found = await info.context.loaders.entries.load(self._tx.id)
        if info.context.services.visibility.every_entry(viewer):
            return [LedgerEntry.of(e) for e in found]
        own = {w.id for w in await info.context.loaders.wallets_by_user.load(viewer.user.id)}
        return [LedgerEntry.of(e) for e in found if e.wallet_id in own]

    @strawberry.field
    async def counterparty(self, info: Info) -> Counterparty | None:
        """The other person of a transfer, seen from the viewer's side."""
        t = self._tx
        if t.source_wallet_id is None or t.target_wallet_id is None:
            return None
        viewer = await info.context.viewer()
        loaders = info.context.loaders
        source = await loaders.wallets.load(t.source_wallet_id)
        other_id = (
            t.target_wallet_id
            if viewer and source and source.user_id == viewer.user.id
            else t.source_wallet_id
        )
        other = await loaders.wallets.load(other_id)
        if other is None or other.user_id is None:
            return None
        person = await loaders.users.load(other.user_id)
        if person is None:
            return None
        return Counterparty(
            display_name=ledger.display_name(person.full_name),
            email=ledger.mask_email(person.email),
        )


@strawberry.type(description="A transaction's change, pushed to a subscriber.")
class TransactionEvent:
    cursor: str
    transaction: Transaction


@strawberry.type(description="A wallet's change, pushed to a subscriber.")
class WalletEvent:
    cursor: str
    wallet: Wallet


async def wallet_owners(info: Info, tx: ledger.Transaction) -> list[uuid.UUID | None]:
    """Who holds the transaction's wallets (what its visibility depends on)."""
    owners: list[uuid.UUID | None] = []
    for wallet_id in (tx.source_wallet_id, tx.target_wallet_id):
        wallet = await info.context.loaders.wallets.load(wallet_id) if wallet_id else None
        owners.append(wallet.user_id if wallet else None)
    return owners
