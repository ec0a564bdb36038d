"""Installment schedules and allocation (stacklo/domain/installments.py), as properties."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from stacklo.domain.installments import (
    TERMS,
    InstallmentProduct,
    Plan,
    PlanStatus,
    add_months,
    allocate,
    apply,
    bucket,
    finance_fee,
    offer,
    schedule,
)
from stacklo.domain.money import CURRENCIES, CurrencyCode, Money

START = date(2026, 1, 31)
NOW = datetime(2026, 1, 31, tzinfo=UTC)

amounts = st.tuples(
    st.sampled_from([CurrencyCode.NGN, CurrencyCode.USD, CurrencyCode.BTC, CurrencyCode.ETH]),
    st.integers(min_value=1, max_value=10**14),
).map(lambda t: Money(Decimal(t[1]).scaleb(-CURRENCIES[t[0]].decimals), t[0]))


def plan_of(product: InstallmentProduct, amount: Money, fee_bps: int) -> Plan:
    fee = finance_fee(product, amount, Decimal(fee_bps))
    plan = Plan(
        uuid.uuid4(),
        uuid.uuid4(),
        uuid.uuid4(),
        uuid.uuid4(),
        product,
        PlanStatus.ACTIVE,
        amount.currency,
        amount.amount,
        fee,
        NOW,
    )
    plan.installments = schedule(plan.id, product, amount, fee, START)
    return plan


@given(amounts, st.sampled_from(list(InstallmentProduct)), st.integers(0, 3000))
def test_schedules_sum_exactly_to_the_total(
    amount: Money, product: InstallmentProduct, fee_bps: int
) -> None:
    plan = plan_of(product, amount, fee_bps)
    assert len(plan.installments) == TERMS[product].count
    assert sum(i.principal for i in plan.installments) == amount.amount
    assert sum(i.fee for i in plan.installments) == plan.fee
    assert sum(i.amount for i in plan.installments) == plan.total
    exponent = CURRENCIES[amount.currency].exponent
    assert all(i.amount == i.amount.quantize(exponent) for i in plan.installments)
    assert all(i.principal >= 0 and i.fee >= 0 for i in plan.installments)
    # Equal payments, the remainder on the last.
    assert len({i.amount for i in plan.installments[:-1]}) <= 1
    assert plan.installments[-1].amount >= plan.installments[0].amount
    made = offer(product, amount, Decimal(fee_bps))
    assert (
        made.total.amount == plan.total and made.down_payment.amount == plan.installments[0].amount
    )


@given(
    amounts.filter(lambda m: m.amount >= 1),
    st.sampled_from(list(InstallmentProduct)),
    st.integers(0, 200),
    st.lists(st.integers(1, 10**6), min_size=1, max_size=6),
)
def test_allocation_never_pays_a_later_bucket_while_an_earlier_one_is_owed(
    amount: Money, product: InstallmentProduct, days: int, payments: list[int]
) -> None:
    plan = plan_of(product, amount, 500)
    for i in plan.installments[:2]:  # some late fees to pay first
        i.late_fee = Decimal(1)
    today = START + timedelta(days=days)
    for raw in payments:
        pay = min(Decimal(raw).scaleb(-CURRENCIES[amount.currency].decimals), plan.outstanding)
        if pay <= 0:
            break
        parts = allocate(plan, pay, today)
        assert sum(a.total for a in parts) == pay
        for a in parts:
            earlier = [
                i
                for i in plan.installments
                if not i.settled
                and (bucket(i, today), i.sequence)
                < (bucket(a.installment, today), a.installment.sequence)
            ]
            # Everything owed earlier is paid in full by this same payment.
            paid_here = {p.installment.id: p.total for p in parts}
            assert all(paid_here.get(i.id, Decimal(0)) == i.owed for i in earlier)
            inst = a.installment
            # Within an installment: late fee, then fee, then principal.
            if a.fee or a.principal:
                assert a.late_fee == inst.late_fee - inst.late_fee_paid
            if a.principal:
                assert a.fee == inst.fee - inst.fee_paid
        apply(parts, NOW)


def test_monthly_dates_clamp_to_the_end_of_short_months() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 12, 15), 2) == date(2027, 2, 15)


def test_the_finance_fee_applies_to_pay_in_6_only_and_rounds_up() -> None:
    amount = Money(Decimal("100.01"), CurrencyCode.NGN)
    assert finance_fee(InstallmentProduct.PAY_IN_6_MONTHLY, amount, Decimal(500)) == Decimal("5.01")
    assert finance_fee(InstallmentProduct.PAY_IN_4, amount, Decimal(500)) == 0
