from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from skycart.platform.validation import Amount, CurrencyCode, Sku, UTCTimestamp

SEAT_PATTERN = r"^[1-9][0-9]{0,2}[A-K]$"
MAX_SALES_PER_BATCH = 500


class OrderItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    quantity: int = Field(ge=1, le=99, strict=True)


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=200, examples=["tok_ok"])


class PassengerIn(BaseModel):
    """What SkyCart keeps about the buyer; other fields are accepted and dropped."""

    model_config = ConfigDict(extra="ignore")

    age_confirmed: bool = Field(default=False, strict=True)
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
    seat: str | None = Field(description="None for a sale from the trolley (offline sync)")
    currency: str
    items: list[OrderLineOut]
    total: str
    status: Literal["paid", "paid_offline", "delivered", "cancelled"]
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None = None
    cancelled_at: datetime | None = None


class OfflineItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    quantity: int = Field(ge=1, le=99, strict=True)
    unit_price: Amount | None = Field(default=None, description="What was charged; default the current price")


class OfflinePaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["cash", "card_offline"]


class OfflineSaleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Printable ASCII without spaces: MySQL's collations ignore trailing spaces, so "a" and "a " would collide.
    client_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[!-~]+$",
        description="The device's own unique id for the sale; a re-sent id is a duplicate",
        examples=["dev7-000123"],
    )
    seat: str | None = Field(default=None, pattern=SEAT_PATTERN, examples=["12C"])
    sold_at: UTCTimestamp = Field(description="ISO-8601 with offset; stored in UTC as the order's created_at")
    currency: CurrencyCode
    items: list[OfflineItemIn] = Field(min_length=1, max_length=50)
    payment: OfflinePaymentIn


class SalesBatch(BaseModel):
    """Sales a crew device made without connectivity, uploaded after landing."""

    model_config = ConfigDict(extra="forbid")

    flight_id: str = Field(min_length=1, max_length=26)
    sales: list[OfflineSaleIn] = Field(max_length=MAX_SALES_PER_BATCH)


class SaleError(BaseModel):
    code: str
    detail: str


class SaleResult(BaseModel):
    client_id: str
    status: Literal["inserted", "duplicate", "rejected", "conflict"] = Field(
        description="duplicate: this client_id was applied before with the same content; "
        "conflict: it was applied before with other content (nothing changed)"
    )
    order_id: str | None = Field(
        default=None, description="The sale's order; for a duplicate or conflict, the first one's"
    )
    error: SaleError | None = None
    reason: str | None = Field(default=None, description="why a sale was rejected or is a conflict")


class SyncResult(BaseModel):
    inserted: int
    duplicates: int
    rejected: int
    conflicts: int = 0
    results: list[SaleResult] = Field(description="One per sale, in request order")
