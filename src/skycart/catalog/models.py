"""Catalog tables.

Images are rows of their own (`product_images`), not a JSON list on the product: adding or removing one
touches one row instead of rewriting the product (no lost update against a concurrent PUT), the unique
(airline, product, position) key makes the per-product limit hold under concurrent uploads, and a whole
menu's images load with one indexed `product_id IN (...)` query. The files themselves live in the asset
store; a row names their storage keys.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from skycart.platform.db import Base, IdMixin, TimestampMixin, exact_string, utcnow
from skycart.platform.tenancy import TenantScoped


class Product(IdMixin, TenantScoped, TimestampMixin, Base):
    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("airline_id", "sku", name="uq_products_airline_sku"),
        Index("ix_products_airline_category", "airline_id", "category"),
    )

    sku: Mapped[str] = mapped_column(exact_string(64))
    name: Mapped[dict[str, Any]]
    description: Mapped[dict[str, Any]]
    category: Mapped[str] = mapped_column(String(100))
    # {"EUR": 450}: integer minor units per currency.
    prices: Mapped[dict[str, Any]]
    min_age: Mapped[int | None]
    restrictions: Mapped[list[str]]
    attributes: Mapped[dict[str, Any]]
    active: Mapped[bool] = mapped_column(default=True)


class ProductImage(IdMixin, TenantScoped, Base):
    """One uploaded picture of a product: the original as sent and its WebP thumbnails."""

    __tablename__ = "product_images"
    __table_args__ = (UniqueConstraint("airline_id", "product_id", "position", name="uq_product_images_position"),)

    product_id: Mapped[str] = mapped_column(String(26), ForeignKey("products.id", ondelete="CASCADE"))
    # Display order; new images go last. Gaps are left by deletions.
    position: Mapped[int]
    content_type: Mapped[str] = mapped_column(String(32))
    # As displayed (EXIF orientation applied), in pixels.
    width: Mapped[int]
    height: Mapped[int]
    size_bytes: Mapped[int]
    # Variant ("original", "640", "160") -> key in the asset store.
    storage_keys: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
