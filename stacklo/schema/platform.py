"""Platform figures for staff (``platformStats``)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from stacklo.domain import models
from stacklo.schema.common import MoneyType


@strawberry.type(
    description="Live figures for staff, exact, at most a couple of seconds old (generatedAt): "
    "they are read once per couple of seconds however many ask."
)
class PlatformStats:
    user_count: int = strawberry.field(description="Every account.")
    active_merchant_count: int = strawberry.field(description="Merchants ACTIVE now.")
    transaction_count_24h: int = strawberry.field(
        description="Transactions created in the last 24 hours, any status."
    )
    volume_24h: list[MoneyType] = strawberry.field(
        description="Completed volume in the last 24 hours, one Money per currency."
    )
    active_installment_plans: int = strawberry.field(description="Installment plans ACTIVE now.")
    overdue_installments: int = strawberry.field(
        description="OVERDUE installments of ACTIVE plans."
    )
    transfers_last_minute: int = strawberry.field(
        description="TRANSFER transactions created in the last minute."
    )
    transactions_last_hour: int = strawberry.field(
        description="Transactions created in the last hour, any kind or status."
    )
    failed_transactions_last_hour: int = strawberry.field(
        description="Of those, the ones FAILED: with transactionsLastHour, the failure rate."
    )
    pending_kyc: int = strawberry.field(
        description="Users whose documents are in (SUBMITTED) and wait for a review."
    )
    open_checkouts: int = strawberry.field(description="Checkouts OPEN and not expired.")
    subscribers_connected: int = strawberry.field(
        description="GraphQL subscriptions open in the server process that answered."
    )
    generated_at: datetime = strawberry.field(description="When these figures were read.")

    @classmethod
    def of(cls, s: models.PlatformStats, subscribers: int) -> PlatformStats:
        return cls(
            user_count=s.user_count,
            active_merchant_count=s.active_merchant_count,
            transaction_count_24h=s.transaction_count_24h,
            volume_24h=[MoneyType.of(m) for m in s.volume_24h],
            active_installment_plans=s.active_installment_plans,
            overdue_installments=s.overdue_installments,
            transfers_last_minute=s.transfers_last_minute,
            transactions_last_hour=s.transactions_last_hour,
            failed_transactions_last_hour=s.failed_transactions_last_hour,
            pending_kyc=s.pending_kyc,
            open_checkouts=s.open_checkouts,
            subscribers_connected=subscribers,
            generated_at=s.generated_at,
        )
