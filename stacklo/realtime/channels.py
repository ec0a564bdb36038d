"""Broadcast channel names: one per user (their transactions and wallets), one for staff, one
for rate ticks, and one for ended sign-in sessions and changed users (every process closes
those sessions' sockets and forgets the viewers it remembers)."""

from __future__ import annotations

import uuid

from stacklo.domain.events import RATES, SESSIONS_ENDED, TRANSACTION, USER_CHANGED, OutboxEvent

PLATFORM = "stacklo:platform"
RATES_CHANNEL = "stacklo:rates"
SESSIONS_CHANNEL = "stacklo:sessions"


def user_channel(user_id: uuid.UUID) -> str:
    return f"stacklo:user:{user_id}"


def channels_for(event: OutboxEvent) -> list[str]:
    """Where an event goes: each user in its audience, the staff feed for transactions, and
    the public rates channel for rate ticks."""
    if event.topic == RATES:
        return [RATES_CHANNEL]
    if event.topic in (SESSIONS_ENDED, USER_CHANGED):
        return [SESSIONS_CHANNEL]
    out = [user_channel(u) for u in event.audience]
    if event.topic == TRANSACTION:
        out.append(PLATFORM)
    return out
