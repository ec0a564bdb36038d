"""registerMerchant, reviewMerchant (staff, the policy's merchants review)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from stacklo.domain.merchants import RegisterMerchant, ReviewMerchant
from stacklo.resolvers.errors import user_errors
from stacklo.resolvers.ids import node_id
from stacklo.schema.commerce import (
    Merchant,
    RegisterMerchantInput,
    RegisterMerchantPayload,
    ReviewMerchantInput,
    ReviewMerchantPayload,
)
from stacklo.schema.context import Info


@user_errors(RegisterMerchantPayload)
async def register_merchant(
    info: Info,
    input: Annotated[RegisterMerchantInput, strawberry.argument(description="The merchant.")],
) -> RegisterMerchantPayload:
    viewer = await info.context.require_viewer()
    merchant = await info.context.services.merchants.register(
        RegisterMerchant(
            viewer.user, input.name, input.category, input.settlement_currency, info.context.meta
        )
    )
    return RegisterMerchantPayload(merchant=Merchant.of(merchant))


@user_errors(ReviewMerchantPayload)
async def review_merchant(
    info: Info,
    input: Annotated[ReviewMerchantInput, strawberry.argument(description="The decision.")],
) -> ReviewMerchantPayload:
    viewer = await info.context.require_viewer()
    merchant = await info.context.services.merchants.review(
        ReviewMerchant(
            staff=viewer.user,
            merchant=node_id(input.merchant_id, "Merchant", ("input", "merchantId")),
            approve=input.approve,
            reason=input.reason,
            meta=info.context.meta,
        )
    )
    return ReviewMerchantPayload(merchant=Merchant.of(merchant))
