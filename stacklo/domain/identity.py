"""Identity documents and what they mean for a user's KYC status (pure; the use cases are
kyc_documents.py, uploads and links, and kyc.py, the review).

A document is UPLOADED until a review decides it, once:

    UPLOADED --approve--> APPROVED
    UPLOADED --reject---> REJECTED (with a reason for the user, optionally a note for staff,
                                    and whether the user may upload again)

A user's status follows their documents:

    PENDING  --a review's documents are in-->  SUBMITTED
    REJECTED --the same, if resubmitting is allowed--> SUBMITTED
    SUBMITTED --review approves--> VERIFIED (the documents a review needs must be in and the
                                             decision must leave them APPROVED)
    any but VERIFIED --review rejects--> REJECTED (final when ``may_resubmit`` is false)

"The documents a review needs": an identity document (PASSPORT, NATIONAL_ID or
DRIVERS_LICENSE) and a SELFIE, neither REJECTED. A UTILITY_BILL is accepted and reviewed but
not required. VERIFIED users upload nothing more, and nobody holds more than MAX_DOCUMENTS.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.models import KycStatus

# What the bytes must be (the name and the claimed type are ignored), and how it is called.
ACCEPTED = {"image/jpeg": "JPEG", "image/png": "PNG", "application/pdf": "PDF"}


class KycDocumentType(Enum):
    PASSPORT = "PASSPORT"
    NATIONAL_ID = "NATIONAL_ID"
    DRIVERS_LICENSE = "DRIVERS_LICENSE"
    UTILITY_BILL = "UTILITY_BILL"
    SELFIE = "SELFIE"


class KycDocumentStatus(Enum):
    UPLOADED = "UPLOADED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


MAX_DOCUMENTS = 20
"""Documents one user may hold, reviewed or not: enough for several resubmissions, and a
bound on what ``User.kycDocuments`` returns."""

IDENTITY = frozenset(
    {KycDocumentType.PASSPORT, KycDocumentType.NATIONAL_ID, KycDocumentType.DRIVERS_LICENSE}
)


@dataclass(slots=True)
class KycDocument:
    id: uuid.UUID
    user_id: uuid.UUID
    type: KycDocumentType
    file_name: str
    content_type: str
    size_bytes: int
    storage_key: str
    status: KycDocumentStatus
    uploaded_at: datetime
    reason: str | None = None  # for the user
    note: str | None = None  # for staff only
    may_resubmit: bool = True
    reviewer_id: uuid.UUID | None = None
    reviewed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A review's decision on one document."""

    approve: bool
    reason: str | None


def ready_for_review(documents: list[KycDocument]) -> bool:
    """An identity document and a selfie are in, neither rejected."""
    live = {d.type for d in documents if d.status is not KycDocumentStatus.REJECTED}
    return bool(live & IDENTITY) and KycDocumentType.SELFIE in live


def status_after_upload(
    status: KycStatus, may_resubmit: bool, documents: list[KycDocument]
) -> KycStatus:
    """The user's status once ``documents`` (including the new one) are stored. Raises
    INVALID_STATE when the user may not upload at all."""
    if status is KycStatus.VERIFIED:
        raise DomainError(ErrorCode.INVALID_STATE, "Your identity is already verified.")
    if status is KycStatus.REJECTED and not may_resubmit:
        raise DomainError(
            ErrorCode.INVALID_STATE, "Your identity check was refused and cannot be resubmitted."
        )
    if len(documents) > MAX_DOCUMENTS:
        raise DomainError(
            ErrorCode.LIMIT_EXCEEDED,
            f"At most {MAX_DOCUMENTS} documents can be uploaded; contact support.",
        )
    if status in (KycStatus.PENDING, KycStatus.REJECTED) and ready_for_review(documents):
        return KycStatus.SUBMITTED
    return status


def decide(
    documents: list[KycDocument],
    approve: bool,
    reason: str | None,
    note: str | None,
    may_resubmit: bool,
    verdicts: Mapping[uuid.UUID, Verdict],
    reviewer: uuid.UUID,
    now: datetime,
) -> list[KycDocument]:
    """The document side of a review. Each UPLOADED document takes its own verdict when one
    is given, else the overall decision; the ones changed are returned. Approving the user
    needs an identity document and a selfie APPROVED afterwards."""
    by_id = {d.id: d for d in documents}
    for document_id in verdicts:
        found = by_id.get(document_id)
        if found is None:
            raise DomainError(
                ErrorCode.NOT_FOUND,
                "The user has no such document.",
                ("input", "documents"),
            )
        if found.status is not KycDocumentStatus.UPLOADED:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"That {found.type.value} document was already reviewed.",
                ("input", "documents"),
            )
    changed = []
    for d in documents:
        if d.status is not KycDocumentStatus.UPLOADED:
            continue
        verdict = verdicts.get(d.id, Verdict(approve, None if approve else reason))
        if not verdict.approve and not verdict.reason:
            raise DomainError(
                ErrorCode.INVALID_INPUT,
                "Say why each rejected document was rejected.",
                ("input", "documents"),
            )
        d.status = KycDocumentStatus.APPROVED if verdict.approve else KycDocumentStatus.REJECTED
        d.reason = None if verdict.approve else verdict.reason
        d.note = note
        d.may_resubmit = True if verdict.approve else may_resubmit
        d.reviewer_id = reviewer
        d.reviewed_at = now
        changed.append(d)
    if approve:
        approved = {d.type for d in documents if d.status is KycDocumentStatus.APPROVED}
        if not (approved & IDENTITY and KycDocumentType.SELFIE in approved):
            raise DomainError(
                ErrorCode.INVALID_STATE,
                "Approving needs an identity document and a selfie, approved.",
                ("input", "approve"),
            )
    return changed
