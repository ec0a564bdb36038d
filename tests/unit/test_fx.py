"""FX pricing: cross rates, spreads, fees and rounding, checked against exact rational maths.

Expected values are computed with ``Fraction`` (no rounding at all) and the documented rules
(``stacklo/domain/fx.py``), never by calling the functions under test.
"""

import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.fx import (
    DEFAULT_FEE_BPS,
    DEFAULT_MAX_AMOUNT,
    DEFAULT_MIN_AMOUNT,
    RATE_DIGITS,
    SUPPORTED_PAIRS,
    Pair,
    Pricing,
    Quote,
    QuoteKind,
    QuoteStatus,
    Snapshot,
    round_rate,
    value_in,
)
from stacklo.domain.ledger import TransactionKind, check_balanced
from stacklo.domain.money import CURRENCIES, CurrencyCode, CurrencyKind, Money

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
USER = uuid.uuid4()
USD, NGN, GBP, EUR = CurrencyCode.USD, CurrencyCode.NGN, CurrencyCode.GBP, CurrencyCode.EUR
BTC, ETH, USDT = CurrencyCode.BTC, CurrencyCode.ETH, CurrencyCode.USDT
CRYPTO = {c for c in CurrencyCode if CURRENCIES[c].kind is CurrencyKind.CRYPTO}

# What one unit is worth in USD (the sandbox's starting mids).
USD_VALUE: dict[CurrencyCode, Fraction] = {
    USD: Fraction(1),
    NGN: 1 / Fraction(1550),
    GBP: Fraction("1.27"),
    EUR: Fraction("1.08"),
    BTC: Fraction(95000),
    ETH: Fraction(3400),
    USDT: Fraction(1),
}
SANDBOX_MIDS = {
    Pair(USD, NGN): Decimal("1550"),
    Pair(GBP, USD): Decimal("1.27"),
    Pair(EUR, USD): Decimal("1.08"),
    Pair(BTC, USD): Decimal("95000"),
    Pair(ETH, USD): Decimal("3400"),
    Pair(USDT, USD): Decimal("1"),
}
SNAPSHOT = Snapshot(SANDBOX_MIDS, NOW, "sandbox")


def pricing(
    *,
    fiat: int = 100,
    crypto: int = 200,
    fees: dict[QuoteKind, Decimal] | None = None,
    bounded: bool = True,
    max_age: timedelta = timedelta(minutes=5),
    ttl: timedelta = timedelta(seconds=30),
) -> Pricing:
    return Pricing(
        spread_bps_fiat=Decimal(fiat),
        spread_bps_crypto=Decimal(crypto),
        fee_bps=DEFAULT_FEE_BPS if fees is None else fees,
        min_amount=DEFAULT_MIN_AMOUNT if bounded else {},
        max_amount=DEFAULT_MAX_AMOUNT if bounded else {},
        max_age=max_age,
        ttl=ttl,
    )


PRICING = pricing()


# ------------------------------------------------------------------------- exact helpers


def unit(code: CurrencyCode) -> Fraction:
    return Fraction(1, 10 ** CURRENCIES[code].decimals)


def up(x: Fraction, code: CurrencyCode) -> Fraction:
    return math.ceil(x / unit(code)) * unit(code)


def down(x: Fraction, code: CurrencyCode) -> Fraction:
    return math.floor(x / unit(code)) * unit(code)


def sig_round(x: Fraction, how: Callable[[Fraction], int]) -> Fraction:
    """``x`` (> 0) to RATE_DIGITS significant digits with ``how`` (math.floor, math.ceil, round)."""
    e = Decimal(x.numerator).adjusted() - Decimal(x.denominator).adjusted()
    while Fraction(10) ** e > x:
        e -= 1
    while Fraction(10) ** (e + 1) <= x:
        e += 1
    step = Fraction(10) ** (e - RATE_DIGITS + 1)
    return how(x / step) * step


def significant_digits(d: Decimal) -> int:
    return len(d.normalize().as_tuple().digits)


def quantised(amount: Decimal, code: CurrencyCode) -> bool:
    return amount.as_tuple().exponent == -CURRENCIES[code].decimals


def fee_share(p: Pricing, pair: Pair) -> Fraction:
    return Fraction(p.fee_bps.get(QuoteKind.of(pair), Decimal(0))) / 10_000


