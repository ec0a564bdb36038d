"""Notifications: the notifier's reading position, recipients, in-app notifications (each
written with the outbox event that pushes it live), email/SMS deliveries, and preferences."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from stacklo.data.outbox import NOTIFICATION_CREATED_EVENT, announced
from stacklo.data.tables import (
    merchants,
    notification_deliveries,
    notification_preferences,
    notifications,
    outbox_events,
    outbox_readers,
    users,
    wallets,
)
from stacklo.domain.events import OutboxEvent
from stacklo.domain.models import Page
from stacklo.domain.notices import Contact, Delivery, StoredNotification


def _notification(row: Any) -> StoredNotification:
    return StoredNotification(
        row.id, row.user_id, row.kind, row.title, row.body, row.read_at is not None, row.created_at
    )


_INSERT_NOTIFICATION = (
    "INSERT INTO notifications (id, user_id, kind, title, body, data, event_id, created_at) "
    "VALUES (:id, :user_id, :kind, :title, :body, CAST(:data AS jsonb), :event_id, :created_at) "
    "ON CONFLICT (event_id, user_id, kind) DO NOTHING RETURNING id, user_id"
)


class NotificationStore:
    def __init__(self, conn: AsyncConnection):
        self._conn = conn

    # ------------------------------------------------------------------ the notifier

    async def position(self, reader: str) -> int:
        """The reader's position, its row locked until commit (one batch at a time)."""
        await self._conn.execute(
            insert(outbox_readers).values(name=reader, position=0).on_conflict_do_nothing()
        )
        found = (
            await self._conn.execute(
                select(outbox_readers.c.position)
                .where(outbox_readers.c.name == reader)
                .with_for_update()
            )
        ).scalar_one()
        return int(found)

    async def advance(self, reader: str, position: int) -> None:
        await self._conn.execute(
            update(outbox_readers)
            .where(outbox_readers.c.name == reader)
            .values(position=position, updated_at=func.now())
        )

    async def events_after(
        self, position: int, topics: Sequence[str], limit: int
    ) -> list[OutboxEvent]:
        rows = await self._conn.execute(
            select(outbox_events)
            .where(outbox_events.c.position > position, outbox_events.c.topic.in_(list(topics)))
            .order_by(outbox_events.c.position)
            .limit(limit)
        )
        return [
            OutboxEvent(
                r.id, r.position, r.topic, r.aggregate_id, tuple(r.audience), dict(r.payload)
            )
            for r in rows
        ]

    async def owners(self, wallet_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """Wallet -> its owner; a merchant payable -> its merchant's owner."""
        if not wallet_ids:
            return {}
        rows = await self._conn.execute(
            select(wallets.c.id, func.coalesce(wallets.c.user_id, merchants.c.user_id))
            .select_from(wallets.outerjoin(merchants, merchants.c.id == wallets.c.merchant_id))
            .where(wallets.c.id.in_(list(wallet_ids)))
        )
        return {w: u for w, u in rows if u is not None}

    async def merchant_names(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not user_ids:
            return {}
        rows = await self._conn.execute(
            select(merchants.c.user_id, merchants.c.name).where(
                merchants.c.user_id.in_(list(user_ids))
            )
        )
        return dict(rows.all())

    async def contacts(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Contact]:
        if not user_ids:
            return {}
        p = notification_preferences.c
        rows = await self._conn.execute(
            select(
                users.c.id,
                users.c.full_name,
                users.c.email,
                users.c.phone_number,
                func.coalesce(p.email, True),
                func.coalesce(p.sms, False),
            )
            .select_from(users.outerjoin(notification_preferences, p.user_id == users.c.id))
            .where(users.c.id.in_(list(user_ids)))
        )
        return {r[0]: Contact(r[0], r[1], r[2], r[3], bool(r[4]), bool(r[5])) for r in rows}

    async def add(
        self,
        event_id: int | None,
        user_id: uuid.UUID,
        kind: str,
        title: str,
        body: str,
        data: dict[str, str],
        at: datetime,
    ) -> uuid.UUID | None:
        """The notification and the event that pushes it live, in one statement; None (and
        no event) when this event already made it."""
        notification_id = uuid.uuid4()
        payload = StoredNotification(notification_id, user_id, kind, title, body, False, at)
        row = (
            await self._conn.execute(
                announced(NOTIFICATION_CREATED_EVENT, made=_INSERT_NOTIFICATION),
                {
                    "id": notification_id,
                    "user_id": user_id,
                    "kind": kind,
                    "title": title,
                    "body": body,
                    "data": json.dumps(data),
                    "event_id": event_id,
                    "created_at": at,
                    "ev_payload": json.dumps(payload.to_dict()),
                },
            )
        ).first()
        return notification_id if row is not None else None

    async def add_delivery(
        self, notification_id: uuid.UUID, channel: str, destination: str, at: datetime
    ) -> None:
        await self._conn.execute(
            insert(notification_deliveries)
            .values(
                notification_id=notification_id,
                channel=channel,
                destination=destination,
                status="PENDING",
                next_attempt_at=at,
            )
            .on_conflict_do_nothing()
        )

    # ----------------------------------------------------------------- deliveries

    async def due(self, now: datetime, limit: int) -> list[Delivery]:
        """Pending deliveries whose time has come, locked (SKIP LOCKED: two senders share)."""
        d, n = notification_deliveries.c, notifications.c
        rows = await self._conn.execute(
            select(d.id, d.notification_id, d.channel, d.destination, d.attempts, n.kind, n.data)
            .select_from(notification_deliveries.join(notifications))
            .where(d.status == "PENDING", d.next_attempt_at <= now)
            .order_by(d.next_attempt_at)
            .limit(limit)
            .with_for_update(of=notification_deliveries, skip_locked=True)
        )
        return [
            Delivery(
                r.id, r.notification_id, r.channel, r.destination, r.attempts, r.kind, dict(r.data)
            )
            for r in rows
        ]

    async def delivered(self, delivery_id: int, at: datetime) -> None:
        await self._conn.execute(
            update(notification_deliveries)
            .where(notification_deliveries.c.id == delivery_id)
            .values(status="SENT", sent_at=at, attempts=notification_deliveries.c.attempts + 1)
        )

    async def failed(self, delivery_id: int, reason: str, retry_at: datetime | None) -> None:
        """A failed attempt: tried again at ``retry_at``, or given up for good (None)."""
        values: dict[str, Any] = {
            "attempts": notification_deliveries.c.attempts + 1,
            "last_error": reason[:1000],
        }
        if retry_at is None:
            values["status"] = "FAILED"
        else:
            values["next_attempt_at"] = retry_at
        await self._conn.execute(
            update(notification_deliveries)
            .where(notification_deliveries.c.id == delivery_id)
            .values(**values)
        )

    # ---------------------------------------------------------------- for the API

    async def page(
        self,
        user_id: uuid.UUID,
        *,
        first: int,
        after: tuple[datetime, uuid.UUID] | None,
        unread_only: bool,
    ) -> Page[StoredNotification]:
        n = notifications.c
        query = select(notifications).where(n.user_id == user_id)
        if unread_only:
            query = query.where(n.read_at.is_(None))
        if after is not None:
            query = query.where(tuple_(n.created_at, n.id) < tuple_(literal(after[0]), after[1]))
        rows = list(
            await self._conn.execute(
                query.order_by(n.created_at.desc(), n.id.desc()).limit(first + 1)
            )
        )
        return Page([_notification(r) for r in rows[:first]], len(rows) > first)

    async def get(self, notification_id: uuid.UUID) -> StoredNotification | None:
        row = (
            await self._conn.execute(
                select(notifications).where(notifications.c.id == notification_id)
            )
        ).first()
        return _notification(row) if row else None

    async def unread(self, user_id: uuid.UUID) -> int:
        found = (
            await self._conn.execute(
                select(func.count()).where(
                    notifications.c.user_id == user_id, notifications.c.read_at.is_(None)
                )
            )
        ).scalar()
        return int(found or 0)

    async def mark_read(
        self, user_id: uuid.UUID, ids: Sequence[uuid.UUID] | None, at: datetime
    ) -> int:
        """The user's own unread notifications among ``ids`` (all when None); others ignored."""
        condition = and_(notifications.c.user_id == user_id, notifications.c.read_at.is_(None))
        if ids is not None:
            condition = and_(condition, notifications.c.id.in_(list(ids)))
        result = await self._conn.execute(update(notifications).where(condition).values(read_at=at))
        return int(result.rowcount or 0)

    async def preferences(self, user_id: uuid.UUID) -> tuple[bool, bool]:
        row = (
            await self._conn.execute(
                select(notification_preferences.c.email, notification_preferences.c.sms).where(
                    notification_preferences.c.user_id == user_id
                )
            )
        ).first()
        return (bool(row[0]), bool(row[1])) if row else (True, False)

    async def set_preferences(self, user_id: uuid.UUID, email: bool, sms: bool) -> None:
        values = {"email": email, "sms": sms, "updated_at": func.now()}
        await self._conn.execute(
            insert(notification_preferences)
            .values(user_id=user_id, **values)
            .on_conflict_do_update(index_elements=["user_id"], set_=values)
        )
