"""Merchants and checkouts: rows onto ``domain/commerce.py``'s dataclasses, and the sums a
merchant's figures are made of."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, and_, bindparam, func, literal, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from stacklo.data.tables import checkout_refunds, checkouts, merchants, wallets
from stacklo.domain.commerce import (
    Checkout,
    CheckoutStatus,
    Merchant,
    MerchantStatus,
    PaymentMethod,
    SalesSummary,
)
from stacklo.domain.errors import Conflict
from stacklo.domain.models import AccountKind, Page
from stacklo.domain.money import CurrencyCode, Money


def _merchant(row: Row[Any]) -> Merchant:
    return Merchant(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        category=row.category,
        settlement_currency=CurrencyCode(row.settlement_currency),
        status=MerchantStatus(row.status),
        created_at=row.created_at,
        review_reason=row.review_reason,
    )


def _checkout(row: Row[Any]) -> Checkout:
    return Checkout(
        id=row.id,
        merchant_id=row.merchant_id,
        currency=CurrencyCode(row.currency),
        amount=row.amount,
        status=CheckoutStatus(row.status),
        expires_at=row.expires_at,
        created_at=row.created_at,
        description=row.description,
        reference=row.reference,
        payment_method=PaymentMethod(row.payment_method) if row.payment_method else None,
        payer_id=row.payer_id,
        payment_transaction_id=row.payment_transaction_id,
        paid_at=row.paid_at,
        fee=row.fee,
        refunded=row.refunded,
        fee_returned=row.fee_returned,
        refunded_from_payable=row.refunded_from_payable,
        settled_at=row.settled_at,
        settlement_transaction_id=row.settlement_transaction_id,
    )


# Built once: what a checkout payment reads on every call.
_MERCHANT = select(merchants).where(merchants.c.id == bindparam("id"))
_MERCHANT_FOR_UPDATE = _MERCHANT.with_for_update()
_CHECKOUT = select(checkouts).where(checkouts.c.id == bindparam("id"))
_CHECKOUT_FOR_UPDATE = _CHECKOUT.with_for_update()
_SAVE_CHECKOUT = (
    update(checkouts)
    .where(checkouts.c.id == bindparam("v_id"))
    .values(
        status=bindparam("v_status"),
        payment_method=bindparam("v_method"),
        payer_id=bindparam("v_payer"),
        payment_transaction_id=bindparam("v_payment"),
        paid_at=bindparam("v_paid_at"),
        fee=bindparam("v_fee"),
        refunded=bindparam("v_refunded"),
        fee_returned=bindparam("v_fee_returned"),
        refunded_from_payable=bindparam("v_from_payable"),
        updated_at=func.now(),
    )
)


class Merchants:
    def __init__(self, conn: AsyncConnection):
        self._conn = conn

    async def add(self, merchant: Merchant) -> None:
        """A savepoint, so a Conflict leaves the caller's work."""
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(
                    merchants.insert().values(
                        id=merchant.id,
                        user_id=merchant.user_id,
                        name=merchant.name,
                        category=merchant.category,
                        settlement_currency=merchant.settlement_currency.value,
                        status=merchant.status.value,
                        created_at=merchant.created_at,
                    )
                )
        except IntegrityError as e:
            if "uq_merchants_user_id" in str(e.orig):
                raise Conflict("merchant") from None
            raise

    async def get(self, merchant_id: uuid.UUID, *, for_update: bool = False) -> Merchant | None:
        query = _MERCHANT_FOR_UPDATE if for_update else _MERCHANT
        row = (await self._conn.execute(query, {"id": merchant_id})).first()
        return _merchant(row) if row else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Merchant]:
        if not ids:
            return []
        rows = await self._conn.execute(select(merchants).where(merchants.c.id.in_(list(ids))))
        return [_merchant(r) for r in rows]

    async def for_users(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Merchant]:
        if not user_ids:
            return {}
        rows = await self._conn.execute(
            select(merchants).where(merchants.c.user_id.in_(list(user_ids)))
        )
        return {r.user_id: _merchant(r) for r in rows}

    async def save(self, merchant: Merchant) -> None:
        await self._conn.execute(
            update(merchants)
            .where(merchants.c.id == merchant.id)
            .values(
                status=merchant.status.value,
                review_reason=merchant.review_reason,
                updated_at=func.now(),
            )
        )

    async def payable_balance(self, merchant_id: uuid.UUID) -> Decimal:
        total = (
            await self._conn.execute(
                select(func.coalesce(func.sum(wallets.c.balance), 0)).where(
                    wallets.c.merchant_id == merchant_id,
                    wallets.c.kind == AccountKind.MERCHANT_PAYABLE.value,
                )
            )
        ).scalar()
        return Decimal(total or 0)

    async def sales(
        self, merchant: Merchant, start: datetime | None, end: datetime | None
    ) -> SalesSummary:
        """Checkouts paid in [start, end), whatever happened to them since: gross is what was
        paid, refunded what of it was given back, fees what the platform kept of the fees."""
        c = checkouts.c
        conditions = [c.merchant_id == merchant.id, c.paid_at.is_not(None)]
        if start is not None:
            conditions.append(c.paid_at >= start)
        if end is not None:
            conditions.append(c.paid_at < end)
        installments = func.sum(c.amount).filter(
            c.payment_method == PaymentMethod.INSTALLMENTS.value
        )
        row = (
            await self._conn.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(c.amount), 0),
                    func.coalesce(func.sum(c.refunded), 0),
                    func.coalesce(func.sum(c.fee - c.fee_returned), 0),
                    func.coalesce(installments, 0),
                ).where(*conditions)
            )
        ).one()
        count, gross, refunded, fees, by_installments = row
        code = merchant.settlement_currency

        def money(value: Decimal) -> Money:
            return Money(Decimal(value), code).quantized()

        net = Decimal(gross) - Decimal(refunded) - Decimal(fees)
        return SalesSummary(
            int(count),
            money(gross),
            money(refunded),
            money(fees),
            money(net),
            money(by_installments),
        )


