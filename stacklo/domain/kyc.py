"""Identity review: staff approve or reject a user's KYC and the documents it rests on."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.identity import Verdict, decide
from stacklo.domain.models import KycStatus, RequestMeta, User, audit
from stacklo.domain.ports import Clock, UnitOfWorkFactory
from stacklo.domain.validation import MAX_REASON, clean_text, review_reason


@dataclass(frozen=True, slots=True)
class ReviewKyc:
    staff: User
    user: uuid.UUID
    approve: bool
    reason: str | None
    meta: RequestMeta
    note: str | None = None
    may_resubmit: bool = True
    verdicts: Mapping[uuid.UUID, Verdict] = field(default_factory=dict)


class Kyc:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock):
        self._uow = uow
        self._clock = clock

    async def review(self, cmd: ReviewKyc) -> User:
        """VERIFIED or REJECTED, and every UPLOADED document decided (identity.decide). A
        rejection says why; the note stays with staff; staff cannot review themselves (four
        eyes). Audited as kyc.reviewed; the user is notified."""
        reason = review_reason(cmd.reason, cmd.approve, "Say why the review was rejected.")
        note = (
            clean_text(cmd.note or "", ("input", "note"), max_len=MAX_REASON, required=False)
            or None
        )
        verdicts = {
            document_id: Verdict(
                v.approve,
                review_reason(v.reason, v.approve, "Say why each rejected document was rejected."),
            )
            for document_id, v in cmd.verdicts.items()
        }
        status = KycStatus.VERIFIED if cmd.approve else KycStatus.REJECTED
        may_resubmit = cmd.approve or cmd.may_resubmit
        async with self._uow() as uow:
            user = await uow.users.get(cmd.user, lock=True)
            if user is None:
                raise DomainError(ErrorCode.NOT_FOUND, "User not found.", ("input", "userId"))
            if user.id == cmd.staff.id:
                raise DomainError(
                    ErrorCode.INVALID_INPUT,
                    "Staff cannot review their own identity.",
                    ("input", "userId"),
                )
            documents = await uow.kyc_documents.for_user(user.id)
            decided = decide(
                documents,
                cmd.approve,
                reason,
                note,
                may_resubmit,
                verdicts,
                cmd.staff.id,
                self._clock(),
            )
            await uow.kyc_documents.save_review(decided)
            previous = user.kyc_status
            user.kyc_status = status
            user.kyc_may_resubmit = may_resubmit
            await uow.users.set_kyc_status(user.id, status, may_resubmit)
            await uow.outbox.notify(
                user.id,
                "kyc.approved" if cmd.approve else "kyc.rejected",
                {}
                if cmd.approve
                else {"reason": reason or "", "may_resubmit": "yes" if may_resubmit else "no"},
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
                    note=note,
                    may_resubmit=may_resubmit,
                    documents={str(d.id): d.status.value for d in decided},
                )
            )
            await uow.commit()
        return user
