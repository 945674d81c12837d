"""Reusable pydantic field types for codes the whole API shares."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from babel import Locale, UnknownLocaleError
from pydantic import AfterValidator, AwareDatetime, Field

from skycart.money import is_currency


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


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
SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=SKU_PATTERN)]

# A timestamp with an explicit offset, normalized to UTC on the way in.
UTCTimestamp = Annotated[AwareDatetime, AfterValidator(_utc)]
