"""Redis while it answers, this process's memory while it does not.

Limits that must hold across instances keep their counts in Redis. When Redis cannot be
reached the request is not failed: the same limit is counted in this process's memory (so it
still holds per process), the outage is logged once, and Redis is asked again at most every
``retry_seconds``. Used by the authentication throttle and the cost buckets.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from prometheus_client import Counter

from stacklo.observability import log

T = TypeVar("T")

FALLBACKS = Counter(
    "stacklo_limit_redis_fallback_total",
    "Limit checks counted in process memory because Redis could not be reached.",
    ["limit"],
)


class SharedOrLocal:
    def __init__(self, name: str, retry_seconds: float = 5.0):
        self._name = name
        self._retry_seconds = retry_seconds
        self._degraded = False
        self._retry_at = 0.0

    async def call(
        self, shared: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]
    ) -> T:
        if self._degraded and time.monotonic() < self._retry_at:
            FALLBACKS.labels(self._name).inc()
            return await local()
        try:
            result = await shared()
        except Exception as e:  # Redis away: this process's memory decides
            if not self._degraded:
                log.warning(f"{self._name}_redis_unreachable", error=repr(e), fallback="memory")
            self._degraded = True
            self._retry_at = time.monotonic() + self._retry_seconds
            FALLBACKS.labels(self._name).inc()
            return await local()
        if self._degraded:
            self._degraded = False
            log.info(f"{self._name}_redis_back")
        return result
