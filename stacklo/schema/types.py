"""Object types, inputs and payloads for users, sessions, wallets and audit events."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from stacklo.domain import ledger, models
from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.models import KycStatus, Role, WalletStatus
from stacklo.domain.money import Money
from stacklo.domain.ports import StatementEntry
from stacklo.schema.common import (
    Connection,
    Currency,
    CurrencyCode,
    MoneyType,
    UserError,
    decode_cursor,
    encode_cursor,
    page_size,
)
from stacklo.schema.context import Info
from stacklo.schema.limits import cost

if TYPE_CHECKING:
    from stacklo.schema.fx import Portfolio


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


@strawberry.type
class User(relay.Node):
    id: relay.NodeID[str]
    email: str
    full_name: str
    phone_number: str | None
    roles: list[Role]
    kyc_status: KycStatus
    created_at: datetime

    @classmethod
    def of(cls, u: models.User) -> User:
        return cls(
            id=str(u.id),
            email=u.email,
            full_name=u.full_name,
            phone_number=u.phone_number,
            roles=list(u.roles),
            kyc_status=u.kyc_status,
            created_at=u.created_at,
        )

    @strawberry.field(metadata=cost(size=len(CurrencyCode)))
    async def wallets(self, info: Info) -> list[Wallet]:
        found = await info.context.loaders.wallets_by_user.load(uuid.UUID(self.id))
        return [Wallet.of(w) for w in found]

    @strawberry.field
    async def wallet(self, info: Info, currency: CurrencyCode) -> Wallet | None:
        found = await info.context.loaders.wallets_by_user.load(uuid.UUID(self.id))
        return next((Wallet.of(w) for w in found if w.currency is currency), None)

    @strawberry.field(description="Holdings valued at mid rates in the valuation currency.")
    async def portfolio(
        self, info: Info, valuation_currency: CurrencyCode = CurrencyCode.NGN
    ) -> Annotated[Portfolio, strawberry.lazy("stacklo.schema.fx")]:
        from stacklo.schema.fx import Portfolio

        found = await info.context.loaders.wallets_by_user.load(uuid.UUID(self.id))
        return Portfolio.of(
            await info.context.services.exchange.portfolio(found, valuation_currency)
        )

    @strawberry.field
    async def transactions(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: TransactionFilter | None = None,
    ) -> Connection[Transaction]:
        limit = first_arg(info, first)
        parts = decode_cursor(after, 2)
        try:
            key = (datetime.fromisoformat(parts[0]), uuid.UUID(parts[1])) if parts else None
        except ValueError:
            raise DomainError(
                ErrorCode.INVALID_INPUT, "after is not a valid cursor", ("after",)
            ) from None
        f = filter or TransactionFilter()
        async with info.context.services.uow(read_only=True) as uow:
            page = await uow.ledger.for_user(
                uuid.UUID(self.id),
                first=limit,
                after=key,
                kinds=f.kinds,
                statuses=f.statuses,
                currency=f.currency,
                created_after=f.created_after,
                created_before=f.created_before,
            )
        return Connection[Transaction].build(
            [
                (encode_cursor(t.created_at.isoformat(), t.id), Transaction.of(t))
                for t in page.items
            ],
            has_next=page.has_next,
            has_previous=after is not None,
        )


@strawberry.type
class AuditEvent(relay.Node):
    id: relay.NodeID[str]
    action: str = strawberry.field(
        description="e.g. user.login, transfer.completed, wallet.frozen."
    )
    target_type: str | None
    target_id: str | None
    ip_address: str | None
    metadata: JSON
    created_at: datetime
    actor_id: strawberry.Private[uuid.UUID | None]

    @classmethod
    def of(cls, e: models.AuditEvent) -> AuditEvent:
        assert e.id is not None
        assert e.created_at is not None
        return cls(
            id=str(e.id),
            action=e.action,
            target_type=e.target_type,
            target_id=e.target_id,
            ip_address=e.ip_address,
            metadata=JSON(e.metadata),
            created_at=e.created_at,
            actor_id=e.actor_id,
        )

    @strawberry.field
    async def actor(self, info: Info) -> User | None:
        if self.actor_id is None:
            return None
        user = await info.context.loaders.users.load(self.actor_id)
        return User.of(user) if user else None


def first_arg(info: Info, first: int | None) -> int:
    s = info.context.services.settings
    return page_size(first, s.default_page_size, s.max_page_size)


strawberry.enum(ledger.TransactionKind, name="TransactionKind")
strawberry.enum(ledger.TransactionStatus, name="TransactionStatus")


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
        if viewer.user.is_staff:
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


UserConnection = Connection[User]
AuditEventConnection = Connection[AuditEvent]


@strawberry.type
class Session:
    access_token: str
    refresh_token: str
    token_type: str
    expires_at: datetime


# ------------------------------------------------------------------ inputs


@strawberry.input
class SignUpInput:
    email: str
    password: str
    full_name: str
    phone_number: str | None = None
    home_currency: Annotated[
        CurrencyCode, strawberry.argument(description="Currency of the wallet opened at sign-up.")
    ] = CurrencyCode.NGN


@strawberry.input
class LogInInput:
    email: str
    password: str


@strawberry.input
class RefreshSessionInput:
    refresh_token: str


@strawberry.input
class LogOutInput:
    refresh_token: str


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str


@strawberry.input
class OpenWalletInput:
    currency: CurrencyCode


# ---------------------------------------------------------------- payloads


@strawberry.type
class AuthPayload:
    session: Session | None = None
    user: User | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)

    @classmethod
    def of(cls, issued: models.IssuedSession) -> AuthPayload:
        return cls(
            session=Session(
                access_token=issued.access_token,
                refresh_token=issued.refresh_token,
                token_type="Bearer",
                expires_at=issued.expires_at,
            ),
            user=User.of(issued.user),
        )


@strawberry.type
class LogOutPayload:
    success: bool = False
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ChangePasswordPayload:
    success: bool = False
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class OpenWalletPayload:
    wallet: Wallet | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class StartDepositInput:
    wallet_id: strawberry.ID
    amount: Decimal
    idempotency_key: str


@strawberry.type
class StartDepositPayload:
    transaction: Transaction | None = None
    payment_url: str | None = strawberry.field(
        default=None, description="Where the payer completes the payment with the provider."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class BankAccountInput:
    bank_code: str
    account_number: str
    account_name: str


@strawberry.input
class RequestWithdrawalInput:
    wallet_id: strawberry.ID
    amount: Decimal
    bank_account: BankAccountInput
    idempotency_key: str


@strawberry.type
class RequestWithdrawalPayload:
    transaction: Transaction | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="Exactly one of the fields.")
class RecipientInput:
    email: str | None = None
    phone_number: str | None = None
    wallet_id: strawberry.ID | None = None


@strawberry.input
class SendMoneyInput:
    from_wallet_id: strawberry.ID
    to: RecipientInput
    amount: Decimal
    quote_id: strawberry.ID | None = strawberry.field(
        default=None, description="Required when the recipient's wallet is in another currency."
    )
    note: str | None = None
    idempotency_key: str


@strawberry.type
class SendMoneyPayload:
    transaction: Transaction | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class FreezeWalletInput:
    wallet_id: strawberry.ID
    frozen: bool
    reason: str


@strawberry.type
class FreezeWalletPayload:
    wallet: Wallet | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="A transaction's change, pushed to a subscriber.")
class TransactionEvent:
    cursor: str
    transaction: Transaction


@strawberry.type(description="A wallet's change, pushed to a subscriber.")
class WalletEvent:
    cursor: str
    wallet: Wallet
