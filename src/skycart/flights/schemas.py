from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, model_validator

from skycart.platform.validation import PlausibleDate, Sku, UTCTimestamp

# Flight ids are ULIDs; the API takes up to this many characters, and so does the warm-menu fast path.
FLIGHT_ID_MAX = 26
FlightId = Annotated[str, Path(min_length=1, max_length=FLIGHT_ID_MAX)]
# The flight routes, and the menu's route template: what the route serves and the fast path answers.
FLIGHTS_PREFIX = "/v1/flights"
MENU_PATH = "/{flight_id}/menu"
MENU_TEMPLATE = FLIGHTS_PREFIX + MENU_PATH

Airport = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["FRA"])]


class FlightCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flight_number: str = Field(pattern=r"^[A-Z0-9]{2,3}[0-9]{1,4}[A-Z]?$", examples=["SK1234"])
    departure_date: PlausibleDate
    origin: Airport
    destination: Airport
    scheduled_departure: UTCTimestamp = Field(description="ISO-8601 with offset; stored in UTC")
    international: bool = Field(default=False, strict=True)

    @model_validator(mode="after")
    def _not_a_loop(self) -> FlightCreate:
        if self.origin == self.destination:
            raise ValueError("destination must differ from origin")
        return self


class FlightOut(BaseModel):
    id: str
    flight_number: str
    departure_date: date
    origin: str
    destination: str
    scheduled_departure: datetime
    international: bool


class StockLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    quantity: int = Field(ge=0, le=100_000, strict=True)


class InventoryPut(BaseModel):
    """The flight's whole loading list: SKUs left out are unloaded (allowed only if none sold)."""

    model_config = ConfigDict(extra="forbid")

    items: list[StockLine] = Field(max_length=5000)


class StockOut(BaseModel):
    sku: str
    loaded: int
    sold: int
    remaining: int


class InventoryOut(BaseModel):
    flight_id: str
    items: list[StockOut]


class MenuItem(BaseModel):
    sku: str
    name: str
    description: str
    category: str
    price: str
    currency: str
    available: int
    min_age: int | None
    restrictions: list[str]
    images: list[str] = Field(description="URLs of the product's 640 px WebP thumbnails, in display order")


class Menu(BaseModel):
    flight_id: str
    locale: str
    currency: str
    items: list[MenuItem]


class ReportLine(StockOut):
    name: str
    discrepancy: int = Field(ge=0, description="Units sold beyond what was loaded (offline sales); else 0")


class FlightReport(BaseModel):
    flight_id: str
    items: list[ReportLine]
    discrepancies: list[str] = Field(description="SKUs sold beyond what was loaded")
    orders: int
    revenue: dict[str, str] = Field(description="Paid and delivered orders' totals per currency")
