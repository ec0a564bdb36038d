"""What the schema says about each value of the domain's own enums.

The domain (``stacklo/domain``) knows nothing of GraphQL, so its enums carry no descriptions.
They are registered on the schema side with ``described_enum``, which registers the class with
strawberry as usual and then sets each value's description from a mapping here. The words
reach introspection and the printed SDL alike (strawberry builds both from the same values).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from enum import Enum
from typing import TypeVar

import strawberry
from strawberry.types.enum import has_enum_definition

from stacklo.domain.commerce import CheckoutStatus, MerchantStatus, PaymentMethod
from stacklo.domain.credit import CreditStatus, EmploymentStatus
from stacklo.domain.errors import ErrorCode
from stacklo.domain.fx import QuoteStatus
from stacklo.domain.identity import KycDocumentStatus, KycDocumentType
from stacklo.domain.installments import InstallmentProduct, InstallmentStatus, PlanStatus
from stacklo.domain.ledger import TransactionKind, TransactionStatus
from stacklo.domain.models import KycStatus, Role, WalletStatus
from stacklo.domain.money import CurrencyCode, CurrencyKind

E = TypeVar("E", bound=Enum)


def described_enum(
    cls: type[E], description: str, values: Mapping[E, str], name: str | None = None
) -> type[E]:
    """Register ``cls`` as a GraphQL enum with a description for the type and each value.

    A value missing from ``values`` is left undescribed (tests/unit/test_schema_docs.py names
    it); a key that is not a member of ``cls`` is a mistake and fails at import.
    """
    foreign = [key for key in values if not isinstance(key, cls)]
    if foreign:
        raise TypeError(f"{cls.__name__} has no values {foreign!r}")
    registered: object = strawberry.enum(cls, name=name, description=description)
    assert has_enum_definition(registered)
    definition = registered.__strawberry_definition__
    definition.values = [
        dataclasses.replace(value, description=values.get(cls(value.value)))
        for value in definition.values
    ]
    return cls


CURRENCY_CODES: Mapping[CurrencyCode, str] = {
    CurrencyCode.NGN: "Nigerian naira; fiat, 2 decimals.",
    CurrencyCode.USD: "US dollar; fiat, 2 decimals.",
    CurrencyCode.GBP: "Pound sterling; fiat, 2 decimals.",
    CurrencyCode.EUR: "Euro; fiat, 2 decimals.",
    CurrencyCode.BTC: "Bitcoin; crypto, 8 decimals.",
    CurrencyCode.ETH: "Ether; crypto, 18 decimals.",
    CurrencyCode.USDT: "Tether USD; crypto, 6 decimals.",
}

CURRENCY_KINDS: Mapping[CurrencyKind, str] = {
    CurrencyKind.FIAT: (
        "Government-issued money. Only fiat wallets can take deposits and withdrawals "
        "(the bank rail)."
    ),
    CurrencyKind.CRYPTO: (
        "A crypto asset. Bought and sold against fiat only; quotes involving crypto need "
        "kycStatus VERIFIED."
    ),
}

ERROR_CODES: Mapping[ErrorCode, str] = {
    ErrorCode.INVALID_INPUT: (
        "A value is malformed or out of range: an amount with more decimals than its currency, "
        "an oversized or empty text, a bad cursor, an unsupported currency pair."
    ),
    ErrorCode.NOT_FOUND: (
        "The object does not exist or is not the viewer's; the two are answered alike. "
        "Malformed ids and ids of another type are NOT_FOUND too."
    ),
    ErrorCode.EMAIL_TAKEN: "signUp: an account with this email already exists.",
    ErrorCode.INVALID_CREDENTIALS: (
        "logIn: unknown email or wrong password (answered alike); changePassword: wrong "
        "current password."
    ),
    ErrorCode.WEAK_PASSWORD: (
        "The password is under 10 characters, only digits, the email or its local part, or "
        "(changePassword) the same as the current one."
    ),
    ErrorCode.INVALID_TOKEN: (
        "The refresh token is unknown, expired, revoked or already used. Reusing a rotated "
        "token also ends its whole session."
    ),
    ErrorCode.KYC_REQUIRED: (
        "Creating or spending a quote with a crypto currency (createQuote, convert, sendMoney "
        "with quoteId) needs kycStatus VERIFIED."
    ),
    ErrorCode.INSUFFICIENT_FUNDS: (
        "The source wallet's available balance (balance minus held) does not cover the "
        "amount, or there is no wallet to convert from."
    ),
    ErrorCode.WALLET_FROZEN: (
        "The source wallet is frozen: it can receive but cannot send, withdraw or convert."
    ),
    ErrorCode.WALLET_EXISTS: "openWallet: the viewer already has a wallet in this currency.",
    ErrorCode.CURRENCY_MISMATCH: (
        "A wallet's currency does not match the quote: the sender's must be its source "
        "currency and the recipient's its target currency."
    ),
    ErrorCode.LIMIT_EXCEEDED: (
        "A limit was hit: the daily send-and-withdraw cap before KYC, a quote's minimum or "
        "maximum amount (or nothing left after fees), or the largest balance the ledger holds."
    ),
    ErrorCode.QUOTE_REQUIRED: (
        "sendMoney: the recipient's wallet is in another currency; create a quote and pass quoteId."
    ),
    ErrorCode.QUOTE_EXPIRED: "The quote's expiresAt has passed; create a new one.",
    ErrorCode.QUOTE_ALREADY_USED: "The quote was already spent; each quote is spent once.",
    ErrorCode.IDEMPOTENCY_KEY_REUSED: (
        "The viewer already used this idempotencyKey for a different operation or input."
    ),
    ErrorCode.PROVIDER_UNAVAILABLE: (
        "The payment provider or the rate feed cannot serve the request now (no rates, or "
        "rates too old to quote); try again shortly."
    ),
    ErrorCode.CREDIT_DECLINED: (
        "A credit application was declined. No operation in this schema returns it."
    ),
    ErrorCode.CREDIT_LIMIT_EXCEEDED: (
        "The amount is over the available credit. No operation in this schema returns it."
    ),
    ErrorCode.INVALID_STATE: (
        "The object's current state does not allow the change, e.g. a finished transaction "
        "changing status."
    ),
}

ROLES: Mapping[Role, str] = {
    Role.CUSTOMER: "Every account from signUp: its own data and money only.",
    Role.MERCHANT: "Owns an approved merchant (reviewMerchant grants it with the approval).",
    Role.SUPPORT: (
        "Staff: may read users, customer wallets, every transaction and ledger entry, the "
        "audit log and platformActivity, and introspect the schema where that is staff-only."
    ),
    Role.ADMIN: "Staff: everything SUPPORT may, plus freezeWallet and reviewKyc.",
}

KYC_STATUSES: Mapping[KycStatus, str] = {
    KycStatus.PENDING: (
        "Identity not verified yet (every new account). Daily send-and-withdraw caps apply "
        "and crypto cannot be quoted. Uploading an identity document and a SELFIE "
        "(uploadKycDocument) moves it to SUBMITTED."
    ),
    KycStatus.SUBMITTED: (
        "An identity document and a selfie are in and await review. Treated as unverified."
    ),
    KycStatus.VERIFIED: (
        "Identity approved by staff: no daily cap, and crypto can be bought and sold."
    ),
    KycStatus.REJECTED: (
        "Identity rejected by staff. Treated as unverified. Unless the rejection was final "
        "(kycMayResubmit false), uploading new documents moves it back to SUBMITTED."
    ),
}

KYC_DOCUMENT_TYPES: Mapping[KycDocumentType, str] = {
    KycDocumentType.PASSPORT: "A passport's photo page. One identity document is required.",
    KycDocumentType.NATIONAL_ID: "A national identity card. One identity document is required.",
    KycDocumentType.DRIVERS_LICENSE: ("A driver's license. One identity document is required."),
    KycDocumentType.UTILITY_BILL: (
        "A recent utility bill as proof of address. Reviewed when given, not required."
    ),
    KycDocumentType.SELFIE: "A photo of the user's face. Required.",
}

KYC_DOCUMENT_STATUSES: Mapping[KycDocumentStatus, str] = {
    KycDocumentStatus.UPLOADED: "Stored and waiting for a review.",
    KycDocumentStatus.APPROVED: "Accepted by a review.",
    KycDocumentStatus.REJECTED: (
        "Refused by a review: rejectionReason says why and mayResubmit whether a new one may "
        "be uploaded."
    ),
}

WALLET_STATUSES: Mapping[WalletStatus, str] = {
    WalletStatus.ACTIVE: "The wallet can send, receive, withdraw and convert.",
    WalletStatus.FROZEN: (
        "Frozen by staff: it still receives transfers, deposits and conversions, but cannot "
        "send, withdraw or convert from (WALLET_FROZEN)."
    ),
}

TRANSACTION_KINDS: Mapping[TransactionKind, str] = {
    TransactionKind.DEPOSIT: "Money paid in through the payment provider (startDeposit).",
    TransactionKind.WITHDRAWAL: "Money paid out to a bank account (requestWithdrawal).",
    TransactionKind.TRANSFER: (
        "Money sent to another wallet with sendMoney, in one currency or across two at a quote."
    ),
    TransactionKind.EXCHANGE: "A conversion (convert) between two fiat currencies.",
    TransactionKind.CRYPTO_BUY: "A conversion (convert) from fiat into crypto.",
    TransactionKind.CRYPTO_SELL: "A conversion (convert) from crypto into fiat.",
    TransactionKind.CHECKOUT_PAYMENT: (
        "A payment to a merchant at checkout (payCheckout): the payer's wallet to the "
        "merchant's payable, less the merchant discount (fee)."
    ),
    TransactionKind.INSTALLMENT_REPAYMENT: (
        "A repayment of an installment plan. No operation in this schema creates one."
    ),
    TransactionKind.LATE_FEE: (
        "A fee for a late installment. No operation in this schema creates one."
    ),
    TransactionKind.SETTLEMENT: (
        "A merchant's sales, older than the settlement delay, moved from its payable to the "
        "owner's wallet by the platform (no mutation makes one)."
    ),
    TransactionKind.REFUND: (
        "Money returned to the payer of a checkout (refundCheckout); fee is the part of the "
        "merchant discount given back."
    ),
    TransactionKind.ADJUSTMENT: (
        "A manual correction by the platform. No operation in this schema creates one."
    ),
}

TRANSACTION_STATUSES: Mapping[TransactionStatus, str] = {
    TransactionStatus.CREATED: (
        "Recorded. Every statusHistory starts with it; every operation in this schema moves "
        "the transaction on from it in the same step."
    ),
    TransactionStatus.PROCESSING: (
        "Waiting for the payment provider: a deposit until it is paid, a withdrawal (its "
        "amount held) until it is paid out. No money has moved yet."
    ),
    TransactionStatus.COMPLETED: (
        "Settled: the ledger entries are posted. Final; completedAt is set."
    ),
    TransactionStatus.FAILED: (
        "Did not go through: nothing moved and any hold was released. Final; failureReason "
        "says why."
    ),
    TransactionStatus.CANCELLED: (
        "Stopped before it settled: nothing moved. Final; failureReason says why. No "
        "operation in this schema cancels a transaction."
    ),
}

QUOTE_STATUSES: Mapping[QuoteStatus, str] = {
    QuoteStatus.ACTIVE: "Can be spent once by convert or sendMoney until expiresAt.",
    QuoteStatus.USED: "Spent by a conversion or transfer; it cannot be spent again.",
    QuoteStatus.EXPIRED: "expiresAt has passed without the quote being spent.",
}

MERCHANT_STATUSES: Mapping[MerchantStatus, str] = {
    MerchantStatus.PENDING_REVIEW: "Registered; staff have not decided yet. No checkouts.",
    MerchantStatus.ACTIVE: "Approved: creates checkouts and takes payments.",
    MerchantStatus.SUSPENDED: (
        "Stopped by staff after approval: no new checkouts or payments; what it is owed "
        "still settles. Staff may approve it again."
    ),
    MerchantStatus.REJECTED: "Refused by staff at review. Final.",
}

CHECKOUT_STATUSES: Mapping[CheckoutStatus, str] = {
    CheckoutStatus.OPEN: "Waiting to be paid, until expiresAt.",
    CheckoutStatus.PAID: (
        "Paid (paidAt). Stays PAID after a partial refund; refundedAmount says how much went back."
    ),
    CheckoutStatus.EXPIRED: "expiresAt passed before anyone paid: it can no longer be paid.",
    CheckoutStatus.CANCELLED: "Withdrawn before payment. No operation in this schema cancels one.",
    CheckoutStatus.REFUNDED: "Paid, then refunded in full.",
}

PAYMENT_METHODS: Mapping[PaymentMethod, str] = {
    PaymentMethod.WALLET: "Paid at once from the payer's wallet in the checkout's currency.",
    PaymentMethod.INSTALLMENTS: (
        "Paid over time on an installment plan (needs APPROVED credit); the merchant is "
        "paid in full at once."
    ),
}

INSTALLMENT_PRODUCTS: Mapping[InstallmentProduct, str] = {
    InstallmentProduct.PAY_IN_4: "A down payment now and three more every two weeks.",
    InstallmentProduct.PAY_IN_3_MONTHLY: "Three monthly payments, the first now.",
    InstallmentProduct.PAY_IN_6_MONTHLY: "Six monthly payments, the first now, with a finance fee.",
}

PLAN_STATUSES: Mapping[PlanStatus, str] = {
    PlanStatus.ACTIVE: "Being repaid; its outstanding principal uses the borrower's credit.",
    PlanStatus.COMPLETED: "Nothing left to pay; its credit is available again.",
    PlanStatus.DEFAULTED: (
        "An installment went unpaid past the default period: the borrower's credit is "
        "SUSPENDED. It can still be repaid."
    ),
    PlanStatus.CANCELLED: "Ended by a full refund of its checkout; what was paid came back.",
}

INSTALLMENT_STATUSES: Mapping[InstallmentStatus, str] = {
    InstallmentStatus.SCHEDULED: "Not paid yet; collected on its due date if the wallet holds it.",
    InstallmentStatus.PAID: "Paid in full (paidAt).",
    InstallmentStatus.OVERDUE: (
        "Unpaid past its due date and the grace days: a late fee was charged. Still "
        "collected, or repaid with repayInstallment."
    ),
    InstallmentStatus.WAIVED: "Nothing is owed on it any more: a refund forgave it.",
}

CREDIT_STATUSES: Mapping[CreditStatus, str] = {
    CreditStatus.NONE: "Never applied: no credit.",
    CreditStatus.APPROVED: "May pay in installments up to availableCredit.",
    CreditStatus.DECLINED: "The last application was declined; reasons say why.",
    CreditStatus.SUSPENDED: "A plan defaulted: no new credit; existing plans can still be repaid.",
}

EMPLOYMENT_STATUSES: Mapping[EmploymentStatus, str] = {
    EmploymentStatus.EMPLOYED: "Employed by someone else.",
    EmploymentStatus.SELF_EMPLOYED: "Works for themselves.",
    EmploymentStatus.STUDENT: "In education.",
    EmploymentStatus.UNEMPLOYED: "Not working.",
    EmploymentStatus.RETIRED: "Retired.",
}
