from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skycart.money import MoneyError, to_minor
from skycart.platform.validation import Amount, CurrencyCode, LocaleCode, Sku, Tag, bounded_json

# A product's free-form attributes, served in every list and menu: at most this large and deep.
ATTRIBUTES_BYTES = 16 * 1024
ATTRIBUTES_DEPTH = 5

Text = Annotated[str, Field(min_length=1, max_length=2000)]


class ProductFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: dict[LocaleCode, Text] = Field(min_length=1, max_length=50, examples=[{"en": "Sparkling water"}])
    description: dict[LocaleCode, Text] = Field(default_factory=dict, max_length=50)
    category: str = Field(min_length=1, max_length=100)
    prices: dict[CurrencyCode, Amount] = Field(min_length=1, max_length=20, examples=[{"EUR": "4.50"}])
    # Strict, because a lax int would turn a JSON `true` into age 1.
    min_age: int | None = Field(default=None, ge=0, le=99, strict=True)
    restrictions: list[Tag] = Field(default_factory=list, max_length=20)
    attributes: dict[str, Any] = Field(default_factory=dict)
    active: bool = Field(default=True, strict=True)

    @field_validator("prices")
    @classmethod
    def _exact_in_currency(cls, prices: dict[str, str]) -> dict[str, str]:
        for currency, amount in prices.items():
            try:
                to_minor(amount, currency)
            except MoneyError as exc:
                raise ValueError(f"{currency}: {exc}") from exc
        return prices

    @field_validator("attributes")
    @classmethod
    def _plain_json(cls, attributes: dict[str, Any]) -> dict[str, Any]:
        # Served in every product list and menu: small and shallow (a CSV import's cells are parsed too).
        return bounded_json(attributes, what="attributes", max_bytes=ATTRIBUTES_BYTES, max_depth=ATTRIBUTES_DEPTH)

    @field_validator("restrictions")
    @classmethod
    def _unique_tags(cls, tags: list[str]) -> list[str]:
        return list(dict.fromkeys(tags))


class ProductCreate(ProductFields):
    sku: Sku


class ProductReplace(ProductFields):
    """PUT body: the whole product. `sku`, if given, must equal the path's."""

    sku: Sku | None = None


class ImageOut(BaseModel):
    id: str
    url: str = Field(description="The original as uploaded; a presigned or CDN URL, or a path on this API")
    thumbnails: dict[str, str] = Field(
        description="Longest side in pixels -> URL of a WebP thumbnail (never larger than the original)",
        examples=[{"160": "https://cdn.example/airlines/.../160.webp", "640": "https://cdn.example/.../640.webp"}],
    )
    width: int = Field(description="Pixels, as displayed (EXIF orientation applied)")
    height: int
    content_type: str = Field(examples=["image/jpeg", "image/png", "image/webp"])
    bytes: int = Field(description="Size of the original")


class ProductImages(BaseModel):
    sku: str
    image_id: str = Field(description="The image this request added")
    images: list[ImageOut] = Field(description="All of the product's images, in display order")


class ProductOut(BaseModel):
    sku: str
    name: dict[str, str]
    description: dict[str, str]
    category: str
    prices: dict[str, str]
    min_age: int | None
    restrictions: list[str]
    attributes: dict[str, Any]
    active: bool
    images: list[ImageOut] = Field(description="In display order")
    created_at: datetime
    updated_at: datetime


class ImportRowError(BaseModel):
    row: int = Field(description="1-based position of the row (CSV: data row after the header)")
    sku: str | None = None
    field: str | None = None
    message: str


class ImportResult(BaseModel):
    created: int
    updated: int
    total: int
