"""The exchange service against the real PostgreSQL, with a clock the test controls."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from stacklo.data.fx import MemoryRateCache
from stacklo.data.outbox import RATE_FEED_LOCK, RelayConnection
from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.exchange import Exchange
from stacklo.domain.fx import (
    DEFAULT_FEE_BPS,
    DEFAULT_MAX_AMOUNT,
    DEFAULT_MIN_AMOUNT,
    Pair,
    Pricing,
    QuoteStatus,
    Snapshot,
)
from stacklo.domain.ledger import (
    Posting,
    Transaction,
    TransactionKind,
    TransactionStatus,
    apply_postings,
)
from stacklo.domain.models import AccountKind, RequestMeta, User, Wallet
from stacklo.domain.money import CurrencyCode, Money
from stacklo.integrations.rates import SandboxRateFeed
from stacklo.realtime.feed import RateTicker
from tests.integration.test_repositories import a_user

NGN, USD = CurrencyCode.NGN, CurrencyCode.USD
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
META = RequestMeta(ip_address="127.0.0.1", request_id="test")


class Clock:
    """Time stands still until the test moves it."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def pricing() -> Pricing:
    return Pricing(
        spread_bps_fiat=Decimal(50),
        spread_bps_crypto=Decimal(100),
        fee_bps=DEFAULT_FEE_BPS,
        min_amount=DEFAULT_MIN_AMOUNT,
        max_amount=DEFAULT_MAX_AMOUNT,
        max_age=timedelta(seconds=60),
        ttl=timedelta(seconds=30),
    )


def snapshot(at: datetime) -> Snapshot:
    return Snapshot({Pair(USD, NGN): Decimal(1550)}, at, "test")


async def funded_user(uow_factory: SqlUnitOfWorkFactory, amount: str) -> tuple[User, Wallet]:
    user, value = a_user(), Decimal(amount)
    wallet = Wallet.open(user.id, NGN, T0)
    async with uow_factory() as uow:
        await uow.users.add(user)
        await uow.wallets.add(wallet)
        clearing = await uow.ledger.platform_account(AccountKind.PROVIDER_CLEARING, NGN)
        locked = await uow.ledger.lock_wallets([clearing, wallet.id])
        tx = Transaction.start(
            TransactionKind.DEPOSIT,
            Money(value, NGN),
            T0,
            status=TransactionStatus.COMPLETED,
            target_wallet_id=wallet.id,
        )
        entries = apply_postings(
            locked, [Posting(clearing, NGN, -value), Posting(wallet.id, NGN, value)]
        )
        await uow.ledger.save_wallets(list(locked.values()))
        await uow.ledger.add(tx, entries)
        await uow.commit()
    return user, wallet


@pytest.fixture
async def setup(uow_factory: SqlUnitOfWorkFactory) -> tuple[Exchange, Clock]:
    clock = Clock(T0)
    exchange = Exchange(uow_factory, clock, pricing(), MemoryRateCache(ttl_seconds=3600))
    await exchange.record(snapshot(T0))
    return exchange, clock


async def test_a_quote_is_honoured_until_it_expires(
    uow_factory: SqlUnitOfWorkFactory, setup: tuple[Exchange, Clock]
) -> None:
    exchange, clock = setup
    user, _ = await funded_user(uow_factory, "100000")
    kept = await exchange.create_quote(user, NGN, USD, Decimal(10000), None)
    lapsed = await exchange.create_quote(user, NGN, USD, Decimal(10000), None)
    assert kept.expires_at == T0 + timedelta(seconds=30)

    clock.advance(29.999)
    assert kept.status(clock()) is QuoteStatus.ACTIVE
    done = await exchange.convert(user, kept.id, "k1", str(kept.id), META)
    assert done.transaction.converted_amount == kept.target.amount

    clock.advance(0.001)  # exactly expiresAt: refused
    with pytest.raises(DomainError) as e:
        await exchange.convert(user, lapsed.id, "k2", str(lapsed.id), META)
    assert e.value.code is ErrorCode.QUOTE_EXPIRED
    stored = await exchange.quote_for(user, lapsed.id)
    assert stored is not None and stored.status(clock()) is QuoteStatus.EXPIRED
    # The refused attempt wrote nothing, not even its idempotency key.
    async with uow_factory(read_only=True) as uow:
        wallet = await uow.wallets.for_user_currency(user.id, NGN)
    assert wallet is not None and wallet.balance == Decimal(100000) - kept.source.amount


