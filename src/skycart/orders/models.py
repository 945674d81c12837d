from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from skycart.platform.db import Base, IdMixin, TimestampMixin, exact_string
from skycart.platform.tenancy import TenantScoped

PAID = "paid"
PAID_OFFLINE = "paid_offline"
DELIVERED = "delivered"
CANCELLED = "cancelled"
OPEN_STATUSES = (PAID, PAID_OFFLINE)
REVENUE_STATUSES = (PAID, PAID_OFFLINE, DELIVERED)


class Order(IdMixin, TenantScoped, TimestampMixin, Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_airline_flight_seat", "airline_id", "flight_id", "seat"),
        Index("ix_orders_airline_created", "airline_id", "created_at"),
    )

    flight_id: Mapped[str] = mapped_column(String(26), ForeignKey("flights.id"))
    # None for a sale from the trolley that no seat asked for (offline sync).
    seat: Mapped[str | None] = mapped_column(String(4))
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    payment_provider: Mapped[str] = mapped_column(String(32))
    # The provider's reference for the charge; never card data or the token itself.
    payment_reference: Mapped[str] = mapped_column(String(64))
    passenger: Mapped[dict[str, Any]]
    delivered_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]


class OrderLine(IdMixin, TenantScoped, Base):
    __tablename__ = "order_lines"
    __table_args__ = (Index("ix_order_lines_order", "airline_id", "order_id"),)

    order_id: Mapped[str] = mapped_column(String(26), ForeignKey("orders.id", ondelete="CASCADE"))
    product_id: Mapped[str | None] = mapped_column(String(26), ForeignKey("products.id", ondelete="SET NULL"))
    position: Mapped[int]
    sku: Mapped[str] = mapped_column(exact_string(64))
    quantity: Mapped[int]
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    line_total_minor: Mapped[int] = mapped_column(BigInteger)
    # The product's restriction tags when sold, for per-seat limits.
    restrictions: Mapped[list[str]]


class IdempotencyRecord(IdMixin, TenantScoped, Base):
    """The first answer to a request with an Idempotency-Key, replayed for repeats."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("airline_id", "key", name="uq_idempotency_airline_key"),)

    key: Mapped[str] = mapped_column(exact_string(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    locked_at: Mapped[datetime]
    created_at: Mapped[datetime]


class OfflineSale(IdMixin, TenantScoped, Base):
    """A sale a crew device made offline, by the device's own id: the key that applies it once."""

    __tablename__ = "offline_sales"
    __table_args__ = (UniqueConstraint("airline_id", "client_id", name="uq_offline_sales_airline_client"),)

    client_id: Mapped[str] = mapped_column(exact_string(64))
    order_id: Mapped[str] = mapped_column(String(26), ForeignKey("orders.id", ondelete="CASCADE"))
    flight_id: Mapped[str] = mapped_column(String(26), ForeignKey("flights.id"))
    received_at: Mapped[datetime]
    # What the sale said, so a re-sent client_id with other content is told apart from a duplicate.
    content_sha256: Mapped[str | None] = mapped_column(String(64))
