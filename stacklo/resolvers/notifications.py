"""markNotificationsRead, setNotificationPreferences, notificationReceived."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated

import strawberry

from stacklo.domain.errors import CursorExpired, DomainError, ErrorCode
from stacklo.domain.events import NOTIFICATION_CREATED
from stacklo.domain.notices import StoredNotification
from stacklo.domain.notifications import MAX_IDS
from stacklo.realtime.broadcast import BroadcastLost
from stacklo.realtime.channels import user_channel
from stacklo.realtime.streams import SlowConsumer, Streams
from stacklo.resolvers.errors import user_errors
from stacklo.resolvers.realtime import close_lost, close_slow
from stacklo.schema.common import node_uuid
from stacklo.schema.context import Info
from stacklo.schema.notifications import (
    MarkNotificationsReadInput,
    MarkNotificationsReadPayload,
    Notification,
    NotificationPreferences,
    SetNotificationPreferencesInput,
    SetNotificationPreferencesPayload,
)
from stacklo.schema.subscriptions import delivered


@user_errors(MarkNotificationsReadPayload)
async def mark_notifications_read(
    info: Info,
    input: Annotated[
        MarkNotificationsReadInput, strawberry.argument(description="Which to mark read.")
    ],
) -> MarkNotificationsReadPayload:
    viewer = await info.context.require_viewer()
    ids = None
    if input.ids is not None and len(input.ids) > MAX_IDS:
        raise DomainError(
            ErrorCode.INVALID_INPUT, f"At most {MAX_IDS} ids at once.", ("input", "ids")
        )
    if input.ids is not None:  # malformed and foreign ids name nothing of the viewer's
        ids = [found for i in input.ids if (found := node_uuid(i, "Notification"))]
    count = await info.context.services.notifications.mark_read(viewer.user, ids)
    return MarkNotificationsReadPayload(updated_count=count)


@user_errors(SetNotificationPreferencesPayload)
async def set_notification_preferences(
    info: Info,
    input: Annotated[
        SetNotificationPreferencesInput, strawberry.argument(description="The channels.")
    ],
) -> SetNotificationPreferencesPayload:
    viewer = await info.context.require_viewer()
    chosen = await info.context.services.notifications.set_preferences(
        viewer.user, input.email, input.sms
    )
    return SetNotificationPreferencesPayload(preferences=NotificationPreferences.of(chosen))


async def notification_received(
    info: Info,
    after: Annotated[
        strawberry.ID | None,
        strawberry.argument(
            description="The id of the last notification received: the ones written since are "
            "sent first, then live ones follow (none lost, none twice). CURSOR_EXPIRED when it "
            "is unknown or older than the event retention window: read me.notifications and "
            "subscribe again without it."
        ),
    ] = None,
) -> AsyncGenerator[Notification, None]:
    viewer = await info.context.require_viewer()
    streams = info.context.services.streams
    position = None
    if after is not None:
        raw = node_uuid(after, "Notification")
        if raw is not None:
            async with info.context.services.uow(read_only=True) as uow:
                position = await uow.outbox.position_of(
                    NOTIFICATION_CREATED, str(raw), viewer.user.id
                )
        if position is None:
            raise CursorExpired()
        await streams.check_cursor(position)
    try:
        async for item in delivered(
            streams.slot(viewer.user.id),
            lambda: _notifications(streams, viewer.user.id, position),
        ):
            yield item
    except SlowConsumer:
        await close_slow(info)
    except BroadcastLost:
        await close_lost(info)


async def _notifications(
    streams: Streams, user_id: uuid.UUID, position: int | None
) -> AsyncIterator[Notification]:
    async for event in streams.events(
        user_channel(user_id),
        lambda e: e.topic == NOTIFICATION_CREATED,
        after=position,
        replay=streams.user_replay(user_id, NOTIFICATION_CREATED),
    ):
        yield Notification.of(StoredNotification.from_dict(event.payload))
