"""Credit profiles and decisions, installment plans: rows onto ``domain/borrower.py`` and
``domain/installments.py``, and the one read a credit decision is made from."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, and_, func, literal, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from stacklo.data.outbox import NOTIFICATION_EVENT, announced
from stacklo.data.tables import credit_decisions, credit_profiles, installment_plans, installments
from stacklo.domain.borrower import CreditProfile
from stacklo.domain.credit import CreditStatus, Decision
from stacklo.domain.errors import Conflict
from stacklo.domain.installments import (
    Installment,
    InstallmentProduct,
    InstallmentStatus,
    Plan,
    PlanStatus,
)
from stacklo.domain.models import Page
from stacklo.domain.money import CurrencyCode
from stacklo.domain.ports import BorrowerFacts


def _profile(row: Row[Any]) -> CreditProfile:
    return CreditProfile(
        user_id=row.user_id,
        status=CreditStatus(row.status),
        currency=CurrencyCode(row.currency),
        limit=row.credit_limit,
        score=row.score,
        reasons=list(row.reasons),
        decided_at=row.decided_at,
        suspended_at=row.suspended_at,
    )


class Credit:
    def __init__(self, conn: AsyncConnection):
        self._conn = conn

    async def profile(
        self, user_id: uuid.UUID, *, for_update: bool = False
    ) -> CreditProfile | None:
        query = select(credit_profiles).where(credit_profiles.c.user_id == user_id)
        row = (await self._conn.execute(query.with_for_update() if for_update else query)).first()
        return _profile(row) if row else None

    async def save_profile(self, profile: CreditProfile) -> None:
        values = {
            "status": profile.status.value,
            "currency": profile.currency.value,
            "credit_limit": profile.limit,
            "score": profile.score,
            "reasons": profile.reasons,
            "decided_at": profile.decided_at,
            "suspended_at": profile.suspended_at,
            "updated_at": func.now(),
        }
        await self._conn.execute(
            insert(credit_profiles)
            .values(user_id=profile.user_id, **values)
            .on_conflict_do_update(index_elements=["user_id"], set_=values)
        )

    async def add_decision(
        self, user_id: uuid.UUID, decision: Decision, inputs: Mapping[str, Any], at: datetime
    ) -> None:
        await self._conn.execute(
            credit_decisions.insert().values(
                user_id=user_id,
                status=decision.status.value,
                score=decision.score,
                currency=inputs.get("currency", ""),
                credit_limit=decision.limit,
                reasons=list(decision.reasons),
                factors=[
                    {
                        "name": f.name,
                        "points": f.points,
                        "max_points": f.max_points,
                        "reason": f.reason,
                    }
                    for f in decision.factors
                ],
                inputs=json.loads(json.dumps(dict(inputs), default=str)),
                version=decision.version,
                decided_at=at,
            )
        )

    async def facts(
        self, user_id: uuid.UUID, currency: CurrencyCode, since: datetime
    ) -> BorrowerFacts:
        """One statement: the account's age, 90-day inflows and average balance of the
        user's wallets in ``currency``, and their repayment record."""
        row = (
            await self._conn.execute(
                _FACTS, {"user_id": user_id, "currency": currency.value, "since": since}
            )
        ).one()
        return BorrowerFacts(
            account_created_at=row.created_at,
            inflow_90d=Decimal(row.inflow),
            average_balance_90d=Decimal(row.average_balance),
            installments_on_time=int(row.on_time),
            installments_late=int(row.late),
            plans_defaulted=int(row.defaulted),
        )


