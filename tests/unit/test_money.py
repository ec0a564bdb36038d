from decimal import ROUND_DOWN, ROUND_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.money import (
    CURRENCIES,
    MONEY_CONTEXT,
    CurrencyCode,
    Money,
    parse_amount,
    quantize,
)

codes = st.sampled_from(list(CurrencyCode))
amounts = st.decimals(min_value=Decimal("0"), max_value=Decimal("1e15"), allow_nan=False, places=20)


def test_currency_decimals_match_the_architecture() -> None:
    assert {c.value: CURRENCIES[c].decimals for c in CurrencyCode} == {
        "NGN": 2,
        "USD": 2,
        "GBP": 2,
        "EUR": 2,
        "USDT": 6,
        "BTC": 8,
        "ETH": 18,
    }


@pytest.mark.parametrize(
    ("raw", "code", "expected"),
    [
        ("10", CurrencyCode.NGN, "10.00"),
        ("0.01", CurrencyCode.USD, "0.01"),
        ("0.00000001", CurrencyCode.BTC, "0.00000001"),
        ("1.500", CurrencyCode.NGN, "1.50"),
        ("0.000000000000000001", CurrencyCode.ETH, "0.000000000000000001"),
    ],
)
def test_parse_amount_accepts_and_quantises(raw: str, code: CurrencyCode, expected: str) -> None:
    assert format(parse_amount(raw, code), "f") == expected


@pytest.mark.parametrize(
    "raw",
    [
        "0",
        "-1",
        "0.001",
        "abc",
        "NaN",
        "Infinity",
        "1e30",
        "",
        # 31 digits after the point: Python's 28-digit context rounds it to 0.01 on the way,
        # so only an exact comparison sees it is not a cent amount.
        "0.0099999999999999999999999999999",
        "10.0000000000000000000000000000001",
        "1000000000000000",  # 10^15: no single amount is that large
    ],
)
def test_parse_amount_rejects(raw: str) -> None:
    with pytest.raises(DomainError) as e:
        parse_amount(raw, CurrencyCode.NGN)
    assert e.value.code is ErrorCode.INVALID_INPUT
    assert e.value.field == ("input", "amount")


def test_quantize_refuses_banker_style_rounding() -> None:
    with pytest.raises(ValueError, match="rounded down"):
        quantize(Decimal("1.005"), CurrencyCode.USD, "ROUND_HALF_EVEN")


@given(amounts, codes)
def test_quantize_down_and_up_bracket_the_exact_value(amount: Decimal, code: CurrencyCode) -> None:
    down = quantize(amount, code, ROUND_DOWN)
    up = quantize(amount, code, ROUND_UP)
    unit = Decimal(1).scaleb(-CURRENCIES[code].decimals)
    assert down <= amount <= up
    assert up - down in (Decimal(0), unit)
    assert -down.as_tuple().exponent == CURRENCIES[code].decimals  # type: ignore[operator]


@given(amounts, amounts, codes)
def test_money_addition_is_exact(a: Decimal, b: Decimal, code: CurrencyCode) -> None:
    total = Money(a, code) + Money(b, code)
    # (the default 28-digit context would round a + b here; money arithmetic must not)
    assert total.amount == MONEY_CONTEXT.add(a, b)
    assert (total - Money(b, code)).amount == a


def test_money_refuses_mixed_currencies_and_floats() -> None:
    with pytest.raises(ValueError, match="cannot combine"):
        Money(Decimal(1), CurrencyCode.NGN) + Money(Decimal(1), CurrencyCode.USD)
    with pytest.raises(TypeError):
        Money(1.5, CurrencyCode.NGN)  # type: ignore[arg-type]
