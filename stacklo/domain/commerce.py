"""Merchants and checkouts: their states and the money rules of a sale (pure; the use cases
are in merchants.py, checkouts.py and settlement.py).

A merchant's review is a transition table, like the ledger's:

    PENDING_REVIEW --approve--> ACTIVE (the owner gains the MERCHANT role)
    PENDING_REVIEW --reject---> REJECTED (a reason is required)
    ACTIVE         --reject---> SUSPENDED (a reason is required)
    SUSPENDED      --approve--> ACTIVE

A checkout is OPEN until it is paid or its ``expires_at`` passes: from that instant it reads
EXPIRED whether or not the worker has written so yet (``Checkout.status_at``).

    OPEN --pay--> PAID --refund (part)--> PAID --refund (the rest)--> REFUNDED
    OPEN --expires_at--> EXPIRED

Money of a sale (tests/unit/test_commerce.py):
- payment: the payer's wallet is debited the amount; the merchant's payable is credited the
  amount less the merchant discount, ``fee = up(amount x fee_bps / 10000)``, which goes to the
  platform's fee account;
- refund of r: the payer is credited r; the fee is returned pro rata, cumulatively: after
  refunds totalling R of an amount A whose fee was F, the fee returned so far is
  ``down(F x R / A)``, and all of F once R = A (partial refunds never return more fee than
  was taken; a full refund returns it exactly); the rest, r less this refund's share of the
  fee, comes from the merchant: from its payable while the sale is unsettled, else from the
  owner's wallet;
- the refunds of a checkout never add up to more than was paid;
- what of a sale is still on the payable: amount - fee - what refunds took from the payable,
  until it is settled.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from enum import Enum

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.ledger import Posting
from stacklo.domain.models import Wallet
from stacklo.domain.money import MONEY_CONTEXT, CurrencyCode, Money, quantize

ZERO = Decimal(0)


class MerchantStatus(Enum):
    PENDING_REVIEW = "PENDING_REVIEW"
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    REJECTED = "REJECTED"


_M = MerchantStatus
# (current status, approve?) -> the status a review moves it to. Anything else is refused.
REVIEWS: dict[tuple[MerchantStatus, bool], MerchantStatus] = {
    (_M.PENDING_REVIEW, True): _M.ACTIVE,
    (_M.PENDING_REVIEW, False): _M.REJECTED,
    (_M.ACTIVE, False): _M.SUSPENDED,
    (_M.SUSPENDED, True): _M.ACTIVE,
}


def reviewed(current: MerchantStatus, approve: bool) -> MerchantStatus:
    found = REVIEWS.get((current, approve))
    if found is None:
        verb = "approved" if approve else "rejected"
        raise DomainError(
            ErrorCode.INVALID_STATE,
            f"A {current.value} merchant cannot be {verb}.",
            ("input", "approve"),
        )
    return found


@dataclass(slots=True)
class Merchant:
    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    category: str
    settlement_currency: CurrencyCode
    status: MerchantStatus
    created_at: datetime
    review_reason: str | None = None

    def ensure_active(self, field: tuple[str, ...]) -> None:
        if self.status is not MerchantStatus.ACTIVE:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"This merchant is {self.status.value} and cannot take payments.",
                field,
            )


@dataclass(frozen=True, slots=True)
class SalesSummary:
    """Sales paid in a window, net of what was refunded of them (see ``MerchantRepository``):
    ``net = gross - refunded - fees``, and fees are net of the fees refunds returned."""

    checkout_count: int
    gross: Money
    refunded: Money
    fees: Money
    net: Money
    installments: Money


class CheckoutStatus(Enum):
    OPEN = "OPEN"
    PAID = "PAID"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"


class PaymentMethod(Enum):
    WALLET = "WALLET"
    INSTALLMENTS = "INSTALLMENTS"


@dataclass(slots=True)
class Checkout:
    id: uuid.UUID
    merchant_id: uuid.UUID
    currency: CurrencyCode
    amount: Decimal
    status: CheckoutStatus
    expires_at: datetime
    created_at: datetime
    description: str | None = None
    reference: str | None = None
    payment_method: PaymentMethod | None = None
    payer_id: uuid.UUID | None = None
    payment_transaction_id: uuid.UUID | None = None
    paid_at: datetime | None = None
    fee: Decimal = ZERO
    refunded: Decimal = ZERO
    fee_returned: Decimal = ZERO
    # What refunds took from the payable (the merchant's part of refunds before settlement).
    refunded_from_payable: Decimal = ZERO
    settled_at: datetime | None = None
    settlement_transaction_id: uuid.UUID | None = None

    def status_at(self, now: datetime) -> CheckoutStatus:
        if self.status is CheckoutStatus.OPEN and now >= self.expires_at:
            return CheckoutStatus.EXPIRED
        return self.status

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)

    @property
    def remaining(self) -> Decimal:
        """What refunds may still give back."""
        return MONEY_CONTEXT.subtract(self.amount, self.refunded)

    @property
    def unsettled(self) -> Decimal:
        """What of this sale still sits on the merchant's payable (0 once settled)."""
        if self.settled_at is not None:
            return ZERO
        return MONEY_CONTEXT.subtract(
            MONEY_CONTEXT.subtract(self.amount, self.fee), self.refunded_from_payable
        )


def merchant_fee(amount: Money, fee_bps: Decimal) -> Decimal:
    """The merchant discount on a sale: up(amount x bps / 10000)."""
    raw = MONEY_CONTEXT.divide(MONEY_CONTEXT.multiply(amount.amount, fee_bps), Decimal(10_000))
    return quantize(raw, amount.currency, ROUND_UP)


def fee_returned_after(checkout: Checkout, refunded_total: Decimal) -> Decimal:
    """The fee returned so far once refunds total ``refunded_total``: down(F x R / A), and all
    of F at R = A."""
    if refunded_total >= checkout.amount:
        return checkout.fee
    share = MONEY_CONTEXT.divide(
        MONEY_CONTEXT.multiply(checkout.fee, refunded_total), checkout.amount
    )
    return quantize(share, checkout.currency, ROUND_DOWN)


def debit_in_order(
    locked: dict[uuid.UUID, Wallet],
    sources: list[uuid.UUID],
    amount: Decimal,
    code: CurrencyCode,
    *,
    customer: bool,
) -> list[Posting]:
    """Debit ``amount`` from ``sources`` (the payable's shards, or the owner's wallet), in
    order, each for at most what it holds; what is left falls on the last (a customer wallet
    then refuses with INSUFFICIENT_FUNDS, and a payable cannot be short: it holds at least
    every unsettled sale's part)."""
    postings = []
    left = amount
    for i, account in enumerate(sources):
        if left <= 0:
            break
        last = i == len(sources) - 1
        available = max(locked[account].balance, ZERO)
        part = left if last or customer else min(left, available)
        if part > 0:
            postings.append(Posting(account, code, MONEY_CONTEXT.minus(part)))
            left = MONEY_CONTEXT.subtract(left, part)
    return postings
