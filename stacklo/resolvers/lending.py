"""applyForCredit, repayInstallment, prepayPlan."""

from __future__ import annotations

from typing import Annotated

import strawberry

from stacklo.domain.credit_applications import ApplyForCredit
from stacklo.domain.plans import Prepay, Repay
from stacklo.resolvers.errors import outcome_errors, user_errors
from stacklo.resolvers.ids import node_id
from stacklo.schema.commerce import InstallmentPlan
from stacklo.schema.context import Info
from stacklo.schema.ledger import Transaction
from stacklo.schema.lending import (
    ApplyForCreditInput,
    ApplyForCreditPayload,
    CreditProfile,
    PrepayPlanInput,
    RepayInstallmentInput,
    RepaymentPayload,
)


@user_errors(ApplyForCreditPayload)
async def apply_for_credit(
    info: Info,
    input: Annotated[ApplyForCreditInput, strawberry.argument(description="The application.")],
) -> ApplyForCreditPayload:
    viewer = await info.context.require_viewer()
    standing = await info.context.services.credit.apply(
        ApplyForCredit(
            viewer.user, input.monthly_income, input.employment_status, info.context.meta
        )
    )
    return ApplyForCreditPayload(credit_profile=CreditProfile.of(standing))


@user_errors(RepaymentPayload)
async def repay_installment(
    info: Info,
    input: Annotated[RepayInstallmentInput, strawberry.argument(description="The payment.")],
) -> RepaymentPayload:
    viewer = await info.context.require_viewer()
    repaid = await info.context.services.plans.repay(
        Repay(
            viewer.user,
            node_id(input.installment_id, "Installment", ("input", "installmentId")),
            node_id(input.wallet_id, "Wallet", ("input", "walletId")),
            input.idempotency_key,
            info.context.meta,
        )
    )
    return RepaymentPayload(
        plan=InstallmentPlan.of(repaid.plan),
        transaction=Transaction.of(repaid.outcome.transaction),
        user_errors=outcome_errors(repaid.outcome),
    )


@user_errors(RepaymentPayload)
async def prepay_plan(
    info: Info,
    input: Annotated[PrepayPlanInput, strawberry.argument(description="The payment.")],
) -> RepaymentPayload:
    viewer = await info.context.require_viewer()
    repaid = await info.context.services.plans.prepay(
        Prepay(
            viewer.user,
            node_id(input.plan_id, "InstallmentPlan", ("input", "planId")),
            node_id(input.wallet_id, "Wallet", ("input", "walletId")),
            input.idempotency_key,
            info.context.meta,
            input.amount,
        )
    )
    return RepaymentPayload(
        plan=InstallmentPlan.of(repaid.plan),
        transaction=Transaction.of(repaid.outcome.transaction),
        user_errors=outcome_errors(repaid.outcome),
    )