async def test_stale_rates_are_not_quoted(
    uow_factory: SqlUnitOfWorkFactory, setup: tuple[Exchange, Clock]
) -> None:
    exchange, clock = setup
    user, _ = await funded_user(uow_factory, "1000")
    clock.advance(60)
    assert (await exchange.create_quote(user, NGN, USD, Decimal(500), None)).rate > 0
    clock.advance(0.001)
    with pytest.raises(DomainError) as e:
        await exchange.create_quote(user, NGN, USD, Decimal(500), None)
    assert e.value.code is ErrorCode.PROVIDER_UNAVAILABLE
    await exchange.record(snapshot(clock()))  # the feed is back
    assert (await exchange.create_quote(user, NGN, USD, Decimal(500), None)).rate > 0


async def test_the_ticker_records_history_and_an_outbox_event_per_tick(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    clock = Clock(T0)
    exchange = Exchange(uow_factory, clock, pricing(), MemoryRateCache())
    ticker = RateTicker(SandboxRateFeed(seed=3), exchange, clock, interval_seconds=60)
    for _ in range(3):
        assert await ticker.tick()
        clock.advance(2)
    async with uow_factory() as uow:
        conn = uow.rates._conn
        ticks = (
            await conn.execute(text("SELECT count(DISTINCT observed_at) FROM rate_ticks"))
        ).scalar()
        rows = (await conn.execute(text("SELECT count(*) FROM rate_ticks"))).scalar()
        events = (
            await conn.execute(text("SELECT count(*) FROM outbox_events WHERE topic = 'rates'"))
        ).scalar()
        latest = await uow.rates.latest()
    assert (ticks, rows, events) == (3, 18, 3)  # six direct pairs per tick
    assert latest is not None and latest.at == T0 + timedelta(seconds=4)
    assert latest.source == "sandbox" and len(latest.mids) == 6


async def test_only_one_ticker_leads(uow_factory: SqlUnitOfWorkFactory) -> None:
    clock = Clock(T0)
    exchange = Exchange(uow_factory, clock, pricing(), MemoryRateCache())
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
    async with uow_factory(read_only=True) as uow:
        held = await uow.rates._conn.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :k"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"k": RATE_FEED_LOCK},
        )
        assert held.scalar() == 0
    stop = asyncio.Event()
    ticker = RateTicker(SandboxRateFeed(), exchange, clock, interval_seconds=0.05)
    task = asyncio.create_task(
        ticker.run(stop, RelayConnection(uow_factory.engine, RATE_FEED_LOCK, listen=None))
    )
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert (await exchange.snapshot()) is not None


async def test_the_ticker_prunes_history_past_the_window(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    clock = Clock(T0)
    exchange = Exchange(uow_factory, clock, pricing(), MemoryRateCache())
    for day in range(5):
        await exchange.record(Snapshot({Pair(USD, NGN): Decimal(1500 + day)}, clock(), "test"))
        clock.advance(86_400)
    ticker = RateTicker(
        SandboxRateFeed(), exchange, clock, interval_seconds=60, history=timedelta(days=2, hours=1)
    )
    assert await ticker.tick()  # now T0 + 5 days: readings of days 0, 1 and 2 are too old
    async with uow_factory(read_only=True) as uow:
        kept = (
            (
                await uow.rates._conn.execute(
                    text("SELECT observed_at FROM rate_ticks WHERE quote = 'NGN' ORDER BY 1")
                )
            )
            .scalars()
            .all()
        )
    assert kept == [T0 + timedelta(days=3), T0 + timedelta(days=4), T0 + timedelta(days=5)]
