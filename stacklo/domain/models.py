"""Entities as plain dataclasses; the data layer maps rows onto them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Generic, TypeVar

from stacklo.domain.money import CurrencyCode, Money


class Role(Enum):
    CUSTOMER = "CUSTOMER"
    MERCHANT = "MERCHANT"
    SUPPORT = "SUPPORT"
    ADMIN = "ADMIN"


STAFF_ROLES = frozenset({Role.SUPPORT, Role.ADMIN})


class KycStatus(Enum):
    PENDING = "PENDING"
    SUBMITTED = "SUBMITTED"
    VERIFIED = "VERIFIED"
    REJECTED = "REJECTED"


class WalletStatus(Enum):
    ACTIVE = "ACTIVE"
    FROZEN = "FROZEN"


class AccountKind(Enum):
    """What a ledger account is. Customer wallets are accounts like the platform's own."""

    CUSTOMER = "CUSTOMER"
    PROVIDER_CLEARING = "PROVIDER_CLEARING"
    FEES = "FEES"
    FX_LIQUIDITY = "FX_LIQUIDITY"
    BNPL_RECEIVABLE = "BNPL_RECEIVABLE"
    MERCHANT_PAYABLE = "MERCHANT_PAYABLE"


@dataclass(slots=True)
class User:
    id: uuid.UUID
    email: str
    full_name: str
    phone_number: str | None
    password_hash: str
    roles: list[Role]
    kyc_status: KycStatus
    created_at: datetime
    kyc_may_resubmit: bool = True  # False once a KYC rejection was final

    @property
    def is_staff(self) -> bool:
        return any(r in STAFF_ROLES for r in self.roles)


@dataclass(slots=True)
class Wallet:
    id: uuid.UUID
    user_id: uuid.UUID | None
    currency: CurrencyCode
    balance: Decimal
    held: Decimal
    status: WalletStatus
    created_at: datetime
    kind: AccountKind = AccountKind.CUSTOMER
    # A merchant payable's merchant (None for every other account).
    merchant_id: uuid.UUID | None = None

    @classmethod
    def open(cls, user_id: uuid.UUID, code: CurrencyCode, now: datetime) -> Wallet:
        return cls(uuid.uuid4(), user_id, code, Decimal(0), Decimal(0), WalletStatus.ACTIVE, now)

    @property
    def balance_money(self) -> Money:
        return Money(self.balance, self.currency).quantized()

    @property
    def held_money(self) -> Money:
        return Money(self.held, self.currency).quantized()

    @property
    def available_money(self) -> Money:
        return Money(self.balance - self.held, self.currency).quantized()


@dataclass(slots=True)
class Session:
    """A refresh-token family: one sign-in on one device."""

    id: uuid.UUID
    user_id: uuid.UUID
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    user_agent: str | None = None  # the device that signed in


@dataclass(slots=True)
class RefreshToken:
    id: uuid.UUID
    session_id: uuid.UUID
    token_hash: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RequestMeta:
    """Who asked, from where: recorded with every audit event."""

    ip_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


#: What the worker's own changes record as their origin.
WORKER = RequestMeta(user_agent="stacklo-worker")


@dataclass(slots=True)
class AuditEvent:
    action: str
    actor_id: uuid.UUID | None
    target_type: str | None
    target_id: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    ip_address: str | None = None
    request_id: str | None = None
    id: int | None = None
    created_at: datetime | None = None


def audit(
    action: str,
    meta: RequestMeta,
    *,
    actor_id: uuid.UUID | None,
    target_type: str | None = None,
    target_id: object = None,
    **metadata: object,
) -> AuditEvent:
    """An audit record of ``action`` by ``actor_id``, stamped with where the request came from."""
    return AuditEvent(
        action=action,
        actor_id=actor_id,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        metadata=dict(metadata),
        ip_address=meta.ip_address,
        request_id=meta.request_id,
    )


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """What sign-up, log-in and refresh hand back to the client."""

    access_token: str
    refresh_token: str
    expires_at: datetime
    user: User


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a keyset-paginated list; ``items`` carry their own sort keys."""

    items: list[T]
    has_next: bool


@dataclass(frozen=True, slots=True)
class Viewer:
    """The authenticated caller: the user and the sign-in session the token belongs to."""

    user: User
    session_id: uuid.UUID
    token_expires_at: datetime


@dataclass(frozen=True, slots=True)
class PlatformStats:
    user_count: int
    active_merchant_count: int
    transaction_count_24h: int
    volume_24h: list[Money]
    active_installment_plans: int
    overdue_installments: int
    transfers_last_minute: int
    transactions_last_hour: int
    failed_transactions_last_hour: int
    pending_kyc: int
    open_checkouts: int
    generated_at: datetime
