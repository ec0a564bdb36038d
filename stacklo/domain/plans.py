"""Installment plans: offers, paying a checkout in installments, repaying, prepaying, and what
a refund does to a financed checkout. The products, schedules and allocation rules are in
``installments.py``; every movement goes through ``movements.book``.

Postings (the receivable's balance is minus what customers owe in principal and late fees):
- financing a checkout of amount A (merchant discount mf) whose first installment is p1 + f1
  (principal + finance fee): payer -(p1 + f1); receivable -(A - p1); merchant payable
  +(A - mf); fees +(mf + f1). One CHECKOUT_PAYMENT.
- a repayment (or a collection) allocated to late fees L, finance fees F and principal P:
  payer -(L + F + P); receivable +(L + P); fees +F. One INSTALLMENT_REPAYMENT.
- a late fee L when an installment turns overdue: receivable -L; fees +L. One LATE_FEE.
- a refund r of a financed checkout: what is still owed in principal, O, is lowered first,
  from the last installment back (receivable +min(r, O)); only the rest, r - min(r, O), goes
  back to the payer's wallet; the merchant gives back r less the discount returned pro rata
  (as for any checkout). A full refund cancels the plan, returns the finance and late fees the
  payer paid, and drops late fees still owed.
Locks: checkout, then the borrower's credit profile, then the plan, then accounts (``book``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from stacklo.domain.borrower import CreditProfile, Standing
from stacklo.domain.credit import CreditStatus
from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.installments import (
    TERMS,
    ZERO,
    Allocation,
    InstallmentProduct,
    InstallmentStatus,
    Offer,
    Plan,
    PlanStatus,
    allocate,
    apply,
    finance_fee,
    offer,
    reduce_from_last,
    schedule,
)
from stacklo.domain.ledger import Posting, Transaction, TransactionKind, TransactionStatus
from stacklo.domain.models import AccountKind, RequestMeta, User, Wallet, audit
from stacklo.domain.money import MONEY_CONTEXT, CurrencyCode, Money, parse_amount
from stacklo.domain.movements import Idempotent, Movement, Sender, book
from stacklo.domain.outcomes import Outcome, claim_key, replay
from stacklo.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from stacklo.domain.wallets import owned_wallet


@dataclass(frozen=True, slots=True)
class LendingTerms:
    """The settings installments run on."""

    fee_bps: Decimal = Decimal(500)  # PAY_IN_6_MONTHLY's finance fee
    min_amount: dict[CurrencyCode, Decimal] = field(default_factory=dict)
    max_amount: dict[CurrencyCode, Decimal] = field(default_factory=dict)
    grace_days: int = 3
    default_days: int = 60
    reminder_days: int = 3
    late_fee_flat: dict[CurrencyCode, Decimal] = field(default_factory=dict)
    late_fee_bps: Decimal = Decimal(500)  # of the installment
    late_fee_cap_bps: Decimal = Decimal(1000)  # per installment, of the installment
    late_fee_plan_cap_bps: Decimal = Decimal(2500)  # per plan, of its principal

    def within(self, amount: Money) -> bool:
        low = self.min_amount.get(amount.currency, ZERO)
        high = self.max_amount.get(amount.currency)
        return amount.amount >= low and (high is None or amount.amount <= high)


@dataclass(frozen=True, slots=True)
class Repay:
    user: User
    installment: uuid.UUID
    wallet: uuid.UUID
    idempotency_key: str
    meta: RequestMeta

    def request(self) -> dict[str, object]:
        return {"installment": str(self.installment), "wallet": str(self.wallet)}


@dataclass(frozen=True, slots=True)
class Prepay:
    user: User
    plan: uuid.UUID
    wallet: uuid.UUID
    idempotency_key: str
    meta: RequestMeta
    amount: Decimal | None = None

    def request(self) -> dict[str, object]:
        return {
            "plan": str(self.plan),
            "wallet": str(self.wallet),
            "amount": None if self.amount is None else str(self.amount),
        }


@dataclass(frozen=True, slots=True)
class Repaid:
    plan: Plan
    outcome: Outcome


PLAN_NOT_FOUND = "Installment plan not found."
INSTALLMENT_NOT_FOUND = "Installment not found."


class Plans:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, terms: LendingTerms):
        self._uow = uow
        self._clock = clock
        self.terms = terms

    # ------------------------------------------------------------------ standing, offers

    async def standing(self, uow: UnitOfWork, user: User, currency: CurrencyCode) -> Standing:
        profile = await uow.credit.profile(user.id) or CreditProfile(
            user.id, CreditStatus.NONE, currency
        )
        outstanding = await uow.plans.outstanding_principal(user.id)
        return Standing(profile, profile.available(outstanding))

    async def offers(self, user: User | None, amount: Money) -> list[Offer]:
        """What the user could pay ``amount`` with now: empty without approved credit in that
        currency, and only products within the bounds and the credit left."""
        if user is None:
            return []
        async with self._uow(read_only=True) as uow:
            standing = await self.standing(uow, user, amount.currency)
        if (
            standing.profile.currency is not amount.currency
            or standing.available < amount.amount
            or not self.terms.within(amount)
        ):
            return []
        return [offer(p, amount, self.terms.fee_bps) for p in InstallmentProduct]

    # ---------------------------------------------------------------------- financing

    async def finance(
        self,
        uow: UnitOfWork,
        user: User,
        product: InstallmentProduct | None,
        checkout_id: uuid.UUID,
        merchant_id: uuid.UUID,
        amount: Money,
        merchant_fee: Decimal,
        payable: uuid.UUID,
        source: Wallet,
        now: datetime,
        meta: RequestMeta,
        idempotency_key: str,
        description: str,
    ) -> tuple[Movement, Plan]:
        """The movement that pays a checkout in installments, and its plan (not yet stored)."""
        if product is None:
            raise DomainError(
                ErrorCode.INVALID_INPUT,
                "Say which installment product (product) to pay with.",
                ("input", "product"),
            )
        profile = await uow.credit.profile(user.id, for_update=True)
        if profile is None or profile.status is not CreditStatus.APPROVED:
            raise DomainError(
                ErrorCode.CREDIT_DECLINED,
                "Paying in installments needs approved credit (applyForCredit).",
                ("input", "method"),
            )
        if profile.currency is not amount.currency:
            raise DomainError(
                ErrorCode.CURRENCY_MISMATCH,
                f"Your credit is in {profile.currency.value}; this checkout is in "
                f"{amount.currency.value}.",
                ("input", "method"),
            )
        if not self.terms.within(amount):
            raise DomainError(
                ErrorCode.INVALID_INPUT,
                "This amount cannot be paid in installments.",
                ("input", "product"),
            )
        available = profile.available(await uow.plans.outstanding_principal(user.id))
        if amount.amount > available:
            raise DomainError(
                ErrorCode.CREDIT_LIMIT_EXCEEDED,
                f"This needs {amount.amount} {amount.currency.value} of credit; "
                f"{available} is available.",
                ("input", "method"),
            )
        code = amount.currency
        fee = finance_fee(product, amount, self.terms.fee_bps)
        plan = Plan(
            uuid.uuid4(),
            user.id,
            checkout_id,
            merchant_id,
            product,
            PlanStatus.ACTIVE,
            code,
            amount.amount,
            fee,
            now,
        )
        plan.installments = schedule(plan.id, product, amount, fee, now.date())
        first = plan.installments[0]
        paid_now = allocate(plan, first.amount, now.date())
        apply(paid_now, now)
        financed = MONEY_CONTEXT.subtract(amount.amount, first.principal)
        fees = await uow.ledger.platform_account(AccountKind.FEES, code)
        receivable = await uow.ledger.platform_account(AccountKind.BNPL_RECEIVABLE, code)
        postings = [
            Posting(source.id, code, MONEY_CONTEXT.minus(first.amount)),
            Posting(payable, code, MONEY_CONTEXT.subtract(amount.amount, merchant_fee)),
        ]
        if financed:
            postings.append(Posting(receivable, code, MONEY_CONTEXT.minus(financed)))
        if merchant_fee or first.fee:
            postings.append(Posting(fees, code, MONEY_CONTEXT.add(merchant_fee, first.fee)))
        tx = Transaction.start(
            TransactionKind.CHECKOUT_PAYMENT,
            amount,
            now,
            status=TransactionStatus.COMPLETED,
            fee=merchant_fee,
            initiator_id=user.id,
            source_wallet_id=source.id,
            target_wallet_id=payable,
            description=f"{description} ({TERMS[product].count} installments)",
            metadata={
                "checkout_id": str(checkout_id),
                "merchant_id": str(merchant_id),
                "plan_id": str(plan.id),
                "product": product.value,
                "first_installment": str(first.amount),
            },
        )
        movement = Movement(
            tx,
            postings=[p for p in postings if p.amount],
            senders=[Sender(source.id, ("input", "walletId"))],
            audit=audit(
                "checkout.financed",
                meta,
                actor_id=user.id,
                target_type="InstallmentPlan",
                target_id=plan.id,
                checkout=str(checkout_id),
                product=product.value,
                amount=str(amount.amount),
                fee=str(fee),
            ),
            idempotent=Idempotent(user.id, idempotency_key),
        )
        return movement, plan

    # --------------------------------------------------------------------- repayments

    async def repay(self, cmd: Repay) -> Repaid:
        async with self._uow() as uow:
            first = await claim_key(
                uow, cmd.user.id, cmd.idempotency_key, "repayInstallment", cmd.request()
            )
            plan_id = await uow.plans.of_installment(cmd.installment)
            if first is not None:
                return await self._replayed(uow, plan_id, first)
            field = ("input", "installmentId")
            plan = await uow.plans.get(plan_id, for_update=True) if plan_id else None
            if plan is None or plan.user_id != cmd.user.id:
                raise DomainError(ErrorCode.NOT_FOUND, INSTALLMENT_NOT_FOUND, field)
            _repayable(plan, field)
            inst = next(i for i in plan.installments if i.id == cmd.installment)
            if inst.settled:
                raise DomainError(
                    ErrorCode.INVALID_STATE, f"This installment is {inst.status.value}.", field
                )
            now = self._clock()
            owed = inst.owed
            parts = [
                Allocation(
                    inst,
                    MONEY_CONTEXT.subtract(inst.late_fee, inst.late_fee_paid),
                    MONEY_CONTEXT.subtract(inst.fee, inst.fee_paid),
                    MONEY_CONTEXT.subtract(inst.principal, inst.principal_paid),
                )
            ]
            outcome = await self._repayment(
                uow, cmd.user, plan, cmd.wallet, owed, parts, now, cmd.meta, cmd.idempotency_key
            )
            await uow.commit()
        return Repaid(plan, outcome)

    async def prepay(self, cmd: Prepay) -> Repaid:
        async with self._uow() as uow:
            first = await claim_key(
                uow, cmd.user.id, cmd.idempotency_key, "prepayPlan", cmd.request()
            )
            if first is not None:
                return await self._replayed(uow, cmd.plan, first)
            field = ("input", "planId")
            plan = await uow.plans.get(cmd.plan, for_update=True)
            if plan is None or plan.user_id != cmd.user.id:
                raise DomainError(ErrorCode.NOT_FOUND, PLAN_NOT_FOUND, field)
            _repayable(plan, field)
            outstanding = plan.outstanding
            amount = outstanding if cmd.amount is None else parse_amount(cmd.amount, plan.currency)
            if amount > outstanding:
                raise DomainError(
                    ErrorCode.INVALID_INPUT,
                    f"At most {outstanding} {plan.currency.value} is owed on this plan.",
                    ("input", "amount"),
                )
            now = self._clock()
            parts = allocate(plan, amount, now.date())
            outcome = await self._repayment(
                uow, cmd.user, plan, cmd.wallet, amount, parts, now, cmd.meta, cmd.idempotency_key
            )
            await uow.commit()
        return Repaid(plan, outcome)

    async def _repayment(
        self,
        uow: UnitOfWork,
        user: User,
        plan: Plan,
        wallet_id: uuid.UUID,
        amount: Decimal,
        parts: list[Allocation],
        now: datetime,
        meta: RequestMeta,
        key: str,
    ) -> Outcome:
        wallet = await owned_wallet(uow, user, wallet_id, "walletId")
        if wallet.currency is not plan.currency:
            raise DomainError(
                ErrorCode.CURRENCY_MISMATCH,
                f"This plan is in {plan.currency.value}; the wallet holds {wallet.currency.value}.",
                ("input", "walletId"),
            )
        movement = await collection_movement(
            uow, plan, wallet.id, amount, parts, now, meta, user.id
        )
        movement = Movement(
            movement.transaction,
            postings=movement.postings,
            senders=[Sender(wallet.id, ("input", "walletId"))],
            audit=movement.audit,
            idempotent=Idempotent(user.id, key),
        )
        outcome = await book(uow, movement)
        apply(parts, now)
        complete_if_paid(plan, now)
        if plan.status is PlanStatus.COMPLETED:
            merchant = await uow.merchants.get(plan.merchant_id)
            await uow.outbox.notify(
                plan.user_id, "plan.completed", {"merchant": merchant.name if merchant else ""}
            )
        await uow.plans.save(plan)
        return outcome

    async def _replayed(
        self, uow: UnitOfWork, plan_id: uuid.UUID | None, first: dict[str, Any]
    ) -> Repaid:
        outcome = await replay(uow, first)
        plan = await uow.plans.get(plan_id) if plan_id else None
        assert plan is not None, "a replayed repayment's plan exists"
        return Repaid(plan, outcome)

    # ------------------------------------------------------------------------ refunds

    async def refund_postings(
        self,
        uow: UnitOfWork,
        plan: Plan,
        refund: Decimal,
        full: bool,
        now: datetime,
    ) -> tuple[list[Posting], Decimal]:
        """The payer's and the receivable's side of refunding ``refund`` of a financed
        checkout (the caller adds the merchant's side); returns them and what goes back to
        the payer's wallet. Changes ``plan`` (the caller saves it)."""
        code = plan.currency
        receivable = await uow.ledger.platform_account(AccountKind.BNPL_RECEIVABLE, code)
        wallet = await uow.plans.wallet_of(plan.id)
        lowered = reduce_from_last(plan, refund)
        plan.principal = MONEY_CONTEXT.subtract(plan.principal, lowered)
        back = MONEY_CONTEXT.subtract(refund, lowered)
        postings = [Posting(receivable, code, lowered)]
        if full:
            # The payer gets back the finance and late fees paid; late fees still owed go.
            fees_paid = sum(
                (MONEY_CONTEXT.add(i.fee_paid, i.late_fee_paid) for i in plan.installments), ZERO
            )
            owed_late = plan.late_fees_owed
            fees = await uow.ledger.platform_account(AccountKind.FEES, code)
            back = MONEY_CONTEXT.add(back, fees_paid)
            postings += [
                Posting(receivable, code, owed_late),
                Posting(fees, code, MONEY_CONTEXT.minus(MONEY_CONTEXT.add(fees_paid, owed_late))),
            ]
            plan.fee = sum((i.fee_paid for i in plan.installments), ZERO)
            for inst in plan.installments:
                inst.fee = inst.fee_paid
                inst.late_fee = inst.late_fee_paid
                if not inst.settled:
                    inst.principal = inst.principal_paid
                    inst.status = InstallmentStatus.WAIVED
            plan.principal = sum((i.principal for i in plan.installments), ZERO)
            plan.status = PlanStatus.CANCELLED
            plan.completed_at = now
        else:
            complete_if_paid(plan, now)  # a refund may leave nothing to pay
        postings.append(Posting(wallet, code, back))
        return [p for p in postings if p.amount], back


async def collection_movement(
    uow: UnitOfWork,
    plan: Plan,
    wallet_id: uuid.UUID,
    amount: Decimal,
    parts: list[Allocation],
    now: datetime,
    meta: RequestMeta,
    actor: uuid.UUID | None,
) -> Movement:
    """An INSTALLMENT_REPAYMENT of ``amount`` allocated as ``parts``: principal and late fees
    back to the receivable, finance fees to the fee account."""
    code = plan.currency
    fee_part = sum((a.fee for a in parts), ZERO)
    to_receivable = sum((MONEY_CONTEXT.add(a.principal, a.late_fee) for a in parts), ZERO)
    receivable = await uow.ledger.platform_account(AccountKind.BNPL_RECEIVABLE, code)
    fees = await uow.ledger.platform_account(AccountKind.FEES, code)
    postings = [
        Posting(wallet_id, code, MONEY_CONTEXT.minus(amount)),
        Posting(receivable, code, to_receivable),
        Posting(fees, code, fee_part),
    ]
    tx = Transaction.start(
        TransactionKind.INSTALLMENT_REPAYMENT,
        Money(amount, code),
        now,
        status=TransactionStatus.COMPLETED,
        initiator_id=actor,
        source_wallet_id=wallet_id,
        target_wallet_id=receivable,
        description=f"Installments {', '.join(str(a.installment.sequence) for a in parts)}",
        metadata={
            "plan_id": str(plan.id),
            "installments": [str(a.installment.id) for a in parts],
            "principal": str(sum((a.principal for a in parts), ZERO)),
            "fee": str(fee_part),
            "late_fee": str(sum((a.late_fee for a in parts), ZERO)),
        },
    )
    return Movement(
        tx,
        postings=[p for p in postings if p.amount],
        audit=audit(
            "installment.repaid",
            meta,
            actor_id=actor,
            target_type="InstallmentPlan",
            target_id=plan.id,
            amount=str(amount),
            transaction=tx.reference,
        ),
    )


def complete_if_paid(plan: Plan, now: datetime) -> None:
    if plan.status in (PlanStatus.ACTIVE, PlanStatus.DEFAULTED) and all(
        i.settled for i in plan.installments
    ):
        plan.status = PlanStatus.COMPLETED
        plan.completed_at = now


def _repayable(plan: Plan, field: tuple[str, ...]) -> None:
    if plan.status not in (PlanStatus.ACTIVE, PlanStatus.DEFAULTED):
        raise DomainError(ErrorCode.INVALID_STATE, f"This plan is {plan.status.value}.", field)


def today_of(now: datetime) -> date:
    """The plan's calendar: UTC."""
    return now.date()