_FACTS = text(
    """
    WITH mine AS (
        SELECT id, balance FROM wallets
        WHERE user_id = :user_id AND kind = 'CUSTOMER' AND currency = :currency
    ), moves AS (
        SELECT e.amount, e.balance_after FROM ledger_entries e
        WHERE e.wallet_id IN (SELECT id FROM mine) AND e.created_at >= :since
    )
    SELECT u.created_at,
           coalesce((SELECT sum(amount) FROM moves WHERE amount > 0), 0) AS inflow,
           coalesce((SELECT avg(balance_after) FROM moves),
                    (SELECT sum(balance) FROM mine), 0) AS average_balance,
           (SELECT count(*) FROM installments i JOIN installment_plans p ON p.id = i.plan_id
             WHERE p.user_id = :user_id AND i.status = 'PAID'
               AND i.paid_at::date <= i.due_date) AS on_time,
           (SELECT count(*) FROM installments i JOIN installment_plans p ON p.id = i.plan_id
             WHERE p.user_id = :user_id AND i.status = 'PAID'
               AND i.paid_at::date > i.due_date) AS late,
           (SELECT count(*) FROM installment_plans
             WHERE user_id = :user_id AND status = 'DEFAULTED') AS defaulted
    FROM users u WHERE u.id = :user_id
    """
)


def _installment(row: Row[Any]) -> Installment:
    return Installment(
        id=row.id,
        plan_id=row.plan_id,
        sequence=row.sequence,
        due_date=row.due_date,
        principal=row.principal,
        fee=row.fee,
        status=InstallmentStatus(row.status),
        late_fee=row.late_fee,
        principal_paid=row.principal_paid,
        fee_paid=row.fee_paid,
        late_fee_paid=row.late_fee_paid,
        paid_at=row.paid_at,
        reminded_at=row.reminded_at,
    )


def _plan(row: Row[Any]) -> Plan:
    return Plan(
        id=row.id,
        user_id=row.user_id,
        checkout_id=row.checkout_id,
        merchant_id=row.merchant_id,
        product=InstallmentProduct(row.product),
        status=PlanStatus(row.status),
        currency=CurrencyCode(row.currency),
        principal=row.principal,
        fee=row.fee,
        created_at=row.created_at,
        completed_at=row.completed_at,
    )


