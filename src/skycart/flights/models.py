from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from skycart.platform.db import Base, IdMixin, TimestampMixin
from skycart.platform.tenancy import TenantScoped


class Flight(IdMixin, TenantScoped, TimestampMixin, Base):
    """One flight leg: a flight number on a date from one airport to another."""

    __tablename__ = "flights"
    __table_args__ = (
        UniqueConstraint("airline_id", "flight_number", "departure_date", "origin", name="uq_flights_leg"),
        Index("ix_flights_airline_date", "airline_id", "departure_date"),
    )

    flight_number: Mapped[str] = mapped_column(String(8))
    departure_date: Mapped[date]
    origin: Mapped[str] = mapped_column(String(3))
    destination: Mapped[str] = mapped_column(String(3))
    scheduled_departure: Mapped[datetime]
    international: Mapped[bool] = mapped_column(default=False)


class LoadedStock(IdMixin, TenantScoped, Base):
    """How many units of a product were loaded on a flight and how many are sold."""

    __tablename__ = "loaded_stock"
    __table_args__ = (
        UniqueConstraint("airline_id", "flight_id", "product_id", name="uq_loaded_stock_item"),
        CheckConstraint("quantity_sold >= 0", name="ck_loaded_stock_sold"),
    )

    flight_id: Mapped[str] = mapped_column(String(26), ForeignKey("flights.id", ondelete="CASCADE"))
    product_id: Mapped[str] = mapped_column(String(26), ForeignKey("products.id"))
    quantity_loaded: Mapped[int]
    quantity_sold: Mapped[int] = mapped_column(default=0)
