"""Money parsing and formatting: exact in every currency's minor units."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skycart.money import MAX_MINOR, MoneyError, currency_exponent, to_decimal_string, to_minor

CURRENCIES = ["EUR", "USD", "JPY", "KWD", "SEK", "CHF", "BHD", "KRW"]


@given(st.integers(min_value=0, max_value=MAX_MINOR), st.sampled_from(CURRENCIES))
def test_formatting_then_parsing_gives_back_the_same_minor_units(minor: int, currency: str) -> None:
    assert to_minor(to_decimal_string(minor, currency), currency) == minor


@given(st.integers(min_value=0, max_value=MAX_MINOR), st.sampled_from(CURRENCIES))
def test_decimal_string_has_exactly_the_currencys_decimals(minor: int, currency: str) -> None:
    text = to_decimal_string(minor, currency)
    exponent = currency_exponent(currency)
    if exponent == 0:
        assert "." not in text
    else:
        assert len(text.split(".")[1]) == exponent
    assert Decimal(text) == Decimal(minor).scaleb(-exponent)


@given(
    st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False, allow_infinity=False),
    st.sampled_from(CURRENCIES),
)
def test_parsing_is_exact_or_refuses(amount: Decimal, currency: str) -> None:
    text = f"{amount:f}"
    exponent = currency_exponent(currency)
    scaled = amount.scaleb(exponent)
    if scaled == scaled.to_integral_value():
        assert to_minor(text, currency) == int(scaled)
    else:
        with pytest.raises(MoneyError):
            to_minor(text, currency)


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("4.50", "EUR", 450),
        ("4.5", "EUR", 450),
        ("4.500", "EUR", 450),
        ("0", "EUR", 0),
        ("450", "JPY", 450),
        ("1.234", "KWD", 1234),
        ("1000000", "USD", 100000000),
    ],
)
def test_known_amounts_parse_to_minor_units(amount: str, currency: str, minor: int) -> None:
    assert to_minor(amount, currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("4.505", "EUR"),
        ("1.5", "JPY"),
        ("4,50", "EUR"),
        ("-1", "EUR"),
        ("1e3", "EUR"),
        ("", "EUR"),
        (" 1", "EUR"),
        ("01.00", "EUR"),
        ("1.", "EUR"),
        ("4.50\n", "EUR"),
        ("4.50", "ABC"),
        ("9" * 13, "EUR"),
    ],
)
def test_inexact_malformed_or_unknown_amounts_are_refused(amount: str, currency: str) -> None:
    with pytest.raises(MoneyError):
        to_minor(amount, currency)
