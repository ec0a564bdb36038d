"""Wallets, their statements, and transactions: the ledger as clients see it."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated

import strawberry
from strawberry import relay

from stacklo.domain import ledger, models
from stacklo.domain.models import WalletStatus
from stacklo.domain.money import Money
from stacklo.domain.ports import StatementEntry
from stacklo.schema import docs
from stacklo.schema.common import (
    AFTER,
    FIRST,
    Connection,
    Currency,
    CurrencyCode,
    MoneyType,
    decode_sequence_cursor,
    encode_cursor,
    page_size,
)
from stacklo.schema.context import Info
from stacklo.schema.limits import cost, cursors

docs.described_enum(
    ledger.TransactionKind,
    "What a transaction does.",
    docs.TRANSACTION_KINDS,
    name="TransactionKind",
)
docs.described_enum(
    ledger.TransactionStatus,
    "Where a transaction stands: CREATED, then PROCESSING, then COMPLETED, FAILED or "
    "CANCELLED (final); a transaction settled at once skips PROCESSING.",
    docs.TRANSACTION_STATUSES,
    name="TransactionStatus",
)


def first_arg(info: Info, first: int | None) -> int:
    s = info.context.services.settings
    return page_size(first, s.default_page_size, s.max_page_size)


@strawberry.type(
    description="A user's money in one currency. Visible to its owner and to staff (SUPPORT, "
    "ADMIN)."
)
class Wallet(relay.Node):
    id: relay.NodeID[str]
    status: WalletStatus = strawberry.field(
        description="ACTIVE, or FROZEN: it still receives but cannot send, withdraw or convert."
    )
    created_at: datetime = strawberry.field(description="When the wallet was opened.")
    _wallet: strawberry.Private[models.Wallet]

    @classmethod
    def of(cls, w: models.Wallet) -> Wallet:
        return cls(id=str(w.id), status=w.status, created_at=w.created_at, _wallet=w)

    @strawberry.field(description="The wallet's currency and how many decimals its amounts carry.")
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

    @strawberry.field(
        description="The wallet's statement, newest first, with the running balance.",
        metadata=cursors(decode_sequence_cursor),
    )
    async def entries(
        self,
        info: Info,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
    ) -> Connection[LedgerEntry]:
        limit = first_arg(info, first)
        async with info.context.services.uow(read_only=True) as uow:
            page = await uow.ledger.statement(
                self._wallet.id, first=limit, after=decode_sequence_cursor(after)
            )
        return Connection[LedgerEntry].build(
            [(encode_cursor(e.id), LedgerEntry.of(e)) for e in page.items],
            has_next=page.has_next,
            has_previous=after is not None,
        )


@strawberry.enum(description="Which way a ledger entry moved its account's balance.")
class EntryDirection(Enum):
    DEBIT = strawberry.enum_value("DEBIT", description="Money left the account.")
    CREDIT = strawberry.enum_value("CREDIT", description="Money arrived in the account.")


@strawberry.input(description="Narrows a list of transactions; every condition given must hold.")
class TransactionFilter:
    kinds: list[ledger.TransactionKind] | None = strawberry.field(
        default=None, description="Any of these kinds; every kind when null or empty."
    )
    statuses: list[ledger.TransactionStatus] | None = strawberry.field(
        default=None, description="Any of these statuses; every status when null or empty."
    )
    currency: CurrencyCode | None = strawberry.field(
        default=None,
        description="Only transactions whose amount is in this currency (for a conversion, "
        "the source currency).",
    )
    created_after: datetime | None = strawberry.field(
        default=None, description="Only transactions created at or after this time."
    )
    created_before: datetime | None = strawberry.field(
        default=None, description="Only transactions created before this time (exclusive)."
    )


@strawberry.type(description="One step of a transaction's status history.")
class TransactionStatusChange:
    status: ledger.TransactionStatus = strawberry.field(description="The status reached.")
    at: datetime = strawberry.field(description="When it was reached.")
    reason: str | None = strawberry.field(
        description="Why, in plain English, for a FAILED or CANCELLED step; null otherwise."
    )


@strawberry.type(description="The other party of a transaction, as much as the viewer may know.")
class Counterparty:
    display_name: str = strawberry.field(
        description='First name and last initial, e.g. "Ada O."; a one-word name as it is.'
    )
    email: str | None = strawberry.field(description="Masked, e.g. a***@example.com.")


@strawberry.type(
    description="One leg of a transaction on one account: a line of a wallet's statement. "
    "Visible to the wallet's owner; staff (SUPPORT, ADMIN) see every leg, platform accounts "
    "included."
)
class LedgerEntry(relay.Node):
    id: relay.NodeID[str]
    created_at: datetime = strawberry.field(description="When it was posted.")
    _entry: strawberry.Private[StatementEntry]

    @classmethod
    def of(cls, e: StatementEntry) -> LedgerEntry:
        return cls(id=str(e.id), created_at=e.created_at, _entry=e)

    @strawberry.field(description="CREDIT when money arrived, DEBIT when it left.")
    def direction(self) -> EntryDirection:
        return EntryDirection.CREDIT if self._entry.amount > 0 else EntryDirection.DEBIT

    @strawberry.field(description="How much moved, always positive; direction gives the sign.")
    def amount(self) -> MoneyType:
        return MoneyType.of(Money(abs(self._entry.amount), self._entry.currency))

    @strawberry.field(description="The account's balance right after this entry.")
    def balance_after(self) -> MoneyType:
        return MoneyType.of(Money(self._entry.balance_after, self._entry.currency))

    @strawberry.field(description="The transaction this entry is a leg of.")
    async def transaction(self, info: Info) -> Transaction:
        tx = await info.context.loaders.transactions.load(self._entry.transaction_id)
        assert tx is not None
        return Transaction.of(tx)


@strawberry.type(
    description="One money movement on the ledger; its entries sum to zero per currency. "
    "Visible to the owners of its wallets and to staff (SUPPORT, ADMIN)."
)
class Transaction(relay.Node):
    id: relay.NodeID[str]
    reference: str = strawberry.field(
        description="Public reference, e.g. TXN-7Q2K9F4D. Unique; look it up with "
        "transaction(reference)."
    )
    kind: ledger.TransactionKind = strawberry.field(description="What the transaction does.")
    status: ledger.TransactionStatus = strawberry.field(
        description="Where it stands; COMPLETED, FAILED and CANCELLED are final."
    )
    description: str | None = strawberry.field(
        description='A label: "Deposit", "Withdrawal", the sender\'s note on a transfer (null '
        'without one), or e.g. "NGN to USD" on a conversion.'
    )
    failure_reason: str | None = strawberry.field(
        description="Why it failed or was cancelled, in plain English; null otherwise."
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    completed_at: datetime | None = strawberry.field(
        description="When it completed; null unless status is COMPLETED."
    )
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

    @strawberry.field(
        description="What left the source wallet (or, for a deposit, what arrived). Fee included."
    )
    def amount(self) -> MoneyType:
        return MoneyType.of(self._tx.money)

    @strawberry.field(
        description="The platform's fee, in amount's currency and part of amount; zero when "
        "there is none (transfers in one currency, deposits, withdrawals)."
    )
    def fee(self) -> MoneyType:
        return MoneyType.of(Money(self._tx.fee, self._tx.currency))

    @strawberry.field(
        description="What the target received when currencies differ; null when they do not."
    )
    def converted_amount(self) -> MoneyType | None:
        t = self._tx
        if t.converted_amount is None or t.converted_currency is None:
            return None
        return MoneyType.of(Money(t.converted_amount, t.converted_currency))

    @strawberry.field(
        description="Target units per source unit that was applied (the quote's rate); null "
        "when currencies do not differ."
    )
    def exchange_rate(self) -> Decimal | None:
        return self._tx.exchange_rate

    @strawberry.field(
        metadata=cost(size=4),
        description="Every status the transaction has had, oldest first, with when and why.",
    )
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

    @strawberry.field(
        description="The other party when money moved between two wallets: the recipient "
        "when the viewer owns the source wallet, else the sender. Null for deposits and "
        "withdrawals."
    )
    async def counterparty(self, info: Info) -> Counterparty | None:
        """The other person of a transfer, seen from the viewer's side."""
        t = self._tx
        if t.source_wallet_id is None or t.target_wallet_id is None:
            return None
        viewer = await info.context.viewer()
        loaders = info.context.loaders
        # Both wallets at once: a page of transfers then reads wallets once and owners once,
        # whichever side the viewer is on.
        source, target = await loaders.wallets.load_many([t.source_wallet_id, t.target_wallet_id])
        mine = viewer is not None and source is not None and source.user_id == viewer.user.id
        other = target if mine else source
        if other is None or other.user_id is None:
            return None
        person = await loaders.users.load(other.user_id)
        if person is None:
            return None
        return Counterparty(
            display_name=ledger.display_name(person.full_name),
            email=ledger.mask_email(person.email),
        )


