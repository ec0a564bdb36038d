"""Identity documents as clients see them, and the inputs of uploading and reviewing them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import relay
from strawberry.file_uploads import Upload

from stacklo.domain import identity
from stacklo.domain.errors import DomainError, ErrorCode, Forbidden
from stacklo.domain.identity import KycDocumentStatus, KycDocumentType
from stacklo.domain.kyc_documents import MAX_LINK_SECONDS, MIN_LINK_SECONDS
from stacklo.schema import docs
from stacklo.schema.common import USER_ERRORS, UserError
from stacklo.schema.context import Info

docs.described_enum(
    KycDocumentType,
    "What an identity document shows. A review needs one of PASSPORT, NATIONAL_ID or "
    "DRIVERS_LICENSE, and a SELFIE.",
    docs.KYC_DOCUMENT_TYPES,
)
docs.described_enum(
    KycDocumentStatus, "Where a document's review stands.", docs.KYC_DOCUMENT_STATUSES
)


@strawberry.type(
    description="A file a user uploaded to verify their identity. Visible to the user and to "
    "staff (SUPPORT, ADMIN)."
)
class KycDocument(relay.Node):
    id: relay.NodeID[str]
    type: KycDocumentType = strawberry.field(description="What the document shows.")
    file_name: str = strawberry.field(
        description="The uploaded file's name (its last path part, cleaned)."
    )
    content_type: str = strawberry.field(
        description="image/jpeg, image/png or application/pdf, as the file's bytes say (the "
        "name and the type the client claimed are ignored)."
    )
    size_bytes: int = strawberry.field(description="The file's size in bytes.")
    status: KycDocumentStatus = strawberry.field(description="Where its review stands.")
    uploaded_at: datetime = strawberry.field(description="When it was uploaded.")
    rejection_reason: str | None = strawberry.field(
        description="Why a review rejected it, written for the user; null unless REJECTED."
    )
    may_resubmit: bool = strawberry.field(
        description="False when a review rejected it for good: no new document may be "
        "uploaded. True otherwise."
    )
    reviewed_at: datetime | None = strawberry.field(
        description="When a review decided it; null while UPLOADED."
    )
    _document: strawberry.Private[identity.KycDocument]

    @classmethod
    def of(cls, d: identity.KycDocument) -> KycDocument:
        return cls(
            id=str(d.id),
            type=d.type,
            file_name=d.file_name,
            content_type=d.content_type,
            size_bytes=d.size_bytes,
            status=d.status,
            uploaded_at=d.uploaded_at,
            rejection_reason=d.reason,
            may_resubmit=d.may_resubmit,
            reviewed_at=d.reviewed_at,
            _document=d,
        )

    @strawberry.field(
        description="A time-limited URL to fetch the file from object storage: with S3 a "
        "presigned GET, else a signed link served by this server (403 once expired or if "
        "altered). Only the document's owner and staff get one; FORBIDDEN for anyone else."
    )
    async def download_url(
        self,
        info: Info,
        expires_in_seconds: Annotated[
            int,
            strawberry.argument(
                description=f"How long the URL works: {MIN_LINK_SECONDS} to "
                f"{MAX_LINK_SECONDS} seconds (INVALID_INPUT outside)."
            ),
        ] = 300,
    ) -> str:
        viewer = await info.context.viewer()
        if not info.context.services.visibility.kyc_documents(viewer, self._document.user_id):
            raise Forbidden()
        if not MIN_LINK_SECONDS <= expires_in_seconds <= MAX_LINK_SECONDS:
            raise DomainError(
                ErrorCode.INVALID_INPUT,
                f"expiresInSeconds must be {MIN_LINK_SECONDS} to {MAX_LINK_SECONDS}.",
                ("expiresInSeconds",),
            )
        url = await info.context.services.kyc_documents.link(self._document, expires_in_seconds)
        request = info.context.request
        if url.startswith("/") and request is not None:
            # The local store's links are this server's own paths: make them absolute.
            url = str(request.base_url).rstrip("/") + url
        return url

    @strawberry.field(
        description="The reviewer's internal note. Staff only: null for the document's owner."
    )
    async def review_note(self, info: Info) -> str | None:
        viewer = await info.context.viewer()
        return self._document.note if info.context.services.visibility.kyc_notes(viewer) else None


@strawberry.input(
    description="One file for identity verification, sent as a GraphQL multipart request "
    "(with an Apollo-Require-Preflight header)."
)
class UploadKycDocumentInput:
    type: KycDocumentType = strawberry.field(description="What the document shows.")
    file: Upload = strawberry.field(
        description="A JPEG, PNG or PDF (judged by its bytes), 1 byte to 10 MB by default "
        "(STACKLO_KYC_MAX_BYTES); anything else is INVALID_INPUT saying why."
    )


@strawberry.type(description="The answer to uploadKycDocument.")
class UploadKycDocumentPayload:
    document: KycDocument | None = strawberry.field(
        default=None, description="The stored document; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.input(description="A decision on one document, overriding the review's own.")
class KycDocumentDecisionInput:
    document_id: strawberry.ID = strawberry.field(
        description="One of the user's UPLOADED documents (a KycDocument global ID)."
    )
    approve: bool = strawberry.field(description="true approves the document, false rejects it.")
    reason: str | None = strawberry.field(
        default=None,
        description="Why, for the user; required to reject, at most 500 characters.",
    )
