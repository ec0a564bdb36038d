"""Users, sessions, the audit log, and the inputs and payloads of signing in and KYC review."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from stacklo.domain import models
from stacklo.domain.models import KycStatus, Role
from stacklo.schema.common import (
    Connection,
    CurrencyCode,
    UserError,
    decode_time_cursor,
    encode_cursor,
)
from stacklo.schema.context import Info
from stacklo.schema.fx import Portfolio
from stacklo.schema.ledger import Transaction, TransactionFilter, Wallet, first_arg
from stacklo.schema.limits import cost


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
    ) -> Portfolio:
        found = await info.context.loaders.wallets_by_user.load(uuid.UUID(self.id))
        return Portfolio.of(await info.context.services.rates.portfolio(found, valuation_currency))

    @strawberry.field
    async def transactions(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        filter: TransactionFilter | None = None,
    ) -> Connection[Transaction]:
        limit = first_arg(info, first)
        key = decode_time_cursor(after)
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


UserConnection = Connection[User]
AuditEventConnection = Connection[AuditEvent]


@strawberry.type
class Session:
    access_token: str
    refresh_token: str
    token_type: str
    expires_at: datetime


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


@strawberry.input
class ReviewKycInput:
    user_id: strawberry.ID
    approve: bool
    reason: str | None = None


@strawberry.type
class ReviewKycPayload:
    user: User | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)
