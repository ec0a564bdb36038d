"""What the domain needs from the outside world; ``data`` and ``auth`` implement these."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from types import TracebackType
from typing import Any, BinaryIO, Protocol, Self, runtime_checkable

from stacklo.domain.borrower import CreditProfile
from stacklo.domain.commerce import Checkout, CheckoutStatus, Merchant, SalesSummary
from stacklo.domain.credit import Decision
from stacklo.domain.events import OutboxEvent
from stacklo.domain.fx import Quote, Snapshot
from stacklo.domain.identity import KycDocument
from stacklo.domain.installments import Installment, Plan, PlanStatus
from stacklo.domain.ledger import (
    Booking,
    StatusChange,
    Transaction,
    TransactionKind,
    TransactionStatus,
)
from stacklo.domain.models import (
    AccountKind,
    AuditEvent,
    KycStatus,
    Page,
    PlatformStats,
    RefreshToken,
    Role,
    Session,
    User,
    Wallet,
)
from stacklo.domain.money import CurrencyCode, Money
from stacklo.domain.notices import Contact, Delivery, StoredNotification


class Clock(Protocol):
    def __call__(self) -> datetime: ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...
    async def verify(self, password_hash: str, password: str) -> bool: ...
    def needs_rehash(self, password_hash: str) -> bool: ...


class TokenIssuer(Protocol):
    def issue_access(
        self, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime
    ) -> tuple[str, datetime]: ...
    def new_refresh(self) -> tuple[str, str]:
        """A fresh opaque refresh token and the hash to store for it."""
        ...

    def hash_refresh(self, token: str) -> str: ...


class UserRepository(Protocol):
    async def add(self, user: User) -> None:
        """Raises Conflict("email") or Conflict("phone_number")."""
        ...

    async def get(self, user_id: uuid.UUID, lock: bool = False) -> User | None:
        """``lock``: the row stays locked until commit (a user's KYC changes one at a time)."""
        ...

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[User]: ...
    async def get_by_email(self, email: str) -> User | None: ...
    async def get_by_phone(self, phone_number: str) -> User | None: ...
    async def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None: ...
    async def set_roles(self, user_id: uuid.UUID, roles: Sequence[Role]) -> None: ...
    async def set_kyc_status(
        self, user_id: uuid.UUID, status: KycStatus, may_resubmit: bool = True
    ) -> None: ...
    async def page(
        self,
        *,
        first: int,
        after: tuple[datetime, uuid.UUID] | None,
        search: str | None,
        kyc_status: KycStatus | None,
    ) -> Page[User]: ...


class KycDocumentRepository(Protocol):
    async def add(self, document: KycDocument) -> None: ...
    async def get(self, document_id: uuid.UUID) -> KycDocument | None: ...
    async def for_user(self, user_id: uuid.UUID) -> list[KycDocument]:
        """Oldest first."""
        ...

    async def for_users(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[KycDocument]]:
        """Each user's, oldest first (a user without documents is absent)."""
        ...

    async def save_review(self, documents: Sequence[KycDocument]) -> None:
        """Store each document's status, reason, note, may_resubmit and reviewer."""
        ...


class SessionRepository(Protocol):
    async def add(self, session: Session, token: RefreshToken) -> None: ...
    async def add_token(self, token: RefreshToken) -> None: ...
    async def devices_seen(self, user_id: uuid.UUID, user_agent: str | None) -> tuple[int, bool]:
        """How many sessions the user ever had, and whether one was from this device."""
        ...

    async def token_for_update(self, token_hash: str) -> tuple[RefreshToken, Session] | None: ...
    async def mark_used(self, token_id: uuid.UUID, at: datetime) -> None: ...
    async def revoke(self, session_id: uuid.UUID, at: datetime, reason: str) -> bool: ...
    async def revoke_others(
        self, user_id: uuid.UUID, keep: uuid.UUID | None, at: datetime, reason: str
    ) -> int: ...
    async def ended(self, session_ids: Sequence[uuid.UUID], now: datetime) -> set[uuid.UUID]:
        """Which of these sessions are revoked, expired or gone (for open sockets)."""
        ...

    async def active_viewer(
        self, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime
    ) -> User | None:
        """The user, if that session is still live: one query per authenticated request."""
        ...


class WalletRepository(Protocol):
    async def add(self, wallet: Wallet) -> None:
        """Raises Conflict("wallet") when the user already has one in that currency."""
        ...

    async def get(self, wallet_id: uuid.UUID) -> Wallet | None: ...
    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Wallet]: ...
    async def set_status(self, wallet: Wallet) -> None:
        """Write ``wallet.status`` (the caller holds the row locked)."""
        ...

    async def for_users(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Wallet]]: ...
    async def for_user_currency(
        self, user_id: uuid.UUID, currency: CurrencyCode
    ) -> Wallet | None: ...


