"""Buy now, pay later: products, schedules, and how a payment is allocated (pure rules).

Products (``TERMS``):
- PAY_IN_4: four equal payments, the first (25%) at checkout, then every 14 days; no fee;
- PAY_IN_3_MONTHLY: three equal payments, the first at checkout, then monthly; no fee;
- PAY_IN_6_MONTHLY: six equal payments, the first at checkout, then monthly, with a finance
  fee, ``fee = up(amount x fee_bps / 10000)`` (``STACKLO_BNPL_FEES_BPS``).

Schedules (``schedule``): the total (amount + fee) is split into equal payments rounded down
to the currency, the remainder on the last, so the payments sum exactly to the total; the fee
is spread the same way, so each payment is a principal part plus a fee part. The first is due
on the day of checkout; monthly dates keep the day of the month, or the month's last day when
it is shorter (Jan 31 -> Feb 28 -> Mar 31).

Allocation (``allocate``, after Apache Fineract): money paid to a plan goes to installments in
buckets: past due, then due today, then future (next first); within each installment to its
late fee, then its finance fee, then its principal. No later bucket is paid while an earlier
one is owed.

Ledger (``domain/bnpl.py`` books it): at checkout the merchant is paid in full, net of its
discount; the payer pays the first installment; what the payer still owes in principal is
advanced by the platform's BNPL receivable account, whose balance is minus the principal and
late fees customers owe. Collections and repayments move principal back to the receivable and
fees to the fee account.
"""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from enum import Enum

from stacklo.domain.money import MONEY_CONTEXT, CurrencyCode, Money, quantize

ZERO = Decimal(0)


class InstallmentProduct(Enum):
    PAY_IN_4 = "PAY_IN_4"
    PAY_IN_3_MONTHLY = "PAY_IN_3_MONTHLY"
    PAY_IN_6_MONTHLY = "PAY_IN_6_MONTHLY"


