"""Platform figures for staff: counts and 24-hour volume, read in one round of queries and
kept for ``ttl`` (2 seconds by default) so a dashboard polling every couple of seconds, or
many of them, costs the database one read per ``ttl``."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from stacklo.domain.models import PlatformStats
from stacklo.domain.ports import Clock, UnitOfWorkFactory


class Platform:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, ttl: timedelta = timedelta(seconds=2)):
        self._uow = uow
        self._clock = clock
        self._ttl = ttl
        self._cached: PlatformStats | None = None
        self._lock = asyncio.Lock()

    async def stats(self) -> PlatformStats:
        async with self._lock:  # one read at a time refreshes it; the others wait and share
            now = self._clock()
            if self._cached is None or now - self._cached.generated_at >= self._ttl:
                async with self._uow(read_only=True) as uow:
                    self._cached = await uow.platform.stats(now)
            return self._cached
