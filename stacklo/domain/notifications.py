"""In-app notifications as their user reads them: the feed, the unread badge, marking read,
and which channels (email, SMS) also carry them. The notifier (``realtime/notifier.py``)
writes them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.models import Page, User
from stacklo.domain.notices import StoredNotification
from stacklo.domain.ports import Clock, UnitOfWorkFactory

MAX_IDS = 500


@dataclass(frozen=True, slots=True)
class Preferences:
    email: bool
    sms: bool


class Notifications:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock):
        self._uow = uow
        self._clock = clock

    async def page(
        self,
        user: User,
        *,
        first: int,
        after: tuple[datetime, uuid.UUID] | None,
        unread_only: bool,
    ) -> Page[StoredNotification]:
        async with self._uow(read_only=True) as uow:
            return await uow.notifications.page(
                user.id, first=first, after=after, unread_only=unread_only
            )

    async def get(self, user: User, notification_id: uuid.UUID) -> StoredNotification | None:
        """Only the user's own: anyone else's is None, like a missing one."""
        async with self._uow(read_only=True) as uow:
            found = await uow.notifications.get(notification_id)
        return found if found is not None and found.user_id == user.id else None

    async def unread(self, user: User) -> int:
        async with self._uow(read_only=True) as uow:
            return await uow.notifications.unread(user.id)

    async def mark_read(self, user: User, ids: Sequence[uuid.UUID] | None) -> int:
        """The user's own unread notifications among ``ids`` (all when None) become read;
        foreign, unknown and already-read ids are ignored and not counted."""
        if ids is not None and len(ids) > MAX_IDS:
            raise DomainError(
                ErrorCode.INVALID_INPUT, f"At most {MAX_IDS} ids at once.", ("input", "ids")
            )
        async with self._uow() as uow:
            count = await uow.notifications.mark_read(
                user.id, list(ids) if ids is not None else None, self._clock()
            )
            await uow.commit()
        return count

    async def preferences(self, user: User) -> Preferences:
        async with self._uow(read_only=True) as uow:
            email, sms = await uow.notifications.preferences(user.id)
        return Preferences(email, sms)

    async def set_preferences(
        self, user: User, email: bool | None, sms: bool | None
    ) -> Preferences:
        async with self._uow() as uow:
            current_email, current_sms = await uow.notifications.preferences(user.id)
            chosen = Preferences(
                current_email if email is None else email, current_sms if sms is None else sms
            )
            await uow.notifications.set_preferences(user.id, chosen.email, chosen.sms)
            await uow.commit()
        return chosen
