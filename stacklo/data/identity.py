"""Identity documents' rows (the bytes are in object storage under ``storage_key``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from stacklo.data.tables import kyc_documents
from stacklo.domain.identity import KycDocument, KycDocumentStatus, KycDocumentType


def _document(row: Any) -> KycDocument:
    return KycDocument(
        id=row.id,
        user_id=row.user_id,
        type=KycDocumentType(row.type),
        file_name=row.file_name,
        content_type=row.content_type,
        size_bytes=row.size_bytes,
        storage_key=row.storage_key,
        status=KycDocumentStatus(row.status),
        uploaded_at=row.uploaded_at,
        reason=row.reason,
        note=row.note,
        may_resubmit=row.may_resubmit,
        reviewer_id=row.reviewer_id,
        reviewed_at=row.reviewed_at,
    )


class KycDocuments:
    def __init__(self, conn: AsyncConnection):
        self._conn = conn

    async def add(self, document: KycDocument) -> None:
        await self._conn.execute(
            kyc_documents.insert().values(
                id=document.id,
                user_id=document.user_id,
                type=document.type.value,
                file_name=document.file_name,
                content_type=document.content_type,
                size_bytes=document.size_bytes,
                storage_key=document.storage_key,
                status=document.status.value,
                uploaded_at=document.uploaded_at,
            )
        )

    async def get(self, document_id: uuid.UUID) -> KycDocument | None:
        row = (
            await self._conn.execute(select(kyc_documents).where(kyc_documents.c.id == document_id))
        ).first()
        return _document(row) if row else None

    async def for_user(self, user_id: uuid.UUID) -> list[KycDocument]:
        return (await self.for_users([user_id])).get(user_id, [])

    async def for_users(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[KycDocument]]:
        rows = await self._conn.execute(
            select(kyc_documents)
            .where(kyc_documents.c.user_id.in_(user_ids))
            .order_by(kyc_documents.c.uploaded_at, kyc_documents.c.id)
        )
        found: dict[uuid.UUID, list[KycDocument]] = {}
        for row in rows:
            found.setdefault(row.user_id, []).append(_document(row))
        return found

    async def save_review(self, documents: Sequence[KycDocument]) -> None:
        if not documents:
            return
        await self._conn.execute(
            update(kyc_documents)
            .where(kyc_documents.c.id == bindparam("doc_id"))
            .values(
                status=bindparam("new_status"),
                reason=bindparam("new_reason"),
                note=bindparam("new_note"),
                may_resubmit=bindparam("new_may_resubmit"),
                reviewer_id=bindparam("new_reviewer"),
                reviewed_at=bindparam("new_reviewed_at"),
            ),
            [
                {
                    "doc_id": d.id,
                    "new_status": d.status.value,
                    "new_reason": d.reason,
                    "new_note": d.note,
                    "new_may_resubmit": d.may_resubmit,
                    "new_reviewer": d.reviewer_id,
                    "new_reviewed_at": d.reviewed_at,
                }
                for d in documents
            ],
        )