def half_spread(p: Pricing, pair: Pair) -> Fraction:
    bps = p.spread_bps_crypto if pair.crypto else p.spread_bps_fiat
    return Fraction(bps) / 20_000


def minimal_source(target: Fraction, f: Fraction, rate: Fraction, code: CurrencyCode) -> Fraction:
    """The smallest whole-minor-unit source with ``source - up(source * f) >= target / rate``."""
    need = target / rate
    # s - up(s f) <= s (1 - f), so nothing below need / (1 - f) can work
    s = up(need / (1 - f), code)
    while s - up(s * f, code) < need:
        s += unit(code)
    return s


# ------------------------------------------------------------------------- strategies

scales = st.integers(min_value=5_000, max_value=20_000).map(lambda n: Fraction(n, 10_000))
_RAW = Context(prec=20)  # how many digits a feed like Coinbase sends for USD/X


@st.composite
def snapshots(draw: st.DrawFn) -> tuple[Snapshot, dict[CurrencyCode, Fraction]]:
    """A snapshot with each realistic mid scaled by 0.5..2, in either feed orientation; and
    the exact USD value of one unit of each currency that the snapshot encodes."""
    values = {USD: Fraction(1)}
    mids: dict[Pair, Decimal] = {}
    coinbase = draw(st.booleans())
    for code in CurrencyCode:
        if code is USD:
            continue
        usd = USD_VALUE[code] * draw(scales)
        if coinbase:  # USD/X, as many digits as the feed sends
            mid = _RAW.divide(Decimal(usd.denominator), Decimal(usd.numerator))
            mids[Pair(USD, code)] = mid
            values[code] = 1 / Fraction(mid)
        elif code is NGN:  # USD/NGN: the sandbox quotes naira per dollar
            naira = round(1 / usd, 4)
            mid = Decimal(naira.numerator) / Decimal(naira.denominator)
            mids[Pair(USD, NGN)] = mid
            values[code] = 1 / Fraction(mid)
        else:
            mid = Decimal(usd.numerator) / Decimal(usd.denominator)
            mids[Pair(code, USD)] = mid
            values[code] = Fraction(mid)
    return Snapshot(mids, NOW, "coinbase" if coinbase else "sandbox"), values


bps = st.integers(min_value=0, max_value=500).map(Decimal)


@st.composite
def pricings(draw: st.DrawFn) -> Pricing:
    return Pricing(
        spread_bps_fiat=draw(bps),
        spread_bps_crypto=draw(bps),
        fee_bps={k: draw(bps) for k in QuoteKind},
        min_amount=draw(st.sampled_from([DEFAULT_MIN_AMOUNT, {}])),
        max_amount=draw(st.sampled_from([DEFAULT_MAX_AMOUNT, {}])),
        max_age=timedelta(minutes=5),
        ttl=timedelta(seconds=30),
    )


def amounts(code: CurrencyCode) -> st.SearchStrategy[Decimal]:
    """Positive amounts with at most the currency's decimals: log-spread round numbers from
    one minor unit to about 10^13 major units, and full-precision ones (every minor unit
    significant) up to 10^12 major units, inside NUMERIC(38, 18)."""
    d = CURRENCIES[code].decimals
    round_numbers = st.builds(
        lambda m, e: Decimal(m).scaleb(e),
        st.integers(min_value=1, max_value=10**7),
        st.integers(min_value=-d, max_value=6),
    )
    return st.one_of(round_numbers, full_precision(code))


def full_precision(code: CurrencyCode, integer_digits: int = 12) -> st.SearchStrategy[Decimal]:
    """Amounts whose every digit is significant, log-spread up to 10^integer_digits."""
    d = CURRENCIES[code].decimals
    return (
        st.integers(min_value=1, max_value=d + integer_digits)
        .flatmap(lambda k: st.integers(min_value=10 ** (k - 1), max_value=10**k - 1))
        .map(lambda n: Decimal(n).scaleb(-d))
    )


pairs = st.sampled_from(SUPPORTED_PAIRS)


def wallets() -> dict[str, uuid.UUID]:
    names = ("source_wallet", "target_wallet", "fees", "source_liquidity", "target_liquidity")
    return {n: uuid.uuid4() for n in names}