class MerchantRepository(Protocol):
    async def add(self, merchant: Merchant) -> None:
        """Raises Conflict("merchant") when the user already has one."""
        ...

    async def get(self, merchant_id: uuid.UUID, *, for_update: bool = False) -> Merchant | None: ...
    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Merchant]: ...
    async def for_users(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Merchant]: ...
    async def save(self, merchant: Merchant) -> None:
        """Status and review reason (the caller holds the row locked)."""
        ...

    async def payable_balance(self, merchant_id: uuid.UUID) -> Decimal:
        """The sum of the merchant's payable shards."""
        ...

    async def sales(
        self, merchant: Merchant, start: datetime | None, end: datetime | None
    ) -> SalesSummary:
        """Checkouts paid in [start, end): counts and sums, refunds of them included."""
        ...


class CheckoutRepository(Protocol):
    async def add(self, checkout: Checkout) -> None:
        """Raises Conflict("reference") when the merchant already used the reference."""
        ...

    async def get(self, checkout_id: uuid.UUID, *, for_update: bool = False) -> Checkout | None: ...
    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Checkout]: ...
    async def by_reference(self, merchant_id: uuid.UUID, reference: str) -> Checkout | None: ...
    async def save(self, checkout: Checkout) -> None:
        """Everything that changes after creation (the caller holds the row locked)."""
        ...

    async def add_refund(self, checkout_id: uuid.UUID, transaction_id: uuid.UUID) -> None: ...
    async def refunds(self, checkout_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        """Each checkout's refund transactions, oldest first."""
        ...

    async def page(
        self,
        merchant_id: uuid.UUID,
        *,
        first: int,
        after: tuple[datetime, uuid.UUID] | None,
        status: CheckoutStatus | None,
        now: datetime,
    ) -> Page[Checkout]: ...
    async def expire(self, now: datetime) -> int:
        """Write EXPIRED on OPEN checkouts whose time has passed; how many."""
        ...

    async def merchants_to_settle(self, cutoff: datetime) -> list[uuid.UUID]: ...
    async def unsettled_for_update(
        self, merchant_id: uuid.UUID, cutoff: datetime
    ) -> list[Checkout]:
        """Paid before ``cutoff`` and not settled, locked in id order (re-checked after the
        lock: what another run settled meanwhile is not returned)."""
        ...

    async def mark_settled(
        self, ids: Sequence[uuid.UUID], at: datetime, transaction_id: uuid.UUID | None
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class BorrowerFacts:
    """What a credit decision is made from, read in one statement (money in ``currency``)."""

    account_created_at: datetime
    inflow_90d: Decimal
    average_balance_90d: Decimal
    installments_on_time: int
    installments_late: int
    plans_defaulted: int


class CreditRepository(Protocol):
    async def profile(
        self, user_id: uuid.UUID, *, for_update: bool = False
    ) -> CreditProfile | None: ...
    async def save_profile(self, profile: CreditProfile) -> None: ...
    async def add_decision(
        self, user_id: uuid.UUID, decision: Decision, inputs: Mapping[str, Any], at: datetime
    ) -> None: ...
    async def facts(
        self, user_id: uuid.UUID, currency: CurrencyCode, since: datetime
    ) -> BorrowerFacts: ...


class PlanRepository(Protocol):
    async def add(self, plan: Plan, wallet_id: uuid.UUID) -> None:
        """The plan and its installments; Conflict("plan") if the checkout has one."""
        ...

    async def get(self, plan_id: uuid.UUID, *, for_update: bool = False) -> Plan | None: ...
    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Plan]: ...
    async def for_checkout(
        self, checkout_id: uuid.UUID, *, for_update: bool = False
    ) -> Plan | None: ...
    async def for_checkouts(self, checkout_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Plan]:
        """The plans paying these checkouts, by checkout id (a checkout has at most one)."""
        ...

    async def of_installment(self, installment_id: uuid.UUID) -> uuid.UUID | None:
        """The plan an installment belongs to."""
        ...

    async def wallet_of(self, plan_id: uuid.UUID) -> uuid.UUID:
        """The wallet collections are taken from."""
        ...

    async def save(self, plan: Plan) -> None:
        """The plan's status and every installment's amounts and state (rows locked)."""
        ...

    async def page(
        self,
        user_id: uuid.UUID,
        *,
        first: int,
        after: tuple[datetime, uuid.UUID] | None,
        status: PlanStatus | None,
    ) -> Page[Plan]: ...
    async def outstanding_principal(self, user_id: uuid.UUID) -> Decimal:
        """Principal still owed on the user's ACTIVE plans."""
        ...

    async def needing_attention(self, today: date, remind_until: date) -> list[uuid.UUID]:
        """ACTIVE plans with an unpaid installment due by ``today``, or one due by
        ``remind_until`` not reminded yet."""
        ...

    async def remind(
        self, user_id: uuid.UUID, installment: Installment, payload: Mapping[str, Any]
    ) -> None:
        """Mark the installment reminded, with an outbox event for the user."""
        ...


class NotificationRepository(Protocol):
    async def position(self, reader: str) -> int: ...
    async def advance(self, reader: str, position: int) -> None: ...
    async def events_after(
        self, position: int, topics: Sequence[str], limit: int
    ) -> list[OutboxEvent]: ...
    async def owners(self, wallet_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]: ...
    async def merchant_names(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]: ...
    async def contacts(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Contact]: ...
    async def add(
        self,
        event_id: int | None,
        user_id: uuid.UUID,
        kind: str,
        title: str,
        body: str,
        data: dict[str, str],
        at: datetime,
    ) -> uuid.UUID | None: ...
    async def add_delivery(
        self, notification_id: uuid.UUID, channel: str, destination: str, at: datetime
    ) -> None: ...
    async def due(self, now: datetime, limit: int) -> list[Delivery]: ...
    async def delivered(self, delivery_id: int, at: datetime) -> None: ...
    async def failed(self, delivery_id: int, reason: str, retry_at: datetime | None) -> None: ...
    async def page(
        self,
        user_id: uuid.UUID,
        *,
        first: int,
        after: tuple[datetime, uuid.UUID] | None,
        unread_only: bool,
    ) -> Page[StoredNotification]: ...
    async def get(self, notification_id: uuid.UUID) -> StoredNotification | None: ...
    async def unread(self, user_id: uuid.UUID) -> int: ...
    async def mark_read(
        self, user_id: uuid.UUID, ids: Sequence[uuid.UUID] | None, at: datetime
    ) -> int: ...
    async def preferences(self, user_id: uuid.UUID) -> tuple[bool, bool]: ...
    async def set_preferences(self, user_id: uuid.UUID, email: bool, sms: bool) -> None: ...


class PlatformFiguresStore(Protocol):
    async def stats(self, now: datetime) -> PlatformStats: ...


class AuditLog(Protocol):
    async def record(self, event: AuditEvent) -> None: ...
    async def get(self, event_id: int) -> AuditEvent | None: ...
    async def page(
        self, *, first: int, after: int | None, action: str | None, actor_id: uuid.UUID | None
    ) -> Page[AuditEvent]: ...


class StatementEntry(Protocol):
    id: int
    transaction_id: uuid.UUID
    wallet_id: uuid.UUID
    currency: CurrencyCode
    amount: Decimal
    balance_after: Decimal
    created_at: datetime


class LedgerRepository(Protocol):
    async def lock_wallets(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Wallet]: ...
    async def platform_account(
        self, kind: AccountKind, currency: CurrencyCode, shard: int | None = None
    ) -> uuid.UUID: ...
    async def merchant_payable(
        self, merchant_id: uuid.UUID, currency: CurrencyCode, shard: int | None = None
    ) -> uuid.UUID:
        """One shard of the merchant's payable (a random one unless named), made on first use."""
        ...

    async def merchant_payables(
        self, merchant_id: uuid.UUID, currency: CurrencyCode
    ) -> list[uuid.UUID]:
        """Every shard of the merchant's payable, in id order (made if none exists yet)."""
        ...

    async def book(self, booking: Booking) -> None:
        """Lock, check and save the accounts, and write the transaction (new or its next
        status) with its history, entries, events, audit record and idempotency answer, in
        one statement. Raises ``Refused`` (funds, frozen, cap) or ``KeyTaken`` (its claim)."""
        ...

    async def annotate(self, tx: Transaction) -> None:
        """Metadata only (a provider's transfer code, a review note): nothing clients see."""
        ...

    async def get(self, tx_id: uuid.UUID) -> Transaction | None: ...
    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Transaction]: ...
    async def by_reference(
        self, reference: str, *, for_update: bool = False
    ) -> Transaction | None: ...
    async def in_flight(
        self, kind: TransactionKind, before: datetime, limit: int
    ) -> list[Transaction]:
        """PROCESSING deposits or withdrawals created before ``before`` and not marked for
        review, the least recently touched (annotated, or changed) first."""
        ...

    async def history(self, tx_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[StatusChange]]: ...
    async def entries_of(
        self, tx_ids: Sequence[uuid.UUID]
    ) -> Mapping[uuid.UUID, Sequence[StatementEntry]]: ...
    async def entry(self, entry_id: int) -> StatementEntry | None: ...
    async def statement(
        self, wallet_id: uuid.UUID, *, first: int, after: int | None
    ) -> Page[Any]: ...
    async def for_user(
        self,
        user_id: uuid.UUID,
        *,
        first: int,
        after: tuple[datetime, uuid.UUID] | None,
        kinds: Sequence[TransactionKind] | None = None,
        statuses: Sequence[TransactionStatus] | None = None,
        currency: CurrencyCode | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> Page[Transaction]: ...
    async def outgoing_on(self, user_id: uuid.UUID, currency: CurrencyCode, day: date) -> Decimal:
        """What the user sent or withdrew in ``currency`` on ``day`` (UTC), failed ones not
        counted."""
        ...

    async def record_provider_event(
        self,
        provider: str,
        kind: str,
        reference: str,
        provider_id: str,
        payload: dict[str, Any],
        outcome: str,
    ) -> bool: ...


class IdempotencyStore(Protocol):
    async def claim(
        self, user_id: uuid.UUID, key: str, operation: str, request_hash: str
    ) -> tuple[str, str, dict[str, Any]] | None: ...
    async def find(self, user_id: uuid.UUID, key: str) -> tuple[str, str, dict[str, Any]] | None:
        """The key's (operation, hash, response) if a call committed it, without claiming."""
        ...

    async def save(self, user_id: uuid.UUID, key: str, response: dict[str, Any]) -> None: ...


class OutboxStore(Protocol):
    async def claiming(self) -> None:
        """Claims one at a time: wait until no other transaction is claiming, then claim."""
        ...

    async def claim(self, limit: int) -> list[OutboxEvent]: ...
    async def positioned_unpublished(self, limit: int) -> list[OutboxEvent]: ...
    async def mark_published(self, events: Sequence[OutboxEvent]) -> None: ...
    async def oldest_unpublished(self) -> datetime | None: ...
    async def prune(self, older_than: datetime) -> int: ...
    async def pruned_through(self) -> int: ...
    async def last_position(self) -> int: ...
    async def notify(self, user_id: uuid.UUID, kind: str, data: Mapping[str, Any]) -> None:
        """A notice for one user (a notification event with no change of its own)."""
        ...

    async def replay(
        self,
        user_id: uuid.UUID | None,
        topic: str,
        after: int,
        *,
        until: int | None = None,
        limit: int = 1000,
    ) -> list[OutboxEvent]: ...

    async def position_of(self, topic: str, aggregate_id: str, user_id: uuid.UUID) -> int | None:
        """Where ``user_id``'s event of ``topic`` about ``aggregate_id`` sits in the stream;
        None when there is none (unknown, someone else's, or pruned)."""
        ...


class RateHistory(Protocol):
    async def add(self, snapshot: Snapshot) -> None:
        """The reading and its outbox event for rateUpdated subscribers."""
        ...

    async def prune(self, older_than: datetime, batch: int = 50_000) -> int: ...
    async def latest(self) -> Snapshot | None: ...


class QuoteRepository(Protocol):
    async def add(self, quote: Quote) -> None: ...
    async def get(self, quote_id: uuid.UUID, *, for_update: bool = False) -> Quote | None: ...
    async def mark_used(self, quote: Quote) -> None: ...


class Permissions(Protocol):
    """What a role may do beyond its own data (the casbin policy)."""

    def allowed(self, roles: Iterable[Role], resource: str, action: str) -> bool: ...


class UnitOfWork(Protocol):
    """One database transaction. Nothing is kept unless ``commit`` is called."""

    # Read-only members, so an implementation may declare its concrete repository types.
    @property
    def users(self) -> UserRepository: ...
    @property
    def sessions(self) -> SessionRepository: ...
    @property
    def wallets(self) -> WalletRepository: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def ledger(self) -> LedgerRepository: ...
    @property
    def idempotency(self) -> IdempotencyStore: ...
    @property
    def outbox(self) -> OutboxStore: ...
    @property
    def rates(self) -> RateHistory: ...
    @property
    def quotes(self) -> QuoteRepository: ...
    @property
    def merchants(self) -> MerchantRepository: ...
    @property
    def checkouts(self) -> CheckoutRepository: ...
    @property
    def credit(self) -> CreditRepository: ...
    @property
    def plans(self) -> PlanRepository: ...
    @property
    def platform(self) -> PlatformFiguresStore: ...
    @property
    def notifications(self) -> NotificationRepository: ...
    @property
    def kyc_documents(self) -> KycDocumentRepository: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, read_only: bool = False, single_write: bool = False) -> UnitOfWork:
        """``read_only``: no transaction (each statement sees the latest commit); no commit.
        ``single_write``: reads as ``read_only``, and one write at most, atomic on its own: a
        ``book`` that claims its idempotency key (no BEGIN or COMMIT round trips)."""
        ...


