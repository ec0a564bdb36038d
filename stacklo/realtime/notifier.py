"""The notifier: outbox events become notifications, and notifications reach people.

``Notifier.step`` reads the events after its position (transactions and notices, in outbox
order), makes each one's notices (``domain/notices.py``), renders them
(``integrations/templates.py``), and writes each in-app notification with the event that pushes
it to ``notificationReceived``, plus an email and an SMS delivery when the user's preferences
ask for them, then moves its position: all in one database transaction. A notifier killed
mid-batch wrote nothing of that batch; the next one redoes it, and the unique (event, user,
kind) key makes a repeat write nothing, so one event never notifies twice.

``Notifier.deliver`` sends what is due through the email and SMS ports, one message per
transaction (its row locked, SKIP LOCKED, so several workers share), committed as soon as the
provider has answered. A temporary failure (timeout, 4xx-temporary, 5xx) is tried again after
30 s, 1 min, 2 min... (doubling, at most an hour) up to ``max_attempts``; a permanent one, or
the last attempt, gives up and records why. A message is sent at least once: if the process
dies between a provider's yes and the commit, that message (and only that one) is sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from prometheus_client import Counter

from stacklo.domain.events import NOTIFICATION, TRANSACTION
from stacklo.domain.ledger import display_name
from stacklo.domain.notices import Delivery, notices_of, wallets_of
from stacklo.domain.ports import (
    Clock,
    DeliveryFailed,
    EmailSender,
    NotificationRepository,
    SmsSender,
    UnitOfWorkFactory,
)
from stacklo.integrations.templates import KINDS, Message, render
from stacklo.observability import log

READER = "notifier"
NOTIFIED = Counter(
    "stacklo_notifications_total", "In-app notifications written, by kind.", ["kind"]
)
DELIVERIES = Counter(
    "stacklo_notification_deliveries_total",
    "Email and SMS attempts, by channel and outcome.",
    ["channel", "outcome"],
)


class Notifier:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        email: EmailSender,
        sms: SmsSender,
        *,
        batch: int = 200,
        max_attempts: int = 6,
        renderer: Callable[[str, Mapping[str, str]], Message] = render,
    ):
        self._uow = uow
        self._clock = clock
        self._email = email
        self._sms = sms
        self._batch = batch
        self._max_attempts = max_attempts
        self._render = renderer

    async def step(self) -> int:
        """One batch of events; returns how many were read (0: caught up)."""
        async with self._uow() as uow:
            store = uow.notifications
            position = await store.position(READER)
            events = await store.events_after(position, [TRANSACTION, NOTIFICATION], self._batch)
            if not events:
                return 0
            owners = await store.owners([w for e in events for w in wallets_of(e)])
            people = set(owners.values()) | {u for e in events for u in e.audience}
            contacts = await store.contacts(list(people))
            names = {u: display_name(c.name) for u, c in contacts.items()}
            shops = await store.merchant_names(list(people))
            now = self._clock()
            # One round shares a clock reading; each notice is a microsecond after the one
            # before, so a feed ordered by time keeps the outbox's order (as the live stream).
            written = 0
            for event in events:
                for notice in notices_of(event, owners, names, shops):
                    if notice.kind not in KINDS:
                        log.warning("notice_without_template", kind=notice.kind)
                        continue
                    message = self._render(notice.kind, notice.data)
                    made = await store.add(
                        event.id,
                        notice.user_id,
                        notice.kind,
                        message.title,
                        message.body,
                        notice.data,
                        now + timedelta(microseconds=written),
                    )
                    written += 1
                    contact = contacts.get(notice.user_id)
                    if made is None or contact is None:
                        continue
                    NOTIFIED.labels(notice.kind).inc()
                    if contact.by_email:
                        await store.add_delivery(made, "EMAIL", contact.email, now)
                    if contact.by_sms and contact.phone:
                        await store.add_delivery(made, "SMS", contact.phone, now)
            await store.advance(READER, events[-1].position)
            await uow.commit()
        return len(events)

    async def deliver(self, limit: int = 20) -> int:
        """Send what is due, one message per transaction; returns how many attempts were made.

        Each attempt commits as soon as the provider has answered: a process that dies
        sends again only the message it was sending, not every one its batch had sent."""
        attempts = 0
        while attempts < limit:
            now = self._clock()
            async with self._uow() as uow:
                due = await uow.notifications.due(now, 1)
                if not due:
                    break
                await self._attempt(uow.notifications, due[0], now)
                await uow.commit()
            attempts += 1
        return attempts

    async def _attempt(self, store: NotificationRepository, d: Delivery, now: datetime) -> None:
        message = self._render(d.kind, d.data)
        try:
            if d.channel == "EMAIL":
                await self._email.send(d.destination, message.subject, message.text, message.html)
            else:
                await self._sms.send(d.destination, message.sms)
        except DeliveryFailed as failure:
            last = not failure.temporary or d.attempts + 1 >= self._max_attempts
            retry_at = None if last else now + backoff(d.attempts)
            await store.failed(d.id, failure.reason, retry_at)
            DELIVERIES.labels(d.channel, "gave_up" if last else "retry").inc()
            log.warning(
                "notification_delivery_failed",
                channel=d.channel,
                attempts=d.attempts + 1,
                temporary=failure.temporary,
                gave_up=last,
                reason=failure.reason,
            )
        else:
            await store.delivered(d.id, now)
            DELIVERIES.labels(d.channel, "sent").inc()

    async def run_once(self) -> None:
        """Catch up with the outbox, then send what is due (the scheduler's round)."""
        while await self.step():
            pass
        while await self.deliver():
            pass


def backoff(attempts: int) -> timedelta:
    """30 s after the first failure, doubling, at most an hour."""
    return timedelta(seconds=min(3600, 30 * 2**attempts))