# ------------------------------------------------------------------------- pairs and rates


def test_supported_pairs() -> None:
    assert len(SUPPORTED_PAIRS) == 36
    assert len(set(SUPPORTED_PAIRS)) == 36
    for p in SUPPORTED_PAIRS:
        assert p.base is not p.quote
        assert not (p.base in CRYPTO and p.quote in CRYPTO)
    assert Pair(NGN, BTC) in SUPPORTED_PAIRS and Pair(BTC, NGN) in SUPPORTED_PAIRS
    assert Pair.parse("USD/NGN") == Pair(USD, NGN) and str(Pair(USD, NGN)) == "USD/NGN"


@pytest.mark.parametrize(
    "pair",
    [Pair(BTC, ETH), Pair(ETH, USDT), Pair(USDT, BTC), Pair(USD, USD), Pair(BTC, BTC)],
    ids=str,
)
@pytest.mark.parametrize("by_source", [True, False])
def test_crypto_to_crypto_and_same_currency_are_refused(pair: Pair, by_source: bool) -> None:
    amount = Decimal(1)
    with pytest.raises(DomainError) as e:
        PRICING.quote(
            USER,
            SNAPSHOT,
            pair.base,
            pair.quote,
            amount if by_source else None,
            None if by_source else amount,
            NOW,
        )
    assert e.value.code is ErrorCode.INVALID_INPUT
    assert e.value.field == ("input", "targetCurrency")


@pytest.mark.parametrize(
    ("pair", "kind"),
    [
        (Pair(USD, NGN), QuoteKind.EXCHANGE),
        (Pair(NGN, BTC), QuoteKind.CRYPTO_BUY),
        (Pair(USDT, GBP), QuoteKind.CRYPTO_SELL),
    ],
    ids=str,
)
def test_quote_kind(pair: Pair, kind: QuoteKind) -> None:
    assert QuoteKind.of(pair) is kind
    assert kind.transaction_kind is TransactionKind(kind.value)


def test_round_rate_keeps_twelve_significant_digits() -> None:
    assert round_rate(Decimal("1234567890123.5")) == Decimal("1.23456789012E+12")
    assert round_rate(Decimal("0.00001052631578947368")) == Decimal("0.0000105263157895")
    assert round_rate(Decimal("1.0000000000005")) == Decimal(1)  # half-even
    with pytest.raises(ValueError, match="positive"):
        round_rate(Decimal(0))


@settings(max_examples=150, deadline=None)
@given(snapshots(), st.sampled_from(list(CurrencyCode)), st.sampled_from(list(CurrencyCode)))
def test_cross_rates_match_usd_values(
    snap: tuple[Snapshot, dict[CurrencyCode, Fraction]], a: CurrencyCode, b: CurrencyCode
) -> None:
    snapshot, usd = snap
    mid = snapshot.mid(Pair(a, b))
    assert mid is not None
    if a is b:
        assert mid == 1
        return
    exact = usd[a] / usd[b]
    if Pair(a, b) in snapshot.mids:
        assert mid == snapshot.mids[Pair(a, b)]  # a direct pair is the feed's own number
    else:
        # crossed (or inverted) through USD: the exact usd(A)/usd(B), rounded half-even to
        # RATE_DIGITS; 1e-40 of slack for the 60-digit intermediate steps
        assert significant_digits(mid) <= RATE_DIGITS
        eps = Fraction(1, 10**40)
        assert Fraction(mid) in {
            sig_round(exact * (1 - eps), round),
            sig_round(exact * (1 + eps), round),
        }
    back = snapshot.mid(Pair(b, a))
    assert back is not None
    assert abs(Fraction(mid) * Fraction(back) - 1) <= Fraction(1001, 10**14)  # ~2 half-ulps


