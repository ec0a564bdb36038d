"""Applying for credit: the facts are read in one statement, the scorecard decides (pure,
``credit.py``), and the decision is stored with its inputs and the scorecard's version, and
audited, so it can be explained later.

Only a VERIFIED identity may apply (KYC_REQUIRED). A suspended borrower (a plan defaulted)
cannot; anyone may apply again once ``reapply`` has passed since their last decision
(INVALID_STATE before). Credit is in the user's home currency: the currency of the wallet
they signed up with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from stacklo.domain.borrower import CreditProfile, Standing
from stacklo.domain.credit import Applicant, CreditStatus, EmploymentStatus, Scorecard, decide
from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.models import KycStatus, RequestMeta, User, audit
from stacklo.domain.money import CurrencyCode, quantize
from stacklo.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory

MAX_INCOME_DIGITS = 12  # a monthly income of 10^12 or more is not a real answer


@dataclass(frozen=True, slots=True)
class ApplyForCredit:
    user: User
    monthly_income: Decimal
    employment: EmploymentStatus
    meta: RequestMeta


class CreditApplications:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, card: Scorecard, reapply: timedelta):
        self._uow = uow
        self._clock = clock
        self._card = card
        self._reapply = reapply

    async def apply(self, cmd: ApplyForCredit) -> Standing:
        income = _income(cmd.monthly_income)
        if cmd.user.kyc_status is not KycStatus.VERIFIED:
            raise DomainError(
                ErrorCode.KYC_REQUIRED, "Applying for credit needs a verified identity."
            )
        now = self._clock()
        async with self._uow() as uow:
            currency = await home_currency(uow, cmd.user)
            profile = await uow.credit.profile(cmd.user.id, for_update=True)
            if profile is None:  # first application: a row to lock, whoever gets there first
                await uow.credit.save_profile(
                    CreditProfile(cmd.user.id, CreditStatus.NONE, currency)
                )
                profile = await uow.credit.profile(cmd.user.id, for_update=True)
                assert profile is not None
            if profile.status is CreditStatus.SUSPENDED:
                raise DomainError(
                    ErrorCode.INVALID_STATE,
                    "Your credit is suspended after a defaulted plan.",
                )
            if profile.decided_at is not None and now < profile.decided_at + self._reapply:
                raise DomainError(
                    ErrorCode.INVALID_STATE,
                    "You can apply again after "
                    f"{(profile.decided_at + self._reapply).isoformat(timespec='seconds')}.",
                )
            facts = await uow.credit.facts(cmd.user.id, currency, now - timedelta(days=90))
            applicant = Applicant(
                currency=currency,
                kyc_verified=True,
                account_age_days=max(0, (now - facts.account_created_at).days),
                monthly_income=quantize(income, currency),
                employment=cmd.employment,
                inflow_90d=facts.inflow_90d,
                average_balance_90d=facts.average_balance_90d,
                installments_on_time=facts.installments_on_time,
                installments_late=facts.installments_late,
                plans_defaulted=facts.plans_defaulted,
            )
            decision = decide(applicant, self._card)
            profile.status = decision.status
            profile.currency = currency
            profile.limit = decision.limit
            profile.score = decision.score
            profile.reasons = list(decision.reasons)
            profile.decided_at = now
            await uow.credit.save_profile(profile)
            inputs = {
                k: (v.value if hasattr(v, "value") else str(v) if isinstance(v, Decimal) else v)
                for k, v in dataclasses.asdict(applicant).items()
            }
            await uow.credit.add_decision(cmd.user.id, decision, inputs, now)
            await uow.audit.record(
                audit(
                    "credit.decided",
                    cmd.meta,
                    actor_id=cmd.user.id,
                    target_type="User",
                    target_id=cmd.user.id,
                    status=decision.status.value,
                    score=decision.score,
                    limit=str(decision.limit),
                    version=decision.version,
                )
            )
            outstanding = await uow.plans.outstanding_principal(cmd.user.id)
            await uow.commit()
        return Standing(profile, profile.available(outstanding))

    async def standing(self, user: User) -> Standing:
        async with self._uow(read_only=True) as uow:
            profile = await uow.credit.profile(user.id)
            if profile is None:
                profile = CreditProfile(user.id, CreditStatus.NONE, await home_currency(uow, user))
            outstanding = await uow.plans.outstanding_principal(user.id)
        return Standing(profile, profile.available(outstanding))


async def home_currency(uow: UnitOfWork, user: User) -> CurrencyCode:
    wallets = (await uow.wallets.for_users([user.id])).get(user.id) or []
    return wallets[0].currency if wallets else CurrencyCode.NGN


def _income(raw: Decimal) -> Decimal:
    field = ("input", "monthlyIncome")
    try:
        value = Decimal(raw)
    except (InvalidOperation, TypeError, ValueError):
        raise DomainError(ErrorCode.INVALID_INPUT, "monthlyIncome is not a number", field) from None
    if not value.is_finite() or value < 0:
        raise DomainError(ErrorCode.INVALID_INPUT, "monthlyIncome must be zero or more", field)
    if value and value.adjusted() >= MAX_INCOME_DIGITS:
        raise DomainError(ErrorCode.INVALID_INPUT, "monthlyIncome is too large", field)
    return value
