"""Resumable subscription streams: replay from the outbox, then live, no gap and no duplicate.

The stream subscribes to its broadcast channel *before* reading the outbox, and the relay
commits an event's position *before* publishing it. So every event is either already in the
outbox when replay reads it, or arrives on the channel afterwards (or both: it is then dropped
by position). Live events are buffered per subscription up to a bound; a consumer that falls
further behind is cut off (``SlowConsumer``) instead of growing memory.

A process holds one broadcast subscription per channel, however many subscribers it serves
(a user's subscriptions share their channel; a rate tick reaches one inbox per shared feed,
``stacklo/web/delivery.py``, not one per socket): a message is decoded once and handed to each
subscription's inbox, which costs, while idle, one future (its deque comes with its first
waiting event), rather than a queue, an event and a task of its own.

When the broadcast connection is lost (Redis away), events published meanwhile reach nobody
live, so no stream carries on as if nothing happened: every stream on the process ends with
``BroadcastLost`` once it has handed over what it had buffered (its socket is then closed with
1012, ``BROADCAST_LOST_CLOSE``), and a stream started while the connection is down is refused
with ``BroadcastUnavailable`` (SERVICE_UNAVAILABLE). A client that subscribes again with its
last cursor is back under the invariant above: subscribed (on the new connection) before its
replay reads the outbox, where the events it missed are, since the relay positions an event
before it publishes it and keeps trying to publish it until Redis takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from prometheus_client import Counter, Gauge

from stacklo.domain.errors import BroadcastUnavailable, CursorExpired, RateLimited
from stacklo.domain.events import OutboxEvent
from stacklo.domain.ports import UnitOfWorkFactory
from stacklo.realtime.broadcast import BroadcastLost

ACTIVE_SUBSCRIPTIONS = Gauge("stacklo_subscriptions_active", "Open GraphQL subscriptions.")
LIVE_STREAMS = Gauge(
    "stacklo_streams_live",
    "Event streams listening on a confirmed broadcast subscription: what is published now "
    "reaches them (a shared feed is one stream, however many sockets it serves).",
)
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


# Close code for a socket cut off as a slow consumer (documented in the README).
SLOW_CONSUMER_CLOSE = 4413
SLOW_CONSUMER_REASON = "subscriber too slow: buffer overflow"

# Close code for a socket whose live events were interrupted (the broadcast connection was
# lost): 1012, "service restart", which clients take as "reconnect". Documented in the README.
BROADCAST_LOST_CLOSE = 1012
BROADCAST_LOST_REASON = "live events interrupted: subscribe again with your last cursor"


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
        self._inboxes: dict[str, set[_Inbox]] = {}
        self._pumps: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}

    @contextlib.asynccontextmanager
    async def slot(self, user_id: uuid.UUID) -> AsyncIterator[None]:
        """Count the user's open subscriptions in this process; refuse past the cap, and
        while the broadcast connection is down (nothing live could reach the subscription)."""
        if not getattr(self._broadcast, "available", True):
            raise BroadcastUnavailable()
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

    def open_count(self) -> int:
        """Subscriptions open in this process."""
        return sum(self._open.values())

    def user_replay(self, user_id: uuid.UUID | None, topic: str) -> Replay:
        """``user_id``'s events of ``topic``; every event of it when None (staff feeds)."""

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
        live: Callable[[], Awaitable[object]] | None = None,
    ) -> AsyncIterator[OutboxEvent]:
        """``channel``'s events that ``accept`` takes: after ``after`` replayed first, then
        live. ``live`` runs once the stream is subscribed, before anything is read."""
        async with self._listen(channel) as inbox:
            if live is not None:
                await live()
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
                event = await inbox.next()
                if event.position <= last:
                    continue  # seen in replay, or published again after a relay restart
                last = event.position
                if accept(event):
                    EVENTS_DELIVERED.inc()
                    yield event

    @contextlib.asynccontextmanager
    async def _listen(self, channel: str) -> AsyncIterator[_Inbox]:
        """An inbox on ``channel``, live once this returns (so a replay read afterwards
        cannot miss what is published meanwhile). One broadcast subscription per channel
        and process feeds every inbox on it."""
        inbox = _Inbox(self._buffer)
        inboxes = self._inboxes.setdefault(channel, set())
        inboxes.add(inbox)
        if channel not in self._pumps:
            ready = asyncio.Event()
            # The pump serves every subscriber of the channel: it carries none's request context
            # (its operation, loaders, request id), which would otherwise live as long as it.
            pump = asyncio.create_task(self._pump(channel, ready), context=contextvars.Context())
            self._pumps[channel] = (pump, ready)
        pump, ready = self._pumps[channel]
        try:
            if not ready.is_set():
                waiter = asyncio.ensure_future(ready.wait())
                try:
                    await asyncio.wait({pump, waiter}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
            if pump.done():  # the broadcast backend refused: surface it, masked, to this client
                pump.result()
            with LIVE_STREAMS.track_inprogress():
                yield inbox
        finally:
            inboxes.discard(inbox)
            if not inboxes and self._inboxes.get(channel) is inboxes:
                del self._inboxes[channel]
                task, _ = self._pumps.pop(channel)
                task.cancel()

    async def _pump(self, channel: str, ready: asyncio.Event) -> None:
        error: BroadcastUnavailable = BroadcastLost()
        try:
            async with self._broadcast.subscribe(channel) as subscriber:
                ready.set()
                async for message in subscriber:
                    event = decode(message.message)
                    for inbox in tuple(self._inboxes.get(channel, ())):
                        inbox.push(event)
        except Exception as e:
            if not ready.is_set():
                raise  # refused: the subscriber waiting for it hears why
            error = e if isinstance(e, BroadcastUnavailable) else BroadcastLost()
        # The subscription ended under its streams: each one ends too, never left waiting;
        # whoever subscribes next starts a new one.
        current = self._pumps.get(channel)
        if current is not None and current[0] is asyncio.current_task():
            del self._pumps[channel]
            for inbox in self._inboxes.pop(channel, ()):
                inbox.lose(error)


class _Inbox:
    """One subscription's bounded buffer; past the bound it is cut off, not grown. The deque
    is made when the first event waits in it: an idle subscription holds none."""

    __slots__ = ("_bound", "_items", "_lost", "_overflowed", "_waiter")

    def __init__(self, bound: int):
        self._bound = bound
        self._items: deque[OutboxEvent] | None = None
        self._overflowed = False
        self._lost: BroadcastUnavailable | None = None
        self._waiter: asyncio.Future[None] | None = None

    def lose(self, error: BroadcastUnavailable) -> None:
        """Nothing more will come: what is buffered is handed over, then ``error``."""
        self._lost = error
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def push(self, event: OutboxEvent) -> None:
        if self._overflowed:
            return
        if self._items is None:
            self._items = deque()
        if len(self._items) >= self._bound:
            self._overflowed = True
        else:
            self._items.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self) -> OutboxEvent:
        while True:
            if self._overflowed:  # cut off at once: no more sending to a consumer that lags
                SLOW_CONSUMERS.inc()
                raise SlowConsumer()
            if self._items:
                event = self._items.popleft()
                if not self._items:
                    self._items = None
                return event
            if self._lost is not None:
                raise self._lost
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