class PlanStatus(Enum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    DEFAULTED = "DEFAULTED"
    CANCELLED = "CANCELLED"


class InstallmentStatus(Enum):
    SCHEDULED = "SCHEDULED"
    PAID = "PAID"
    OVERDUE = "OVERDUE"
    WAIVED = "WAIVED"


@dataclass(frozen=True, slots=True)
class Terms:
    count: int
    interval_days: int  # what clients are told: 14, or 30 for monthly
    months: int = 0  # >0: due dates step by calendar months instead of days
    financed: bool = False  # charges the finance fee


TERMS: dict[InstallmentProduct, Terms] = {
    InstallmentProduct.PAY_IN_4: Terms(4, 14),
    InstallmentProduct.PAY_IN_3_MONTHLY: Terms(3, 30, months=1),
    InstallmentProduct.PAY_IN_6_MONTHLY: Terms(6, 30, months=1, financed=True),
}


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def due_dates(product: InstallmentProduct, start: date) -> list[date]:
    terms = TERMS[product]
    if terms.months:
        return [add_months(start, i * terms.months) for i in range(terms.count)]
    return [start + timedelta(days=i * terms.interval_days) for i in range(terms.count)]


def split(total: Decimal, count: int, currency: CurrencyCode) -> list[Decimal]:
    """``count`` parts rounded down, the remainder on the last; they sum to ``total``."""
    each = quantize(MONEY_CONTEXT.divide(total, Decimal(count)), currency, ROUND_DOWN)
    last = MONEY_CONTEXT.subtract(total, MONEY_CONTEXT.multiply(each, Decimal(count - 1)))
    return [each] * (count - 1) + [last]


def finance_fee(product: InstallmentProduct, amount: Money, fee_bps: Decimal) -> Decimal:
    if not TERMS[product].financed:
        return ZERO
    raw = MONEY_CONTEXT.divide(MONEY_CONTEXT.multiply(amount.amount, fee_bps), Decimal(10_000))
    return quantize(raw, amount.currency, ROUND_UP)


@dataclass(frozen=True, slots=True)
class Offer:
    product: InstallmentProduct
    count: int
    down_payment: Money
    installment_amount: Money
    interval_days: int
    fee: Money
    total: Money


@dataclass(slots=True)
class Installment:
    id: uuid.UUID
    plan_id: uuid.UUID
    sequence: int
    due_date: date
    principal: Decimal
    fee: Decimal
    status: InstallmentStatus = InstallmentStatus.SCHEDULED
    late_fee: Decimal = ZERO
    principal_paid: Decimal = ZERO
    fee_paid: Decimal = ZERO
    late_fee_paid: Decimal = ZERO
    paid_at: datetime | None = None
    reminded_at: datetime | None = None

    @property
    def amount(self) -> Decimal:
        return MONEY_CONTEXT.add(self.principal, self.fee)

    @property
    def paid(self) -> Decimal:
        return MONEY_CONTEXT.add(
            MONEY_CONTEXT.add(self.principal_paid, self.fee_paid), self.late_fee_paid
        )

    @property
    def owed(self) -> Decimal:
        """Late fee, fee and principal still to pay."""
        due = MONEY_CONTEXT.add(self.amount, self.late_fee)
        return MONEY_CONTEXT.subtract(due, self.paid)

    @property
    def settled(self) -> bool:
        return self.status in (InstallmentStatus.PAID, InstallmentStatus.WAIVED)


def schedule(
    plan_id: uuid.UUID,
    product: InstallmentProduct,
    principal: Money,
    fee: Decimal,
    start: date,
) -> list[Installment]:
    terms = TERMS[product]
    code = principal.currency
    principals = split(principal.amount, terms.count, code)
    fees = split(fee, terms.count, code)
    return [
        Installment(uuid.uuid4(), plan_id, i + 1, day, principals[i], fees[i])
        for i, day in enumerate(due_dates(product, start))
    ]


def offer(product: InstallmentProduct, amount: Money, fee_bps: Decimal) -> Offer:
    fee = finance_fee(product, amount, fee_bps)
    parts = schedule(uuid.uuid4(), product, amount, fee, date(2000, 1, 1))
    code = amount.currency
    return Offer(
        product,
        len(parts),
        Money(parts[0].amount, code),
        Money(parts[1].amount, code),
        TERMS[product].interval_days,
        Money(fee, code),
        Money(MONEY_CONTEXT.add(amount.amount, fee), code),
    )


@dataclass(slots=True)
class Plan:
    id: uuid.UUID
    user_id: uuid.UUID
    checkout_id: uuid.UUID
    merchant_id: uuid.UUID
    product: InstallmentProduct
    status: PlanStatus
    currency: CurrencyCode
    principal: Decimal
    fee: Decimal
    created_at: datetime
    installments: list[Installment] = field(default_factory=list)
    completed_at: datetime | None = None

    @property
    def outstanding(self) -> Decimal:
        """Everything still to pay: principal, fees and late fees."""
        return sum((i.owed for i in self.installments if not i.settled), ZERO)

    @property
    def outstanding_principal(self) -> Decimal:
        return sum(
            (
                MONEY_CONTEXT.subtract(i.principal, i.principal_paid)
                for i in self.installments
                if not i.settled
            ),
            ZERO,
        )

    @property
    def late_fees_charged(self) -> Decimal:
        return sum((i.late_fee for i in self.installments), ZERO)

    @property
    def late_fees_owed(self) -> Decimal:
        return sum(
            (
                MONEY_CONTEXT.subtract(i.late_fee, i.late_fee_paid)
                for i in self.installments
                if not i.settled
            ),
            ZERO,
        )

    @property
    def total(self) -> Decimal:
        return MONEY_CONTEXT.add(self.principal, self.fee)

    def next_installment(self) -> Installment | None:
        return next((i for i in self.installments if not i.settled), None)


@dataclass(frozen=True, slots=True)
class Allocation:
    """What one payment pays of one installment."""

    installment: Installment
    late_fee: Decimal
    fee: Decimal
    principal: Decimal

    @property
    def total(self) -> Decimal:
        return MONEY_CONTEXT.add(MONEY_CONTEXT.add(self.late_fee, self.fee), self.principal)


def bucket(installment: Installment, today: date) -> int:
    """0 past due, 1 due today, 2 future."""
    if installment.due_date < today:
        return 0
    return 1 if installment.due_date == today else 2


def allocate(plan: Plan, amount: Decimal, today: date) -> list[Allocation]:
    """How ``amount`` pays the plan: past due, due, future (in sequence within each); within
    an installment late fee, then fee, then principal. What exceeds what is owed is not
    allocated (the caller refuses it)."""
    left = amount
    out: list[Allocation] = []
    unpaid = sorted(
        (i for i in plan.installments if not i.settled),
        key=lambda i: (bucket(i, today), i.sequence),
    )
    for inst in unpaid:
        if left <= 0:
            break
        parts = []
        for owed in (
            MONEY_CONTEXT.subtract(inst.late_fee, inst.late_fee_paid),
            MONEY_CONTEXT.subtract(inst.fee, inst.fee_paid),
            MONEY_CONTEXT.subtract(inst.principal, inst.principal_paid),
        ):
            part = min(owed, left)
            parts.append(part)
            left = MONEY_CONTEXT.subtract(left, part)
        if any(parts):
            out.append(Allocation(inst, *parts))
    return out


def apply(allocations: list[Allocation], now: datetime) -> None:
    """Record the payments on their installments (PAID once nothing is owed)."""
    for a in allocations:
        inst = a.installment
        inst.late_fee_paid = MONEY_CONTEXT.add(inst.late_fee_paid, a.late_fee)
        inst.fee_paid = MONEY_CONTEXT.add(inst.fee_paid, a.fee)
        inst.principal_paid = MONEY_CONTEXT.add(inst.principal_paid, a.principal)
        if inst.owed == 0:
            inst.status = InstallmentStatus.PAID
            inst.paid_at = now


def late_fee(
    installment: Installment,
    plan: Plan,
    flat: Decimal,
    bps: Decimal,
    per_installment_cap: Decimal,
    per_plan_cap: Decimal,
) -> Decimal:
    """The fee for an installment turning overdue: flat plus bps of the installment, capped
    per installment and by what the plan's cap leaves (0 when there is no room)."""
    raw = MONEY_CONTEXT.add(
        flat,
        MONEY_CONTEXT.divide(MONEY_CONTEXT.multiply(installment.amount, bps), Decimal(10_000)),
    )
    room = MONEY_CONTEXT.subtract(per_plan_cap, plan.late_fees_charged)
    return quantize(max(ZERO, min(raw, per_installment_cap, room)), plan.currency, ROUND_DOWN)


def reduce_from_last(plan: Plan, amount: Decimal) -> Decimal:
    """A partial refund lowers the principal still owed, from the last installment back;
    returns what it lowered (at most what was owed). Installments left with nothing to pay
    are WAIVED."""
    left = amount
    for inst in reversed(plan.installments):
        if left <= 0:
            break
        if inst.settled:
            continue
        cut = min(left, MONEY_CONTEXT.subtract(inst.principal, inst.principal_paid))
        inst.principal = MONEY_CONTEXT.subtract(inst.principal, cut)
        left = MONEY_CONTEXT.subtract(left, cut)
        if inst.owed == 0:
            inst.status = InstallmentStatus.WAIVED
    return MONEY_CONTEXT.subtract(amount, left)
