"""Collecting installments: what the worker's scheduler does for each plan that needs it.

For an ACTIVE plan, in one database transaction with the plan locked (so two runs at once
collect once, and a run repeated finds nothing left to do):
1. remind: an installment due within ``reminder_days`` and not reminded yet gets an
   ``installment.due`` outbox event for its payer (the notifications capability delivers it);
2. collect: everything due by today (past due first, late fees first) is taken from the
   plan's wallet in one INSTALLMENT_REPAYMENT when the wallet holds it all; otherwise nothing
   is taken and the installments wait;
3. late: an installment unpaid ``grace_days`` after its due date turns OVERDUE and is charged
   its late fee (one LATE_FEE; capped per installment and per plan);
4. default: an installment OVERDUE ``default_days`` after its due date defaults the plan,
   and the borrower's credit is SUSPENDED.
A plan whose installments are all paid is COMPLETED (its principal is credit again).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from stacklo.domain.borrower import CreditProfile
from stacklo.domain.credit import CreditStatus
from stacklo.domain.installments import (
    ZERO,
    InstallmentStatus,
    Plan,
    PlanStatus,
    allocate,
    apply,
    late_fee,
)
from stacklo.domain.ledger import Posting, Transaction, TransactionKind, TransactionStatus
from stacklo.domain.models import WORKER, AccountKind, audit
from stacklo.domain.money import MONEY_CONTEXT, Money
from stacklo.domain.movements import Movement, book
from stacklo.domain.notices import money_text
from stacklo.domain.plans import LendingTerms, collection_movement, complete_if_paid
from stacklo.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory


class Collection:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, terms: LendingTerms):
        self._uow = uow
        self._clock = clock
        self._terms = terms

    async def run(self) -> int:
        """One pass over the plans that need attention; returns how many changed."""
        now = self._clock()
        today = now.date()
        async with self._uow(read_only=True) as uow:
            plans = await uow.plans.needing_attention(
                today, today + timedelta(days=self._terms.reminder_days)
            )
        changed = 0
        for plan_id in plans:
            changed += await self.plan(plan_id, now)
        return changed

    async def plan(self, plan_id: uuid.UUID, now: datetime) -> int:
        terms = self._terms
        today = now.date()
        async with self._uow() as uow:
            plan = await uow.plans.get(plan_id, for_update=True)
            if plan is None or plan.status is not PlanStatus.ACTIVE:
                return 0
            # The borrower's profile next (a default suspends it), before any account: the
            # order financing takes them in too.
            profile = await uow.credit.profile(plan.user_id, for_update=True)
            changed = await self._remind(uow, plan, now)
            due = [i for i in plan.installments if not i.settled and i.due_date <= today]
            owed = sum((i.owed for i in due), ZERO)
            wallet_id = await uow.plans.wallet_of(plan.id)
            if owed > 0:
                wallet = await uow.wallets.get(wallet_id)
                if wallet is not None and wallet.available_money.amount >= owed:
                    parts = allocate(plan, owed, today)
                    await book(
                        uow,
                        await collection_movement(
                            uow, plan, wallet_id, owed, parts, now, WORKER, None
                        ),
                    )
                    apply(parts, now)
                    await uow.outbox.notify(
                        plan.user_id,
                        "installment.collected",
                        {
                            "amount": money_text(owed, plan.currency.value),
                            "sequence": ", ".join(str(a.installment.sequence) for a in parts),
                        },
                    )
                    changed = True
            for inst in plan.installments:
                late_by = (today - inst.due_date).days
                if inst.status is InstallmentStatus.SCHEDULED and late_by >= terms.grace_days:
                    inst.status = InstallmentStatus.OVERDUE
                    charge = late_fee(
                        inst,
                        plan,
                        terms.late_fee_flat.get(plan.currency, ZERO),
                        terms.late_fee_bps,
                        _bps(inst.amount, terms.late_fee_cap_bps),
                        _bps(plan.principal, terms.late_fee_plan_cap_bps),
                    )
                    if charge > 0:
                        inst.late_fee = MONEY_CONTEXT.add(inst.late_fee, charge)
                        movement = await _late_fee(uow, plan, wallet_id, inst.sequence, charge, now)
                        await book(uow, movement)
                    await uow.outbox.notify(
                        plan.user_id,
                        "installment.overdue",
                        {
                            "amount": money_text(inst.owed, plan.currency.value),
                            "late_fee": money_text(charge, plan.currency.value),
                            "sequence": str(inst.sequence),
                        },
                    )
                    changed = True
            if any(
                i.status is InstallmentStatus.OVERDUE
                and (today - i.due_date).days >= terms.default_days
                for i in plan.installments
            ):
                plan.status = PlanStatus.DEFAULTED
                await _suspend(uow, plan, profile, now)
                await _notify_plan(uow, plan, "plan.defaulted")
                changed = True
            was = plan.status
            complete_if_paid(plan, now)
            if was is not plan.status:
                await _notify_plan(uow, plan, "plan.completed")
            if changed:
                await uow.plans.save(plan)
                await uow.commit()
        return int(changed)

    async def _remind(self, uow: UnitOfWork, plan: Plan, now: datetime) -> bool:
        today = now.date()
        horizon = today + timedelta(days=self._terms.reminder_days)
        reminded = False
        for inst in plan.installments:
            if inst.settled or inst.reminded_at is not None or not today < inst.due_date <= horizon:
                continue
            inst.reminded_at = now
            await uow.plans.remind(
                plan.user_id,
                inst,
                {
                    "kind": "installment.due",
                    "plan_id": str(plan.id),
                    "installment_id": str(inst.id),
                    "sequence": inst.sequence,
                    "due_date": inst.due_date.isoformat(),
                    "amount": str(inst.owed),
                    "currency": plan.currency.value,
                },
            )
            reminded = True
        return reminded


def _bps(amount: Decimal, bps: Decimal) -> Decimal:
    return MONEY_CONTEXT.divide(MONEY_CONTEXT.multiply(amount, bps), Decimal(10_000))


async def _late_fee(
    uow: UnitOfWork,
    plan: Plan,
    wallet_id: uuid.UUID,
    sequence: int,
    charge: Decimal,
    now: datetime,
) -> Movement:
    """Owed now, paid with the installment: the receivable advances it to the fee account.
    The payer's wallet is named (no entry on it) so the charge shows in their transactions."""
    code = plan.currency
    receivable = await uow.ledger.platform_account(AccountKind.BNPL_RECEIVABLE, code)
    fees = await uow.ledger.platform_account(AccountKind.FEES, code)
    amount = Money(charge, code)
    tx = Transaction.start(
        TransactionKind.LATE_FEE,
        amount,
        now,
        status=TransactionStatus.COMPLETED,
        source_wallet_id=wallet_id,
        target_wallet_id=receivable,
        description=f"Late fee, installment {sequence}",
        metadata={"plan_id": str(plan.id), "user_id": str(plan.user_id), "sequence": sequence},
    )
    return Movement(
        tx,
        postings=[
            Posting(receivable, code, MONEY_CONTEXT.minus(amount.amount)),
            Posting(fees, code, amount.amount),
        ],
        audit=audit(
            "installment.late_fee",
            WORKER,
            actor_id=None,
            target_type="InstallmentPlan",
            target_id=plan.id,
            sequence=sequence,
            amount=str(amount.amount),
        ),
    )


async def _notify_plan(uow: UnitOfWork, plan: Plan, kind: str) -> None:
    merchant = await uow.merchants.get(plan.merchant_id)
    await uow.outbox.notify(
        plan.user_id, kind, {"merchant": merchant.name if merchant else "the merchant"}
    )


async def _suspend(
    uow: UnitOfWork, plan: Plan, profile: CreditProfile | None, now: datetime
) -> None:
    if profile is not None and profile.status is not CreditStatus.SUSPENDED:
        profile.status = CreditStatus.SUSPENDED
        profile.suspended_at = now
        await uow.credit.save_profile(profile)
    await uow.audit.record(
        audit(
            "installment.plan_defaulted",
            WORKER,
            actor_id=None,
            target_type="InstallmentPlan",
            target_id=plan.id,
            user=str(plan.user_id),
        )
    )
