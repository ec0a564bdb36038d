"""uploadKycDocument (the user, a multipart request) and reviewKyc (staff, the policy's kyc
review)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from starlette.datastructures import UploadFile

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.identity import MAX_DOCUMENTS, Verdict
from stacklo.domain.kyc import ReviewKyc
from stacklo.domain.kyc_documents import UploadKycDocument
from stacklo.integrations.filetypes import HEAD_BYTES
from stacklo.resolvers.errors import user_errors
from stacklo.resolvers.ids import node_id
from stacklo.schema.context import Info
from stacklo.schema.kyc import KycDocument, UploadKycDocumentInput, UploadKycDocumentPayload
from stacklo.schema.users import ReviewKycInput, ReviewKycPayload, User


@user_errors(UploadKycDocumentPayload)
async def upload_kyc_document(
    info: Info,
    input: Annotated[
        UploadKycDocumentInput,
        strawberry.argument(description="The document: its type and the file."),
    ],
) -> UploadKycDocumentPayload:
    viewer = await info.context.require_viewer()
    file = input.file
    if not isinstance(file, UploadFile):
        # A string or a number where the multipart spec puts a file (e.g. plain JSON).
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            "Send the file as a GraphQL multipart request (a file part mapped to "
            "variables.input.file).",
            ("input", "file"),
        )
    # Starlette spooled the part to a temporary file while parsing: measure it there rather
    # than read it into memory again (a seek never waits on the disk).
    size = file.file.seek(0, 2)
    file.file.seek(0)
    head = await file.read(HEAD_BYTES)
    await file.seek(0)
    document = await info.context.services.kyc_documents.upload(
        UploadKycDocument(
            user=viewer.user,
            type=input.type,
            file_name=file.filename or "",
            body=file.file,
            size=size,
            head=head,
            meta=info.context.meta,
        )
    )
    return UploadKycDocumentPayload(document=KycDocument.of(document))


@user_errors(ReviewKycPayload)
async def review_kyc(
    info: Info,
    input: Annotated[ReviewKycInput, strawberry.argument(description="The review.")],
) -> ReviewKycPayload:
    viewer = await info.context.require_viewer()
    decisions = input.documents or []
    if len(decisions) > MAX_DOCUMENTS:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"At most {MAX_DOCUMENTS} document decisions.",
            ("input", "documents"),
        )
    verdicts = {}
    for i, d in enumerate(decisions):
        field = ("input", "documents", str(i), "documentId")
        document_id = node_id(d.document_id, "KycDocument", field, "KycDocument not found.")
        if document_id in verdicts:
            raise DomainError(ErrorCode.INVALID_INPUT, "That document is decided twice.", field)
        verdicts[document_id] = Verdict(d.approve, d.reason)
    user = await info.context.services.kyc.review(
        ReviewKyc(
            staff=viewer.user,
            user=node_id(input.user_id, "User", ("input", "userId")),
            approve=input.approve,
            reason=input.reason,
            meta=info.context.meta,
            note=input.note,
            may_resubmit=input.may_resubmit,
            verdicts=verdicts,
        )
    )
    return ReviewKycPayload(user=User.of(user))