_EVENT_CURSOR = (
    "This event's place in the stream, opaque: pass the last one received as after when "
    "subscribing again."
)


@strawberry.type(description="A transaction's change, pushed to a subscriber.")
class TransactionEvent:
    cursor: str = strawberry.field(description=_EVENT_CURSOR)
    transaction: Transaction = strawberry.field(
        description="The transaction as this change left it."
    )


@strawberry.type(description="A wallet's change, pushed to a subscriber.")
class WalletEvent:
    cursor: str = strawberry.field(description=_EVENT_CURSOR)
    wallet: Wallet = strawberry.field(description="The wallet as this change left it.")


async def wallet_owners(info: Info, tx: ledger.Transaction) -> list[uuid.UUID | None]:
    """Who holds the transaction's wallets (what its visibility depends on)."""
    owners: list[uuid.UUID | None] = []
    loaders = info.context.loaders
    for wallet_id in (tx.source_wallet_id, tx.target_wallet_id):
        wallet = await loaders.wallets.load(wallet_id) if wallet_id else None
        if wallet is not None and wallet.merchant_id is not None:  # a payable: its merchant's
            merchant = await loaders.merchants.load(wallet.merchant_id)
            owners.append(merchant.user_id if merchant else None)
        else:
            owners.append(wallet.user_id if wallet else None)
    return owners
