"""The broadcast connection: Redis across instances, PostgreSQL LISTEN/NOTIFY for the embedded
server's worker processes, process memory otherwise.

Invariant: a subscriber is never left silent. While the connection that carries its channel
lives, it receives every message published on the channel after ``subscribe`` returned; once
that connection is lost (Redis killed or restarted, a dead peer that stops answering pings, the
PostgreSQL session ended), every subscriber of the process ends with ``BroadcastLost`` at once,
and a ``subscribe`` while the connection is down is refused with ``BroadcastUnavailable``
rather than waiting. The process reconnects by itself, with backoff, and serves subscribes
again as soon as the connection is back. Messages published while a subscriber was not
connected are not replayed here: streams replay them from the outbox
(``stacklo/realtime/streams.py``).

broadcaster 0.3.1's ``Broadcast`` kept none of this: its Redis listener task died with the
connection and every subscriber then heard nothing, for good, with Redis back and its socket
open. Its Redis client also reconnected and resubscribed on its own, silently dropping what was
published in between. Here the Redis subscriber connection never reconnects by itself (a
reconnection is a new connection, after every subscriber was told), and ``subscribe`` returns
once Redis has confirmed the subscription, so an event published afterwards cannot miss it.

broadcaster's own PostgreSQL backend runs LISTEN, UNLISTEN and NOTIFY on one connection with
no coordination, and asyncpg refuses a second operation while one is in flight ("another
operation is in progress"): a subscription opening while the relay publishes failed at random.
``OneAtATimePostgres`` is the same backend with its calls taken one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlparse

import asyncpg
from broadcaster import Event
from broadcaster._backends.memory import MemoryBackend
from prometheus_client import Counter, Gauge
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff

from stacklo.domain.errors import BroadcastUnavailable
from stacklo.observability import log

CONNECTED = Gauge(
    "stacklo_broadcast_connected", "1 while this process's broadcast connection is up."
)
LOSSES = Counter(
    "stacklo_broadcast_losses_total",
    "Broadcast connections lost (every subscriber of the process was ended).",
)

# Reconnection backoff: first retry after 0.1 s, doubling up to 2 s (a quarter of jitter, so
# instances do not come back in step).
RETRY_FIRST = 0.1
RETRY_MAX = 2.0


class BroadcastLost(BroadcastUnavailable):
    """The connection that carried this subscription was lost: messages may have been missed.
    Subscribe again (a stream with a cursor replays what it missed)."""

    default_message = "Live events were interrupted; subscribe again with your last cursor."


class Backend(Protocol):
    async def connect(self) -> None: ...
    async def disconnect(self) -> None: ...
    async def subscribe(self, channel: str) -> None: ...
    async def unsubscribe(self, channel: str) -> None: ...
    async def publish(self, channel: str, message: str) -> None: ...
    async def next_published(self) -> Event: ...


class RedisPubSub:
    """Redis pub/sub over one subscriber connection, and a client to publish with.

    ``subscribe`` returns once Redis confirmed it. ``next_published`` raises once the
    connection is lost: closed, failing, or silent for three keep-alive periods (a PING goes
    out every ``keepalive`` seconds, so a live connection is never that quiet)."""

    def __init__(
        self, url: str, *, keepalive: float = 5.0, timeout: float = 2.0, confirm: float = 10.0
    ):
        self._pool = ConnectionPool.from_url(
            url, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        self._publisher = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        )
        self._keepalive = keepalive
        # A confirmation comes back through this process's own reader: on a busy event loop it
        # can take seconds, which is a slow subscribe, not a lost connection.
        self._confirm = confirm
        self._conn: AbstractConnection | None = None
        self._pinger: asyncio.Task[None] | None = None
        self._write = asyncio.Lock()
        # Redis confirms subscriptions in the order they were asked for, per channel.
        self._confirming: defaultdict[bytes, deque[asyncio.Future[None]]] = defaultdict(deque)

    async def connect(self) -> None:
        conn: AbstractConnection = self._pool.make_connection()  # type: ignore[no-untyped-call]
        await conn.connect()  # type: ignore[no-untyped-call]
        self._conn = conn
        self._pinger = asyncio.create_task(self._ping(conn), context=contextvars.Context())

    async def disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if self._pinger is not None:
            self._pinger.cancel()
            self._pinger = None
        for waiting in self._confirming.values():
            for confirmed in waiting:
                if not confirmed.done():
                    confirmed.set_exception(BroadcastLost())
                    confirmed.exception()  # retrieved: nobody may be waiting any more
        self._confirming.clear()
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)

    async def close(self) -> None:
        await self.disconnect()
        await self._publisher.aclose()
        await self._pool.disconnect()

    async def subscribe(self, channel: str) -> None:
        conn = self._live()
        confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirming[channel.encode()].append(confirmed)
        await self._send(conn, "SUBSCRIBE", channel)
        # Shielded: if this waiter gives up, the future still takes its confirmation in turn.
        await asyncio.wait_for(asyncio.shield(confirmed), self._confirm)

    async def unsubscribe(self, channel: str) -> None:
        conn = self._conn
        if conn is not None:
            await self._send(conn, "UNSUBSCRIBE", channel)

    async def publish(self, channel: str, message: str) -> None:
        await self._publisher.publish(channel, message)

    async def next_published(self) -> Event:
        conn = self._live()
        while True:
            try:
                reply = await asyncio.wait_for(conn.read_response(), self._keepalive * 3)
            except TimeoutError:
                raise BroadcastLost("Redis stopped answering pings") from None
            if not isinstance(reply, list):
                continue  # PONG outside subscribed mode (no channel subscribed)
            kind = reply[0]
            if kind == b"message":
                return Event(channel=reply[1].decode(), message=reply[2].decode())
            if kind == b"subscribe":
                waiting = self._confirming.get(reply[1])
                if waiting:
                    confirmed = waiting.popleft()
                    if not waiting:
                        del self._confirming[reply[1]]
                    if not confirmed.done():
                        confirmed.set_result(None)
            # "unsubscribe" confirmations and "pong"s only prove the connection is alive.

    def _live(self) -> AbstractConnection:
        conn = self._conn
        if conn is None or not conn.is_connected:
            raise BroadcastLost()
        return conn

    async def _send(self, conn: AbstractConnection, *command: str) -> None:
        async with self._write:
            # Checked with no await before the write: redis-py would reconnect a closed
            # connection silently, and a reconnection must be a new connection.
            if conn is not self._conn or not conn.is_connected:
                raise BroadcastLost()
            await conn.send_command(*command, check_health=False)

    async def _ping(self, conn: AbstractConnection) -> None:
        with contextlib.suppress(Exception):  # a failed write ends the reader's wait too
            while True:
                await asyncio.sleep(self._keepalive)
                await self._send(conn, "PING")


class OneAtATimePostgres:
    """PostgreSQL LISTEN/NOTIFY on one connection, one call at a time; lost with its session."""

    def __init__(self, url: str):
        self._url = url
        self._lock = asyncio.Lock()
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        self._conn: Any = None

    async def connect(self) -> None:
        self._events = asyncio.Queue()  # nothing from a lost connection comes through
        self._conn = await asyncpg.connect(self._url)
        self._conn.add_termination_listener(self._terminated)

    async def disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            async with self._lock:
                conn.remove_termination_listener(self._terminated)
                try:
                    await asyncio.wait_for(conn.close(), 2)
                except Exception:
                    conn.terminate()

    async def subscribe(self, channel: str) -> None:
        async with self._lock:
            await self._live().add_listener(channel, self._received)

    async def unsubscribe(self, channel: str) -> None:
        async with self._lock:
            await self._live().remove_listener(channel, self._received)

    async def publish(self, channel: str, message: str) -> None:
        async with self._lock:
            await self._live().execute("SELECT pg_notify($1, $2)", channel, message)

    def _received(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        self._events.put_nowait(Event(channel=channel, message=payload))

    def _terminated(self, connection: Any) -> None:
        self._events.put_nowait(None)

    async def next_published(self) -> Event:
        event = await self._events.get()
        if event is None:
            raise BroadcastLost("the PostgreSQL session ended")
        return event

    def _live(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            raise BroadcastLost()
        return self._conn


class Subscriber:
    """One subscription's messages; ``BroadcastLost`` once its connection is lost."""

    def __init__(self, queue: asyncio.Queue[Event | None]):
        self._queue = queue

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> Event:
        event = await self._queue.get()
        if event is None:
            raise BroadcastLost()
        return event