class Plans:
    def __init__(self, conn: AsyncConnection):
        self._conn = conn

    async def add(self, plan: Plan, wallet_id: uuid.UUID) -> None:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(
                    installment_plans.insert().values(
                        id=plan.id,
                        user_id=plan.user_id,
                        checkout_id=plan.checkout_id,
                        merchant_id=plan.merchant_id,
                        wallet_id=wallet_id,
                        product=plan.product.value,
                        status=plan.status.value,
                        currency=plan.currency.value,
                        principal=plan.principal,
                        fee=plan.fee,
                        created_at=plan.created_at,
                    )
                )
                await self._conn.execute(
                    installments.insert(), [_installment_values(i) for i in plan.installments]
                )
        except IntegrityError as e:
            if "checkout_id" in str(e.orig):
                raise Conflict("plan") from None
            raise

    async def _with_installments(self, plans: list[Plan]) -> list[Plan]:
        if not plans:
            return plans
        by_id = {p.id: p for p in plans}
        rows = await self._conn.execute(
            select(installments)
            .where(installments.c.plan_id.in_(list(by_id)))
            .order_by(installments.c.plan_id, installments.c.sequence)
        )
        for row in rows:
            by_id[row.plan_id].installments.append(_installment(row))
        return plans

    async def get(self, plan_id: uuid.UUID, *, for_update: bool = False) -> Plan | None:
        query = select(installment_plans).where(installment_plans.c.id == plan_id)
        row = (await self._conn.execute(query.with_for_update() if for_update else query)).first()
        return (await self._with_installments([_plan(row)]))[0] if row else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Plan]:
        if not ids:
            return []
        rows = await self._conn.execute(
            select(installment_plans).where(installment_plans.c.id.in_(list(ids)))
        )
        return await self._with_installments([_plan(r) for r in rows])

    async def for_checkout(
        self, checkout_id: uuid.UUID, *, for_update: bool = False
    ) -> Plan | None:
        query = select(installment_plans).where(installment_plans.c.checkout_id == checkout_id)
        row = (await self._conn.execute(query.with_for_update() if for_update else query)).first()
        return (await self._with_installments([_plan(row)]))[0] if row else None

    async def for_checkouts(self, checkout_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Plan]:
        """The plans paying these checkouts, by checkout: two queries for any number."""
        if not checkout_ids:
            return {}
        rows = await self._conn.execute(
            select(installment_plans).where(installment_plans.c.checkout_id.in_(list(checkout_ids)))
        )
        plans = await self._with_installments([_plan(r) for r in rows])
        return {p.checkout_id: p for p in plans}

    async def of_installment(self, installment_id: uuid.UUID) -> uuid.UUID | None:
        found = (
            await self._conn.execute(
                select(installments.c.plan_id).where(installments.c.id == installment_id)
            )
        ).scalar()
        return found

    async def wallet_of(self, plan_id: uuid.UUID) -> uuid.UUID:
        found = (
            await self._conn.execute(
                select(installment_plans.c.wallet_id).where(installment_plans.c.id == plan_id)
            )
        ).scalar_one()
        return found  # type: ignore[no-any-return]

    async def save(self, plan: Plan) -> None:
        await self._conn.execute(
            update(installment_plans)
            .where(installment_plans.c.id == plan.id)
            .values(
                status=plan.status.value,
                principal=plan.principal,
                fee=plan.fee,
                completed_at=plan.completed_at,
                updated_at=func.now(),
            )
        )
        for inst in plan.installments:
            values = _installment_values(inst)
            values.pop("id")
            values.pop("plan_id")
            await self._conn.execute(
                update(installments).where(installments.c.id == inst.id).values(**values)
            )

    async def page(
        self,
        user_id: uuid.UUID,
        *,
        first: int,
        after: tuple[datetime, uuid.UUID] | None,
        status: PlanStatus | None,
    ) -> Page[Plan]:
        p = installment_plans.c
        query = select(installment_plans).where(p.user_id == user_id)
        if status is not None:
            query = query.where(p.status == status.value)
        if after is not None:
            query = query.where(tuple_(p.created_at, p.id) < tuple_(literal(after[0]), after[1]))
        rows = list(
            await self._conn.execute(
                query.order_by(p.created_at.desc(), p.id.desc()).limit(first + 1)
            )
        )
        plans = await self._with_installments([_plan(r) for r in rows[:first]])
        return Page(plans, len(rows) > first)

    async def outstanding_principal(self, user_id: uuid.UUID) -> Decimal:
        total = (
            await self._conn.execute(
                select(
                    func.coalesce(
                        func.sum(installments.c.principal - installments.c.principal_paid), 0
                    )
                )
                .select_from(installments.join(installment_plans))
                .where(
                    installment_plans.c.user_id == user_id,
                    installment_plans.c.status == PlanStatus.ACTIVE.value,
                    installments.c.status.in_(["SCHEDULED", "OVERDUE"]),
                )
            )
        ).scalar()
        return Decimal(total or 0)

    async def needing_attention(self, today: date, remind_until: date) -> list[uuid.UUID]:
        i = installments.c
        rows = await self._conn.execute(
            select(i.plan_id)
            .select_from(installments.join(installment_plans))
            .where(
                installment_plans.c.status == PlanStatus.ACTIVE.value,
                i.status.in_(["SCHEDULED", "OVERDUE"]),
                or_(
                    i.due_date <= today,
                    and_(i.due_date <= remind_until, i.reminded_at.is_(None)),
                ),
            )
            .distinct()
        )
        return sorted(r[0] for r in rows)

    async def remind(
        self, user_id: uuid.UUID, installment: Installment, payload: Mapping[str, Any]
    ) -> None:
        await self._conn.execute(
            announced(
                NOTIFICATION_EVENT,
                reminded="UPDATE installments SET reminded_at = :at "
                "WHERE id = :id AND reminded_at IS NULL RETURNING id",
            ),
            {
                "at": installment.reminded_at,
                "id": installment.id,
                "ev_aggregate": str(installment.id),
                "ev_user": user_id,
                "ev_payload": json.dumps(dict(payload)),
            },
        )


def _installment_values(i: Installment) -> dict[str, Any]:
    return {
        "id": i.id,
        "plan_id": i.plan_id,
        "sequence": i.sequence,
        "due_date": i.due_date,
        "principal": i.principal,
        "fee": i.fee,
        "status": i.status.value,
        "late_fee": i.late_fee,
        "principal_paid": i.principal_paid,
        "fee_paid": i.fee_paid,
        "late_fee_paid": i.late_fee_paid,
        "paid_at": i.paid_at,
        "reminded_at": i.reminded_at,
    }
