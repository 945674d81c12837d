from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from skycart.platform.validation import CurrencyCode, Sku

SEAT_PATTERN = r"^[1-9][0-9]{0,2}[A-K]$"


class OrderItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    quantity: int = Field(ge=1, le=99)


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=200, examples=["tok_ok"])


class PassengerIn(BaseModel):
    """What SkyCart keeps about the buyer; other fields are accepted and dropped."""

    model_config = ConfigDict(extra="ignore")

    age_confirmed: bool = False
    name: str | None = Field(default=None, max_length=200)


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flight_id: str = Field(min_length=1, max_length=26)
    seat: str = Field(pattern=SEAT_PATTERN, examples=["12C"])
    currency: CurrencyCode
    items: list[OrderItemIn] = Field(min_length=1, max_length=50)
    payment: PaymentIn
    passenger: PassengerIn = Field(default_factory=PassengerIn)


class OrderLineOut(BaseModel):
    sku: str
    quantity: int
    unit_price: str
    line_total: str


class OrderOut(BaseModel):
    id: str
    flight_id: str
    seat: str
    currency: str
    items: list[OrderLineOut]
    total: str
    status: Literal["paid", "paid_offline", "delivered", "cancelled"]
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None = None
    cancelled_at: datetime | None = None
