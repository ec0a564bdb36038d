"""The broadcast connection: Redis across instances, PostgreSQL LISTEN/NOTIFY for the embedded
server's worker processes, process memory otherwise.

broadcaster's own PostgreSQL backend runs LISTEN, UNLISTEN and NOTIFY on one connection with
no coordination, and asyncpg refuses a second operation while one is in flight ("another
operation is in progress"): a subscription opening while the relay publishes failed at random.
``OneAtATimePostgres`` is the same backend with its calls taken one at a time.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlparse

import asyncpg
from broadcaster import Broadcast, BroadcastBackend, Event


class OneAtATimePostgres(BroadcastBackend):
    def __init__(self, url: str):
        self._url = url
        self._lock = asyncio.Lock()
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._conn: Any = None

    async def connect(self) -> None:
        self._conn = await asyncpg.connect(self._url)

    async def disconnect(self) -> None:
        async with self._lock:
            await self._conn.close()

    async def subscribe(self, channel: str) -> None:
        async with self._lock:
            await self._conn.add_listener(channel, self._received)

    async def unsubscribe(self, channel: str) -> None:
        async with self._lock:
            await self._conn.remove_listener(channel, self._received)

    async def publish(self, channel: str, message: Any) -> None:
        async with self._lock:
            await self._conn.execute("SELECT pg_notify($1, $2)", channel, message)

    def _received(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        self._events.put_nowait(Event(channel=channel, message=payload))

    async def next_published(self) -> Event:
        return await self._events.get()


def make_broadcast(url: str) -> Broadcast:
    if urlparse(url).scheme in ("postgres", "postgresql"):
        return Broadcast(backend=OneAtATimePostgres(url))
    return Broadcast(url)
