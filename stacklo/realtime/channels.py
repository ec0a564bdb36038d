"""Broadcast channel names. One per user (their transactions and wallets) and one for staff."""

from __future__ import annotations

import uuid

from stacklo.domain.events import RATES, TRANSACTION, OutboxEvent

PLATFORM = "stacklo:platform"
RATES_CHANNEL = "stacklo:rates"


def user_channel(user_id: uuid.UUID) -> str:
    return f"stacklo:user:{user_id}"


def channels_for(event: OutboxEvent) -> list[str]:
    """Where an event goes: each user in its audience, the staff feed for transactions, and
    the public rates channel for rate ticks."""
    if event.topic == RATES:
        return [RATES_CHANNEL]
    out = [user_channel(u) for u in event.audience]
    if event.topic == TRANSACTION:
        out.append(PLATFORM)
    return out
