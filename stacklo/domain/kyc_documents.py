"""Identity documents: upload to object storage, list, and time-limited links (the rules, and
what documents do to a user's status, are in identity.py).

Accepted: JPEG, PNG and PDF, judged by their bytes (the name and the claimed type are
ignored), 1 byte to ``max_bytes``; anything else is INVALID_INPUT saying why. Stored under
``kyc/{user}/{uuid}``; the row is written after the bytes, and the bytes are deleted again if
the row cannot be (nothing is kept half-way).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.identity import (
    ACCEPTED,
    KycDocument,
    KycDocumentStatus,
    KycDocumentType,
    status_after_upload,
)
from stacklo.domain.models import RequestMeta, User, audit
from stacklo.domain.ports import Clock, ObjectStorage, UnitOfWorkFactory
from stacklo.domain.validation import clean_text

MIN_LINK_SECONDS = 60
MAX_LINK_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class UploadKycDocument:
    user: User
    type: KycDocumentType
    file_name: str
    body: BinaryIO  # positioned at 0
    size: int
    head: bytes  # the first bytes, for the type
    meta: RequestMeta


class KycDocuments:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        storage: ObjectStorage,
        sniff: Callable[[bytes], str | None],
        max_bytes: int,
    ):
        self._uow = uow
        self._clock = clock
        self._storage = storage
        self._sniff = sniff
        self._max_bytes = max_bytes

    async def upload(self, cmd: UploadKycDocument) -> KycDocument:
        field = ("input", "file")
        if cmd.size <= 0:
            raise DomainError(ErrorCode.INVALID_INPUT, "The file is empty.", field)
        if cmd.size > self._max_bytes:
            raise DomainError(
                ErrorCode.INVALID_INPUT,
                f"The file is larger than {self._max_bytes // (1024 * 1024)} MB.",
                field,
            )
        kind = self._sniff(cmd.head)
        if kind not in ACCEPTED:
            raise DomainError(
                ErrorCode.INVALID_INPUT,
                "Only JPEG, PNG and PDF files are accepted; this file's content is "
                + (f"{kind}." if kind else "not one of them."),
                field,
            )
        name = _file_name(cmd.file_name, kind)
        # Fail before storing anything when the user may not upload (checked again below).
        status_after_upload(cmd.user.kyc_status, cmd.user.kyc_may_resubmit, [])
        key = f"kyc/{cmd.user.id}/{uuid.uuid4()}"
        await self._storage.put(key, cmd.body, cmd.size, kind)
        document = KycDocument(
            uuid.uuid4(),
            cmd.user.id,
            cmd.type,
            name,
            kind,
            cmd.size,
            key,
            KycDocumentStatus.UPLOADED,
            self._clock(),
        )
        try:
            async with self._uow() as uow:
                # Locked: two uploads at once both see the other's document.
                user = await uow.users.get(cmd.user.id, lock=True)
                assert user is not None
                await uow.kyc_documents.add(document)
                documents = await uow.kyc_documents.for_user(user.id)
                status = status_after_upload(user.kyc_status, user.kyc_may_resubmit, documents)
                if status is not user.kyc_status:
                    await uow.users.set_kyc_status(user.id, status)
                await uow.audit.record(
                    audit(
                        "kyc.document_uploaded",
                        cmd.meta,
                        actor_id=user.id,
                        target_type="KycDocument",
                        target_id=document.id,
                        type=document.type.value,
                        content_type=kind,
                        size=cmd.size,
                    )
                )
                await uow.commit()
        except BaseException:
            await self._storage.delete(key)  # no bytes without their row
            raise
        return document

    async def get(self, document_id: uuid.UUID) -> KycDocument | None:
        async with self._uow(read_only=True) as uow:
            return await uow.kyc_documents.get(document_id)

    async def link(self, document: KycDocument, expires_in: int) -> str:
        """A download link living ``expires_in`` seconds, kept within 60 s to an hour."""
        seconds = max(MIN_LINK_SECONDS, min(MAX_LINK_SECONDS, expires_in))
        return await self._storage.url(
            document.storage_key, seconds, document.file_name, document.content_type
        )


def _file_name(raw: str, kind: str) -> str:
    """The last path part, cleaned; a plain name when nothing usable is left."""
    base = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    cleaned = "".join(ch for ch in base if ch.isprintable())[:255]
    if not cleaned or cleaned in (".", ".."):
        return "document." + ACCEPTED[kind].lower()
    return clean_text(cleaned, ("input", "file"), max_len=255)
