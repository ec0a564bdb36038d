"""The GraphQL API: Query, Mutation, Subscription and the schema with its extensions.

The only module that imports resolvers: type modules (``stacklo/schema``) never do, so the
packages import one way, ``api -> resolvers -> schema -> domain``.
"""

from __future__ import annotations

from decimal import Decimal

import strawberry
from strawberry import relay
from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import PermissionExtension
from strawberry.schema.config import StrawberryConfig

from stacklo.domain.fx import SUPPORTED_PAIRS
from stacklo.observability import observe_operation
from stacklo.resolvers import auth as auth_resolvers
from stacklo.resolvers import funding as funding_resolvers
from stacklo.resolvers import fx as fx_resolvers
from stacklo.resolvers import kyc as kyc_resolvers
from stacklo.resolvers import realtime as realtime_resolvers
from stacklo.resolvers import transfers as transfer_resolvers
from stacklo.resolvers import users as user_resolvers
from stacklo.resolvers import wallets as wallet_resolvers
from stacklo.schema.common import DECIMAL_SCALAR, Connection, Currency, CurrencyCode
from stacklo.schema.errors import ErrorPolicy, QuietSchema
from stacklo.schema.fx import ConvertPayload, CreateQuotePayload, ExchangeRate
from stacklo.schema.ledger import Transaction, TransactionEvent, WalletEvent
from stacklo.schema.limits import CachedParse, OperationLimits, cost
from stacklo.schema.movements import (
    FreezeWalletPayload,
    OpenWalletPayload,
    RequestWithdrawalPayload,
    SendMoneyPayload,
    StartDepositPayload,
)
from stacklo.schema.permissions import Allowed, IsAuthenticated
from stacklo.schema.users import (
    AuditEvent,
    AuthPayload,
    ChangePasswordPayload,
    LogOutPayload,
    ReviewKycPayload,
    User,
)


def _allowed(resource: str, action: str) -> list[FieldExtension]:
    return [PermissionExtension(permissions=[Allowed(resource, action)], fail_silently=False)]


def _authenticated_subscription() -> list[FieldExtension]:
    return [PermissionExtension(permissions=[IsAuthenticated()], fail_silently=False)]


_authenticated: list[FieldExtension] = [
    PermissionExtension(permissions=[IsAuthenticated()], fail_silently=False)
]


@strawberry.type
class Query:
    node: relay.Node | None = strawberry.field(resolver=user_resolvers.node)
    me: User | None = strawberry.field(
        resolver=user_resolvers.me, description="The signed-in user, or null."
    )
    currencies: list[Currency] = strawberry.field(
        resolver=user_resolvers.currencies, metadata=cost(size=len(CurrencyCode))
    )
    users: Connection[User] = strawberry.field(
        resolver=user_resolvers.users,
        description="Staff only.",
        extensions=_allowed("users", "read"),
    )
    transaction: Transaction | None = strawberry.field(resolver=user_resolvers.transaction)
    rates: list[ExchangeRate] = strawberry.field(
        resolver=fx_resolvers.rates,
        metadata=cost(size=len(SUPPORTED_PAIRS)),
        description="Live rates; every supported pair when pairs is null.",
    )
    audit_events: Connection[AuditEvent] = strawberry.field(
        resolver=user_resolvers.audit_events,
        description="Staff only.",
        extensions=_allowed("audit", "read"),
    )


@strawberry.type
class Mutation:
    sign_up: AuthPayload = strawberry.mutation(resolver=auth_resolvers.sign_up)
    log_in: AuthPayload = strawberry.mutation(resolver=auth_resolvers.log_in)
    refresh_session: AuthPayload = strawberry.mutation(resolver=auth_resolvers.refresh_session)
    log_out: LogOutPayload = strawberry.mutation(resolver=auth_resolvers.log_out)
    change_password: ChangePasswordPayload = strawberry.mutation(
        resolver=auth_resolvers.change_password, extensions=_authenticated
    )
    open_wallet: OpenWalletPayload = strawberry.mutation(
        resolver=wallet_resolvers.open_wallet, extensions=_authenticated
    )
    freeze_wallet: FreezeWalletPayload = strawberry.mutation(
        resolver=wallet_resolvers.freeze_wallet, extensions=_allowed("wallets", "freeze")
    )
    start_deposit: StartDepositPayload = strawberry.mutation(
        resolver=funding_resolvers.start_deposit, extensions=_authenticated
    )
    request_withdrawal: RequestWithdrawalPayload = strawberry.mutation(
        resolver=funding_resolvers.request_withdrawal, extensions=_authenticated
    )
    send_money: SendMoneyPayload = strawberry.mutation(
        resolver=transfer_resolvers.send_money, extensions=_authenticated
    )
    review_kyc: ReviewKycPayload = strawberry.mutation(
        resolver=kyc_resolvers.review_kyc, extensions=_allowed("kyc", "review")
    )
    create_quote: CreateQuotePayload = strawberry.mutation(
        resolver=fx_resolvers.create_quote, extensions=_authenticated
    )
    convert: ConvertPayload = strawberry.mutation(
        resolver=fx_resolvers.convert,
        description="Converts between the viewer's own wallets at a quote: fiat exchange, "
        "crypto buy, crypto sell.",
        extensions=_authenticated,
    )


@strawberry.type
class Subscription:
    # (strawberry types these by what they yield; mypy sees the generator)
    transaction_updated: TransactionEvent = strawberry.subscription(  # type: ignore[assignment]
        resolver=realtime_resolvers.transaction_updated,
        description=(
            "The viewer's transactions as their status changes; one transaction when id is given."
        ),
        extensions=_authenticated_subscription(),
    )
    wallet_updated: WalletEvent = strawberry.subscription(  # type: ignore[assignment]
        resolver=realtime_resolvers.wallet_updated,
        description=(
            "The viewer's wallets as their balances change; one wallet when walletId is given."
        ),
        extensions=_authenticated_subscription(),
    )
    platform_activity: Transaction = strawberry.subscription(  # type: ignore[assignment]
        resolver=realtime_resolvers.platform_activity,
        description=(
            "Staff only: every transaction on the platform as it changes, for live dashboards."
        ),
        extensions=[
            PermissionExtension(permissions=[Allowed("platform", "read")], fail_silently=False)
        ],
    )
    rate_updated: ExchangeRate = strawberry.subscription(  # type: ignore[assignment]
        resolver=fx_resolvers.rate_updated,
        description="Every supported pair when pairs is null.",
        extensions=_authenticated_subscription(),
    )


schema = QuietSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    config=StrawberryConfig(auto_camel_case=True, scalar_map={Decimal: DECIMAL_SCALAR}),
    extensions=[
        ErrorPolicy,
        observe_operation,
        # Bounds each operation before validation, then validates (cached by document).
        OperationLimits,
        CachedParse,
    ],
)
