"""Credit and repayments as clients see them: the credit profile, applyForCredit,
repayInstallment and prepayPlan (the installment plan types are with checkouts, in
``commerce.py``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from stacklo.domain import borrower
from stacklo.domain.credit import CreditStatus, EmploymentStatus
from stacklo.domain.money import Money
from stacklo.schema import docs
from stacklo.schema.commerce import InstallmentPlan
from stacklo.schema.common import IDEMPOTENCY_KEY, USER_ERRORS, MoneyType, UserError
from stacklo.schema.ledger import Transaction

docs.described_enum(
    CreditStatus, "Where a user's credit stands.", docs.CREDIT_STATUSES, name="CreditStatus"
)
docs.described_enum(
    EmploymentStatus,
    "What the applicant does for a living, as they say.",
    docs.EMPLOYMENT_STATUSES,
    name="EmploymentStatus",
)


@strawberry.type(
    description="A user's credit for paying in installments: the latest decision and what it "
    "leaves to spend. Its owner's and staff's."
)
class CreditProfile:
    status: CreditStatus = strawberry.field(description="NONE until the user applies.")
    score: int | None = strawberry.field(
        description="The latest decision's score, 300 to 850; null before any."
    )
    reasons: list[str] = strawberry.field(
        description="Plain-language reasons for the decision: for a decline, at most four, the "
        "factors that cost the most points, first the largest; for an approval, the main "
        "positive factors."
    )
    decided_at: datetime | None = strawberry.field(description="When the latest decision was made.")
    _standing: strawberry.Private[borrower.Standing]

    @classmethod
    def of(cls, s: borrower.Standing) -> CreditProfile:
        p = s.profile
        return cls(
            status=p.status,
            score=p.score,
            reasons=list(p.reasons),
            decided_at=p.decided_at,
            _standing=s,
        )

    @strawberry.field(
        description="The most the user may owe in principal on ACTIVE plans, in their home "
        "currency; zero unless APPROVED."
    )
    def credit_limit(self) -> MoneyType:
        p = self._standing.profile
        return MoneyType.of(Money(p.limit, p.currency))

    @strawberry.field(
        description="creditLimit less the principal still owed on ACTIVE plans (never below "
        "zero); zero unless APPROVED. A checkout can be paid in installments up to it."
    )
    def available_credit(self) -> MoneyType:
        p = self._standing.profile
        return MoneyType.of(Money(self._standing.available, p.currency))


@strawberry.input(description="An application for credit.")
class ApplyForCreditInput:
    monthly_income: Decimal = strawberry.field(
        description="Stated monthly income in the home currency: zero or more, under 10^12, "
        "with at most the currency's decimals (INVALID_INPUT otherwise)."
    )
    employment_status: EmploymentStatus = strawberry.field(description="What the applicant does.")


@strawberry.type(description="The answer to applyForCredit.")
class ApplyForCreditPayload:
    credit_profile: CreditProfile | None = strawberry.field(
        default=None, description="The profile after the decision; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.input(description="Paying one installment in full.")
class RepayInstallmentInput:
    installment_id: strawberry.ID = strawberry.field(
        description="One of the viewer's installments (NOT_FOUND otherwise), not PAID or WAIVED, "
        "of an ACTIVE or DEFAULTED plan (INVALID_STATE)."
    )
    wallet_id: strawberry.ID = strawberry.field(
        description="The viewer's wallet in the plan's currency (NOT_FOUND, CURRENCY_MISMATCH), "
        "holding what is owed (INSUFFICIENT_FUNDS)."
    )
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_KEY)


@strawberry.input(description="Pays ahead: amount, or everything outstanding when amount is null.")
class PrepayPlanInput:
    plan_id: strawberry.ID = strawberry.field(
        description="One of the viewer's plans (NOT_FOUND otherwise), ACTIVE or DEFAULTED "
        "(INVALID_STATE)."
    )
    wallet_id: strawberry.ID = strawberry.field(
        description="The viewer's wallet in the plan's currency (NOT_FOUND, CURRENCY_MISMATCH)."
    )
    amount: Decimal | None = strawberry.field(
        default=None,
        description="How much; everything outstanding when null. At most outstanding "
        "(INVALID_INPUT). It pays past due, then due, then future installments (next first); "
        "within each the late fee, then the fee, then principal.",
    )
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_KEY)


@strawberry.type(description="The answer to repayInstallment and prepayPlan.")
class RepaymentPayload:
    plan: InstallmentPlan | None = strawberry.field(
        default=None, description="The plan after the payment (COMPLETED when nothing is left)."
    )
    transaction: Transaction | None = strawberry.field(
        default=None, description="The INSTALLMENT_REPAYMENT; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)