# ------------------------------------------------------------------ payment provider


class ProviderUnavailable(Exception):
    """The provider could not be reached, answered 5xx, timed out, or its circuit is open."""


class ProviderRejected(Exception):
    """The provider answered and said no (4xx): bad account number, unsupported currency..."""


class ProviderOutcomeUnknown(ProviderUnavailable):
    """The request may have reached the provider and its answer was lost (a timeout, a dropped
    connection, a 5xx): whether it acted is unknown until its webhook or a lookup says."""


class PayoutStatus(Enum):
    """What the provider says became of a payout, looked up by our reference."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REVERSED = "REVERSED"
    PENDING = "PENDING"
    NOT_FOUND = "NOT_FOUND"


@dataclass(frozen=True, slots=True)
class BankAccount:
    bank_code: str
    account_number: str
    account_name: str


class ProviderEventKind(Enum):
    """What a provider's event says, whatever the provider calls it (its adapter maps names)."""

    DEPOSIT_SUCCEEDED = "DEPOSIT_SUCCEEDED"
    DEPOSIT_FAILED = "DEPOSIT_FAILED"
    PAYOUT_SUCCEEDED = "PAYOUT_SUCCEEDED"
    PAYOUT_FAILED = "PAYOUT_FAILED"
    PAYOUT_REVERSED = "PAYOUT_REVERSED"

    @property
    def applies_to(self) -> TransactionKind:
        if self.name.startswith("DEPOSIT"):
            return TransactionKind.DEPOSIT
        return TransactionKind.WITHDRAWAL


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """A verified webhook, in provider-neutral terms.

    ``name`` is the provider's own (``charge.success`` for Paystack): events are deduplicated
    by it. ``amount_minor`` is in the currency's minor unit, as providers send it (kobo,
    cents).
    """

    name: str
    kind: ProviderEventKind
    reference: str
    amount_minor: int
    currency: str
    provider_id: str
    raw: dict[str, Any]


