"""A user's standing as a borrower: the latest credit decision, and what it leaves to spend.

``available = limit - outstanding principal of the user's ACTIVE plans`` (never below zero),
and nothing unless the profile is APPROVED: a decline, a suspension (a plan defaulted) or no
application means no credit. A completed or cancelled plan gives its principal back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from stacklo.domain.credit import CreditStatus
from stacklo.domain.money import MONEY_CONTEXT, CurrencyCode

ZERO = Decimal(0)


@dataclass(slots=True)
class CreditProfile:
    user_id: uuid.UUID
    status: CreditStatus
    currency: CurrencyCode
    limit: Decimal = ZERO
    score: int | None = None
    reasons: list[str] = field(default_factory=list)
    decided_at: datetime | None = None
    suspended_at: datetime | None = None

    def available(self, outstanding_principal: Decimal) -> Decimal:
        if self.status is not CreditStatus.APPROVED:
            return ZERO
        return max(ZERO, MONEY_CONTEXT.subtract(self.limit, outstanding_principal))


@dataclass(frozen=True, slots=True)
class Standing:
    """A profile with what it leaves to spend now."""

    profile: CreditProfile
    available: Decimal
