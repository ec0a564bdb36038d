"""Identity review: staff approve or reject a user's KYC."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.models import KycStatus, RequestMeta, User, audit
from stacklo.domain.ports import UnitOfWorkFactory
from stacklo.domain.validation import review_reason


@dataclass(frozen=True, slots=True)
class ReviewKyc:
    staff: User
    user: uuid.UUID
    approve: bool
    reason: str | None
    meta: RequestMeta


class Kyc:
    def __init__(self, uow: UnitOfWorkFactory):
        self._uow = uow

    async def review(self, cmd: ReviewKyc) -> User:
        """VERIFIED or REJECTED. A rejection says why; staff cannot review themselves (four
        eyes). Audited as kyc.reviewed."""
        reason = review_reason(cmd.reason, cmd.approve, "Say why the review was rejected.")
        status = KycStatus.VERIFIED if cmd.approve else KycStatus.REJECTED
        async with self._uow() as uow:
            user = await uow.users.get(cmd.user)
            if user is None:
                raise DomainError(ErrorCode.NOT_FOUND, "User not found.", ("input", "userId"))
            if user.id == cmd.staff.id:
                raise DomainError(
                    ErrorCode.INVALID_INPUT,
                    "Staff cannot review their own identity.",
                    ("input", "userId"),
                )
            previous = user.kyc_status
            user.kyc_status = status
            await uow.users.set_kyc_status(user.id, status)
            await uow.outbox.notify(
                user.id,
                "kyc.approved" if cmd.approve else "kyc.rejected",
                {} if cmd.approve else {"reason": reason or "", "may_resubmit": "yes"},
            )
            await uow.audit.record(
                audit(
                    "kyc.reviewed",
                    cmd.meta,
                    actor_id=cmd.staff.id,
                    target_type="User",
                    target_id=user.id,
                    previous=previous.value,
                    status=status.value,
                    reason=reason,
                )
            )
            await uow.commit()
        return user
