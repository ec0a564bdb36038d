"""The GraphQL API: Query, Mutation, Subscription and the schema with its extensions.

The only module that imports resolvers: type modules (``stacklo/schema``) never do, so the
packages import one way, ``api -> resolvers -> schema -> domain``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import strawberry
from strawberry import relay
from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import PermissionExtension
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig

from stacklo.domain.fx import SUPPORTED_PAIRS
from stacklo.observability import observe_operation
from stacklo.resolvers import auth as auth_resolvers
from stacklo.resolvers import checkouts as checkout_resolvers
from stacklo.resolvers import funding as funding_resolvers
from stacklo.resolvers import fx as fx_resolvers
from stacklo.resolvers import kyc as kyc_resolvers
from stacklo.resolvers import lending as lending_resolvers
from stacklo.resolvers import merchants as merchant_resolvers
from stacklo.resolvers import notifications as notification_resolvers
from stacklo.resolvers import realtime as realtime_resolvers
from stacklo.resolvers import transfers as transfer_resolvers
from stacklo.resolvers import users as user_resolvers
from stacklo.resolvers import wallets as wallet_resolvers
from stacklo.schema.budget import CostBudget
from stacklo.schema.commerce import (
    Checkout,
    CreateCheckoutPayload,
    PayCheckoutPayload,
    RefundCheckoutPayload,
    RegisterMerchantPayload,
    ReviewMerchantPayload,
)
from stacklo.schema.common import (
    DATE_SCALAR,
    DATETIME_SCALAR,
    DECIMAL_SCALAR,
    JSON_SCALAR,
    Connection,
    Currency,
    CurrencyCode,
    decode_sequence_cursor,
    decode_time_cursor,
)
from stacklo.schema.errors import ErrorPolicy
from stacklo.schema.fx import ConvertPayload, CreateQuotePayload, ExchangeRate
from stacklo.schema.kyc import UploadKycDocumentPayload
from stacklo.schema.ledger import Transaction, TransactionEvent, WalletEvent
from stacklo.schema.lending import ApplyForCreditPayload, RepaymentPayload
from stacklo.schema.limits import CachedParse, OperationLimits, cost, cursors
from stacklo.schema.movements import (
    FreezeWalletPayload,
    OpenWalletPayload,
    RequestWithdrawalPayload,
    SendMoneyPayload,
    StartDepositPayload,
)
from stacklo.schema.notifications import (
    MarkNotificationsReadPayload,
    Notification,
    SetNotificationPreferencesPayload,
)
from stacklo.schema.permissions import Allowed, IsAuthenticated
from stacklo.schema.platform import PlatformStats
from stacklo.schema.subscriptions import HandoverSchema
from stacklo.schema.users import (
    AuditEvent,
    AuthPayload,
    ChangePasswordPayload,
    LogOutPayload,
    ReviewKycPayload,
    User,
)


# Permission classes add no schema directive: who may call what is in the descriptions, and
# the SDL carries no internal directive.
def _allowed(resource: str, action: str) -> list[FieldExtension]:
    return [
        PermissionExtension(
            permissions=[Allowed(resource, action)], fail_silently=False, use_directives=False
        )
    ]


def _authenticated_subscription() -> list[FieldExtension]:
    return [
        PermissionExtension(
            permissions=[IsAuthenticated()], fail_silently=False, use_directives=False
        )
    ]


_authenticated: list[FieldExtension] = [
    PermissionExtension(permissions=[IsAuthenticated()], fail_silently=False, use_directives=False)
]

_STAFF_READ = (
    "Staff only (SUPPORT and ADMIN, by the access policy); anonymous callers get "
    "UNAUTHENTICATED, others FORBIDDEN."
)
_ADMIN = (
    "Staff only (ADMIN, by the access policy); anonymous callers get UNAUTHENTICATED, others "
    "FORBIDDEN."
)
_SIGNED_IN = "Signed-in viewers only (UNAUTHENTICATED otherwise)."
_IDEMPOTENT = (
    "A retry with the same idempotencyKey and input answers with the first call's "
    "transaction; nothing moves twice."
)
_ONE_AUTH = (
    "At most one of signUp, logIn, refreshSession and changePassword per request "
    "(QUERY_TOO_COMPLEX)."
)


@strawberry.type(
    description="What can be read. A bad argument is a GraphQL error whose extensions.code is "
    "INVALID_INPUT."
)
class Query:
    node: relay.Node | None = strawberry.field(
        resolver=user_resolvers.node,
        description="Any object by its global ID, or null unless the viewer may see it: their "
        "own objects; staff also users, customer wallets, transactions, ledger entries, "
        "merchants and audit events; a quote only its creator; a checkout anyone signed in. "
        "Unknown, malformed and foreign ids are null alike, and so is everything for an "
        "anonymous caller.",
    )
    me: User | None = strawberry.field(
        resolver=user_resolvers.me,
        description="The signed-in user, or null when no token was sent. An invalid, expired "
        "or revoked token is UNAUTHENTICATED.",
    )
    currencies: list[Currency] = strawberry.field(
        resolver=user_resolvers.currencies,
        metadata=cost(size=len(CurrencyCode)),
        description="Every supported currency with its kind and decimals. Public.",
    )
    users: Connection[User] = strawberry.field(
        resolver=user_resolvers.users,
        description="Every user, newest first. " + _STAFF_READ,
        metadata=cursors(decode_time_cursor),
        extensions=_allowed("users", "read"),
    )
    transaction: Transaction | None = strawberry.field(
        resolver=user_resolvers.transaction,
        description="A transaction by its public reference; null when there is none, when the "
        "viewer is neither a party to it nor staff, or when nobody is signed in.",
    )
    rates: list[ExchangeRate] = strawberry.field(
        resolver=fx_resolvers.rates,
        metadata=cost(size=len(SUPPORTED_PAIRS)),
        description="Live rates; every supported pair when pairs is null. Public. Rates too "
        "old to quote are still shown, with their updatedAt. An unsupported pair is "
        "INVALID_INPUT; no reading yet is PROVIDER_UNAVAILABLE.",
    )
    audit_events: Connection[AuditEvent] = strawberry.field(
        resolver=user_resolvers.audit_events,
        description="The audit log, newest first. " + _STAFF_READ,
        metadata=cursors(decode_sequence_cursor),
        extensions=_allowed("audit", "read"),
    )
    platform_stats: PlatformStats = strawberry.field(
        resolver=user_resolvers.platform_stats,
        extensions=_allowed("platform", "read"),
        description="Live platform figures. " + _STAFF_READ,
    )
    checkout: Checkout | None = strawberry.field(
        resolver=checkout_resolvers.checkout,
        description="A checkout by its id, for anyone signed in (the payer needs it); null for "
        "an unknown or malformed id and for an anonymous caller. Its merchant-side fields say "
        "who else sees them.",
    )


@strawberry.type(
    description="What can be changed. Business-rule failures are the payload's userErrors."
)
class Mutation:
    sign_up: AuthPayload = strawberry.mutation(
        resolver=auth_resolvers.sign_up,
        description="Creates a CUSTOMER account (kycStatus PENDING) with a wallet in "
        "homeCurrency, and signs it in. userErrors: INVALID_INPUT, WEAK_PASSWORD, EMAIL_TAKEN. "
        "Counts against the client address (RATE_LIMITED with retryAfter past it). " + _ONE_AUTH,
    )
    log_in: AuthPayload = strawberry.mutation(
        resolver=auth_resolvers.log_in,
        description="Signs in with email and password and starts a session. userErrors: "
        "INVALID_CREDENTIALS, the same for an unknown email and a wrong password. Counts "
        "against the client address, and each wrong password against the account: past "
        "either limit the answer is RATE_LIMITED (with retryAfter), even for the right "
        "password. " + _ONE_AUTH,
    )
    refresh_session: AuthPayload = strawberry.mutation(
        resolver=auth_resolvers.refresh_session,
        description="Trades a refresh token for a new access token and refresh token; the one "
        "sent is used up, and the session keeps its original expiry. userErrors: INVALID_TOKEN "
        "(a used token sent again also ends the session). " + _ONE_AUTH,
    )
    log_out: LogOutPayload = strawberry.mutation(
        resolver=auth_resolvers.log_out,
        description="Ends the session of a refresh token: its tokens stop working at once and "
        "its sockets close (4403). Needs no access token. userErrors: INVALID_TOKEN (unknown "
        "or already ended).",
    )
    change_password: ChangePasswordPayload = strawberry.mutation(
        resolver=auth_resolvers.change_password,
        extensions=_authenticated,
        description="Changes the viewer's password and ends every other session of theirs; "
        "this one stays signed in. " + _SIGNED_IN + " userErrors: INVALID_CREDENTIALS, "
        "WEAK_PASSWORD, INVALID_INPUT. Throttled like logIn (RATE_LIMITED). " + _ONE_AUTH,
    )
    open_wallet: OpenWalletPayload = strawberry.mutation(
        resolver=wallet_resolvers.open_wallet,
        extensions=_authenticated,
        description="Opens a wallet for the viewer in a currency: one per currency, any "
        "currency. " + _SIGNED_IN + " userErrors: WALLET_EXISTS.",
    )
    freeze_wallet: FreezeWalletPayload = strawberry.mutation(
        resolver=wallet_resolvers.freeze_wallet,
        extensions=_allowed("wallets", "freeze"),
        description="Freezes or unfreezes a customer wallet, saying why; audited as "
        "wallet.frozen or wallet.unfrozen. " + _ADMIN + " userErrors: NOT_FOUND, INVALID_INPUT.",
    )
    start_deposit: StartDepositPayload = strawberry.mutation(
        resolver=funding_resolvers.start_deposit,
        extensions=_authenticated,
        description="Starts a deposit into one of the viewer's fiat wallets: a PROCESSING "
        "DEPOSIT and the provider's paymentUrl; the wallet is credited (COMPLETED) when the "
        "provider confirms the payment. " + _SIGNED_IN + " " + _IDEMPOTENT + " userErrors: "
        "NOT_FOUND, INVALID_INPUT, PROVIDER_UNAVAILABLE (nothing is written), "
        "IDEMPOTENCY_KEY_REUSED.",
    )
    request_withdrawal: RequestWithdrawalPayload = strawberry.mutation(
        resolver=funding_resolvers.request_withdrawal,
        extensions=_authenticated,
        description="Pays out from one of the viewer's fiat wallets to a bank account: the "
        "amount is held (heldBalance) and the WITHDRAWAL is PROCESSING until the provider "
        "reports. If the provider cannot take the payout at once, the answer is the FAILED "
        "transaction (hold released) with a userError PROVIDER_UNAVAILABLE or INVALID_INPUT. "
        + _SIGNED_IN
        + " "
        + _IDEMPOTENT
        + " userErrors also: NOT_FOUND, INVALID_INPUT, WALLET_FROZEN, INSUFFICIENT_FUNDS, "
        "LIMIT_EXCEEDED, IDEMPOTENCY_KEY_REUSED.",
    )
    send_money: SendMoneyPayload = strawberry.mutation(
        resolver=transfer_resolvers.send_money,
        extensions=_authenticated,
        description="Sends money from one of the viewer's wallets to someone else's, "
        "COMPLETED at once; across currencies at a quote (quoteId). "
        + _SIGNED_IN
        + " "
        + _IDEMPOTENT
        + " userErrors: INVALID_INPUT, NOT_FOUND (also for a recipient without an account or "
        "a wallet in that currency, alike), WALLET_FROZEN, INSUFFICIENT_FUNDS, LIMIT_EXCEEDED, "
        "QUOTE_REQUIRED, CURRENCY_MISMATCH, QUOTE_EXPIRED, QUOTE_ALREADY_USED, KYC_REQUIRED, "
        "IDEMPOTENCY_KEY_REUSED.",
    )
    upload_kyc_document: UploadKycDocumentPayload = strawberry.mutation(
        resolver=kyc_resolvers.upload_kyc_document,
        extensions=_authenticated,
        description="Uploads one identity document to object storage, sent as a GraphQL "
        "multipart request with an Apollo-Require-Preflight header (a request without it is "
        "refused, 400: browser forms cannot send it). Once an identity document (PASSPORT, "
        "NATIONAL_ID or DRIVERS_LICENSE) and a SELFIE are in, kycStatus goes from PENDING (or "
        "a REJECTED that may be resubmitted) to SUBMITTED. "
        + _SIGNED_IN
        + " userErrors: INVALID_INPUT (empty, too large, not a JPEG, PNG or PDF by its bytes, "
        "or not sent as a file), INVALID_STATE (already VERIFIED, or a final rejection), "
        "LIMIT_EXCEEDED (20 documents), PROVIDER_UNAVAILABLE (storage down; nothing kept).",
    )
    review_kyc: ReviewKycPayload = strawberry.mutation(
        resolver=kyc_resolvers.review_kyc,
        extensions=_allowed("kyc", "review"),
        description="Sets a user's kycStatus to VERIFIED or REJECTED and decides each of their "
        "UPLOADED documents (one by one through documents, else as the review goes); audited "
        "as kyc.reviewed, the user is notified. Approving needs an identity document and a "
        "SELFIE approved. Nobody reviews their own account. "
        + _ADMIN
        + " userErrors: NOT_FOUND, INVALID_INPUT, INVALID_STATE.",
    )
    create_quote: CreateQuotePayload = strawberry.mutation(
        resolver=fx_resolvers.create_quote,
        extensions=_authenticated,
        description="Locks a rate and fee for converting sourceCurrency into targetCurrency "
        "until expiresAt; spend it with convert or sendMoney. " + _SIGNED_IN + " userErrors: "
        "INVALID_INPUT, KYC_REQUIRED, LIMIT_EXCEEDED, PROVIDER_UNAVAILABLE (no rates, or too "
        "old).",
    )
    convert: ConvertPayload = strawberry.mutation(
        resolver=fx_resolvers.convert,
        description="Converts between the viewer's own wallets at a quote: fiat exchange, "
        "crypto buy, crypto sell. COMPLETED at once; the target wallet is opened if missing. "
        + _SIGNED_IN
        + " "
        + _IDEMPOTENT
        + " userErrors: NOT_FOUND, QUOTE_EXPIRED, QUOTE_ALREADY_USED, KYC_REQUIRED, "
        "INSUFFICIENT_FUNDS, WALLET_FROZEN, LIMIT_EXCEEDED, INVALID_INPUT, "
        "IDEMPOTENCY_KEY_REUSED.",
        extensions=_authenticated,
    )
    register_merchant: RegisterMerchantPayload = strawberry.mutation(
        resolver=merchant_resolvers.register_merchant,
        extensions=_authenticated,
        description="Registers the viewer's merchant, PENDING_REVIEW until staff decide; one "
        "per user. Needs a VERIFIED identity. " + _SIGNED_IN + " userErrors: KYC_REQUIRED, "
        "INVALID_STATE (already has one), INVALID_INPUT.",
    )
    review_merchant: ReviewMerchantPayload = strawberry.mutation(
        resolver=merchant_resolvers.review_merchant,
        extensions=_allowed("merchants", "review"),
        description="Approves (ACTIVE; the owner gains the MERCHANT role), rejects or suspends "
        "a merchant, saying why when refusing; audited as merchant.reviewed. Nobody reviews "
        "their own merchant. " + _ADMIN + " userErrors: NOT_FOUND, INVALID_STATE, "
        "INVALID_INPUT.",
    )
    create_checkout: CreateCheckoutPayload = strawberry.mutation(
        resolver=checkout_resolvers.create_checkout,
        extensions=_authenticated,
        description="Creates an OPEN checkout for the viewer's ACTIVE merchant, payable until "
        "expiresAt (30 minutes by default). " + _SIGNED_IN + " userErrors: NOT_FOUND, "
        "INVALID_STATE (merchant not ACTIVE, or reference already used), INVALID_INPUT.",
    )
    pay_checkout: PayCheckoutPayload = strawberry.mutation(
        resolver=checkout_resolvers.pay_checkout,
        extensions=_authenticated,
        description="Pays an OPEN checkout from the viewer's wallet: one CHECKOUT_PAYMENT, "
        "COMPLETED at once; the checkout becomes PAID exactly once however many payers try "
        "(the others get INVALID_STATE). The payer's and the merchant owner's "
        "transactionUpdated subscriptions receive it. "
        + _SIGNED_IN
        + " "
        + _IDEMPOTENT
        + " userErrors: NOT_FOUND, INVALID_STATE (not OPEN, merchant not ACTIVE), "
        "INVALID_INPUT (own checkout; INSTALLMENTS without a product or outside the amounts "
        "offered), CURRENCY_MISMATCH, WALLET_FROZEN, INSUFFICIENT_FUNDS (also for the first "
        "installment), CREDIT_DECLINED, CREDIT_LIMIT_EXCEEDED, IDEMPOTENCY_KEY_REUSED. With "
        "INSTALLMENTS the merchant is paid in full at once, the first installment is taken "
        "now, and the rest follows the plan.",
    )
    refund_checkout: RefundCheckoutPayload = strawberry.mutation(
        resolver=checkout_resolvers.refund_checkout,
        extensions=_authenticated,
        description="Gives a PAID checkout's money back to the payer's wallet, all of it or "
        "part; the merchant discount is returned pro rata. The merchant's part comes from its "
        "payable, or from its owner's wallet once the sale is settled. By the merchant's owner, "
        "or staff with the right (ADMIN). "
        + _IDEMPOTENT
        + " userErrors: NOT_FOUND, INVALID_STATE, INVALID_INPUT (more than remains), "
        "INSUFFICIENT_FUNDS (settled, and the owner's wallet holds too little; nothing moves), "
        "WALLET_FROZEN, IDEMPOTENCY_KEY_REUSED.",
    )
    mark_notifications_read: MarkNotificationsReadPayload = strawberry.mutation(
        resolver=notification_resolvers.mark_notifications_read,
        extensions=_authenticated,
        description="Marks the given notifications read, or all of the viewer's when ids is "
        "null; anyone else's or unknown ids are ignored and not counted. " + _SIGNED_IN,
    )
    set_notification_preferences: SetNotificationPreferencesPayload = strawberry.mutation(
        resolver=notification_resolvers.set_notification_preferences,
        extensions=_authenticated,
        description="Chooses whether notifications also go by email and by SMS. " + _SIGNED_IN,
    )
    apply_for_credit: ApplyForCreditPayload = strawberry.mutation(
        resolver=lending_resolvers.apply_for_credit,
        extensions=_authenticated,
        description="Decides on credit for paying in installments, at once, from the stated "
        "income and employment and the viewer's own record (account age, 90 days of wallet "
        "inflows and balances, repayments); the decision and its reasons are stored and "
        "audited. Needs a VERIFIED identity. " + _SIGNED_IN + " userErrors: KYC_REQUIRED, "
        "INVALID_INPUT, INVALID_STATE (suspended, or applied too recently).",
    )
    repay_installment: RepaymentPayload = strawberry.mutation(
        resolver=lending_resolvers.repay_installment,
        extensions=_authenticated,
        description="Pays one installment in full (its late fee first) from the viewer's "
        "wallet: one INSTALLMENT_REPAYMENT. "
        + _SIGNED_IN
        + " A retry with the same idempotencyKey answers with the first payment. userErrors: "
        "NOT_FOUND, INVALID_STATE (paid, or the plan ended), CURRENCY_MISMATCH, "
        "INSUFFICIENT_FUNDS, WALLET_FROZEN, IDEMPOTENCY_KEY_REUSED.",
    )
    prepay_plan: RepaymentPayload = strawberry.mutation(
        resolver=lending_resolvers.prepay_plan,
        extensions=_authenticated,
        description="Pays ahead on a plan: an amount, or everything outstanding (completing "
        "it). Allocated past due, then due, then future installments, next first; within each "
        "the late fee, then the fee, then principal. "
        + _SIGNED_IN
        + " A retry with the same idempotencyKey answers with the first payment. userErrors: "
        "NOT_FOUND, INVALID_STATE, INVALID_INPUT (more than outstanding), CURRENCY_MISMATCH, "
        "INSUFFICIENT_FUNDS, WALLET_FROZEN, IDEMPOTENCY_KEY_REUSED.",
    )


_RESUMABLE = (
    "Resubscribe with after: the last cursor received to get every missed event first, in "
    "order. " + _SIGNED_IN + " A cursor past the retention window is CURSOR_EXPIRED, a "
    "malformed one INVALID_INPUT; past the open-subscription cap per user, RATE_LIMITED."
)


@strawberry.type(description="Live events, over WebSocket only.")
class Subscription:
    # (strawberry types these by what they yield; mypy sees the generator)
    transaction_updated: TransactionEvent = strawberry.subscription(  # type: ignore[assignment]
        resolver=realtime_resolvers.transaction_updated,
        description=(
            "The viewer's transactions as their status changes; one transaction when id is given."
            " An event comes when a transaction touching one of the viewer's wallets is created "
            "or changes status. " + _RESUMABLE
        ),
        extensions=_authenticated_subscription(),
    )
    wallet_updated: WalletEvent = strawberry.subscription(  # type: ignore[assignment]
        resolver=realtime_resolvers.wallet_updated,
        description=(
            "The viewer's wallets as their balances change; one wallet when walletId is given."
            " An event comes when a wallet is opened or its balance, held amount or status "
            "changes. " + _RESUMABLE
        ),
        extensions=_authenticated_subscription(),
    )
    platform_activity: Transaction = strawberry.subscription(  # type: ignore[assignment]
        resolver=realtime_resolvers.platform_activity,
        description=(
            "Staff only: every transaction on the platform as it changes, for live dashboards."
            " Live only, no resume. SUPPORT and ADMIN, by the access policy; anonymous callers "
            "get UNAUTHENTICATED, others FORBIDDEN."
        ),
        extensions=[
            PermissionExtension(
                permissions=[Allowed("platform", "read")],
                fail_silently=False,
                use_directives=False,
            )
        ],
    )
    platform_activity_events: TransactionEvent = strawberry.subscription(  # type: ignore[assignment]
        resolver=realtime_resolvers.platform_activity_events,
        description=(
            "Staff only: every transaction on the platform as it changes, with a cursor: "
            "resubscribe with after: the last cursor received to get every missed event "
            "first. SUPPORT and ADMIN, by the access policy; anonymous callers get "
            "UNAUTHENTICATED, others FORBIDDEN. A cursor past the retention window is "
            "CURSOR_EXPIRED."
        ),
        extensions=[
            PermissionExtension(
                permissions=[Allowed("platform", "read")],
                fail_silently=False,
                use_directives=False,
            )
        ],
    )
    notification_received: Notification = strawberry.subscription(  # type: ignore[assignment]
        resolver=notification_resolvers.notification_received,
        description="The viewer's notifications as they are written (a few hundred "
        "milliseconds after what they tell of). After a reconnect, pass the last one's id as "
        "after to get what came meanwhile first. " + _SIGNED_IN,
        extensions=_authenticated_subscription(),
    )
    rate_updated: ExchangeRate = strawberry.subscription(  # type: ignore[assignment]
        resolver=fx_resolvers.rate_updated,
        description="Every supported pair when pairs is null. On each feed reading, one event "
        "per requested pair. " + _SIGNED_IN + " An unsupported pair is INVALID_INPUT; past "
        "the open-subscription cap per user, RATE_LIMITED.",
        extensions=_authenticated_subscription(),
    )


schema = HandoverSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    config=StrawberryConfig(
        auto_camel_case=True,
        scalar_map={
            Decimal: DECIMAL_SCALAR,
            datetime: DATETIME_SCALAR,
            date: DATE_SCALAR,
            JSON: JSON_SCALAR,
        },
    ),
    extensions=[
        ErrorPolicy,
        observe_operation,
        # Bounds each operation before validation, then validates (cached by document).
        OperationLimits,
        # Charges the caller's cost buckets once OperationLimits has measured and validated.
        CostBudget,
        CachedParse,
    ],
)
