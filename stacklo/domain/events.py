"""Events clients and workers see, and their JSON form (the outbox payload and the wire).

The payload carries a snapshot of the changed object, so a subscriber can be served without
reading the database once per delivered event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from stacklo.domain.ledger import Transaction, TransactionKind, TransactionStatus
from stacklo.domain.models import AccountKind, Wallet, WalletStatus
from stacklo.domain.money import CurrencyCode

TRANSACTION = "transaction"
WALLET = "wallet"
RATES = "rates"
# Sign-in sessions ended (log-out, password change, refresh-token reuse): every server process
# closes the sockets those sessions opened. Payload: {"sessions": [ids], "reason": str}.
SESSIONS_ENDED = "sessions_ended"
# A user's roles or identity status changed: every server process forgets the signed-in
# viewers it remembers for them. Payload: {"user": id}.
USER_CHANGED = "user_changed"
# Something to tell one user (payload ``kind``, e.g. installment.due), for the notifications
# capability to deliver.
NOTIFICATION = "notification"
# An in-app notification written for a user (for notificationReceived). Payload: the
# notification itself.
NOTIFICATION_CREATED = "notification_created"


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """A committed change, as the relay publishes it and a subscriber receives it."""

    id: int
    position: int
    topic: str
    aggregate_id: str
    audience: tuple[uuid.UUID, ...]
    payload: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return {
            "i": self.id,
            "p": self.position,
            "t": self.topic,
            "a": self.aggregate_id,
            "u": [str(u) for u in self.audience],
            "d": self.payload,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> OutboxEvent:
        return cls(
            int(data["i"]),
            int(data["p"]),
            str(data["t"]),
            str(data["a"]),
            tuple(uuid.UUID(u) for u in data["u"]),
            dict(data["d"]),
        )


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse_dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _dec(value: Decimal | None) -> str | None:
    return format(value, "f") if value is not None else None


def transaction_to_dict(tx: Transaction) -> dict[str, Any]:
    return {
        "id": str(tx.id),
        "reference": tx.reference,
        "kind": tx.kind.value,
        "status": tx.status.value,
        "currency": tx.currency.value,
        "amount": _dec(tx.amount),
        "fee": _dec(tx.fee),
        "description": tx.description,
        "failure_reason": tx.failure_reason,
        "initiator_id": str(tx.initiator_id) if tx.initiator_id else None,
        "source_wallet_id": str(tx.source_wallet_id) if tx.source_wallet_id else None,
        "target_wallet_id": str(tx.target_wallet_id) if tx.target_wallet_id else None,
        "created_at": _dt(tx.created_at),
        "completed_at": _dt(tx.completed_at),
        "converted_currency": tx.converted_currency.value if tx.converted_currency else None,
        "converted_amount": _dec(tx.converted_amount),
        "exchange_rate": _dec(tx.exchange_rate),
    }


def transaction_from_dict(d: dict[str, Any]) -> Transaction:
    created = _parse_dt(d["created_at"])
    assert created is not None
    return Transaction(
        id=uuid.UUID(d["id"]),
        reference=d["reference"],
        kind=TransactionKind(d["kind"]),
        status=TransactionStatus(d["status"]),
        currency=CurrencyCode(d["currency"]),
        amount=Decimal(d["amount"]),
        fee=Decimal(d["fee"]),
        description=d["description"],
        failure_reason=d["failure_reason"],
        initiator_id=uuid.UUID(d["initiator_id"]) if d["initiator_id"] else None,
        source_wallet_id=uuid.UUID(d["source_wallet_id"]) if d["source_wallet_id"] else None,
        target_wallet_id=uuid.UUID(d["target_wallet_id"]) if d["target_wallet_id"] else None,
        created_at=created,
        completed_at=_parse_dt(d["completed_at"]),
        converted_currency=CurrencyCode(d["converted_currency"])
        if d["converted_currency"]
        else None,
        converted_amount=Decimal(d["converted_amount"]) if d["converted_amount"] else None,
        exchange_rate=Decimal(d["exchange_rate"]) if d["exchange_rate"] else None,
    )


def wallet_to_dict(w: Wallet) -> dict[str, Any]:
    return {
        "id": str(w.id),
        "user_id": str(w.user_id) if w.user_id else None,
        "currency": w.currency.value,
        "balance": _dec(w.balance),
        "held": _dec(w.held),
        "status": w.status.value,
        "created_at": _dt(w.created_at),
        "kind": w.kind.value,
    }


def wallet_from_dict(d: dict[str, Any]) -> Wallet:
    created = _parse_dt(d["created_at"])
    assert created is not None
    return Wallet(
        uuid.UUID(d["id"]),
        uuid.UUID(d["user_id"]) if d["user_id"] else None,
        CurrencyCode(d["currency"]),
        Decimal(d["balance"]),
        Decimal(d["held"]),
        WalletStatus(d["status"]),
        created,
        AccountKind(d["kind"]),
    )
