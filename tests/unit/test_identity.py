"""The pure rules of identity documents: what uploads do to a user's status, and a review."""

import uuid
from datetime import UTC, datetime

import pytest

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.identity import (
    MAX_DOCUMENTS,
    KycDocument,
    KycDocumentStatus,
    KycDocumentType,
    Verdict,
    decide,
    ready_for_review,
    status_after_upload,
)
from stacklo.domain.models import KycStatus

NOW = datetime(2026, 12, 1, tzinfo=UTC)
USER = uuid.uuid4()
STAFF = uuid.uuid4()
T = KycDocumentType
S = KycDocumentStatus


def doc(type: KycDocumentType, status: KycDocumentStatus = S.UPLOADED) -> KycDocument:
    return KycDocument(
        uuid.uuid4(), USER, type, "f.pdf", "application/pdf", 10, "kyc/k", status, NOW
    )


@pytest.mark.parametrize(
    ("types", "ready"),
    [
        ([], False),
        ([T.PASSPORT], False),
        ([T.SELFIE], False),
        ([T.UTILITY_BILL, T.SELFIE], False),
        ([T.PASSPORT, T.SELFIE], True),
        ([T.NATIONAL_ID, T.SELFIE], True),
        ([T.DRIVERS_LICENSE, T.SELFIE, T.UTILITY_BILL], True),
    ],
)
def test_a_review_needs_an_identity_document_and_a_selfie(
    types: list[KycDocumentType], ready: bool
) -> None:
    assert ready_for_review([doc(t) for t in types]) is ready
    assert status_after_upload(KycStatus.PENDING, True, [doc(t) for t in types]) is (
        KycStatus.SUBMITTED if ready else KycStatus.PENDING
    )


def test_rejected_documents_do_not_count() -> None:
    documents = [doc(T.PASSPORT, S.REJECTED), doc(T.SELFIE)]
    assert not ready_for_review(documents)
    assert status_after_upload(KycStatus.REJECTED, True, documents) is KycStatus.REJECTED
    documents.append(doc(T.PASSPORT))
    assert status_after_upload(KycStatus.REJECTED, True, documents) is KycStatus.SUBMITTED


@pytest.mark.parametrize(
    ("status", "may_resubmit"), [(KycStatus.VERIFIED, True), (KycStatus.REJECTED, False)]
)
def test_who_may_not_upload(status: KycStatus, may_resubmit: bool) -> None:
    with pytest.raises(DomainError) as refused:
        status_after_upload(status, may_resubmit, [])
    assert refused.value.code is ErrorCode.INVALID_STATE


def test_documents_are_bounded() -> None:
    full = [doc(T.UTILITY_BILL) for _ in range(MAX_DOCUMENTS)]
    assert status_after_upload(KycStatus.PENDING, True, full) is KycStatus.PENDING
    with pytest.raises(DomainError) as refused:
        status_after_upload(KycStatus.PENDING, True, [*full, doc(T.SELFIE)])
    assert refused.value.code is ErrorCode.LIMIT_EXCEEDED


def test_a_review_decides_every_uploaded_document_once() -> None:
    passport, selfie, old = doc(T.PASSPORT), doc(T.SELFIE), doc(T.SELFIE, S.REJECTED)
    changed = decide(
        [old, passport, selfie],
        False,
        "Too dark.",
        "note",
        True,
        {passport.id: Verdict(True, None)},
        STAFF,
        NOW,
    )
    assert changed == [passport, selfie]
    assert (passport.status, passport.reason) == (S.APPROVED, None)
    assert (selfie.status, selfie.reason, selfie.note) == (S.REJECTED, "Too dark.", "note")
    assert selfie.reviewer_id == STAFF and selfie.reviewed_at == NOW
    assert old.status is S.REJECTED and old.reviewed_at is None  # untouched


def test_approving_needs_an_approved_identity_document_and_selfie() -> None:
    passport, selfie = doc(T.PASSPORT), doc(T.SELFIE)
    with pytest.raises(DomainError) as refused:
        decide(
            [passport, selfie], True, None, None, True, {selfie.id: Verdict(False, "x")}, STAFF, NOW
        )
    assert refused.value.code is ErrorCode.INVALID_STATE
    with pytest.raises(DomainError):
        decide([passport], True, None, None, True, {}, STAFF, NOW)
    assert decide([doc(T.NATIONAL_ID), doc(T.SELFIE)], True, None, None, True, {}, STAFF, NOW)


def test_verdicts_name_undecided_documents_of_the_user() -> None:
    decided = doc(T.PASSPORT, S.APPROVED)
    with pytest.raises(DomainError) as unknown:
        decide([decided], False, "x", None, True, {uuid.uuid4(): Verdict(True, None)}, STAFF, NOW)
    assert unknown.value.code is ErrorCode.NOT_FOUND
    with pytest.raises(DomainError) as again:
        decide([decided], False, "x", None, True, {decided.id: Verdict(True, None)}, STAFF, NOW)
    assert again.value.code is ErrorCode.INVALID_STATE
