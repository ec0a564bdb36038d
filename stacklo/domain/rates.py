"""Rates: the latest feed reading, its history, prices for any supported pair, and what a
user's wallets are worth.

The ticker (``realtime/feed.py``) records each reading here: the history row and its outbox
event in one transaction, then the cache (Redis, or this process). Reads take the cache, else
the newest row. Pricing rules are ``domain/fx.py``'s.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.fx import SUPPORTED_PAIRS, ExchangeRate, Pair, Pricing, Snapshot, value_in
from stacklo.domain.models import Wallet
from stacklo.domain.money import MONEY_CONTEXT, CurrencyCode, Money
from stacklo.domain.ports import RateCache, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class Holding:
    wallet: Wallet
    rate: Decimal
    value: Money


@dataclass(frozen=True, slots=True)
class Portfolio:
    total: Money
    holdings: list[Holding]


class Rates:
    def __init__(self, uow: UnitOfWorkFactory, pricing: Pricing, cache: RateCache):
        self._uow = uow
        self.pricing = pricing
        self._cache = cache
        self._tick_cache: OrderedDict[tuple[int, tuple[Pair, ...] | None], list[ExchangeRate]] = (
            OrderedDict()
        )

    async def snapshot(self) -> Snapshot | None:
        """The latest committed reading: the cache, else the rate history."""
        cached = await self._cache.get()
        if cached is not None:
            return cached
        async with self._uow(read_only=True) as uow:
            latest = await uow.rates.latest()
        if latest is not None:
            await self._cache.put(latest)
        return latest

    async def record(self, snapshot: Snapshot) -> None:
        """Keep a feed reading (its rows and the event for ``rateUpdated``), then cache it."""
        async with self._uow() as uow:
            await uow.rates.add(snapshot)
            await uow.commit()
        await self._cache.put(snapshot)

    async def prune_history(self, older_than: datetime) -> int:
        """Drop readings older than the retention window, a batch per transaction."""
        total = 0
        while True:
            async with self._uow() as uow:
                gone = await uow.rates.prune(older_than)
                await uow.commit()
            total += gone
            if not gone:
                return total

    async def rates(self, pairs: Sequence[Pair] | None) -> list[ExchangeRate]:
        for n, pair in enumerate(pairs or ()):
            if not pair.supported:
                raise DomainError(
                    ErrorCode.INVALID_INPUT,
                    f"{pair} is not a supported pair.",
                    ("pairs", str(n)),
                )
        snapshot = await self.snapshot()
        if snapshot is None:
            raise DomainError(
                ErrorCode.PROVIDER_UNAVAILABLE, "No exchange rates yet; try again shortly."
            )
        return self.rates_from(snapshot, pairs)

    def tick_rates(
        self, tick: int, payload: Mapping[str, Any], pairs: Sequence[Pair] | None
    ) -> list[ExchangeRate]:
        """A rate tick's rates for ``pairs``, priced once per tick and pair list however many
        subscribers ask (``tick``: the event's outbox position)."""
        key = (tick, tuple(pairs) if pairs is not None else None)
        found = self._tick_cache.get(key)
        if found is None:
            found = self.rates_from(Snapshot.from_dict(payload), pairs)
            self._tick_cache[key] = found
            while len(self._tick_cache) > 256:
                self._tick_cache.popitem(last=False)
        return found

    def rates_from(self, snapshot: Snapshot, pairs: Sequence[Pair] | None) -> list[ExchangeRate]:
        wanted = list(dict.fromkeys(pairs)) if pairs is not None else SUPPORTED_PAIRS
        return [r for p in wanted if (r := self.pricing.rate(snapshot, p)) is not None]

    async def portfolio(self, wallets: Sequence[Wallet], valuation: CurrencyCode) -> Portfolio:
        snapshot = await self.snapshot()
        if snapshot is None:
            raise DomainError(
                ErrorCode.PROVIDER_UNAVAILABLE, "No exchange rates yet; try again shortly."
            )
        holdings = []
        total = Decimal(0)
        for wallet in wallets:
            rate, value = value_in(wallet.balance_money, snapshot, valuation)
            holdings.append(Holding(wallet, rate, value))
            total = MONEY_CONTEXT.add(total, value.amount)
        return Portfolio(Money(total, valuation).quantized(), holdings)
