"""createCheckout, payCheckout, refundCheckout, checkout(id)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from stacklo.domain.checkouts import CreateCheckout, PayCheckout, RefundCheckout
from stacklo.domain.commerce import PaymentMethod
from stacklo.resolvers.errors import outcome_errors, user_errors
from stacklo.resolvers.ids import node_id
from stacklo.schema.commerce import (
    Checkout,
    CreateCheckoutInput,
    CreateCheckoutPayload,
    InstallmentPlan,
    PayCheckoutInput,
    PayCheckoutPayload,
    RefundCheckoutInput,
    RefundCheckoutPayload,
)
from stacklo.schema.common import node_uuid
from stacklo.schema.context import Info
from stacklo.schema.ledger import Transaction


@user_errors(CreateCheckoutPayload)
async def create_checkout(
    info: Info,
    input: Annotated[CreateCheckoutInput, strawberry.argument(description="The checkout.")],
) -> CreateCheckoutPayload:
    viewer = await info.context.require_viewer()
    checkout = await info.context.services.checkouts.create(
        CreateCheckout(
            user=viewer.user,
            merchant=node_id(input.merchant_id, "Merchant", ("input", "merchantId")),
            amount=input.amount,
            meta=info.context.meta,
            description=input.description,
            reference=input.reference,
        )
    )
    return CreateCheckoutPayload(checkout=Checkout.of(checkout))


@user_errors(PayCheckoutPayload)
async def pay_checkout(
    info: Info,
    input: Annotated[PayCheckoutInput, strawberry.argument(description="The payment.")],
) -> PayCheckoutPayload:
    viewer = await info.context.require_viewer()
    paid = await info.context.services.checkouts.pay(
        PayCheckout(
            user=viewer.user,
            checkout=node_id(input.checkout_id, "Checkout", ("input", "checkoutId")),
            wallet=node_id(input.wallet_id, "Wallet", ("input", "walletId")),
            method=input.method,
            idempotency_key=input.idempotency_key,
            meta=info.context.meta,
            product=input.product,
        )
    )
    plan = (
        await info.context.loaders.plan_of_checkout.load(paid.checkout.id)
        if paid.checkout.payment_method is PaymentMethod.INSTALLMENTS
        else None
    )
    return PayCheckoutPayload(
        checkout=Checkout.of(paid.checkout),
        transaction=Transaction.of(paid.outcome.transaction),
        installment_plan=InstallmentPlan.of(plan) if plan else None,
        user_errors=outcome_errors(paid.outcome),
    )


@user_errors(RefundCheckoutPayload)
async def refund_checkout(
    info: Info,
    input: Annotated[RefundCheckoutInput, strawberry.argument(description="The refund.")],
) -> RefundCheckoutPayload:
    viewer = await info.context.require_viewer()
    refunded = await info.context.services.checkouts.refund(
        RefundCheckout(
            user=viewer.user,
            checkout=node_id(input.checkout_id, "Checkout", ("input", "checkoutId")),
            reason=input.reason,
            idempotency_key=input.idempotency_key,
            meta=info.context.meta,
            amount=input.amount,
            as_staff=info.context.services.visibility.refund_any_checkout(viewer),
        )
    )
    return RefundCheckoutPayload(
        checkout=Checkout.of(refunded.checkout),
        transaction=Transaction.of(refunded.outcome.transaction),
        user_errors=outcome_errors(refunded.outcome),
    )


async def checkout(
    info: Info,
    id: Annotated[strawberry.ID, strawberry.argument(description="A Checkout global ID.")],
) -> Checkout | None:
    viewer = await info.context.viewer()
    key = node_uuid(id, "Checkout")
    if key is None or not info.context.services.visibility.checkout(viewer):
        return None
    found = await info.context.services.checkouts.get(key)
    return Checkout.of(found) if found else None
