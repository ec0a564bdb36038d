"""Rates, quotes, conversions and portfolio valuation as clients see them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry
from strawberry import relay

from stacklo.domain import fx, rates
from stacklo.schema.common import CurrencyCode, MoneyType, UserError
from stacklo.schema.context import Info
from stacklo.schema.ledger import Transaction, Wallet
from stacklo.schema.limits import cost

strawberry.enum(fx.QuoteStatus, name="QuoteStatus")


@strawberry.type
class ExchangeRate:
    base: CurrencyCode
    quote: CurrencyCode
    bid: Decimal = strawberry.field(description="What the platform pays per base unit.")
    ask: Decimal = strawberry.field(description="What the platform charges per base unit.")
    mid: Decimal
    source: str = strawberry.field(description='The feed, e.g. "sandbox" or "coinbase via USD".')
    updated_at: datetime

    @classmethod
    def of(cls, r: fx.ExchangeRate) -> ExchangeRate:
        return cls(
            base=r.pair.base,
            quote=r.pair.quote,
            bid=r.bid,
            ask=r.ask,
            mid=r.mid,
            source=r.source,
            updated_at=r.updated_at,
        )


@strawberry.input
class CurrencyPairInput:
    base: CurrencyCode
    quote: CurrencyCode

    def pair(self) -> fx.Pair:
        return fx.Pair(self.base, self.quote)


@strawberry.type(description="A locked rate: honoured exactly until expiresAt, then refused.")
class Quote(relay.Node):
    id: relay.NodeID[str]
    rate: Decimal = strawberry.field(
        description="Target units per source unit, after the spread: targetAmount is "
        "(sourceAmount - fee) x rate, rounded down."
    )
    expires_at: datetime
    created_at: datetime
    _quote: strawberry.Private[fx.Quote]

    @classmethod
    def of(cls, q: fx.Quote) -> Quote:
        return cls(
            id=str(q.id), rate=q.rate, expires_at=q.expires_at, created_at=q.created_at, _quote=q
        )

    @strawberry.field(description="Everything that leaves the source wallet, fee included.")
    def source_amount(self) -> MoneyType:
        return MoneyType.of(self._quote.source)

    @strawberry.field(description="Exactly what arrives in the target wallet.")
    def target_amount(self) -> MoneyType:
        return MoneyType.of(self._quote.target)

    @strawberry.field(description="Part of sourceAmount, in the source currency.")
    def fee(self) -> MoneyType:
        return MoneyType.of(self._quote.fee)

    @strawberry.field
    def status(self, info: Info) -> fx.QuoteStatus:
        return self._quote.status(info.context.services.clock())


@strawberry.input(description="Exactly one of sourceAmount and targetAmount.")
class CreateQuoteInput:
    source_currency: CurrencyCode
    target_currency: CurrencyCode
    source_amount: Decimal | None = None
    target_amount: Decimal | None = None


@strawberry.type
class CreateQuotePayload:
    quote: Quote | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(
    description="Converts between the viewer's own wallets at a quote: fiat exchange, "
    "crypto buy, crypto sell."
)
class ConvertInput:
    quote_id: strawberry.ID
    idempotency_key: str


@strawberry.type
class ConvertPayload:
    transaction: Transaction | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class Holding:
    wallet: Wallet
    rate: Decimal = strawberry.field(
        description="Mid rate from the wallet's currency to the valuation currency."
    )
    value: MoneyType

    @classmethod
    def of(cls, h: rates.Holding) -> Holding:
        return cls(wallet=Wallet.of(h.wallet), rate=h.rate, value=MoneyType.of(h.value))


@strawberry.type
class Portfolio:
    total_value: MoneyType
    holdings: list[Holding] = strawberry.field(metadata=cost(size=len(CurrencyCode)))

    @classmethod
    def of(cls, p: rates.Portfolio) -> Portfolio:
        return cls(total_value=MoneyType.of(p.total), holdings=[Holding.of(h) for h in p.holdings])
