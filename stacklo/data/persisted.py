"""Persisted operations: the registered allowlist (PostgreSQL) and Apollo's automatic
persisted queries (a cache: Redis, shared by every instance, or this process's memory)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from stacklo.data.fallback import SharedOrLocal
from stacklo.data.tables import persisted_operations


class Registered:
    """Operations registered ahead of time, by the SHA-256 of their exact text."""

    def __init__(self, engine: AsyncEngine):
        self._engine = engine

    async def body(self, sha256: str) -> str | None:
        async with self._engine.connect() as conn:
            found = await conn.execute(
                select(persisted_operations.c.body).where(persisted_operations.c.sha256 == sha256)
            )
            body: str | None = found.scalar()
            return body

    async def register(self, operations: Iterable[tuple[str, str, str | None]]) -> int:
        """(sha256, body, name) rows; returns how many were new."""
        rows = [{"sha256": s, "body": b, "name": n} for s, b, n in operations]
        if not rows:
            return 0
        async with self._engine.begin() as conn:
            result = await conn.execute(
                insert(persisted_operations).values(rows).on_conflict_do_nothing()
            )
            return int(result.rowcount or 0)


class QueryCache(Protocol):
    async def get(self, sha256: str) -> str | None: ...
    async def put(self, sha256: str, body: str) -> None: ...


class MemoryQueryCache:
    """This process's own, least recently used first out."""

    def __init__(self, ttl_seconds: float, size: int = 10_000):
        self._ttl = ttl_seconds
        self._size = size
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()

    async def get(self, sha256: str) -> str | None:
        found = self._items.get(sha256)
        if found is None or found[0] < time.monotonic():
            self._items.pop(sha256, None)
            return None
        self._items.move_to_end(sha256)
        return found[1]

    async def put(self, sha256: str, body: str) -> None:
        self._items[sha256] = (time.monotonic() + self._ttl, body)
        self._items.move_to_end(sha256)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


class RedisQueryCache:
    """One key per operation, shared by every instance, expiring after ``ttl_seconds``. While
    Redis cannot be reached, this process keeps texts in its own memory (``SharedOrLocal``):
    a hash it has not seen is answered PersistedQueryNotFound, and the client sends the text."""

    PREFIX = "stacklo:apq:"

    def __init__(self, url: str, ttl_seconds: float):
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._ttl = ttl_seconds
        self._local = MemoryQueryCache(ttl_seconds)
        self._fallback = SharedOrLocal("apq_cache")

    async def get(self, sha256: str) -> str | None:
        return await self._fallback.call(lambda: self._get(sha256), lambda: self._local.get(sha256))

    async def put(self, sha256: str, body: str) -> None:
        await self._fallback.call(
            lambda: self._put(sha256, body), lambda: self._local.put(sha256, body)
        )

    async def _get(self, sha256: str) -> str | None:
        raw = await self._redis.get(self.PREFIX + sha256)
        return raw.decode() if isinstance(raw, bytes) else raw

    async def _put(self, sha256: str, body: str) -> None:
        await self._redis.set(self.PREFIX + sha256, body, px=int(self._ttl * 1000))
