"""rates, rateUpdated, createQuote, convert."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated

import strawberry

from stacklo.domain.conversions import Convert
from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.fx import Pair
from stacklo.domain.quotes import CreateQuote
from stacklo.realtime.broadcast import BroadcastLost
from stacklo.realtime.channels import RATES_CHANNEL
from stacklo.realtime.streams import SlowConsumer
from stacklo.resolvers.errors import user_errors
from stacklo.resolvers.ids import node_id
from stacklo.resolvers.realtime import close_lost, close_slow
from stacklo.schema.context import Info, Services
from stacklo.schema.fx import (
    ConvertInput,
    ConvertPayload,
    CreateQuoteInput,
    CreateQuotePayload,
    CurrencyPairInput,
    ExchangeRate,
    Quote,
)
from stacklo.schema.ledger import Transaction
from stacklo.schema.subscriptions import EVERYONE, delivered


def _pairs(pairs: list[CurrencyPairInput] | None) -> list[Pair] | None:
    return [p.pair() for p in pairs] if pairs is not None else None


async def rates(
    info: Info,
    pairs: Annotated[
        list[CurrencyPairInput] | None,
        strawberry.argument(description="The pairs wanted; every supported pair when null."),
    ] = None,
) -> list[ExchangeRate]:
    """Live rates; every supported pair when pairs is null. Public market data."""
    found = await info.context.services.rates.rates(_pairs(pairs))
    return [ExchangeRate.of(r) for r in found]


async def rate_updated(
    info: Info,
    pairs: Annotated[
        list[CurrencyPairInput] | None,
        strawberry.argument(description="The pairs wanted; every supported pair when null."),
    ] = None,
) -> AsyncGenerator[ExchangeRate, None]:
    """Every tick of the viewer's pairs (every supported pair when pairs is null). A tick
    reads the same for every subscriber: one execution per distinct selection."""
    viewer = await info.context.require_viewer()
    services = info.context.services
    wanted = _pairs(pairs)
    for n, pair in enumerate(wanted or ()):
        if not pair.supported:
            raise DomainError(
                ErrorCode.INVALID_INPUT, f"{pair} is not a supported pair.", ("pairs", str(n))
            )
    try:
        async for rate in delivered(
            services.streams.slot(viewer.user.id),
            lambda: _ticks(services, wanted),
            audience=EVERYONE,
        ):
            yield rate
    except SlowConsumer:
        await close_slow(info)
    except BroadcastLost:
        await close_lost(info)


async def _ticks(services: Services, wanted: list[Pair] | None) -> AsyncIterator[ExchangeRate]:
    async for event in services.streams.events(RATES_CHANNEL, lambda e: True):
        for rate in services.rates.tick_rates(event.position, event.payload, wanted):
            yield ExchangeRate.of(rate)


@user_errors(CreateQuotePayload)
async def create_quote(
    info: Info,
    input: Annotated[CreateQuoteInput, strawberry.argument(description="What to price.")],
) -> CreateQuotePayload:
    viewer = await info.context.require_viewer()
    quote = await info.context.services.quotes.create(
        CreateQuote(
            user=viewer.user,
            source=input.source_currency,
            target=input.target_currency,
            source_amount=input.source_amount,
            target_amount=input.target_amount,
        )
    )
    return CreateQuotePayload(quote=Quote.of(quote))


@user_errors(ConvertPayload)
async def convert(
    info: Info,
    input: Annotated[ConvertInput, strawberry.argument(description="The quote to spend.")],
) -> ConvertPayload:
    viewer = await info.context.require_viewer()
    outcome = await info.context.services.conversions.convert(
        Convert(
            user=viewer.user,
            quote=node_id(input.quote_id, "Quote", ("input", "quoteId")),
            idempotency_key=input.idempotency_key,
            meta=info.context.meta,
        )
    )
    return ConvertPayload(transaction=Transaction.of(outcome.transaction))