@settings(max_examples=150, deadline=None)
@given(snapshots(), pairs, st.integers(min_value=1, max_value=1000), st.integers(1, 1000))
def test_bid_below_mid_below_ask(
    snap: tuple[Snapshot, dict[CurrencyCode, Fraction]], pair: Pair, fiat: int, crypto: int
) -> None:
    snapshot, _ = snap
    p = pricing(fiat=fiat, crypto=crypto)
    rate = p.rate(snapshot, pair)
    assert rate is not None
    assert rate.mid == snapshot.mid(pair)
    assert rate.bid < rate.mid < rate.ask
    h = half_spread(p, pair)
    mid = Fraction(rate.mid)
    assert Fraction(rate.bid) == sig_round(mid * (1 - h), math.floor)
    assert Fraction(rate.ask) == sig_round(mid * (1 + h), math.ceil)
    direct = pair in snapshot.mids or pair.inverse in snapshot.mids
    assert rate.source == (snapshot.source if direct else f"{snapshot.source} via USD")


def test_zero_spread_collapses_to_mid() -> None:
    rate = pricing(fiat=0).rate(SNAPSHOT, Pair(GBP, EUR))
    assert rate is not None
    assert rate.bid == rate.mid == rate.ask == round_rate(Decimal("1.27") / Decimal("1.08"))


# ------------------------------------------------------------------------- quotes


def assert_out_of_bounds(
    p: Pricing,
    snapshot: Snapshot,
    pair: Pair,
    *,
    source_amount: Decimal | None = None,
    target_amount: Decimal | None = None,
) -> None:
    """The quote is refused with LIMIT_EXCEEDED on the amount the client gave."""
    with pytest.raises(DomainError) as e:
        p.quote(USER, snapshot, pair.base, pair.quote, source_amount, target_amount, NOW)
    assert e.value.code is ErrorCode.LIMIT_EXCEEDED
    given = "sourceAmount" if source_amount is not None else "targetAmount"
    assert e.value.field == ("input", given)


@settings(max_examples=500, deadline=None)
@given(st.data(), snapshots(), pricings(), pairs)
def test_source_given_quote_follows_the_rounding_rule(
    data: st.DataObject,
    snap: tuple[Snapshot, dict[CurrencyCode, Fraction]],
    p: Pricing,
    pair: Pair,
) -> None:
    snapshot, _ = snap
    s, t = pair.base, pair.quote
    amount = data.draw(amounts(s), label="sourceAmount")
    rate = p.rate(snapshot, pair)
    assert rate is not None
    f = fee_share(p, pair)
    r = Fraction(rate.bid)
    source = Fraction(amount)
    fee = up(source * f, s)
    target = down((source - fee) * r, t)
    low, high = p.min_amount.get(s), p.max_amount.get(s)
    refused = (
        (low is not None and source < low) or (high is not None and source > high) or target <= 0
    )
    if refused:
        assert_out_of_bounds(p, snapshot, pair, source_amount=amount)
        return
    q = p.quote(USER, snapshot, s, t, amount, None, NOW)
    assert q.rate == rate.bid and q.mid == rate.mid
    assert q.kind is QuoteKind.of(pair) and q.pair == pair
    assert Fraction(q.source.amount) == source
    assert Fraction(q.fee.amount) == fee >= 0
    assert Fraction(q.target.amount) == target > 0
    assert target <= (source - fee) * r < target + unit(t)  # down: at most one unit kept
    check_postings(q)


@settings(max_examples=500, deadline=None)
@given(st.data(), snapshots(), pricings(), pairs)
def test_target_given_quote_is_exact_and_minimal(
    data: st.DataObject,
    snap: tuple[Snapshot, dict[CurrencyCode, Fraction]],
    p: Pricing,
    pair: Pair,
) -> None:
    snapshot, _ = snap
    s, t = pair.base, pair.quote
    amount = data.draw(amounts(t), label="targetAmount")
    rate = p.rate(snapshot, pair)
    assert rate is not None
    f = fee_share(p, pair)
    r = Fraction(rate.bid)
    target = Fraction(amount)
    source = minimal_source(target, f, r, s)
    low, high = p.min_amount.get(s), p.max_amount.get(s)
    refused = (low is not None and source < low) or (high is not None and source > high)
    if refused:
        assert_out_of_bounds(p, snapshot, pair, target_amount=amount)
        return
    q = p.quote(USER, snapshot, s, t, None, amount, NOW)
    assert q.rate == rate.bid
    paid, fee, received = (
        Fraction(q.source.amount),
        Fraction(q.fee.amount),
        Fraction(q.target.amount),
    )
    assert received == target  # exactly what was asked
    assert fee == up(paid * f, s) >= 0
    assert (paid - fee) * r >= target  # the platform never pays out more than the rate buys
    less = paid - unit(s)  # one minor unit less would not pay for the target
    assert less <= 0 or (less - up(less * f, s)) * r < target
    assert paid == source
    check_postings(q)


