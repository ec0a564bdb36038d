"""Daily spending limits for users whose identity is not verified yet.

Until ``kycStatus`` is VERIFIED, what a user sends plus withdraws per currency per UTC day is
capped. The booking counts with the sender's wallet locked (a ``ledger.Cap``), so concurrent
movements cannot both slip under the cap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.ledger import Cap
from stacklo.domain.models import KycStatus, User
from stacklo.domain.money import CurrencyCode, Money
from stacklo.domain.ports import Clock, UnitOfWork

DEFAULT_UNVERIFIED_DAILY = {
    CurrencyCode.NGN: Decimal("500000"),
    CurrencyCode.USD: Decimal("1000"),
    CurrencyCode.GBP: Decimal("800"),
    CurrencyCode.EUR: Decimal("900"),
    CurrencyCode.BTC: Decimal("0.02"),
    CurrencyCode.ETH: Decimal("0.3"),
    CurrencyCode.USDT: Decimal("1000"),
}


@dataclass(frozen=True, slots=True)
class DailyLimits:
    unverified_daily: Mapping[CurrencyCode, Decimal]
    clock: Clock

    def limit(self, kyc: KycStatus, code: CurrencyCode) -> Decimal | None:
        return None if kyc is KycStatus.VERIFIED else self.unverified_daily.get(code)

    def cap(self, user: User, amount: Money) -> Cap | None:
        """The cap ``amount`` is booked under (None when the user has none)."""
        limit = self.limit(user.kyc_status, amount.currency)
        if limit is None:
            return None
        return Cap(
            user.id, amount.currency, self.clock().astimezone(UTC).date(), limit, amount.amount
        )

    async def check(self, uow: UnitOfWork, user: User, amount: Money) -> None:
        """LIMIT_EXCEEDED if ``amount`` would take today's sends and withdrawals past the cap
        (read without locks, for an early answer; the booking counts again, locked)."""
        cap = self.cap(user, amount)
        if cap is None:
            return
        used = await uow.ledger.outgoing_on(user.id, amount.currency, cap.day)
        if used + amount.amount > cap.limit:
            raise exceeded(cap, used)


def exceeded(cap: Cap, used: Decimal) -> DomainError:
    """The refusal of a movement that would take the day's total past ``cap``."""
    left = Money(max(cap.limit - used, Decimal(0)), cap.currency).quantized().amount
    return DomainError(
        ErrorCode.LIMIT_EXCEEDED,
        f"Unverified accounts may send or withdraw up to {cap.limit} {cap.currency.value} "
        f"a day; {left} left today. Verify your identity to lift the limit.",
        ("input", "amount"),
    )
