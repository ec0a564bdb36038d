"""Users, sessions, the audit log, and the inputs and payloads of signing in and KYC review."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from stacklo.domain import models
from stacklo.domain.errors import Forbidden
from stacklo.domain.identity import MAX_DOCUMENTS
from stacklo.domain.installments import PlanStatus
from stacklo.domain.models import KycStatus, Role
from stacklo.schema.commerce import InstallmentPlan, Merchant
from stacklo.schema.common import (
    AFTER,
    FIRST,
    USER_ERRORS,
    Connection,
    CurrencyCode,
    UserError,
    decode_time_cursor,
    encode_cursor,
)
from stacklo.schema.context import Info
from stacklo.schema.fx import Portfolio
from stacklo.schema.kyc import KycDocument, KycDocumentDecisionInput
from stacklo.schema.ledger import Transaction, TransactionFilter, Wallet, first_arg
from stacklo.schema.lending import CreditProfile
from stacklo.schema.limits import cost, cursors
from stacklo.schema.notifications import Notification, NotificationPreferences


@strawberry.type(
    description="A person's account. Visible to the person and to staff (SUPPORT, ADMIN)."
)
class User(relay.Node):
    id: relay.NodeID[str]
    email: str = strawberry.field(description="The sign-in email, lowercased.")
    full_name: str = strawberry.field(description="The name given at sign-up.")
    phone_number: str | None = strawberry.field(
        description="International format, e.g. +2348012345678; null when none was given."
    )
    roles: list[Role] = strawberry.field(
        description="What the account may do; CUSTOMER for every account from signUp."
    )
    kyc_status: KycStatus = strawberry.field(
        description="Identity verification: until VERIFIED, daily send-and-withdraw caps apply "
        "and crypto cannot be quoted."
    )
    created_at: datetime = strawberry.field(description="When the account was created.")
    kyc_may_resubmit: bool = strawberry.field(
        description="False when a KYC rejection was final: uploadKycDocument is refused "
        "(INVALID_STATE). True otherwise."
    )

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
            kyc_may_resubmit=u.kyc_may_resubmit,
        )

    @strawberry.field(
        metadata=cost(size=MAX_DOCUMENTS),
        description="The identity documents the user uploaded, oldest first (at most 20). "
        "The user's and staff's only; FORBIDDEN for anyone else.",
    )
    async def kyc_documents(self, info: Info) -> list[KycDocument]:
        owner = uuid.UUID(self.id)
        viewer = await info.context.viewer()
        if not info.context.services.visibility.kyc_documents(viewer, owner):
            raise Forbidden()
        found = await info.context.loaders.kyc_documents.load(owner)
        return [KycDocument.of(d) for d in found]

    @strawberry.field(
        metadata=cost(size=len(CurrencyCode)),
        description="The user's wallets, oldest first; at most one per currency.",
    )
    async def wallets(self, info: Info) -> list[Wallet]:
        found = await info.context.loaders.wallets_by_user.load(uuid.UUID(self.id))
        return [Wallet.of(w) for w in found]

    @strawberry.field(
        description="Credit for paying in installments: NONE with zero credit until the user "
        "applies (applyForCredit)."
    )
    async def credit_profile(self, info: Info) -> CreditProfile:
        found = await info.context.loaders.users.load(uuid.UUID(self.id))
        assert found is not None
        return CreditProfile.of(await info.context.services.credit.standing(found))

    @strawberry.field(
        description="The user's installment plans, newest first.",
        metadata=cursors(decode_time_cursor),
    )
    async def installment_plans(
        self,
        info: Info,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
        status: Annotated[
            PlanStatus | None, strawberry.argument(description="Only plans in this status.")
        ] = None,
    ) -> Connection[InstallmentPlan]:
        async with info.context.services.uow(read_only=True) as uow:
            page = await uow.plans.page(
                uuid.UUID(self.id),
                first=first_arg(info, first),
                after=decode_time_cursor(after),
                status=status,
            )
        return Connection[InstallmentPlan].build(
            [
                (encode_cursor(p.created_at.isoformat(), p.id), InstallmentPlan.of(p))
                for p in page.items
            ],
            has_next=page.has_next,
            has_previous=after is not None,
        )

    @strawberry.field(
        description="The user's notifications, newest first.",
        metadata=cursors(decode_time_cursor),
    )
    async def notifications(
        self,
        info: Info,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
        unread_only: Annotated[
            bool, strawberry.argument(description="Only the ones not marked read.")
        ] = False,
    ) -> Connection[Notification]:
        user = await self._user(info)
        page = await info.context.services.notifications.page(
            user,
            first=first_arg(info, first),
            after=decode_time_cursor(after),
            unread_only=unread_only,
        )
        return Connection[Notification].build(
            [
                (encode_cursor(n.created_at.isoformat(), n.id), Notification.of(n))
                for n in page.items
            ],
            has_next=page.has_next,
            has_previous=after is not None,
        )

    @strawberry.field(
        description="How many notifications are not marked read: the badge. Exact; "
        "notificationReceived tells when to read it again."
    )
    async def unread_notification_count(self, info: Info) -> int:
        return await info.context.services.notifications.unread(await self._user(info))

    @strawberry.field(description="Which channels carry notifications besides the feed.")
    async def notification_preferences(self, info: Info) -> NotificationPreferences:
        chosen = await info.context.services.notifications.preferences(await self._user(info))
        return NotificationPreferences.of(chosen)

    async def _user(self, info: Info) -> models.User:
        found = await info.context.loaders.users.load(uuid.UUID(self.id))
        assert found is not None
        return found

    @strawberry.field(description="The merchant this user registered (any status); null when none.")
    async def merchant(self, info: Info) -> Merchant | None:
        found = await info.context.loaders.merchant_of_user.load(uuid.UUID(self.id))
        return Merchant.of(found) if found else None

    @strawberry.field(description="The user's wallet in a currency, or null when there is none.")
    async def wallet(
        self,
        info: Info,
        currency: Annotated[CurrencyCode, strawberry.argument(description="The currency.")],
    ) -> Wallet | None:
        found = await info.context.loaders.wallets_by_user.load(uuid.UUID(self.id))
        return next((Wallet.of(w) for w in found if w.currency is currency), None)

    @strawberry.field(
        description="Holdings valued at mid rates in the valuation currency. Without exchange "
        "rates it is PROVIDER_UNAVAILABLE."
    )
    async def portfolio(
        self,
        info: Info,
        valuation_currency: Annotated[
            CurrencyCode, strawberry.argument(description="The currency to value the wallets in.")
        ] = CurrencyCode.NGN,
    ) -> Portfolio:
        found = await info.context.loaders.wallets_by_user.load(uuid.UUID(self.id))
        return Portfolio.of(await info.context.services.rates.portfolio(found, valuation_currency))

    @strawberry.field(
        description="Transactions touching any of the user's wallets, newest first.",
        metadata=cursors(decode_time_cursor),
    )
    async def transactions(
        self,
        info: Info,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
        filter: Annotated[
            TransactionFilter | None,
            strawberry.argument(description="Only the transactions that match; all when null."),
        ] = None,
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


@strawberry.type(
    description="A recorded action: who did what to what, from where. Staff only (SUPPORT, ADMIN)."
)
class AuditEvent(relay.Node):
    id: relay.NodeID[str]
    action: str = strawberry.field(
        description="What happened, e.g. user.logged_in, transfer.completed, wallet.frozen."
    )
    target_type: str | None = strawberry.field(
        description='The kind of object acted on, e.g. "User", "Wallet", "Transaction", "Session".'
    )
    target_id: str | None = strawberry.field(
        description="The object acted on: its UUID, or a transaction's reference."
    )
    ip_address: str | None = strawberry.field(
        description="The client address of the request; null when unknown."
    )
    metadata: JSON = strawberry.field(description="Details that depend on action; a JSON object.")
    created_at: datetime = strawberry.field(description="When it was recorded.")
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

    @strawberry.field(
        description="Who acted; null when nobody known did (a provider's event, a log-in "
        "attempt for an unknown email)."
    )
    async def actor(self, info: Info) -> User | None:
        if self.actor_id is None:
            return None
        user = await info.context.loaders.users.load(self.actor_id)
        return User.of(user) if user else None


UserConnection = Connection[User]
AuditEventConnection = Connection[AuditEvent]


@strawberry.type(description="A sign-in session's tokens.")
class Session:
    access_token: str = strawberry.field(
        description="A JWT to send as Authorization: Bearer <accessToken>, valid until "
        "expiresAt (15 minutes by default) unless the session ends first."
    )
    refresh_token: str = strawberry.field(
        description="Opaque and single-use: trade it with refreshSession for new tokens. It "
        "works until the session ends (30 days after sign-in by default). Keep it secret."
    )
    token_type: str = strawberry.field(description='Always "Bearer".')
    expires_at: datetime = strawberry.field(description="When accessToken expires.")


_PASSWORD = (
    "10 to 256 characters, not only digits, and neither the email nor its local part "
    "(WEAK_PASSWORD; INVALID_INPUT past 256)."
)


@strawberry.input(description="A new account.")
class SignUpInput:
    email: str = strawberry.field(
        description="A valid address, at most 254 characters, stored lowercased (INVALID_INPUT "
        "otherwise; EMAIL_TAKEN when it has an account)."
    )
    password: str = strawberry.field(description=_PASSWORD)
    full_name: str = strawberry.field(
        description="1 to 120 characters once trimmed, no control characters."
    )
    phone_number: str | None = strawberry.field(
        default=None,
        description="International format, e.g. +2348012345678 (spaces, dots, dashes and "
        "brackets are dropped); one account per number (INVALID_INPUT when taken).",
    )
    home_currency: CurrencyCode = strawberry.field(
        default=CurrencyCode.NGN, description="Currency of the wallet opened at sign-up."
    )


@strawberry.input(description="Credentials to sign in with.")
class LogInInput:
    email: str = strawberry.field(description="The account's email, in any case.")
    password: str = strawberry.field(description="The account's password.")


@strawberry.input(description="The refresh token to trade.")
class RefreshSessionInput:
    refresh_token: str = strawberry.field(
        description="The latest refresh token of the session; an older one ends the session "
        "(INVALID_TOKEN)."
    )


@strawberry.input(description="The session to end.")
class LogOutInput:
    refresh_token: str = strawberry.field(description="A refresh token of the session.")


@strawberry.input(description="The viewer's current and new password.")
class ChangePasswordInput:
    current_password: str = strawberry.field(
        description="The password now (INVALID_CREDENTIALS when wrong)."
    )
    new_password: str = strawberry.field(
        description="The same rules as signUp's password, and not the current one (WEAK_PASSWORD)."
    )


@strawberry.type(description="The answer to signUp, logIn and refreshSession.")
class AuthPayload:
    session: Session | None = strawberry.field(
        default=None, description="The new tokens; null when refused."
    )
    user: User | None = strawberry.field(
        default=None, description="The signed-in user; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)

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


@strawberry.type(description="The answer to logOut.")
class LogOutPayload:
    success: bool = strawberry.field(default=False, description="True when the session was ended.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.type(description="The answer to changePassword.")
class ChangePasswordPayload:
    success: bool = strawberry.field(
        default=False, description="True when the password was changed."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.input(description="A staff decision on a user's identity.")
class ReviewKycInput:
    user_id: strawberry.ID = strawberry.field(
        description="The user to review (a User global ID); not the reviewer's own."
    )
    approve: bool = strawberry.field(description="true sets VERIFIED, false REJECTED.")
    reason: str | None = strawberry.field(
        default=None,
        description="Why, written for the user (they see it on their rejected documents and in "
        "the notification); required to reject, at most 500 characters, kept in the audit log.",
    )
    note: str | None = strawberry.field(
        default=None,
        description="An internal note for staff, never shown to the user (KycDocument."
        "reviewNote, the audit log); at most 500 characters.",
    )
    may_resubmit: bool = strawberry.field(
        default=True,
        description="When rejecting: whether the user may upload new documents (false makes "
        "the rejection final). Ignored when approving.",
    )
    documents: list[KycDocumentDecisionInput] | None = strawberry.field(
        default=None,
        description="Decisions on single UPLOADED documents, e.g. rejecting a blurred selfie "
        "while approving the passport; every other UPLOADED document takes the review's "
        "decision. Approving the user needs an identity document and a SELFIE approved "
        "(INVALID_STATE otherwise). At most 20.",
    )


@strawberry.type(description="The answer to reviewKyc.")
class ReviewKycPayload:
    user: User | None = strawberry.field(
        default=None, description="The user with the new kycStatus; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)