class PaymentProvider(Protocol):
    name: str

    async def initialize_deposit(self, reference: str, amount: Money, email: str) -> str:
        """Register a payment and return the URL where the payer completes it."""
        ...

    async def payout(self, reference: str, amount: Money, account: BankAccount, reason: str) -> str:
        """Start a transfer to a bank account; return the provider's transfer code.

        The outcome arrives later as a webhook (transfer.success / failed / reversed).
        """
        ...


@runtime_checkable
class PayoutLookup(Protocol):
    """A provider that can say what became of a payout whose answer was lost.

    ``NOT_FOUND`` is believed only once the payout is older than ``unknown_outcome_grace``: a
    request the caller gave up on may still be on its way through the provider until then.
    """

    unknown_outcome_grace: timedelta

    async def payout_status(self, reference: str) -> PayoutStatus: ...


@dataclass(frozen=True, slots=True)
class DepositVerification:
    """What the provider says about a deposit, looked up by our reference.

    ``status`` is the provider's word (Paystack's ``success``, ``failed``, ``abandoned``,
    ``ongoing``, ``pending``, ``reversed``...); only ``success`` means the money arrived, and
    then only for ``amount_minor`` in ``currency``, which the caller compares with what it
    expected.
    """

    reference: str
    status: str
    amount_minor: int
    currency: str
    provider_id: str

    @property
    def succeeded(self) -> bool:
        return self.status == "success"


