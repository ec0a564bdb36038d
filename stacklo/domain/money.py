"""Exact money.

Amounts are ``Decimal`` everywhere and are quantised to their currency's decimals
(NGN/USD/GBP/EUR 2, USDT 6, BTC 8, ETH 18).

Rounding rule: an amount a client sends is never rounded: more decimals than the currency
has is an error (``parse_amount``; trailing zeros are not more decimals: "10.000" is 10.00).
Amounts the platform computes (conversions, fees) are
quantised with ``quantize(amount, currency, rounding)``; the caller names the direction so
that what a customer receives rounds down and what a customer pays rounds up, and the
platform never creates value out of rounding.

Conversions and fees (``domain/fx.py`` applies them; tests/unit/test_fx.py checks them):
- fee = up(source x fee share), in the source currency, part of the source amount;
- target = down((source - fee) x rate) when the source is given;
- when the target is given, source = the smallest whole number of minor units whose amount
  after its own (rounded-up) fee buys the target at the rate; the target is paid exactly;
- rates keep 12 significant digits; a customer's rate is the bid, rounded down;
- valuations (portfolio) = down(balance x mid).
So ``target <= (source - fee) x rate`` always: rounding never pays out more than the locked
rate buys, and a customer pays at most one minor unit more than the exact price.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Context, Decimal, InvalidOperation
from enum import Enum

from stacklo.domain.errors import DomainError, ErrorCode


class CurrencyKind(Enum):
    FIAT = "FIAT"
    CRYPTO = "CRYPTO"


class CurrencyCode(Enum):
    NGN = "NGN"
    USD = "USD"
    GBP = "GBP"
    EUR = "EUR"
    BTC = "BTC"
    ETH = "ETH"
    USDT = "USDT"


@dataclass(frozen=True, slots=True)
class Currency:
    code: CurrencyCode
    name: str
    kind: CurrencyKind
    decimals: int

    @property
    def exponent(self) -> Decimal:
        return Decimal(1).scaleb(-self.decimals)


CURRENCIES: dict[CurrencyCode, Currency] = {
    c.code: c
    for c in (
        Currency(CurrencyCode.NGN, "Nigerian Naira", CurrencyKind.FIAT, 2),
        Currency(CurrencyCode.USD, "US Dollar", CurrencyKind.FIAT, 2),
        Currency(CurrencyCode.GBP, "Pound Sterling", CurrencyKind.FIAT, 2),
        Currency(CurrencyCode.EUR, "Euro", CurrencyKind.FIAT, 2),
        Currency(CurrencyCode.BTC, "Bitcoin", CurrencyKind.CRYPTO, 8),
        Currency(CurrencyCode.ETH, "Ether", CurrencyKind.CRYPTO, 18),
        Currency(CurrencyCode.USDT, "Tether USD", CurrencyKind.CRYPTO, 6),
    )
}

# NUMERIC(38, 18) in PostgreSQL: 20 integer digits. No balance may reach it (the ledger refuses
# a posting that would), and no single amount a client sends may have more than 15 (under a
# thousand trillion), so no run of movements can overflow a column and answer 500.
MAX_INTEGER_DIGITS = 20
MAX_CLIENT_INTEGER_DIGITS = 15

# All money arithmetic runs in this context, never the thread's default (28 digits, which
# would silently round an 18-decimal ETH amount above 10 billion). 60 digits holds any
# NUMERIC(38, 18) value, and the sum or product of two, exactly.
MONEY_CONTEXT = Context(prec=60, traps=[InvalidOperation])


def currency(code: CurrencyCode) -> Currency:
    return CURRENCIES[code]


def quantize(amount: Decimal, code: CurrencyCode, rounding: str = ROUND_DOWN) -> Decimal:
    """Round a computed amount to the currency's decimals in the named direction."""
    if rounding not in (ROUND_DOWN, ROUND_UP):
        raise ValueError("money is rounded down (what a customer receives) or up (what they pay)")
    return amount.quantize(CURRENCIES[code].exponent, rounding=rounding, context=MONEY_CONTEXT)


def parse_amount(
    raw: Decimal | str, code: CurrencyCode, field: tuple[str, ...] = ("input", "amount")
) -> Decimal:
    """Validate a client-supplied amount: finite, > 0, under 10^15, and exactly representable
    in the currency (no more decimals than it has). Never rounds."""
    try:
        amount = Decimal(raw)
    except (InvalidOperation, TypeError, ValueError):
        raise DomainError(ErrorCode.INVALID_INPUT, "amount is not a number", field) from None
    if not amount.is_finite():
        raise DomainError(ErrorCode.INVALID_INPUT, "amount must be a finite number", field)
    if amount <= 0:
        raise DomainError(ErrorCode.INVALID_INPUT, "amount must be greater than zero", field)
    if amount.adjusted() >= MAX_CLIENT_INTEGER_DIGITS:
        raise DomainError(ErrorCode.INVALID_INPUT, "amount is too large", field)
    exact = amount.quantize(CURRENCIES[code].exponent, rounding=ROUND_DOWN, context=MONEY_CONTEXT)
    if exact != amount:
        decimals = CURRENCIES[code].decimals
        raise DomainError(
            ErrorCode.INVALID_INPUT, f"{code.value} amounts have at most {decimals} decimals", field
        )
    return exact


def to_minor_units(amount: Money) -> int:
    """``amount`` in its currency's minor unit (kobo, cents), exactly, as Paystack wants it.

    Integer arithmetic on the Decimal's exact ratio: no float, no context precision, so an
    18-decimal amount converts as exactly as a 2-decimal one. Raises ``ValueError`` when the
    amount is not a whole number of minor units (more decimals than the currency has), because
    rounding here would send a different amount from the one the ledger holds.
    """
    value = amount.amount
    if not value.is_finite():
        raise ValueError(f"amount is not finite: {value}")
    decimals = CURRENCIES[amount.currency].decimals
    numerator, denominator = value.as_integer_ratio()
    scaled: int = numerator * 10**decimals  # int ** int is typed Any (it can be a float)
    if scaled % denominator:
        raise ValueError(
            f"{amount.currency.value} has {decimals} decimals; {value} is not a whole number "
            "of minor units"
        )
    return scaled // denominator


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: CurrencyCode

    @classmethod
    def zero(cls, code: CurrencyCode) -> Money:
        return cls(Decimal(0).quantize(CURRENCIES[code].exponent), code)

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError("Money.amount must be a Decimal")

    def quantized(self) -> Money:
        return Money(quantize(self.amount, self.currency), self.currency)

    def _same(self, other: Money) -> None:
        if other.currency is not self.currency:
            raise ValueError(f"cannot combine {self.currency.value} with {other.currency.value}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(MONEY_CONTEXT.add(self.amount, other.amount), self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(MONEY_CONTEXT.subtract(self.amount, other.amount), self.currency)

    def __neg__(self) -> Money:
        return Money(MONEY_CONTEXT.minus(self.amount), self.currency)
