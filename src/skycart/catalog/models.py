from __future__ import annotations

from typing import Any

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from skycart.platform.db import Base, IdMixin, TimestampMixin, exact_string
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
