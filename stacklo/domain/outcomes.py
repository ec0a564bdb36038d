"""Idempotency keys and what a money mutation answers, shared by every money-moving service.

The key, a hash of the input and the response are stored in the same database transaction as
the movement: a retry gets the first answer, a different input under the same key is refused.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.ledger import Transaction
from stacklo.domain.ports import UnitOfWork

MAX_KEY = 128


def request_hash(operation: str, payload: Mapping[str, Any]) -> str:
    canonical = json.dumps({"operation": operation, "input": payload}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def claim_key(
    uow: UnitOfWork, user_id: uuid.UUID, key: str, operation: str, payload: Mapping[str, Any]
) -> dict[str, Any] | None:
    """None when this call owns the key; the first call's stored response on a retry."""
    check_key(key)
    found = await uow.idempotency.claim(user_id, key, operation, request_hash(operation, payload))
    return _first_answer(found, operation, payload)


async def first_answer(
    uow: UnitOfWork, user_id: uuid.UUID, key: str, operation: str, payload: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The first call's stored response if one committed, claiming nothing: for a use case
    whose booking claims the key itself (``movements.Idempotent.claim``)."""
    check_key(key)
    return _first_answer(await uow.idempotency.find(user_id, key), operation, payload)


def check_key(key: str) -> None:
    """INVALID_INPUT unless ``key`` is 1 to MAX_KEY printable characters."""
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"idempotencyKey must be 1 to {MAX_KEY} printable characters",
            ("input", "idempotencyKey"),
        )


def _first_answer(
    found: tuple[str, str, dict[str, Any]] | None, operation: str, payload: Mapping[str, Any]
) -> dict[str, Any] | None:
    if found is None:
        return None
    first_operation, first_hash, response = found
    if first_operation != operation or first_hash != request_hash(operation, payload):
        raise DomainError(
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            "This idempotency key was used with a different request.",
            ("input", "idempotencyKey"),
        )
    return response


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a money mutation answers: the transaction and, maybe, why it did not go through."""

    transaction: Transaction
    payment_url: str | None = None
    error: DomainError | None = None


async def replay(uow: UnitOfWork, response: dict[str, Any]) -> Outcome:
    """The first call's answer, rebuilt from its stored response."""
    tx = await uow.ledger.get(uuid.UUID(response["transaction_id"]))
    assert tx is not None, "an idempotency record points at its transaction"
    error = response.get("error")
    return Outcome(
        tx,
        response.get("payment_url"),
        DomainError(
            ErrorCode(error["code"]),
            error["message"],
            tuple(error["field"]) if error.get("field") else None,
        )
        if error
        else None,
    )


def response_of(outcome: Outcome) -> dict[str, Any]:
    out: dict[str, Any] = {"transaction_id": str(outcome.transaction.id)}
    if outcome.payment_url:
        out["payment_url"] = outcome.payment_url
    if outcome.error:
        out["error"] = {
            "code": outcome.error.code.value,
            "message": outcome.error.message,
            "field": list(outcome.error.field) if outcome.error.field else None,
        }
    return out
