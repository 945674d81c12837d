from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from skycart.platform.validation import AirlineCode, CurrencyCode, LocaleCode, bounded_json

# An airline's settings, read on every request that needs them: at most this large and deep.
SETTINGS_BYTES = 64 * 1024
SETTINGS_DEPTH = 8


class AirlineSettings(BaseModel):
    """Airline settings kept in the database. Unknown keys are kept for the airline's own use."""

    model_config = ConfigDict(extra="allow")

    # Most items carrying a restriction tag one seat may buy per flight, e.g. {"alcohol": 2}.
    seat_limits: dict[str, StrictInt] = Field(default_factory=dict)
    branding: dict[str, Any] = Field(default_factory=dict)
    # A `stock.low` event is recorded when an order leaves fewer units of a SKU on a flight than this.
    stock_low_threshold: StrictInt | None = Field(default=None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _non_negative(self) -> AirlineSettings:
        bounded_json(self.model_dump(), what="settings", max_bytes=SETTINGS_BYTES, max_depth=SETTINGS_DEPTH)
        for tag, limit in self.seat_limits.items():
            if limit < 0 or limit > 10_000:
                raise ValueError(f"seat_limits.{tag} must be between 0 and 10000")
        return self


class AirlineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: AirlineCode
    name: str = Field(min_length=1, max_length=200)
    currencies: list[CurrencyCode] = Field(min_length=1, max_length=20)
    default_locale: LocaleCode = "en"
    locales: list[LocaleCode] | None = Field(default=None, max_length=50)
    settings: AirlineSettings = Field(default_factory=AirlineSettings)


class AirlineUpdate(BaseModel):
    """Fields left out stay as they are; `settings` is merged (RFC 7396: null removes a key)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    currencies: list[CurrencyCode] | None = Field(default=None, min_length=1, max_length=20)
    default_locale: LocaleCode | None = None
    locales: list[LocaleCode] | None = Field(default=None, max_length=50)
    settings: dict[str, Any] | None = None


class AirlineOut(BaseModel):
    id: str
    code: str
    name: str
    currencies: list[str]
    default_locale: str
    locales: list[str]
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=100)


class KeyCreated(BaseModel):
    id: str
    key: str = Field(description="The plain key. Shown once; only its hash is stored.")
    role: Literal["airline", "operator"]
    airline: str | None
    prefix: str
    name: str
    created_at: datetime
