"""Reusable pydantic field types for codes the whole API shares."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated, Any

from babel import Locale, UnknownLocaleError
from pydantic import AfterValidator, AwareDatetime, Field

from skycart.money import is_currency

# Timestamps an airline may send lie in this range: arithmetic on them (a sales window, a month's end)
# can never overflow, and a typo such as year 9999 is refused instead of stored.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _utc(value: datetime) -> datetime:
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00:00-05:00 is past the last datetime in UTC
        value = LATEST
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must lie between {EARLIEST.year} and {LATEST.year - 1}")
    return value


def _currency(value: str) -> str:
    if not is_currency(value):
        raise ValueError(f"{value!r} is not an ISO-4217 currency code")
    return value


def _locale(value: str) -> str:
    try:
        Locale.parse(value, sep="-")
    except (ValueError, UnknownLocaleError) as exc:
        raise ValueError(f"{value!r} is not a known locale") from exc
    return value


CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"]), AfterValidator(_currency)]
LocaleCode = Annotated[
    str, Field(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$", examples=["en", "pt-BR"]), AfterValidator(_locale)
]
AirlineCode = Annotated[str, Field(pattern=r"^[A-Z0-9]{2,3}$", examples=["SK"])]
# Money as a decimal string (minor units are checked against the currency where it is known).
Amount = Annotated[str, Field(pattern=r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?$", examples=["4.50"])]
# A lower-case name: product restrictions, plan features.
Tag = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", examples=["alcohol", "duty_free"])]
SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=SKU_PATTERN)]


def _plausible_date(value: date) -> date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError(f"must lie between {EARLIEST.year} and {LATEST.year - 1}")
    return value


# A calendar date between EARLIEST and LATEST.
PlausibleDate = Annotated[date, AfterValidator(_plausible_date)]
# A timestamp with an explicit offset, normalized to UTC on the way in, between EARLIEST and LATEST.
UTCTimestamp = Annotated[AwareDatetime, AfterValidator(_utc)]


def bounded_json(value: Any, *, what: str, max_bytes: int, max_depth: int) -> Any:
    """`value` if it is plain JSON (no NaN or Infinity) of at most `max_bytes` and `max_depth` levels."""
    try:
        size = len(json.dumps(value, allow_nan=False, separators=(",", ":")).encode())
    except ValueError as exc:
        raise ValueError(f"{what} must be plain JSON: NaN and Infinity are not numbers here") from exc
    if size > max_bytes:
        raise ValueError(f"{what} may take {max_bytes} bytes as JSON, not {size}")
    level, nodes = 0, [value]
    while nodes:
        level += 1
        if level > max_depth:
            raise ValueError(f"{what} may nest {max_depth} levels deep at most")
        nodes = [
            child
            for node in nodes
            if isinstance(node, dict | list)
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
    return value
