"""The figures behind ``platformStats``: exact counts, one statement, and the 24-hour volume
per currency."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from stacklo.domain.models import PlatformStats
from stacklo.domain.money import CurrencyCode, Money

_COUNTS = text(
    """
    SELECT
      (SELECT count(*) FROM users) AS users,
      (SELECT count(*) FROM merchants WHERE status = 'ACTIVE') AS merchants,
      (SELECT count(*) FROM ledger_transactions WHERE created_at >= :day) AS day_count,
      (SELECT count(*) FROM installment_plans WHERE status = 'ACTIVE') AS plans,
      (SELECT count(*) FROM installments i JOIN installment_plans p ON p.id = i.plan_id
        WHERE i.status = 'OVERDUE' AND p.status = 'ACTIVE') AS overdue,
      (SELECT count(*) FROM ledger_transactions
        WHERE kind = 'TRANSFER' AND created_at >= :minute) AS transfers_minute,
      (SELECT count(*) FROM ledger_transactions WHERE created_at >= :hour) AS hour_count,
      (SELECT count(*) FROM ledger_transactions
        WHERE status = 'FAILED' AND created_at >= :hour) AS failed_hour,
      (SELECT count(*) FROM users WHERE kyc_status = 'SUBMITTED') AS pending_kyc,
      (SELECT count(*) FROM checkouts WHERE status = 'OPEN' AND expires_at > :now) AS checkouts
    """
)
_VOLUME = text(
    """SELECT currency, sum(amount) FROM ledger_transactions
       WHERE status = 'COMPLETED' AND completed_at >= :day GROUP BY currency ORDER BY currency"""
)


class PlatformFigures:
    def __init__(self, conn: AsyncConnection):
        self._conn = conn

    async def stats(self, now: datetime) -> PlatformStats:
        bounds = {
            "now": now,
            "day": now - timedelta(days=1),
            "hour": now - timedelta(hours=1),
            "minute": now - timedelta(minutes=1),
        }
        row = (await self._conn.execute(_COUNTS, bounds)).one()
        volume = [
            Money(Decimal(total), CurrencyCode(code)).quantized()
            for code, total in await self._conn.execute(_VOLUME, bounds)
        ]
        return PlatformStats(
            user_count=row.users,
            active_merchant_count=row.merchants,
            transaction_count_24h=row.day_count,
            volume_24h=volume,
            active_installment_plans=row.plans,
            overdue_installments=row.overdue,
            transfers_last_minute=row.transfers_minute,
            transactions_last_hour=row.hour_count,
            failed_transactions_last_hour=row.failed_hour,
            pending_kyc=row.pending_kyc,
            open_checkouts=row.checkouts,
            generated_at=now,
        )
