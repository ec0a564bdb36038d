"""Which events tell whom what: notices made from outbox events (pure).

Money movements are read from their transaction events (the party a notice is for is the
owner of the wallet, or of the merchant payable, on that side):
- DEPOSIT COMPLETED -> deposit.credited, FAILED -> deposit.failed (to the depositor);
- TRANSFER COMPLETED -> transfer.sent (sender) and transfer.received (recipient);
- WITHDRAWAL COMPLETED -> withdrawal.paid, FAILED -> withdrawal.failed;
- EXCHANGE / CRYPTO_BUY / CRYPTO_SELL COMPLETED -> conversion.completed;
- CHECKOUT_PAYMENT COMPLETED -> checkout.paid (to the merchant's owner).
Everything else arrives as a notification event (topic ``notification``) whose payload names
its ``kind`` and data: KYC and merchant decisions, installments due, collected and overdue,
plans completed and defaulted, sign-ins from a new device.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from stacklo.domain.events import NOTIFICATION, TRANSACTION, OutboxEvent
from stacklo.domain.money import CurrencyCode, Money

CONVERSIONS = frozenset({"EXCHANGE", "CRYPTO_BUY", "CRYPTO_SELL"})


@dataclass(frozen=True, slots=True)
class Notice:
    user_id: uuid.UUID
    kind: str
    data: dict[str, str]


def money_text(amount: str | Decimal, currency: str) -> str:
    """ "1,250.50 NGN": the currency's decimals, grouped thousands."""
    value = Money(Decimal(amount), CurrencyCode(currency)).quantized().amount
    whole, _, frac = format(value, "f").partition(".")
    sign = "-" if whole.startswith("-") else ""
    grouped = f"{int(whole.lstrip('-')):,}"
    return f"{sign}{grouped}{'.' + frac if frac else ''} {currency}"


def notices_of(
    event: OutboxEvent,
    owners: Mapping[uuid.UUID, uuid.UUID],
    names: Mapping[uuid.UUID, str],
    shops: Mapping[uuid.UUID, str],
) -> list[Notice]:
    """The notices one event makes. ``owners``: wallet (or payable) id -> the user it is for;
    ``names``: user id -> how a counterparty is shown; ``shops``: owner -> merchant name."""
    if event.topic == NOTIFICATION:
        data = {k: str(v) for k, v in event.payload.items() if k != "kind"}
        return [Notice(user, str(event.payload["kind"]), data) for user in event.audience]
    if event.topic != TRANSACTION:
        return []
    return _movement(event.payload, owners, names, shops)


def _movement(
    tx: Mapping[str, Any],
    owners: Mapping[uuid.UUID, uuid.UUID],
    names: Mapping[uuid.UUID, str],
    shops: Mapping[uuid.UUID, str],
) -> list[Notice]:
    kind, status = tx["kind"], tx["status"]
    source = owners.get(uuid.UUID(tx["source_wallet_id"])) if tx["source_wallet_id"] else None
    target = owners.get(uuid.UUID(tx["target_wallet_id"])) if tx["target_wallet_id"] else None
    amount = money_text(tx["amount"], tx["currency"])
    base = {"amount": amount, "reference": tx["reference"]}
    reason = tx.get("failure_reason") or "The payment provider did not complete it."
    out: list[Notice] = []

    def add(user: uuid.UUID | None, notice: str, **more: str) -> None:
        if user is not None:
            out.append(Notice(user, notice, {**base, **more}))

    if kind == "DEPOSIT" and status == "COMPLETED":
        add(target, "deposit.credited")
    elif kind == "DEPOSIT" and status == "FAILED":
        add(target, "deposit.failed", reason=reason)
    elif kind == "TRANSFER" and status == "COMPLETED":
        received = (
            money_text(tx["converted_amount"], tx["converted_currency"])
            if tx.get("converted_amount")
            else amount
        )
        add(
            source, "transfer.sent", recipient=names.get(target, "someone") if target else "someone"
        )
        if target is not None:
            out.append(
                Notice(
                    target,
                    "transfer.received",
                    {
                        "amount": received,
                        "reference": tx["reference"],
                        "sender": names.get(source, "someone") if source else "someone",
                    },
                )
            )
    elif kind == "WITHDRAWAL" and status == "COMPLETED":
        add(source, "withdrawal.paid")
    elif kind == "WITHDRAWAL" and status == "FAILED":
        add(source, "withdrawal.failed", reason=reason)
    elif kind in CONVERSIONS and status == "COMPLETED":
        converted = (
            money_text(tx["converted_amount"], tx["converted_currency"])
            if tx.get("converted_amount")
            else amount
        )
        add(source, "conversion.completed", converted=converted)
    elif kind == "CHECKOUT_PAYMENT" and status == "COMPLETED":
        add(target, "checkout.paid", merchant=shops.get(target, "your shop") if target else "")
    return out


def wallets_of(event: OutboxEvent) -> list[uuid.UUID]:
    """The accounts whose owners a transaction event's notices need."""
    if event.topic != TRANSACTION:
        return []
    return [
        uuid.UUID(event.payload[k])
        for k in ("source_wallet_id", "target_wallet_id")
        if event.payload.get(k)
    ]


@dataclass(frozen=True, slots=True)
class Contact:
    user_id: uuid.UUID
    name: str
    email: str
    phone: str | None
    by_email: bool
    by_sms: bool


@dataclass(frozen=True, slots=True)
class StoredNotification:
    id: uuid.UUID
    user_id: uuid.UUID
    kind: str
    title: str
    body: str
    read: bool
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "user_id": str(self.user_id),
            "kind": self.kind,
            "title": self.title,
            "body": self.body,
            "read": self.read,
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StoredNotification:
        return cls(
            uuid.UUID(d["id"]),
            uuid.UUID(d["user_id"]),
            d["kind"],
            d["title"],
            d["body"],
            bool(d["read"]),
            datetime.fromisoformat(d["created_at"]),
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    notification_id: uuid.UUID
    channel: str
    destination: str
    attempts: int
    kind: str
    data: dict[str, str]
