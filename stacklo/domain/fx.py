"""Exchange rates and quote pricing: pure rules, no I/O.

Conventions
- A pair ``BASE/QUOTE`` with mid ``m`` means 1 BASE = m QUOTE (USD/NGN 1550: one dollar is
  1550 naira).
- A feed gives *direct* pairs (the sandbox: every currency against USD; Coinbase: USD against
  every currency). Any other pair is a cross rate through the anchor, USD:
  ``mid(A/B) = usd(A) / usd(B)`` where ``usd(X)`` is what one X is worth in USD.
- Rates keep ``RATE_DIGITS`` significant digits. Money amounts keep their currency's decimals
  (``domain/money.py``).
- Supported pairs: any two different fiat currencies, or fiat and crypto either way. Crypto to
  crypto has no transaction kind in the contract and is refused (INVALID_INPUT).

Pricing (what a quote locks)
- Spread: ``bid = mid * (1 - s/2)``, ``ask = mid * (1 + s/2)`` with ``s`` the pair class's
  spread (fiat-fiat or crypto). A customer converting S into T gets ``rate = bid(S/T)``,
  rounded down to ``RATE_DIGITS``.
- Fee: a share of the source amount by quote kind (EXCHANGE, CRYPTO_BUY, CRYPTO_SELL),
  charged in the source currency and *included* in ``sourceAmount``, which is everything
  that leaves the source wallet.
- Rounding (never in the customer's favour by more than nothing, never against them by more
  than one minor unit):
  * source given: ``fee = up(source * f)``, ``target = down((source - fee) * rate)``.
  * target given: ``source`` is the smallest amount, in whole minor units, with
    ``source - up(source * f) >= target / rate``; the customer receives exactly ``target``.
  ``up``/``down`` quantise to the currency's decimals. So ``target <= (source - fee) * rate``
  always holds: the platform never pays out more than the locked rate buys.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal
from enum import Enum

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.ledger import Posting, TransactionKind
from stacklo.domain.money import (
    CURRENCIES,
    MONEY_CONTEXT,
    CurrencyCode,
    CurrencyKind,
    Money,
    parse_amount,
    quantize,
)

ANCHOR = CurrencyCode.USD
RATE_DIGITS = 12
_BPS = Decimal(10_000)


def round_rate(value: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """``value`` to ``RATE_DIGITS`` significant digits."""
    if value <= 0:
        raise ValueError("a rate is positive")
    exponent = value.adjusted() - RATE_DIGITS + 1
    rounded = value.quantize(Decimal(1).scaleb(exponent), rounding=rounding, context=MONEY_CONTEXT)
    return rounded.normalize(MONEY_CONTEXT)


def _is_crypto(code: CurrencyCode) -> bool:
    return CURRENCIES[code].kind is CurrencyKind.CRYPTO


@dataclass(frozen=True, slots=True)
class Pair:
    base: CurrencyCode
    quote: CurrencyCode

    def __str__(self) -> str:
        return f"{self.base.value}/{self.quote.value}"

    @classmethod
    def parse(cls, text: str) -> Pair:
        base, _, quote = text.partition("/")
        return cls(CurrencyCode(base), CurrencyCode(quote))

    @property
    def inverse(self) -> Pair:
        return Pair(self.quote, self.base)

    @property
    def supported(self) -> bool:
        return self.base is not self.quote and not (
            _is_crypto(self.base) and _is_crypto(self.quote)
        )

    @property
    def crypto(self) -> bool:
        return _is_crypto(self.base) or _is_crypto(self.quote)


SUPPORTED_PAIRS: tuple[Pair, ...] = tuple(
    p for b in CurrencyCode for q in CurrencyCode if (p := Pair(b, q)).supported
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One feed reading: direct pairs' mids, when, and from whom."""

    mids: Mapping[Pair, Decimal]
    at: datetime
    source: str

    def usd_values(self) -> dict[CurrencyCode, Decimal]:
        """What one unit of each currency is worth in the anchor currency."""
        out = {ANCHOR: Decimal(1)}
        for pair, mid in self.mids.items():
            if pair.quote is ANCHOR:
                out[pair.base] = mid
            elif pair.base is ANCHOR:
                out[pair.quote] = MONEY_CONTEXT.divide(Decimal(1), mid)
        return out

    def mid(self, pair: Pair) -> Decimal | None:
        """The pair's mid: direct, inverted, or crossed through the anchor; None if unknown."""
        if pair.base is pair.quote:
            return Decimal(1)
        if pair in self.mids:
            return self.mids[pair]
        if pair.inverse in self.mids:
            return round_rate(MONEY_CONTEXT.divide(Decimal(1), self.mids[pair.inverse]))
        values = self.usd_values()
        if pair.base not in values or pair.quote not in values:
            return None
        return round_rate(MONEY_CONTEXT.divide(values[pair.base], values[pair.quote]))

    def to_dict(self) -> dict[str, object]:
        return {
            "mids": {str(p): format(m, "f") for p, m in self.mids.items()},
            "at": self.at.isoformat(),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Snapshot:
        mids = data["mids"]
        assert isinstance(mids, Mapping)
        return cls(
            {Pair.parse(p): Decimal(str(m)) for p, m in mids.items()},
            datetime.fromisoformat(str(data["at"])),
            str(data["source"]),
        )


@dataclass(frozen=True, slots=True)
class ExchangeRate:
    pair: Pair
    bid: Decimal
    ask: Decimal
    mid: Decimal
    source: str
    updated_at: datetime


class QuoteKind(Enum):
    EXCHANGE = "EXCHANGE"
    CRYPTO_BUY = "CRYPTO_BUY"
    CRYPTO_SELL = "CRYPTO_SELL"

    @classmethod
    def of(cls, pair: Pair) -> QuoteKind:
        if _is_crypto(pair.quote):
            return cls.CRYPTO_BUY
        if _is_crypto(pair.base):
            return cls.CRYPTO_SELL
        return cls.EXCHANGE

    @property
    def transaction_kind(self) -> TransactionKind:
        return TransactionKind(self.value)


class QuoteStatus(Enum):
    ACTIVE = "ACTIVE"
    USED = "USED"
    EXPIRED = "EXPIRED"


@dataclass(slots=True)
class Quote:
    id: uuid.UUID
    user_id: uuid.UUID
    kind: QuoteKind
    source: Money
    target: Money
    rate: Decimal
    fee: Money
    mid: Decimal
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    transaction_id: uuid.UUID | None = None

    def status(self, now: datetime) -> QuoteStatus:
        if self.used_at is not None:
            return QuoteStatus.USED
        return QuoteStatus.EXPIRED if now >= self.expires_at else QuoteStatus.ACTIVE

    @property
    def pair(self) -> Pair:
        return Pair(self.source.currency, self.target.currency)

    def check_usable(self, now: datetime, field: tuple[str, ...] = ("input", "quoteId")) -> None:
        status = self.status(now)
        if status is QuoteStatus.USED:
            raise DomainError(
                ErrorCode.QUOTE_ALREADY_USED, "This quote has already been used.", field
            )
        if status is QuoteStatus.EXPIRED:
            raise DomainError(
                ErrorCode.QUOTE_EXPIRED, "This quote has expired; create a new one.", field
            )

    def conversion_postings(
        self,
        source_wallet: uuid.UUID,
        target_wallet: uuid.UUID,
        fees: uuid.UUID,
        source_liquidity: uuid.UUID,
        target_liquidity: uuid.UUID,
    ) -> list[Posting]:
        """The two linked legs: S from the customer to FX liquidity (fee split off), T from FX
        liquidity to the target wallet. Each currency's legs sum to zero."""
        s, t = self.source.currency, self.target.currency
        legs = [
            Posting(source_wallet, s, MONEY_CONTEXT.minus(self.source.amount)),
            Posting(
                source_liquidity, s, MONEY_CONTEXT.subtract(self.source.amount, self.fee.amount)
            ),
            Posting(target_liquidity, t, MONEY_CONTEXT.minus(self.target.amount)),
            Posting(target_wallet, t, self.target.amount),
        ]
        if self.fee.amount:
            legs.insert(1, Posting(fees, s, self.fee.amount))
        return legs


@dataclass(frozen=True, slots=True)
class Pricing:
    """Spreads, fees and amount bounds. Basis points: 100 bps = 1%."""

    spread_bps_fiat: Decimal
    spread_bps_crypto: Decimal
    fee_bps: Mapping[QuoteKind, Decimal]
    min_amount: Mapping[CurrencyCode, Decimal]
    max_amount: Mapping[CurrencyCode, Decimal]
    max_age: timedelta
    ttl: timedelta

    def half_spread(self, pair: Pair) -> Decimal:
        spread = self.spread_bps_crypto if pair.crypto else self.spread_bps_fiat
        return MONEY_CONTEXT.divide(spread, 2 * _BPS)

    def rate(self, snapshot: Snapshot, pair: Pair) -> ExchangeRate | None:
        mid = snapshot.mid(pair)
        if mid is None:
            return None
        h = self.half_spread(pair)
        bid = round_rate(MONEY_CONTEXT.multiply(mid, 1 - h), ROUND_DOWN)
        ask = round_rate(MONEY_CONTEXT.multiply(mid, 1 + h), ROUND_UP)
        direct = pair in snapshot.mids or pair.inverse in snapshot.mids
        source = snapshot.source if direct else f"{snapshot.source} via {ANCHOR.value}"
        return ExchangeRate(pair, bid, ask, mid, source, snapshot.at)

    def fresh(self, snapshot: Snapshot | None, now: datetime) -> Snapshot:
        if snapshot is None or now - snapshot.at > self.max_age:
            raise DomainError(
                ErrorCode.PROVIDER_UNAVAILABLE,
                "Exchange rates are temporarily unavailable; try again shortly.",
            )
        return snapshot

    def quote(
        self,
        user_id: uuid.UUID,
        snapshot: Snapshot | None,
        source: CurrencyCode,
        target: CurrencyCode,
        source_amount: Decimal | None,
        target_amount: Decimal | None,
        now: datetime,
    ) -> Quote:
        if (source_amount is None) == (target_amount is None):
            raise DomainError(
                ErrorCode.INVALID_INPUT, "Give exactly one of sourceAmount and targetAmount."
            )
        pair = Pair(source, target)
        if not pair.supported:
            raise DomainError(
                ErrorCode.INVALID_INPUT,
                f"{pair} cannot be converted: pick two different currencies, at most one crypto.",
                ("input", "targetCurrency"),
            )
        fresh = self.fresh(snapshot, now)
        rate = self.rate(fresh, pair)
        if rate is None:
            raise DomainError(
                ErrorCode.PROVIDER_UNAVAILABLE, f"No rate for {pair} right now; try again shortly."
            )
        kind = QuoteKind.of(pair)
        fee_share = MONEY_CONTEXT.divide(self.fee_bps.get(kind, Decimal(0)), _BPS)
        if source_amount is not None:
            paid = parse_amount(source_amount, source, ("input", "sourceAmount"))
            fee, received = source_to_target(paid, fee_share, rate.bid, source, target)
        else:
            assert target_amount is not None
            received = parse_amount(target_amount, target, ("input", "targetAmount"))
            paid, fee = target_to_source(received, fee_share, rate.bid, source)
        field = ("input", "sourceAmount" if source_amount is not None else "targetAmount")
        self._check_bounds(source, paid, target, received, field)
        return Quote(
            id=uuid.uuid4(),
            user_id=user_id,
            kind=kind,
            source=Money(paid, source),
            target=Money(received, target),
            rate=rate.bid,
            fee=Money(fee, source),
            mid=rate.mid,
            created_at=now,
            expires_at=now + self.ttl,
        )

    def _check_bounds(
        self,
        source: CurrencyCode,
        paid: Decimal,
        target: CurrencyCode,
        received: Decimal,
        field: tuple[str, ...],
    ) -> None:
        low, high = self.min_amount.get(source), self.max_amount.get(source)
        if low is not None and paid < low:
            raise DomainError(
                ErrorCode.LIMIT_EXCEEDED,
                f"The smallest conversion from {source.value} is {low} {source.value}.",
                field,
            )
        if high is not None and paid > high:
            raise DomainError(
                ErrorCode.LIMIT_EXCEEDED,
                f"The largest conversion from {source.value} is {high} {source.value}.",
                field,
            )
        if received <= 0:
            raise DomainError(
                ErrorCode.LIMIT_EXCEEDED,
                f"That is less than the smallest {target.value} amount after fees.",
                field,
            )


def source_to_target(
    paid: Decimal, fee_share: Decimal, rate: Decimal, source: CurrencyCode, target: CurrencyCode
) -> tuple[Decimal, Decimal]:
    """(fee, target) for a source amount: fee rounds up, the target rounds down."""
    fee = quantize(MONEY_CONTEXT.multiply(paid, fee_share), source, ROUND_UP)
    converted = MONEY_CONTEXT.subtract(paid, fee)
    return fee, quantize(MONEY_CONTEXT.multiply(converted, rate), target, ROUND_DOWN)


def target_to_source(
    received: Decimal, fee_share: Decimal, rate: Decimal, source: CurrencyCode
) -> tuple[Decimal, Decimal]:
    """(source, fee) for an exact target: the smallest source, in whole minor units, whose
    amount after its own fee buys ``received`` at ``rate``."""
    need = MONEY_CONTEXT.divide(received, rate)
    paid = quantize(MONEY_CONTEXT.divide(need, 1 - fee_share), source, ROUND_UP)
    unit = CURRENCIES[source].exponent
    while True:
        fee = quantize(MONEY_CONTEXT.multiply(paid, fee_share), source, ROUND_UP)
        if MONEY_CONTEXT.subtract(paid, fee) >= need:
            return paid, fee
        paid = MONEY_CONTEXT.add(paid, unit)


def value_in(amount: Money, snapshot: Snapshot, valuation: CurrencyCode) -> tuple[Decimal, Money]:
    """(mid rate, value) of ``amount`` in ``valuation``; value rounds down. No spread: a
    portfolio is valued, not sold."""
    mid = snapshot.mid(Pair(amount.currency, valuation))
    if mid is None:
        raise DomainError(
            ErrorCode.PROVIDER_UNAVAILABLE, "Exchange rates are temporarily unavailable."
        )
    value = quantize(MONEY_CONTEXT.multiply(amount.amount, mid), valuation, ROUND_DOWN)
    return mid, Money(value, valuation)


DEFAULT_FEE_BPS = {
    QuoteKind.EXCHANGE: Decimal(50),
    QuoteKind.CRYPTO_BUY: Decimal(100),
    QuoteKind.CRYPTO_SELL: Decimal(100),
}
DEFAULT_MIN_AMOUNT = {
    CurrencyCode.NGN: Decimal(100),
    CurrencyCode.USD: Decimal(1),
    CurrencyCode.GBP: Decimal(1),
    CurrencyCode.EUR: Decimal(1),
    CurrencyCode.BTC: Decimal("0.00001"),
    CurrencyCode.ETH: Decimal("0.0001"),
    CurrencyCode.USDT: Decimal(1),
}
DEFAULT_MAX_AMOUNT = {
    CurrencyCode.NGN: Decimal(50_000_000),
    CurrencyCode.USD: Decimal(100_000),
    CurrencyCode.GBP: Decimal(80_000),
    CurrencyCode.EUR: Decimal(90_000),
    CurrencyCode.BTC: Decimal(2),
    CurrencyCode.ETH: Decimal(30),
    CurrencyCode.USDT: Decimal(100_000),
}
