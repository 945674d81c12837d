"""Money: integer minor units inside, decimal strings outside.

Currency exponents come from CLDR (Babel): EUR has 2 decimals, JPY 0, KWD 3.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache

from babel.numbers import get_currency_precision, list_currencies

_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,14})(?:\.([0-9]{1,4}))?")
# The largest amount we accept, in minor units; well inside a signed 64-bit column.
MAX_MINOR = 10**14


class MoneyError(ValueError):
    """An amount or currency that cannot be represented exactly."""


@lru_cache(maxsize=512)
def currency_exponent(currency: str) -> int:
    if not is_currency(currency):
        raise MoneyError(f"unknown currency {currency!r}")
    return get_currency_precision(currency)


@lru_cache(maxsize=1)
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def is_currency(code: str) -> bool:
    return len(code) == 3 and code.isupper() and code in _currencies()


def to_minor(amount: str, currency: str) -> int:
    """Parse a non-negative decimal string ("4.50") exactly into minor units (450)."""
    exponent = currency_exponent(currency)
    match = _AMOUNT.fullmatch(amount)
    if not match:
        raise MoneyError(f'amount {amount!r} is not a decimal string such as "4.50"')
    whole, fraction = match.group(1), (match.group(2) or "")
    if len(fraction.rstrip("0")) > exponent:
        raise MoneyError(f"{currency} has {exponent} decimal places; {amount!r} has more")
    fraction = fraction[:exponent].ljust(exponent, "0")
    minor = int(whole) * 10**exponent + (int(fraction) if fraction else 0)
    if minor > MAX_MINOR:
        raise MoneyError(f"amount {amount!r} is too large")
    return minor


def to_decimal_string(minor: int, currency: str) -> str:
    """Format minor units (450) as the currency's decimal string ("4.50")."""
    exponent = currency_exponent(currency)
    value = Decimal(minor).scaleb(-exponent)
    return f"{value:.{exponent}f}"