class Checkouts:
    def __init__(self, conn: AsyncConnection):
        self._conn = conn

    async def add(self, checkout: Checkout) -> None:
        """A savepoint, so a Conflict (the reference is taken) leaves the caller's work."""
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(
                    checkouts.insert().values(
                        id=checkout.id,
                        merchant_id=checkout.merchant_id,
                        currency=checkout.currency.value,
                        amount=checkout.amount,
                        status=checkout.status.value,
                        description=checkout.description,
                        reference=checkout.reference,
                        expires_at=checkout.expires_at,
                        created_at=checkout.created_at,
                    )
                )
        except IntegrityError as e:
            if "uq_checkouts_merchant_reference" in str(e.orig):
                raise Conflict("reference") from None
            raise

    async def get(self, checkout_id: uuid.UUID, *, for_update: bool = False) -> Checkout | None:
        query = _CHECKOUT_FOR_UPDATE if for_update else _CHECKOUT
        row = (await self._conn.execute(query, {"id": checkout_id})).first()
        return _checkout(row) if row else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Checkout]:
        if not ids:
            return []
        rows = await self._conn.execute(select(checkouts).where(checkouts.c.id.in_(list(ids))))
        return [_checkout(r) for r in rows]

    async def by_reference(self, merchant_id: uuid.UUID, reference: str) -> Checkout | None:
        row = (
            await self._conn.execute(
                select(checkouts).where(
                    checkouts.c.merchant_id == merchant_id, checkouts.c.reference == reference
                )
            )
        ).first()
        return _checkout(row) if row else None

    async def save(self, checkout: Checkout) -> None:
        await self._conn.execute(
            _SAVE_CHECKOUT,
            {
                "v_id": checkout.id,
                "v_status": checkout.status.value,
                "v_method": checkout.payment_method.value if checkout.payment_method else None,
                "v_payer": checkout.payer_id,
                "v_payment": checkout.payment_transaction_id,
                "v_paid_at": checkout.paid_at,
                "v_fee": checkout.fee,
                "v_refunded": checkout.refunded,
                "v_fee_returned": checkout.fee_returned,
                "v_from_payable": checkout.refunded_from_payable,
            },
        )

    async def add_refund(self, checkout_id: uuid.UUID, transaction_id: uuid.UUID) -> None:
        await self._conn.execute(
            checkout_refunds.insert().values(checkout_id=checkout_id, transaction_id=transaction_id)
        )

    async def refunds(self, checkout_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        out: dict[uuid.UUID, list[uuid.UUID]] = {c: [] for c in checkout_ids}
        if not checkout_ids:
            return out
        rows = await self._conn.execute(
            select(checkout_refunds.c.checkout_id, checkout_refunds.c.transaction_id)
            .where(checkout_refunds.c.checkout_id.in_(list(checkout_ids)))
            .order_by(checkout_refunds.c.created_at, checkout_refunds.c.transaction_id)
        )
        for checkout_id, tx_id in rows:
            out[checkout_id].append(tx_id)
        return out

    async def page(
        self,
        merchant_id: uuid.UUID,
        *,
        first: int,
        after: tuple[datetime, uuid.UUID] | None,
        status: CheckoutStatus | None,
        now: datetime,
    ) -> Page[Checkout]:
        c = checkouts.c
        query = select(checkouts).where(c.merchant_id == merchant_id)
        if status is CheckoutStatus.EXPIRED:
            query = query.where(
                or_(c.status == status.value, and_(c.status == "OPEN", c.expires_at <= now))
            )
        elif status is CheckoutStatus.OPEN:
            query = query.where(c.status == status.value, c.expires_at > now)
        elif status is not None:
            query = query.where(c.status == status.value)
        if after is not None:
            query = query.where(tuple_(c.created_at, c.id) < tuple_(literal(after[0]), after[1]))
        rows = list(
            await self._conn.execute(
                query.order_by(c.created_at.desc(), c.id.desc()).limit(first + 1)
            )
        )
        return Page([_checkout(r) for r in rows[:first]], len(rows) > first)

    async def expire(self, now: datetime) -> int:
        result = await self._conn.execute(
            update(checkouts)
            .where(checkouts.c.status == "OPEN", checkouts.c.expires_at <= now)
            .values(status="EXPIRED", updated_at=func.now())
        )
        return int(result.rowcount or 0)

    async def merchants_to_settle(self, cutoff: datetime) -> list[uuid.UUID]:
        c = checkouts.c
        rows = await self._conn.execute(
            select(c.merchant_id)
            .where(c.paid_at.is_not(None), c.settled_at.is_(None), c.paid_at < cutoff)
            .distinct()
        )
        return sorted(r[0] for r in rows)

    async def unsettled_for_update(
        self, merchant_id: uuid.UUID, cutoff: datetime
    ) -> list[Checkout]:
        c = checkouts.c
        rows = await self._conn.execute(
            select(checkouts)
            .where(
                c.merchant_id == merchant_id,
                c.paid_at.is_not(None),
                c.settled_at.is_(None),
                c.paid_at < cutoff,
            )
            .order_by(c.id)
            .with_for_update()
        )
        # PostgreSQL re-checks the WHERE on rows another transaction changed while this one
        # waited for their locks, so what a concurrent run settled is not returned.
        return [_checkout(r) for r in rows]

    async def mark_settled(
        self, ids: Sequence[uuid.UUID], at: datetime, transaction_id: uuid.UUID | None
    ) -> None:
        if not ids:
            return
        await self._conn.execute(
            update(checkouts)
            .where(checkouts.c.id.in_(list(ids)))
            .values(settled_at=at, settlement_transaction_id=transaction_id, updated_at=func.now())
        )
