"""Notifications as clients see them."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from stacklo.domain import notices
from stacklo.domain.notifications import Preferences
from stacklo.schema.common import USER_ERRORS, UserError


@strawberry.type(description="Something the platform told its user. Its user's alone.")
class Notification(relay.Node):
    id: relay.NodeID[str]
    kind: str = strawberry.field(
        description="Machine-readable kind, e.g. transfer.received, installment.due, "
        "kyc.approved (the README lists them all)."
    )
    title: str = strawberry.field(description="One line, for a list.")
    body: str = strawberry.field(description="Plain text, a few sentences.")
    read: bool = strawberry.field(description="Marked read with markNotificationsRead.")
    created_at: datetime = strawberry.field(description="When it was written.")

    @classmethod
    def of(cls, n: notices.StoredNotification) -> Notification:
        return cls(
            id=str(n.id),
            kind=n.kind,
            title=n.title,
            body=n.body,
            read=n.read,
            created_at=n.created_at,
        )


@strawberry.type(description="Which channels carry notifications besides the in-app feed.")
class NotificationPreferences:
    email: bool = strawberry.field(description="A copy by email (on by default).")
    sms: bool = strawberry.field(
        description="A copy by SMS to the account's phone number (off by default; nothing is "
        "sent without a phone number)."
    )

    @classmethod
    def of(cls, p: Preferences) -> NotificationPreferences:
        return cls(email=p.email, sms=p.sms)


@strawberry.input(
    description="Marks the given notifications read, or all of the viewer's when ids is null."
)
class MarkNotificationsReadInput:
    ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Notification global IDs, at most 500 (INVALID_INPUT beyond); ids of "
        "anyone else's or unknown notifications are ignored (and not counted). Null: every "
        "unread one.",
    )


@strawberry.type(description="The answer to markNotificationsRead.")
class MarkNotificationsReadPayload:
    updated_count: int = strawberry.field(
        default=0,
        description="How many unread notifications of the viewer's became read (0 when refused).",
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.input(description="Which channels to use; a null field keeps its current value.")
class SetNotificationPreferencesInput:
    email: bool | None = strawberry.field(default=None, description="Email copies.")
    sms: bool | None = strawberry.field(default=None, description="SMS copies.")


@strawberry.type(description="The answer to setNotificationPreferences.")
class SetNotificationPreferencesPayload:
    preferences: NotificationPreferences | None = strawberry.field(
        default=None, description="The preferences now."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)
