"""The money rules of a sale and the merchant review table (stacklo/domain/commerce.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stacklo.domain.commerce import (
    REVIEWS,
    Checkout,
    CheckoutStatus,
    MerchantStatus,
    fee_returned_after,
    merchant_fee,
    reviewed,
)
from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.money import CurrencyCode, Money

NGN = CurrencyCode.NGN
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def paid(amount: str, fee: str) -> Checkout:
    return Checkout(
        uuid.uuid4(),
        uuid.uuid4(),
        NGN,
        Decimal(amount),
        CheckoutStatus.PAID,
        NOW + timedelta(minutes=30),
        NOW,
        fee=Decimal(fee),
    )


def test_the_merchant_discount_rounds_up_to_the_currency() -> None:
    assert merchant_fee(Money(Decimal(1000), NGN), Decimal(150)) == Decimal(15)
    assert merchant_fee(Money(Decimal("1.01"), NGN), Decimal(150)) == Decimal("0.02")
    assert merchant_fee(Money(Decimal("0.01"), NGN), Decimal(150)) == Decimal("0.01")
    assert merchant_fee(Money(Decimal(100), NGN), Decimal(0)) == 0
    btc = merchant_fee(Money(Decimal("0.00000001"), CurrencyCode.BTC), Decimal(150))
    assert btc == Decimal("0.00000001")


@given(
    st.integers(min_value=1, max_value=10**9).flatmap(
        lambda cents: st.tuples(
            st.just(cents),
            st.lists(st.integers(min_value=1, max_value=cents), min_size=1, max_size=8),
        )
    ),
    st.integers(min_value=0, max_value=9_999),
)
def test_refunds_return_the_fee_pro_rata_and_exactly_in_full(
    case: tuple[int, list[int]], bps: int
) -> None:
    cents, parts = case
    amount = Decimal(cents).scaleb(-2)
    fee = merchant_fee(Money(amount, NGN), Decimal(bps))
    checkout = paid(str(amount), str(fee))
    refunded = returned = Decimal(0)
    for part in parts:
        r = min(Decimal(part).scaleb(-2), amount - refunded)
        if r <= 0:
            break
        refunded += r
        so_far = fee_returned_after(checkout, refunded)
        assert returned <= so_far <= fee  # never back, never more than was taken
        assert so_far <= fee * refunded / amount  # never ahead of the refunded share
        returned = so_far
    assert fee_returned_after(checkout, amount) == fee  # all of it once fully refunded


def test_a_checkout_is_expired_from_its_expiry_instant() -> None:
    c = paid("10", "0.15")
    c.status = CheckoutStatus.OPEN
    assert c.status_at(c.expires_at - timedelta(milliseconds=1)) is CheckoutStatus.OPEN
    assert c.status_at(c.expires_at) is CheckoutStatus.EXPIRED
    c.status = CheckoutStatus.PAID
    assert c.status_at(c.expires_at + timedelta(days=1)) is CheckoutStatus.PAID


@pytest.mark.parametrize("status", list(MerchantStatus))
@pytest.mark.parametrize("approve", [True, False])
def test_reviews_follow_the_table(status: MerchantStatus, approve: bool) -> None:
    if (status, approve) in REVIEWS:
        assert reviewed(status, approve) is REVIEWS[(status, approve)]
    else:
        with pytest.raises(DomainError) as refused:
            reviewed(status, approve)
        assert refused.value.code is ErrorCode.INVALID_STATE
