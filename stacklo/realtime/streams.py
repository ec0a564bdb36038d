"""Resumable subscription streams: replay from the outbox, then live, no gap and no duplicate.

The stream subscribes to its broadcast channel *before* reading the outbox, and the relay
commits an event's position *before* publishing it. So every event is either already in the
outbox when replay reads it, or arrives on the channel afterwards (or both: it is then dropped
by position). Live events are buffered per subscription up to a bound; a consumer that falls
further behind is cut off (``SlowConsumer``) instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from prometheus_client import Counter, Gauge

from stacklo.domain.errors import CursorExpired, RateLimited
from stacklo.domain.events import OutboxEvent
from stacklo.domain.ports import UnitOfWorkFactory

ACTIVE_SUBSCRIPTIONS = Gauge("stacklo_subscriptions_active", "Open GraphQL subscriptions.")
EVENTS_DELIVERED = Counter("stacklo_events_delivered_total", "Events delivered to subscribers.")
SLOW_CONSUMERS = Counter(
    "stacklo_slow_consumers_total", "Subscriptions cut off for falling behind."
)

REPLAY_PAGE = 500


@functools.lru_cache(maxsize=512)
def decode(message: str) -> OutboxEvent:
    """Every subscriber in a process receives the same message text (one object, its hash
    cached): decode it once, not once per subscriber. Consumers never mutate the event."""
    return OutboxEvent.from_wire(json.loads(message))


class SlowConsumer(Exception):
    """The subscriber's buffer overflowed."""


class Subscribable(Protocol):
    def subscribe(self, channel: str) -> contextlib.AbstractAsyncContextManager[Any]: ...


Replay = Callable[[int], Awaitable[list[OutboxEvent]]]


class Streams:
    def __init__(
        self, broadcast: Subscribable, uow: UnitOfWorkFactory, *, buffer: int, per_user: int
    ):
        self._broadcast = broadcast
        self._uow = uow
        self._buffer = buffer
        self._per_user = per_user
        self._open: dict[uuid.UUID, int] = defaultdict(int)

    @contextlib.asynccontextmanager
    async def slot(self, user_id: uuid.UUID) -> AsyncIterator[None]:
        """Count the user's open subscriptions in this process; refuse past the cap."""
        if self._open[user_id] >= self._per_user:
            raise RateLimited(f"At most {self._per_user} open subscriptions per user.")
        self._open[user_id] += 1
        ACTIVE_SUBSCRIPTIONS.inc()
        try:
            yield
        finally:
            ACTIVE_SUBSCRIPTIONS.dec()
            self._open[user_id] -= 1
            if not self._open[user_id]:
                del self._open[user_id]

    async def check_cursor(self, after: int) -> None:
        async with self._uow(read_only=True) as uow:
            if after < await uow.outbox.pruned_through():
                raise CursorExpired()

    def user_replay(self, user_id: uuid.UUID, topic: str) -> Replay:
        async def replay(after: int) -> list[OutboxEvent]:
            async with self._uow(read_only=True) as uow:
                return await uow.outbox.replay(user_id, topic, after, limit=REPLAY_PAGE)

        return replay

    async def events(
        self,
        channel: str,
        accept: Callable[[OutboxEvent], bool],
        *,
        after: int | None = None,
        replay: Replay | None = None,
    ) -> AsyncIterator[OutboxEvent]:
        async with self._broadcast.subscribe(channel) as subscriber:
            queue: asyncio.Queue[OutboxEvent] = asyncio.Queue(maxsize=self._buffer)
            overflow = asyncio.Event()

            async def pump() -> None:
                async for message in subscriber:
                    event = decode(message.message)
                    try:
                        queue.put_nowait(event)
                    except asyncio.QueueFull:
                        overflow.set()
                        return

            pumping = asyncio.create_task(pump())
            try:
                last = -1
                if after is not None and replay is not None:
                    last = after
                    while True:
                        page = await replay(last)
                        for event in page:
                            last = event.position
                            if accept(event):
                                EVENTS_DELIVERED.inc()
                                yield event
                        if len(page) < REPLAY_PAGE:
                            break
                while True:
                    event = await self._next(queue, overflow)
                    if event.position <= last:
                        continue  # seen in replay, or published again after a relay restart
                    last = event.position
                    if accept(event):
                        EVENTS_DELIVERED.inc()
                        yield event
            finally:
                pumping.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pumping

    @staticmethod
    async def _next(queue: asyncio.Queue[OutboxEvent], overflow: asyncio.Event) -> OutboxEvent:
        if overflow.is_set():  # cut off at once: no more sending to a consumer that cannot keep up
            SLOW_CONSUMERS.inc()
            raise SlowConsumer()
        if not queue.empty():
            return queue.get_nowait()
        getter = asyncio.ensure_future(queue.get())
        waiter = asyncio.ensure_future(overflow.wait())
        try:
            done, _ = await asyncio.wait({getter, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if getter in done:
            return getter.result()
        getter.cancel()
        SLOW_CONSUMERS.inc()
        raise SlowConsumer()