def check_postings(q: Quote) -> None:
    w = wallets()
    legs = q.conversion_postings(**w)
    check_balanced(legs)
    for leg in legs:
        assert quantised(leg.amount, leg.currency), leg
    s, t = q.source.currency, q.target.currency
    assert quantised(q.source.amount, s) and quantised(q.fee.amount, s)
    assert quantised(q.target.amount, t)
    # exact comparisons: the default 28-digit context would round 18-decimal amounts
    moved = {(leg.wallet_id, leg.currency): Fraction(leg.amount) for leg in legs}
    source, fee, target = (
        Fraction(q.source.amount),
        Fraction(q.fee.amount),
        Fraction(q.target.amount),
    )
    assert moved[w["source_wallet"], s] == -source
    assert moved[w["target_wallet"], t] == target
    assert moved[w["target_liquidity"], t] == -target
    assert moved.get((w["fees"], s), 0) == fee
    assert moved[w["source_liquidity"], s] == source - fee
    assert len(legs) == (5 if q.fee.amount else 4)


def test_worked_example_both_ways() -> None:
    # USD/NGN 1550, fiat spread 100 bps: bid 1542.25; EXCHANGE fee 50 bps.
    q = PRICING.quote(USER, SNAPSHOT, USD, NGN, Decimal("100"), None, NOW)
    assert (q.rate, q.mid) == (Decimal("1542.25"), Decimal("1550"))
    assert q.fee == Money(Decimal("0.50"), USD)
    assert q.target == Money(Decimal("153453.87"), NGN)  # 99.50 * 1542.25 = 153453.875
    back = PRICING.quote(USER, SNAPSHOT, USD, NGN, None, Decimal("153453.87"), NOW)
    assert back.source == Money(Decimal("100.00"), USD)  # 99.99 - 0.50 buys too little
    assert back.fee == Money(Decimal("0.50"), USD)
    assert back.target == Money(Decimal("153453.87"), NGN)
    assert back.kind is QuoteKind.EXCHANGE
    assert back.expires_at == NOW + timedelta(seconds=30)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([p for p in SUPPORTED_PAIRS if ETH in (p.base, p.quote)]),
    full_precision(ETH),
)
def test_eth_postings_balance_at_full_precision(pair: Pair, amount: Decimal) -> None:
    """ETH has 18 decimals: an amount of 10^10 ETH or more has 29+ significant digits, which
    NUMERIC(38, 18) and parse_amount accept (the default 30 ETH cap is configurable)."""
    by_source = pair.base is ETH  # the ETH side is the amount given
    p = pricing(bounded=False)
    if by_source:  # a few wei buy nothing (refused, tested above): not this property's case
        rate = p.rate(SNAPSHOT, pair)
        assert rate is not None
        source = Fraction(amount)
        net = source - up(source * fee_share(p, pair), ETH)
        assume(down(net * Fraction(rate.bid), pair.quote) > 0)
    q = p.quote(
        USER,
        SNAPSHOT,
        pair.base,
        pair.quote,
        amount if by_source else None,
        None if by_source else amount,
        NOW,
    )
    check_postings(q)


@pytest.mark.parametrize(
    ("source", "target", "source_amount", "target_amount"),
    [
        (ETH, NGN, "10000000000.000000000000000001", None),
        (NGN, ETH, None, "10000000000.000000000000000001"),
        (ETH, USD, "12345678901.123456789012345678", None),
    ],
)
def test_large_full_precision_eth_amounts_balance(
    source: CurrencyCode, target: CurrencyCode, source_amount: str | None, target_amount: str | None
) -> None:
    """29 significant digits: legal (NUMERIC(38, 18), MAX_INTEGER_DIGITS 20) once an operator
    raises the ETH maximum, and the legs must still balance to the wei."""
    p = pricing(bounded=False)
    q = p.quote(
        USER,
        SNAPSHOT,
        source,
        target,
        None if source_amount is None else Decimal(source_amount),
        None if target_amount is None else Decimal(target_amount),
        NOW,
    )
    check_postings(q)


