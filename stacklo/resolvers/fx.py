"""rates, rateUpdated, createQuote, convert, reviewKyc."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.fx import Pair
from stacklo.domain.models import KycStatus
from stacklo.domain.validation import MAX_REASON, clean_text
from stacklo.realtime.channels import RATES_CHANNEL
from stacklo.realtime.streams import SlowConsumer
from stacklo.resolvers.errors import user_errors
from stacklo.resolvers.realtime import close_slow
from stacklo.schema.common import node_uuid
from stacklo.schema.context import Info
from stacklo.schema.fx import (
    ConvertInput,
    ConvertPayload,
    CreateQuoteInput,
    CreateQuotePayload,
    CurrencyPairInput,
    ExchangeRate,
    Quote,
    ReviewKycInput,
    ReviewKycPayload,
)
from stacklo.schema.types import Transaction, User


def _pairs(pairs: list[CurrencyPairInput] | None) -> list[Pair] | None:
    return [p.pair() for p in pairs] if pairs is not None else None


async def rates(info: Info, pairs: list[CurrencyPairInput] | None = None) -> list[ExchangeRate]:
    """Live rates; every supported pair when pairs is null. Public market data."""
    found = await info.context.services.exchange.rates(_pairs(pairs))
    return [ExchangeRate.of(r) for r in found]


async def rate_updated(
    info: Info, pairs: list[CurrencyPairInput] | None = None
) -> AsyncGenerator[ExchangeRate, None]:
    """Every tick of the viewer's pairs (every supported pair when pairs is null)."""
    viewer = await info.context.require_viewer()
    services = info.context.services
    wanted = _pairs(pairs)
    for n, pair in enumerate(wanted or ()):
        if not pair.supported:
            raise DomainError(
                ErrorCode.INVALID_INPUT, f"{pair} is not a supported pair.", ("pairs", str(n))
            )
    async with services.streams.slot(viewer.user.id):
        try:
            async for event in services.streams.events(RATES_CHANNEL, lambda e: True):
                for rate in services.exchange.tick_rates(event.position, event.payload, wanted):
                    yield ExchangeRate.of(rate)
        except SlowConsumer:
            await close_slow(info)


@user_errors(CreateQuotePayload)
async def create_quote(info: Info, input: CreateQuoteInput) -> CreateQuotePayload:
    viewer = await info.context.require_viewer()
    quote = await info.context.services.exchange.create_quote(
        viewer.user,
        input.source_currency,
        input.target_currency,
        input.source_amount,
        input.target_amount,
    )
    return CreateQuotePayload(quote=Quote.of(quote))


@user_errors(ConvertPayload)
async def convert(info: Info, input: ConvertInput) -> ConvertPayload:
    viewer = await info.context.require_viewer()
    outcome = await info.context.services.exchange.convert(
        viewer.user,
        node_uuid(input.quote_id, "Quote"),
        input.idempotency_key,
        str(input.quote_id),
        info.context.meta,
    )
    return ConvertPayload(transaction=Transaction.of(outcome.transaction))


@user_errors(ReviewKycPayload)
async def review_kyc(info: Info, input: ReviewKycInput) -> ReviewKycPayload:
    """Staff (kyc/review in the policy) set a user's KYC outcome; audited."""
    viewer = await info.context.require_viewer()
    reason = (
        clean_text(input.reason, ("input", "reason"), max_len=MAX_REASON, required=False) or None
        if input.reason
        else None
    )
    if not input.approve and not reason:
        raise DomainError(
            ErrorCode.INVALID_INPUT, "Say why the review was rejected.", ("input", "reason")
        )
    user = await info.context.services.auth.set_kyc_status(
        viewer.user,
        node_uuid(input.user_id, "User"),
        KycStatus.VERIFIED if input.approve else KycStatus.REJECTED,
        reason,
        info.context.meta,
    )
    return ReviewKycPayload(user=User.of(user))
