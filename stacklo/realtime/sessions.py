"""Signed-in sockets, closed the moment their sign-in session ends, in every server process.

Invariant: a socket authenticated with session S runs nothing, and receives nothing, after S
has ended (log-out, password change, refresh-token reuse, expiry). Four things keep it:

1. Every operation on a socket re-authenticates its token before it runs, exactly as every
   HTTP request does (``stacklo/web/endpoint.py``): against the database, or the viewers the
   authenticator remembers, which ``end`` makes it forget; an expired token fails the check.
2. Ending a session writes a ``SESSIONS_ENDED`` outbox event in the same statement. The relay
   publishes it on the sessions channel, which every process follows from start-up, and
   ``SessionGuard`` closes the sockets of those sessions with 4403 at once.
3. A socket whose authentication query ran just before the session ended, and whose event was
   handled while that query was in flight, is caught at registration: ended sessions are
   remembered for ``remember`` seconds.
4. Should events be lost (the relay or Redis down), a sweep asks the database every
   ``sweep_seconds`` which registered sessions have ended, and once more each time the guard
   follows the sessions channel again after losing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Protocol

from prometheus_client import Counter

from stacklo.domain.events import SESSIONS_ENDED, USER_CHANGED, OutboxEvent
from stacklo.domain.ports import Clock, UnitOfWorkFactory
from stacklo.observability import log
from stacklo.realtime.channels import SESSIONS_CHANNEL
from stacklo.realtime.streams import SlowConsumer

# The close code for a socket whose session ended or whose token expired (as 401 over HTTP).
SESSION_ENDED_CLOSE = 4403

SOCKETS_CLOSED = Counter(
    "stacklo_session_sockets_closed_total",
    "Signed-in sockets closed because their session ended, by how it was noticed.",
    ["via"],
)

Close = Callable[[int, str], Awaitable[None]]

# How soon the guard subscribes again after losing its channel (refused at once, and cheaply,
# while the broadcast connection is down).
RETRY_SECONDS = 1.0


class SessionGuard:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        sweep_seconds: float = 30.0,
        remember: float = 120.0,
        forget: Callable[[set[uuid.UUID], set[uuid.UUID]], None] = lambda sessions, users: None,
    ):
        self._uow = uow
        self._clock = clock
        # Whatever else remembers sessions and users (the authenticator's viewers) hears here
        # which sessions ended and which users changed.
        self._forget = forget
        self._sweep = sweep_seconds
        self._remember = remember
        self._sockets: dict[uuid.UUID, set[Close]] = defaultdict(set)
        self._ended: dict[uuid.UUID, float] = {}
        self._closing: set[asyncio.Task[None]] = set()

    @contextlib.contextmanager
    def register(self, session_id: uuid.UUID, close: Close) -> Iterator[None]:
        """Hold ``close`` for the session while the socket is open; call it if it ends."""
        if session_id in self._ended:
            SOCKETS_CLOSED.labels("memory").inc()
            task = asyncio.ensure_future(close(SESSION_ENDED_CLOSE, "session ended"))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        self._sockets[session_id].add(close)
        try:
            yield
        finally:
            closes = self._sockets.get(session_id)
            if closes is not None:
                closes.discard(close)
                if not closes:
                    del self._sockets[session_id]

    @property
    def open_sessions(self) -> int:
        return len(self._sockets)

    async def end(self, session_ids: list[uuid.UUID], via: str) -> int:
        """Close every socket of these sessions; returns how many were closed."""
        self._forget(set(session_ids), set())
        now = time.monotonic()
        for stale in [s for s, at in self._ended.items() if now - at > self._remember]:
            del self._ended[stale]
        closes: list[Close] = []
        for session_id in session_ids:
            self._ended[session_id] = now
            closes.extend(self._sockets.pop(session_id, ()))
        for close in closes:
            SOCKETS_CLOSED.labels(via).inc()
            with contextlib.suppress(Exception):
                await close(SESSION_ENDED_CLOSE, "session ended")
        return len(closes)

    async def run(self, streams: _Streams, stop: asyncio.Event) -> None:
        """Follow the sessions channel and sweep, until ``stop`` is set."""
        follow = asyncio.create_task(self._follow(streams))
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self._sweep)
                if not stop.is_set():
                    await self.sweep()
        finally:
            follow.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await follow

    async def sweep(self) -> int:
        """Ask the database which registered sessions have ended, and close their sockets."""
        ids = list(self._sockets)
        if not ids:
            return 0
        try:
            async with self._uow(read_only=True) as uow:
                ended = await uow.sessions.ended(ids, self._clock())
        except Exception as e:  # the database is away: the next sweep tries again
            log.warning("session_sweep_failed", error=repr(e))
            return 0
        return await self.end(sorted(ended), "sweep") if ended else 0

    async def _follow(self, streams: _Streams) -> None:
        """Every process follows the sessions channel for good. Whenever it subscribes
        (again), it sweeps once: an event published while it was not following (the broadcast
        lost, Redis restarting) reached nobody, and the database knows what ended meanwhile."""
        away = False

        async def following() -> None:
            nonlocal away
            if away:
                log.info("session_events_following")
            away = False
            await self.sweep()

        while True:
            try:
                async for event in streams.events(
                    SESSIONS_CHANNEL,
                    lambda e: e.topic in (SESSIONS_ENDED, USER_CHANGED),
                    live=following,
                ):
                    if event.topic == USER_CHANGED:
                        self._forget(set(), {uuid.UUID(event.payload["user"])})
                        continue
                    ended = [uuid.UUID(s) for s in event.payload.get("sessions", ())]
                    await self.end(ended, "event")
            except SlowConsumer:
                await self.sweep()  # events were dropped: ask the database instead
            except Exception as e:  # the broadcast is away: follow again once it is back
                if not away:
                    log.warning("session_events_unavailable", error=repr(e))
                away = True
                await asyncio.sleep(RETRY_SECONDS)


class _Streams(Protocol):
    def events(
        self,
        channel: str,
        accept: Callable[[OutboxEvent], bool],
        *,
        live: Callable[[], Awaitable[object]] | None = None,
    ) -> AsyncIterator[OutboxEvent]: ...
