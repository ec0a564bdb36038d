"""Locked quotes: created at the latest rates, spent once by a conversion or a cross-currency
transfer.

A quote is priced from the latest committed feed reading (``domain/fx.py`` has the rules) and
stored. Spending it (``spend_quote``) locks its row first, then the movement locks the wallets
in id order, so two concurrent executions of one quote serialise and exactly one wins; a
failed attempt (say INSUFFICIENT_FUNDS) rolls back and leaves the quote ACTIVE.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.fx import Pair, Quote
from stacklo.domain.ledger import Posting, Transaction
from stacklo.domain.models import AccountKind, KycStatus, User
from stacklo.domain.money import CurrencyCode
from stacklo.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from stacklo.domain.rates import Rates


@dataclass(frozen=True, slots=True)
class CreateQuote:
    """Exactly one of ``source_amount`` and ``target_amount``."""

    user: User
    source: CurrencyCode
    target: CurrencyCode
    source_amount: Decimal | None = None
    target_amount: Decimal | None = None


def require_kyc_for_crypto(user: User, pair: Pair) -> None:
    if pair.crypto and user.kyc_status is not KycStatus.VERIFIED:
        raise DomainError(
            ErrorCode.KYC_REQUIRED,
            "Buying, selling or sending crypto needs a verified identity.",
        )


async def spend_quote(uow: UnitOfWork, user: User, quote_id: uuid.UUID, now: datetime) -> Quote:
    """Lock the user's quote and check it can be used now. The caller marks it used
    (``mark_spent``) in the same database transaction once the movement is booked."""
    quote = await uow.quotes.get(quote_id, for_update=True)
    if quote is None or quote.user_id != user.id:
        raise DomainError(ErrorCode.NOT_FOUND, "Quote not found.", ("input", "quoteId"))
    quote.check_usable(now)
    require_kyc_for_crypto(user, quote.pair)
    return quote


async def quote_legs(
    uow: UnitOfWork, quote: Quote, source: uuid.UUID, target: uuid.UUID
) -> list[Posting]:
    """The quote's linked legs between two wallets, through the fee and FX liquidity accounts."""
    s, t = quote.source.currency, quote.target.currency
    return quote.conversion_postings(
        source,
        target,
        await uow.ledger.platform_account(AccountKind.FEES, s),
        await uow.ledger.platform_account(AccountKind.FX_LIQUIDITY, s),
        await uow.ledger.platform_account(AccountKind.FX_LIQUIDITY, t),
    )


def quoted(quote: Quote) -> dict[str, Any]:
    """What a transaction priced by ``quote`` records (``Transaction.start`` fields)."""
    return {
        "fee": quote.fee.amount,
        "converted_currency": quote.target.currency,
        "converted_amount": quote.target.amount,
        "exchange_rate": quote.rate,
        "metadata": {"quote_id": str(quote.id), "mid": format(quote.mid, "f")},
    }


def quote_audit(quote: Quote) -> dict[str, str]:
    return {
        "quote_id": str(quote.id),
        "source": f"{quote.source.amount} {quote.source.currency.value}",
        "target": f"{quote.target.amount} {quote.target.currency.value}",
        "fee": f"{quote.fee.amount} {quote.fee.currency.value}",
        "rate": format(quote.rate, "f"),
    }


async def mark_spent(uow: UnitOfWork, quote: Quote, tx: Transaction, now: datetime) -> None:
    """Call after the transaction is booked (the quote points at it)."""
    quote.used_at, quote.transaction_id = now, tx.id
    await uow.quotes.mark_used(quote)


class Quotes:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, rates: Rates):
        self._uow = uow
        self._clock = clock
        self._rates = rates

    async def create(self, cmd: CreateQuote) -> Quote:
        """Lock a rate and fee for the quote's time to live (``Pricing.ttl``)."""
        pair = Pair(cmd.source, cmd.target)
        if pair.supported:  # an unsupported pair is INVALID_INPUT, from the pricing
            require_kyc_for_crypto(cmd.user, pair)
        quote = self._rates.pricing.quote(
            cmd.user.id,
            await self._rates.snapshot(),
            cmd.source,
            cmd.target,
            cmd.source_amount,
            cmd.target_amount,
            self._clock(),
        )
        async with self._uow() as uow:
            await uow.quotes.add(quote)
            await uow.commit()
        return quote

    async def get(self, quote_id: uuid.UUID) -> Quote | None:
        async with self._uow(read_only=True) as uow:
            return await uow.quotes.get(quote_id)
