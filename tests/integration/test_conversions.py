"""Quotes and conversions, one rule a test, with a clock the test controls (no HTTP; real
PostgreSQL)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.domain.conversions import Convert
from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.fx import QuoteStatus
from stacklo.domain.models import KycStatus
from stacklo.domain.quotes import CreateQuote
from tests.integration.world import BTC, META, NGN, USD, World


@pytest.fixture
async def world(uow_factory: SqlUnitOfWorkFactory) -> World:
    world = World(uow_factory)
    await world.rates_now()
    return world


async def test_a_quote_is_honoured_until_it_expires(world: World) -> None:
    alice, a = await world.person()
    await world.deposit(alice, a, "100000")
    kept = await world.quotes.create(CreateQuote(alice, NGN, USD, source_amount=Decimal(10000)))
    lapsed = await world.quotes.create(CreateQuote(alice, NGN, USD, source_amount=Decimal(10000)))
    world.clock.advance(29.999)
    assert kept.status(world.clock()) is QuoteStatus.ACTIVE
    done = await world.conversions.convert(Convert(alice, kept.id, "k1", META))
    assert done.transaction.converted_amount == kept.target.amount
    world.clock.advance(0.001)  # exactly expiresAt: refused
    with pytest.raises(DomainError) as e:
        await world.conversions.convert(Convert(alice, lapsed.id, "k2", META))
    assert e.value.code is ErrorCode.QUOTE_EXPIRED


async def test_a_conversion_credits_exactly_the_target_and_opens_the_wallet(
    world: World,
) -> None:
    alice, a = await world.person()
    await world.deposit(alice, a, "50000")
    quote = await world.quotes.create(CreateQuote(alice, NGN, USD, target_amount=Decimal(20)))
    await world.conversions.convert(Convert(alice, quote.id, "k", META))
    async with world.uow(read_only=True) as uow:
        dollars = await uow.wallets.for_user_currency(alice.id, USD)
    assert dollars is not None and dollars.balance == Decimal(20)
    assert (await world.balance(a))[0] == Decimal(50000) - quote.source.amount
    await world.verified()


async def test_one_quote_executed_at_once_moves_money_once(world: World) -> None:
    alice, a = await world.person()
    await world.deposit(alice, a, "50000")
    quote = await world.quotes.create(CreateQuote(alice, NGN, USD, target_amount=Decimal(20)))
    results = await asyncio.gather(
        *(world.conversions.convert(Convert(alice, quote.id, f"k{n}", META)) for n in range(6)),
        return_exceptions=True,
    )
    done = [r for r in results if not isinstance(r, Exception)]
    used = [r for r in results if isinstance(r, DomainError)]
    assert len(done) == 1 and len(used) == 5
    assert all(e.code is ErrorCode.QUOTE_ALREADY_USED for e in used)
    assert (await world.balance(a))[0] == Decimal(50000) - quote.source.amount


async def test_someone_elses_quote_is_not_found(world: World) -> None:
    (alice, a), (mallory, _) = await world.person(), await world.person()
    await world.deposit(alice, a, "50000")
    quote = await world.quotes.create(CreateQuote(alice, NGN, USD, target_amount=Decimal(20)))
    with pytest.raises(DomainError) as e:
        await world.conversions.convert(Convert(mallory, quote.id, "k", META))
    assert (e.value.code, e.value.field) == (ErrorCode.NOT_FOUND, ("input", "quoteId"))


async def test_stale_rates_are_not_quoted(world: World) -> None:
    alice, _ = await world.person()
    world.clock.advance(60)
    assert (await world.quotes.create(CreateQuote(alice, NGN, USD, Decimal(500)))).rate > 0
    world.clock.advance(0.001)
    with pytest.raises(DomainError) as e:
        await world.quotes.create(CreateQuote(alice, NGN, USD, Decimal(500)))
    assert e.value.code is ErrorCode.PROVIDER_UNAVAILABLE


async def test_crypto_needs_a_verified_identity(world: World) -> None:
    alice, _ = await world.person(kyc=KycStatus.PENDING)
    with pytest.raises(DomainError) as e:
        await world.quotes.create(CreateQuote(alice, NGN, BTC, Decimal(50000)))
    assert e.value.code is ErrorCode.KYC_REQUIRED