def test_zero_fee_has_no_fee_leg() -> None:
    p = pricing(fees={})
    q = p.quote(USER, SNAPSHOT, NGN, BTC, Decimal("150000"), None, NOW)
    assert q.fee.amount == 0
    legs = q.conversion_postings(**wallets())
    check_balanced(legs)
    assert len(legs) == 4


# ------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("source_amount", "target_amount"), [(None, None), ("10", "10")])
def test_exactly_one_amount(source_amount: str | None, target_amount: str | None) -> None:
    with pytest.raises(DomainError) as e:
        PRICING.quote(
            USER,
            SNAPSHOT,
            USD,
            NGN,
            None if source_amount is None else Decimal(source_amount),
            None if target_amount is None else Decimal(target_amount),
            NOW,
        )
    assert e.value.code is ErrorCode.INVALID_INPUT


@pytest.mark.parametrize(
    ("source", "target", "amount", "by_source"),
    [
        (USD, NGN, "0.99", True),
        (USD, NGN, "100000.01", True),
        (NGN, USD, "99.99", True),
        (BTC, USD, "0.00000999", True),
        (ETH, USD, "30.000000000000000001", True),
        (NGN, USD, "0.06", False),  # costs under 100 NGN
        (USD, BTC, "2", False),  # costs over 100 000 USD
        (GBP, EUR, "0.01", True),  # also below min
    ],
)
def test_limits(source: CurrencyCode, target: CurrencyCode, amount: str, by_source: bool) -> None:
    with pytest.raises(DomainError) as e:
        PRICING.quote(
            USER,
            SNAPSHOT,
            source,
            target,
            Decimal(amount) if by_source else None,
            None if by_source else Decimal(amount),
            NOW,
        )
    assert e.value.code is ErrorCode.LIMIT_EXCEEDED
    assert e.value.field == ("input", "sourceAmount" if by_source else "targetAmount")


@pytest.mark.parametrize("code", [USD, NGN, BTC, ETH])
def test_limits_are_inclusive(code: CurrencyCode) -> None:
    target = NGN if code is not NGN else USD
    low, high = DEFAULT_MIN_AMOUNT[code], DEFAULT_MAX_AMOUNT[code]
    for amount in (low, high):  # exactly the bounds: quoted
        quote = PRICING.quote(USER, SNAPSHOT, code, target, amount, None, NOW)
        assert quote.source.amount == amount
    unit = Decimal(1).scaleb(-CURRENCIES[code].decimals)
    for amount in (low - unit, high + unit):  # one minor unit past them: refused
        with pytest.raises(DomainError) as e:
            PRICING.quote(USER, SNAPSHOT, code, target, amount, None, NOW)
        assert e.value.code is ErrorCode.LIMIT_EXCEEDED


def test_unbounded_tiny_amount_buying_nothing_is_refused() -> None:
    p = pricing(bounded=False)
    with pytest.raises(DomainError) as e:
        p.quote(USER, SNAPSHOT, NGN, USD, Decimal("0.01"), None, NOW)
    assert e.value.code is ErrorCode.LIMIT_EXCEEDED


@pytest.mark.parametrize(
    ("source", "target", "amount", "by_source"),
    [
        (USD, NGN, "1.001", True),
        (USD, NGN, "1000.001", False),
        (NGN, BTC, "0.000000001", False),
        (USDT, USD, "5.0000001", True),
        (USD, NGN, "0", True),
        (USD, NGN, "-5", False),
    ],
)
def test_bad_amounts_are_invalid_input(
    source: CurrencyCode, target: CurrencyCode, amount: str, by_source: bool
) -> None:
    with pytest.raises(DomainError) as e:
        PRICING.quote(
            USER,
            SNAPSHOT,
            source,
            target,
            Decimal(amount) if by_source else None,
            None if by_source else Decimal(amount),
            NOW,
        )
    assert e.value.code is ErrorCode.INVALID_INPUT
    assert e.value.field == ("input", "sourceAmount" if by_source else "targetAmount")


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-600, max_value=600))
def test_stale_snapshots_are_refused(age_seconds: int) -> None:
    p = pricing(max_age=timedelta(seconds=300))
    snapshot = Snapshot(SANDBOX_MIDS, NOW - timedelta(seconds=age_seconds), "sandbox")
    if age_seconds > 300:
        with pytest.raises(DomainError) as e:
            p.quote(USER, snapshot, USD, NGN, Decimal(10), None, NOW)
        assert e.value.code is ErrorCode.PROVIDER_UNAVAILABLE
    else:
        assert p.quote(USER, snapshot, USD, NGN, Decimal(10), None, NOW).target.amount > 0


