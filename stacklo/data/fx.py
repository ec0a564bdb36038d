"""Rate history, quotes, and the latest-rates cache (memory or Redis)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from stacklo.data.fallback import SharedOrLocal
from stacklo.data.outbox import RATES_EVENT, announced, rates_event
from stacklo.data.tables import quotes
from stacklo.domain.fx import Pair, Quote, QuoteKind, Snapshot
from stacklo.domain.money import CurrencyCode, Money

# The feed writes every direct pair at each tick, with one timestamp: the newest tick is the
# rows at the newest timestamp (two index lookups).
_LATEST = text(
    """SELECT base, quote, mid, source, observed_at FROM rate_ticks
       WHERE observed_at = (SELECT max(observed_at) FROM rate_ticks)"""
)


# A reading's rows and its event for rateUpdated subscribers, in one statement.
_ADD_READING = announced(
    RATES_EVENT,
    added="""INSERT INTO rate_ticks (base, quote, mid, source, observed_at)
         SELECT v.base, v.quote, v.mid, :source, :at
         FROM unnest(CAST(:bases AS varchar[]), CAST(:quotes AS varchar[]),
                     CAST(:mids AS numeric[])) AS v(base, quote, mid)""",
)


class Rates:
    def __init__(self, conn: AsyncConnection):
        self._conn = conn

    async def add(self, snapshot: Snapshot) -> None:
        """The reading (one row per direct pair) and its outbox event."""
        pairs = list(snapshot.mids.items())
        await self._conn.execute(
            _ADD_READING,
            {
                "bases": [pair.base.value for pair, _ in pairs],
                "quotes": [pair.quote.value for pair, _ in pairs],
                "mids": [mid for _, mid in pairs],
                "source": snapshot.source,
                "at": snapshot.at,
                **rates_event(snapshot),
            },
        )

    async def prune(self, older_than: datetime, batch: int = 50_000) -> int:
        """Delete one batch of readings older than ``older_than``; how many went."""
        result = await self._conn.execute(
            text(
                """DELETE FROM rate_ticks WHERE id IN (
                       SELECT id FROM rate_ticks WHERE observed_at < :cutoff LIMIT :n)"""
            ),
            {"cutoff": older_than, "n": batch},
        )
        return int(result.rowcount or 0)

    async def latest(self) -> Snapshot | None:
        rows = (await self._conn.execute(_LATEST)).all()
        if not rows:
            return None
        return Snapshot(
            {Pair(CurrencyCode(r.base), CurrencyCode(r.quote)): r.mid for r in rows},
            rows[0].observed_at,
            rows[0].source,
        )


def _quote(row: Row[Any]) -> Quote:
    return Quote(
        id=row.id,
        user_id=row.user_id,
        kind=QuoteKind(row.kind),
        source=Money(row.source_amount, CurrencyCode(row.source_currency)).quantized(),
        target=Money(row.target_amount, CurrencyCode(row.target_currency)).quantized(),
        rate=row.rate,
        fee=Money(row.fee, CurrencyCode(row.source_currency)).quantized(),
        mid=row.mid,
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
        transaction_id=row.transaction_id,
    )


class Quotes:
    def __init__(self, conn: AsyncConnection):
        self._conn = conn

    async def add(self, quote: Quote) -> None:
        await self._conn.execute(
            quotes.insert().values(
                id=quote.id,
                user_id=quote.user_id,
                kind=quote.kind.value,
                source_currency=quote.source.currency.value,
                source_amount=quote.source.amount,
                target_currency=quote.target.currency.value,
                target_amount=quote.target.amount,
                rate=quote.rate,
                fee=quote.fee.amount,
                mid=quote.mid,
                created_at=quote.created_at,
                expires_at=quote.expires_at,
            )
        )

    async def get(self, quote_id: uuid.UUID, *, for_update: bool = False) -> Quote | None:
        query = select(quotes).where(quotes.c.id == quote_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return _quote(row) if row else None

    async def mark_used(self, quote: Quote) -> None:
        await self._conn.execute(
            update(quotes)
            .where(quotes.c.id == quote.id)
            .values(used_at=quote.used_at, transaction_id=quote.transaction_id)
        )


class MemoryRateCache:
    """This process's copy. Entries live ``ttl_seconds``, so a process that does not run the
    feed itself (``serve --workers N``) reads the database again soon after each tick."""

    def __init__(self, ttl_seconds: float = 1.0):
        self._ttl = ttl_seconds
        self._snapshot: Snapshot | None = None
        self._until = 0.0

    async def get(self) -> Snapshot | None:
        return self._snapshot if time.monotonic() < self._until else None

    async def put(self, snapshot: Snapshot) -> None:
        self._snapshot, self._until = snapshot, time.monotonic() + self._ttl


class RedisRateCache:
    """One key every process reads; the feed writes it after each committed tick. While Redis
    cannot be reached, this process's own short-lived copy stands in (``SharedOrLocal``): a
    miss reads the newest tick from the database, so rates and quotes keep working."""

    KEY = "stacklo:rates:latest"

    def __init__(self, url: str, ttl_seconds: float):
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._ttl = ttl_seconds
        self._local = MemoryRateCache(ttl_seconds=min(1.0, ttl_seconds))
        self._fallback = SharedOrLocal("rate_cache")

    async def get(self) -> Snapshot | None:
        return await self._fallback.call(self._get, self._local.get)

    async def put(self, snapshot: Snapshot) -> None:
        await self._fallback.call(lambda: self._put(snapshot), lambda: self._local.put(snapshot))

    async def _get(self) -> Snapshot | None:
        raw = await self._redis.get(self.KEY)
        return Snapshot.from_dict(json.loads(raw)) if raw else None

    async def _put(self, snapshot: Snapshot) -> None:
        await self._redis.set(self.KEY, json.dumps(snapshot.to_dict()), px=int(self._ttl * 1000))

    async def aclose(self) -> None:
        await self._redis.aclose()
