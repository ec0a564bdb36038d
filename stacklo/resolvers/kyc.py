"""reviewKyc (staff, the policy's kyc review)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from stacklo.domain.kyc import ReviewKyc
from stacklo.resolvers.errors import user_errors
from stacklo.resolvers.ids import node_id
from stacklo.schema.context import Info
from stacklo.schema.users import ReviewKycInput, ReviewKycPayload, User


@user_errors(ReviewKycPayload)
async def review_kyc(
    info: Info,
    input: Annotated[ReviewKycInput, strawberry.argument(description="The review.")],
) -> ReviewKycPayload:
    viewer = await info.context.require_viewer()
    user = await info.context.services.kyc.review(
        ReviewKyc(
            staff=viewer.user,
            user=node_id(input.user_id, "User", ("input", "userId")),
            approve=input.approve,
            reason=input.reason,
            meta=info.context.meta,
        )
    )
    return ReviewKycPayload(user=User.of(user))
