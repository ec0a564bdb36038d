"""Query, Mutation and the Schema with its extensions. The only module importing resolvers."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry import relay
from strawberry.extensions import MaskErrors
from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import PermissionExtension
from strawberry.schema.config import StrawberryConfig

from stacklo.domain.errors import AccessError, DomainError, RateLimited
from stacklo.domain.fx import SUPPORTED_PAIRS
from stacklo.observability import observe_operation, report_unexpected
from stacklo.resolvers import auth as auth_resolvers
from stacklo.resolvers import fx as fx_resolvers
from stacklo.resolvers import money as money_resolvers
from stacklo.resolvers import realtime as realtime_resolvers
from stacklo.resolvers import users as user_resolvers
from stacklo.schema.common import DECIMAL_SCALAR, Connection, Currency, CurrencyCode
from stacklo.schema.fx import (
    ConvertPayload,
    CreateQuotePayload,
    ExchangeRate,
    ReviewKycPayload,
)
from stacklo.schema.limits import CachedParse, OperationLimits, cost, refusal
from stacklo.schema.permissions import Allowed, IsAuthenticated
from stacklo.schema.types import (
    AuditEvent,
    AuthPayload,
    ChangePasswordPayload,
    FreezeWalletPayload,
    LogOutPayload,
    OpenWalletPayload,
    RequestWithdrawalPayload,
    SendMoneyPayload,
    StartDepositPayload,
    Transaction,
    TransactionEvent,
    User,
    WalletEvent,
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
    transaction: Transaction | None = strawberry.field(resolver=money_resolvers.transaction)
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
        resolver=user_resolvers.open_wallet, extensions=_authenticated
    )
    freeze_wallet: FreezeWalletPayload = strawberry.mutation(
        resolver=money_resolvers.freeze_wallet, extensions=_allowed("wallets", "freeze")
    )
    start_deposit: StartDepositPayload = strawberry.mutation(
        resolver=money_resolvers.start_deposit, extensions=_authenticated
    )
    request_withdrawal: RequestWithdrawalPayload = strawberry.mutation(
        resolver=money_resolvers.request_withdrawal, extensions=_authenticated
    )
    send_money: SendMoneyPayload = strawberry.mutation(
        resolver=money_resolvers.send_money, extensions=_authenticated
    )
    review_kyc: ReviewKycPayload = strawberry.mutation(
        resolver=fx_resolvers.review_kyc, extensions=_allowed("kyc", "review")
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


_SUGGESTION = re.compile(r"\s*Did you mean .*\?\s*$", re.DOTALL)
# A value the client sent (a variable, or a literal a scalar refused) rather than a document
# that does not fit the schema.
_BAD_VALUE = re.compile(r"^(Variable '\$|Expected value of type )|got invalid value")
_TOO_MANY_TOKENS = re.compile(r"more than (\d+) tokens")


class ErrorPolicy(MaskErrors):
    """Every error a client sees has an ``extensions.code``; anything unexpected is masked,
    logged and counted.

    Ours pass with their codes: AccessError (UNAUTHENTICATED/FORBIDDEN/RATE_LIMITED/...),
    DomainError in a query (e.g. INVALID_INPUT for first > 100), a GraphQLError a permission
    class or the operation limits raised. The client's own mistakes get GRAPHQL_PARSE_FAILED
    (QUERY_TOO_COMPLEX past the token limit), GRAPHQL_VALIDATION_FAILED or BAD_USER_INPUT (a
    variable that did not coerce); unless introspection is public, their "Did you mean"
    suggestions are cut, since they would spell out the schema. Anything else, also an
    exception escaping a subscription's generator, is masked.
    """

    def __init__(self) -> None:
        super().__init__(error_message="Internal server error")

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [self._one(e) for e in errors]

    def _one(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, RateLimited) and original.retry_after is not None:
            return self._coded(
                error, str(original), {"code": original.code, "retryAfter": original.retry_after}
            )
        if isinstance(original, AccessError):
            return self._coded(error, str(original), {"code": original.code})
        if isinstance(original, DomainError):
            extensions: dict[str, Any] = {"code": original.code.value}
            if original.field:
                extensions["field"] = list(original.field)
            return self._coded(error, original.message, extensions)
        if isinstance(original, GraphQLError):
            return self._client(original)
        if original is None:
            return self._client(error)
        if error.path is None and error.nodes:
            return self._client(error, "BAD_USER_INPUT")  # a variable that did not coerce
        request_id = report_unexpected(original)
        return self._coded(
            error, self.error_message, {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
        )

    def _client(self, error: GraphQLError, code: str | None = None) -> GraphQLError:
        if error.extensions and "code" in error.extensions:
            return error
        if isinstance(error, GraphQLSyntaxError):
            tokens = _TOO_MANY_TOKENS.search(error.message)
            if tokens:
                limit = self.execution_context.context.services.settings.max_query_tokens
                return refusal(
                    "tokens", limit + 1, limit, f"The operation has more than {limit} tokens."
                )
            return self._coded(error, error.message, {"code": "GRAPHQL_PARSE_FAILED"})
        message = error.message
        if self._hide_schema():
            message = _SUGGESTION.sub("", message)
        if code is None:
            code = "BAD_USER_INPUT" if _BAD_VALUE.search(message) else "GRAPHQL_VALIDATION_FAILED"
        return self._coded(error, message, {"code": code})

    def _hide_schema(self) -> bool:
        context = getattr(self.execution_context, "context", None)
        services = getattr(context, "services", None)
        return services is None or services.settings.introspection_policy != "public"

    @staticmethod
    def _coded(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
        return GraphQLError(
            message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions=extensions,
        )


class QuietSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # ErrorPolicy logs what matters (unexpected errors, with the request id); client
        # mistakes such as validation errors are not server log material.
        return None


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
