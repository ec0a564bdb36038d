"""Rates, quotes, conversions and portfolio valuation as clients see them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry
from strawberry import relay

from stacklo.domain import fx, rates
from stacklo.schema import docs
from stacklo.schema.common import IDEMPOTENCY_KEY, USER_ERRORS, CurrencyCode, MoneyType, UserError
from stacklo.schema.context import Info
from stacklo.schema.ledger import Transaction, Wallet
from stacklo.schema.limits import cost

docs.described_enum(
    fx.QuoteStatus, "Whether a quote can still be spent.", docs.QUOTE_STATUSES, name="QuoteStatus"
)


@strawberry.type(
    description="A currency pair's latest price: 1 base is worth mid units of quote. bid and "
    "ask keep 12 significant digits."
)
class ExchangeRate:
    base: CurrencyCode = strawberry.field(description="The currency priced.")
    quote: CurrencyCode = strawberry.field(description="The currency it is priced in.")
    bid: Decimal = strawberry.field(
        description="What the platform pays per base unit (mid less half the spread): the rate "
        "a quote from base into quote locks."
    )
    ask: Decimal = strawberry.field(
        description="What the platform charges per base unit (mid plus half the spread)."
    )
    mid: Decimal = strawberry.field(
        description="The mid-market rate, without spread; portfolios are valued at it."
    )
    source: str = strawberry.field(description='The feed, e.g. "sandbox" or "coinbase via USD".')
    updated_at: datetime = strawberry.field(
        description="When the feed reading was taken; readings older than a minute (by "
        "default) are not quoted."
    )

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


@strawberry.input(
    description="A currency pair: two different fiat currencies, or fiat and crypto either way "
    "(any other pair is INVALID_INPUT)."
)
class CurrencyPairInput:
    base: CurrencyCode = strawberry.field(description="The currency priced.")
    quote: CurrencyCode = strawberry.field(description="The currency it is priced in.")

    def pair(self) -> fx.Pair:
        return fx.Pair(self.base, self.quote)


@strawberry.type(
    description="A locked rate: honoured exactly until expiresAt, then refused. Visible only to "
    "its creator."
)
class Quote(relay.Node):
    id: relay.NodeID[str]
    rate: Decimal = strawberry.field(
        description="Target units per source unit, after the spread (the pair's bid). "
        "targetAmount never exceeds (sourceAmount - fee) x rate: it is that, rounded down, when "
        "sourceAmount was given; when targetAmount was given, sourceAmount is the smallest "
        "amount that buys it."
    )
    expires_at: datetime = strawberry.field(
        description="Spending the quote at or after this instant is QUOTE_EXPIRED (30 seconds "
        "after createdAt by default)."
    )
    created_at: datetime = strawberry.field(description="When it was priced.")
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

    @strawberry.field(description="ACTIVE, USED or EXPIRED, as of now.")
    def status(self, info: Info) -> fx.QuoteStatus:
        return self._quote.status(info.context.services.clock())


@strawberry.input(description="Exactly one of sourceAmount and targetAmount.")
class CreateQuoteInput:
    source_currency: CurrencyCode = strawberry.field(description="The currency to convert from.")
    target_currency: CurrencyCode = strawberry.field(
        description="The currency to convert into: another fiat currency, or fiat and crypto "
        "either way (INVALID_INPUT otherwise)."
    )
    source_amount: Decimal | None = strawberry.field(
        default=None,
        description="Everything to take from the source wallet, fee included, in "
        "sourceCurrency's decimals; within the currency's minimum and maximum (LIMIT_EXCEEDED).",
    )
    target_amount: Decimal | None = strawberry.field(
        default=None,
        description="Exactly what should arrive, in targetCurrency's decimals; the "
        "sourceAmount it needs must be within the source currency's minimum and maximum.",
    )


@strawberry.type(description="The answer to createQuote.")
class CreateQuotePayload:
    quote: Quote | None = strawberry.field(
        default=None, description="The new ACTIVE quote; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.input(
    description="Converts between the viewer's own wallets at a quote: fiat exchange, "
    "crypto buy, crypto sell."
)
class ConvertInput:
    quote_id: strawberry.ID = strawberry.field(
        description="An ACTIVE quote of the viewer's (a Quote global ID; NOT_FOUND otherwise)."
    )
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_KEY)


@strawberry.type(description="The answer to convert.")
class ConvertPayload:
    transaction: Transaction | None = strawberry.field(
        default=None,
        description="The COMPLETED EXCHANGE, CRYPTO_BUY or CRYPTO_SELL; null when refused.",
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.type(description="One wallet of a portfolio and what it is worth.")
class Holding:
    wallet: Wallet = strawberry.field(description="The wallet valued.")
    rate: Decimal = strawberry.field(
        description="Mid rate from the wallet's currency to the valuation currency."
    )
    value: MoneyType = strawberry.field(
        description="The wallet's balance x rate, rounded down to the valuation currency's "
        "decimals."
    )

    @classmethod
    def of(cls, h: rates.Holding) -> Holding:
        return cls(wallet=Wallet.of(h.wallet), rate=h.rate, value=MoneyType.of(h.value))


@strawberry.type(
    description="What a user's wallets are worth in one currency, at mid rates (no spread)."
)
class Portfolio:
    total_value: MoneyType = strawberry.field(description="The sum of the holdings' values.")
    holdings: list[Holding] = strawberry.field(
        metadata=cost(size=len(CurrencyCode)), description="One per wallet, oldest wallet first."
    )

    @classmethod
    def of(cls, p: rates.Portfolio) -> Portfolio:
        return cls(total_value=MoneyType.of(p.total), holdings=[Holding.of(h) for h in p.holdings])