@dataclass(eq=False)
class _Channel:
    subscribed: asyncio.Future[None]
    queues: set[asyncio.Queue[Event | None]] = field(default_factory=set)


class Fanout:
    """Subscriptions over a backend connection that may be lost, and come back."""

    def __init__(self, backend: Backend):
        self._backend = backend
        self._channels: dict[str, _Channel] = {}
        self._up = False
        self._down_since = time.monotonic()
        self._listener: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Future[None]] = set()

    async def __aenter__(self) -> Fanout:
        await self.connect()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.disconnect()

    @property
    def available(self) -> bool:
        """Whether a subscribe can succeed now."""
        return self._up

    async def connect(self) -> None:
        """Connect (a backend that cannot be reached at start-up is the caller's error), then
        follow the connection, and connect again whenever it is lost, until ``disconnect``."""
        await self._backend.connect()
        self._connected()
        self._listener = asyncio.create_task(self._run(), context=contextvars.Context())

    async def disconnect(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        self._end_subscribers()
        with contextlib.suppress(Exception):
            await self._backend.disconnect()
        close = getattr(self._backend, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()

    async def publish(self, channel: str, message: str) -> None:
        await self._backend.publish(channel, message)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscriber]:
        if not self._up:
            raise BroadcastUnavailable()
        entry = self._channels.get(channel)
        if entry is None:
            subscribing = asyncio.ensure_future(self._backend.subscribe(channel))
            subscribing.add_done_callback(_retrieved)
            entry = self._channels[channel] = _Channel(subscribing)
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        entry.queues.add(queue)
        try:
            try:
                await asyncio.shield(entry.subscribed)
            except BroadcastUnavailable:
                raise
            except Exception as e:
                raise BroadcastUnavailable() from e
            yield Subscriber(queue)
        finally:
            entry.queues.discard(queue)
            if not entry.queues and self._channels.get(channel) is entry:
                del self._channels[channel]
                if _succeeded(entry.subscribed):
                    await self._unsubscribe(channel)
                elif not entry.subscribed.done():  # its subscribing goes on: undo it after
                    entry.subscribed.add_done_callback(lambda f: self._abandoned(channel, f))

    def _abandoned(self, channel: str, subscribed: asyncio.Future[None]) -> None:
        """Everyone left ``channel`` before the backend confirmed it: unsubscribe, unless
        someone subscribed again meanwhile."""
        if _succeeded(subscribed) and channel not in self._channels:
            task = asyncio.ensure_future(self._unsubscribe(channel))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _unsubscribe(self, channel: str) -> None:
        with contextlib.suppress(Exception):
            await self._backend.unsubscribe(channel)

    async def _run(self) -> None:
        delay = RETRY_FIRST
        while True:
            if self._up:
                try:
                    while True:
                        event = await self._backend.next_published()
                        entry = self._channels.get(event.channel)
                        if entry is not None:
                            for queue in entry.queues:
                                queue.put_nowait(event)
                except Exception as error:
                    await self._lost(error)
                    delay = RETRY_FIRST
            await asyncio.sleep(delay * random.uniform(1.0, 1.25))  # noqa: S311 (jitter)
            try:
                await self._backend.connect()
            except Exception:
                with contextlib.suppress(Exception):
                    await self._backend.disconnect()
                delay = min(delay * 2, RETRY_MAX)
                continue
            self._connected()

    def _connected(self) -> None:
        self._up = True
        CONNECTED.set(1)
        log.info("broadcast_connected", down_seconds=round(time.monotonic() - self._down_since, 3))

    async def _lost(self, error: Exception) -> None:
        self._up = False
        self._down_since = time.monotonic()
        CONNECTED.set(0)
        LOSSES.inc()
        log.warning("broadcast_lost", error=repr(error), channels=len(self._channels))
        self._end_subscribers()
        with contextlib.suppress(Exception):
            await self._backend.disconnect()

    def _end_subscribers(self) -> None:
        channels, self._channels = self._channels, {}
        for entry in channels.values():
            for queue in entry.queues:
                queue.put_nowait(None)


def _retrieved(future: asyncio.Future[None]) -> None:
    """Its waiters may all have gone: its failure is not an error to report."""
    if not future.cancelled():
        future.exception()


def _succeeded(future: asyncio.Future[None]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None


def make_broadcast(url: str) -> Fanout:
    scheme = urlparse(url).scheme
    if scheme in ("redis", "rediss"):
        return Fanout(RedisPubSub(url))
    if scheme in ("postgres", "postgresql"):
        return Fanout(OneAtATimePostgres(url))
    if scheme == "memory":
        return Fanout(MemoryBackend(url))
    raise ValueError(f"Unsupported broadcast URL scheme: {scheme}")