@runtime_checkable
class DepositLookup(Protocol):
    """A provider that can say what became of a deposit whose webhook never came."""

    async def verify_deposit(self, reference: str) -> DepositVerification: ...


# ------------------------------------------------------------------ rates


class RateFeed(Protocol):
    """Where mid rates come from. ``fetch`` raises ProviderUnavailable when it cannot answer."""

    name: str

    async def fetch(self, now: datetime) -> Snapshot:
        """The latest mids of the feed's direct pairs (see ``domain/fx.py``), stamped ``now``
        unless the feed says when they were observed."""
        ...


class RateCache(Protocol):
    """The latest snapshot, shared by every process (Redis) or kept in this one (memory)."""

    async def get(self) -> Snapshot | None: ...
    async def put(self, snapshot: Snapshot) -> None: ...


# ------------------------------------------------------------------ object storage


class ObjectStorage(Protocol):
    """Where uploaded files live: S3 (``integrations/storage.py``), or a local folder in the
    embedded default. Keys are chosen by the caller (``kyc/{user}/{uuid}``)."""

    async def put(self, key: str, body: BinaryIO, size: int, content_type: str) -> None:
        """Store ``size`` bytes read from ``body`` (a file positioned at 0) under ``key``,
        streamed, not read whole into memory."""
        ...

    async def delete(self, key: str) -> None: ...

    async def url(self, key: str, expires_in: int, file_name: str, content_type: str) -> str:
        """A URL anyone holding it may GET the file from until ``expires_in`` seconds pass:
        S3's presigned GET, or a Stacklo URL whose signature the local adapter checks."""
        ...

    async def aclose(self) -> None:
        """Release connections (the app's lifespan calls it once, at the end)."""
        ...


# ------------------------------------------------------------------ email and SMS


class DeliveryFailed(Exception):
    """A message was not delivered. ``temporary``: worth trying again later (a timeout, a
    4xx-temporary or 5xx answer); otherwise the provider refused it for good."""

    def __init__(self, reason: str, *, temporary: bool):
        super().__init__(reason)
        self.reason = reason
        self.temporary = temporary


class EmailSender(Protocol):
    async def send(self, to: str, subject: str, text: str, html: str) -> None:
        """Raises DeliveryFailed."""
        ...


class SmsSender(Protocol):
    async def send(self, to: str, text: str) -> None:
        """Raises DeliveryFailed."""
        ...
