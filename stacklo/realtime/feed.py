"""The rate ticker: reads the feed every tick and records it (history, outbox, cache).

Like the relay, any number may run and one leads (its own advisory lock), so ticks are not
recorded twice. A feed that fails is retried at the next tick; meanwhile the latest rates
age, and past ``STACKLO_RATE_MAX_AGE_SECONDS`` quotes are refused (PROVIDER_UNAVAILABLE).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from prometheus_client import Counter

from stacklo.domain.ports import Clock, ProviderUnavailable, RateFeed
from stacklo.domain.rates import Rates
from stacklo.observability import log
from stacklo.realtime.leader import run_as_leader
from stacklo.realtime.relay import Leadership

TICKS = Counter("stacklo_rate_ticks_total", "Rate feed readings, by outcome.", ["outcome"])


class RateTicker:
    def __init__(
        self,
        feed: RateFeed,
        rates: Rates,
        clock: Clock,
        *,
        interval_seconds: float,
        history: timedelta = timedelta(days=30),
    ):
        self._feed = feed
        self._rates = rates
        self._clock = clock
        self._interval = interval_seconds
        self._history = history
        self._next_prune = 0.0

    async def tick(self) -> bool:
        """One reading; False when the feed could not answer (logged and counted)."""
        try:
            snapshot = await self._feed.fetch(self._clock())
        except ProviderUnavailable as e:
            TICKS.labels("unavailable").inc()
            log.warning("rate_feed_unavailable", feed=self._feed.name, error=str(e))
            return False
        await self._rates.record(snapshot)
        TICKS.labels("ok").inc()
        if time.monotonic() >= self._next_prune:  # hourly: the history is kept for a window
            self._next_prune = time.monotonic() + 3600
            pruned = await self._rates.prune_history(self._clock() - self._history)
            if pruned:
                log.info("rate_history_pruned", ticks=pruned)
        return True

    async def run(self, stop: asyncio.Event, leadership: Leadership) -> None:
        await run_as_leader("rate_feed", leadership, stop, self._interval, self.tick)