def test_missing_snapshot_or_rate_is_provider_unavailable() -> None:
    with pytest.raises(DomainError) as e:
        PRICING.quote(USER, None, USD, NGN, Decimal(10), None, NOW)
    assert e.value.code is ErrorCode.PROVIDER_UNAVAILABLE
    partial = Snapshot({Pair(USD, NGN): Decimal(1550)}, NOW, "sandbox")
    with pytest.raises(DomainError) as e:
        PRICING.quote(USER, partial, GBP, NGN, Decimal(10), None, NOW)
    assert e.value.code is ErrorCode.PROVIDER_UNAVAILABLE
    with pytest.raises(DomainError) as e:
        value_in(Money(Decimal(1), GBP), partial, NGN)
    assert e.value.code is ErrorCode.PROVIDER_UNAVAILABLE


# ------------------------------------------------------------------------- quote lifecycle


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-120, max_value=120), st.booleans())
def test_quote_status_and_usability(offset: int, used: bool) -> None:
    q = PRICING.quote(USER, SNAPSHOT, USD, NGN, Decimal(10), None, NOW)
    now = q.expires_at + timedelta(seconds=offset)
    if used:
        q.used_at = NOW
        assert q.status(now) is QuoteStatus.USED
        with pytest.raises(DomainError) as e:
            q.check_usable(now)
        assert e.value.code is ErrorCode.QUOTE_ALREADY_USED
    elif offset >= 0:
        assert q.status(now) is QuoteStatus.EXPIRED
        with pytest.raises(DomainError) as e:
            q.check_usable(now)
        assert e.value.code is ErrorCode.QUOTE_EXPIRED
        assert e.value.field == ("input", "quoteId")
    else:
        assert q.status(now) is QuoteStatus.ACTIVE
        q.check_usable(now)


def test_quote_expires_exactly_at_expires_at() -> None:
    q = PRICING.quote(USER, SNAPSHOT, USD, NGN, Decimal(10), None, NOW)
    assert q.status(q.expires_at - timedelta(microseconds=1)) is QuoteStatus.ACTIVE
    assert q.status(q.expires_at) is QuoteStatus.EXPIRED


# ------------------------------------------------------------------------- valuation


@settings(max_examples=200, deadline=None)
@given(
    st.data(), snapshots(), st.sampled_from(list(CurrencyCode)), st.sampled_from(list(CurrencyCode))
)
def test_value_in_uses_mid_and_rounds_down(
    data: st.DataObject,
    snap: tuple[Snapshot, dict[CurrencyCode, Fraction]],
    held: CurrencyCode,
    valuation: CurrencyCode,
) -> None:
    snapshot, _ = snap
    amount = data.draw(amounts(held))
    mid, value = value_in(Money(amount, held), snapshot, valuation)
    assert mid == snapshot.mid(Pair(held, valuation))
    assert value.currency is valuation and quantised(value.amount, valuation)
    assert Fraction(value.amount) == down(Fraction(amount) * Fraction(mid), valuation)


def test_value_in_example() -> None:
    assert value_in(Money(Decimal("1.00"), USD), SNAPSHOT, NGN) == (
        Decimal(1550),
        Money(Decimal("1550.00"), NGN),
    )
    # 1 NGN = 1/1550 USD = 0.000645161290...: down to 0.00
    mid, value = value_in(Money(Decimal("1.00"), NGN), SNAPSHOT, USD)
    assert mid == Decimal("0.000645161290323") and value == Money(Decimal("0.00"), USD)
    assert value_in(Money(Decimal("0.5"), BTC), SNAPSHOT, USD)[1] == Money(Decimal("47500.00"), USD)


def test_snapshot_round_trips_through_dict() -> None:
    assert Snapshot.from_dict(SNAPSHOT.to_dict()) == SNAPSHOT
