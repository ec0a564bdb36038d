"""The rate ticker: history, its events, leadership and pruning (real PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import text

from stacklo.data.fx import MemoryRateCache
from stacklo.data.outbox import RATE_FEED_LOCK, RelayConnection
from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.domain.fx import Pair, Snapshot
from stacklo.domain.rates import Rates
from stacklo.integrations.rates import SandboxRateFeed
from stacklo.realtime.feed import RateTicker
from tests.integration.world import NGN, T0, USD, Clock, pricing


async def test_the_ticker_records_history_and_an_outbox_event_per_tick(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    clock = Clock(T0)
    rates = Rates(uow_factory, pricing(), MemoryRateCache())
    ticker = RateTicker(SandboxRateFeed(seed=3), rates, clock, interval_seconds=60)
    for _ in range(3):
        assert await ticker.tick()
        clock.advance(2)
    async with uow_factory.engine.connect() as conn:
        ticks = (
            await conn.execute(text("SELECT count(DISTINCT observed_at) FROM rate_ticks"))
        ).scalar()
        rows = (await conn.execute(text("SELECT count(*) FROM rate_ticks"))).scalar()
        events = (
            await conn.execute(text("SELECT count(*) FROM outbox_events WHERE topic = 'rates'"))
        ).scalar()
    async with uow_factory(read_only=True) as uow:
        latest = await uow.rates.latest()
    assert (ticks, rows, events) == (3, 18, 3)  # six direct pairs per tick
    assert latest is not None and latest.at == T0 + timedelta(seconds=4)
    assert latest.source == "sandbox" and len(latest.mids) == 6


async def test_only_one_ticker_leads(uow_factory: SqlUnitOfWorkFactory) -> None:
    clock = Clock(T0)
    rates = Rates(uow_factory, pricing(), MemoryRateCache())
    first = RelayConnection(uow_factory.engine, RATE_FEED_LOCK, listen=None)
    second = RelayConnection(uow_factory.engine, RATE_FEED_LOCK, listen=None)
    try:
        assert await first.lead(lambda *_: None)
        assert not await second.lead(lambda *_: None)
        await first.close()
        assert await second.lead(lambda *_: None)  # the stand-by takes over
    finally:
        await first.close()
        await second.close()
    # Giving up leadership releases the lock: no pooled connection keeps it.
    async with uow_factory.engine.connect() as conn:
        held = await conn.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :k"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"k": RATE_FEED_LOCK},
        )
        assert held.scalar() == 0
    stop = asyncio.Event()
    ticker = RateTicker(SandboxRateFeed(), rates, clock, interval_seconds=0.05)
    task = asyncio.create_task(
        ticker.run(stop, RelayConnection(uow_factory.engine, RATE_FEED_LOCK, listen=None))
    )
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert (await rates.snapshot()) is not None


async def test_the_ticker_prunes_history_past_the_window(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    clock = Clock(T0)
    rates = Rates(uow_factory, pricing(), MemoryRateCache())
    for day in range(5):
        await rates.record(Snapshot({Pair(USD, NGN): Decimal(1500 + day)}, clock(), "test"))
        clock.advance(86_400)
    ticker = RateTicker(
        SandboxRateFeed(), rates, clock, interval_seconds=60, history=timedelta(days=2, hours=1)
    )
    assert await ticker.tick()  # now T0 + 5 days: readings of days 0, 1 and 2 are too old
    async with uow_factory.engine.connect() as conn:
        kept = (
            (
                await conn.execute(
                    text("SELECT observed_at FROM rate_ticks WHERE quote = 'NGN' ORDER BY 1")
                )
            )
            .scalars()
            .all()
        )
    assert kept == [T0 + timedelta(days=3), T0 + timedelta(days=4), T0 + timedelta(days=5)]
