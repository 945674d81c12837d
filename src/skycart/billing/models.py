"""Billing's tables: plans, each airline's plan history, and the statements of closed months."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from skycart.platform.db import Base, IdMixin
from skycart.platform.tenancy import TenantScoped


class Plan(IdMixin, Base):
    """A service package airlines buy."""

    __tablename__ = "plans"

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    monthly_request_quota: Mapped[int | None] = mapped_column(BigInteger)
    overage: Mapped[bool]
    # Requests per second, in thousandths, so fractional rates stay exact.
    rate_limit_milli_rps: Mapped[int] = mapped_column(BigInteger)
    burst: Mapped[int]
    features: Mapped[list[str]]
    currency: Mapped[str] = mapped_column(String(3))
    monthly_fee_minor: Mapped[int] = mapped_column(BigInteger)
    overage_per_1000_minor: Mapped[int] = mapped_column(BigInteger)
    revenue_share_bps: Mapped[int]
    created_at: Mapped[datetime]
    # A retired plan can no longer be assigned; history and statements still name it.
    retired_at: Mapped[datetime | None]


class AirlinePlan(IdMixin, TenantScoped, Base):
    """An airline's plan from a moment on; the rows of one airline are its plan history."""

    __tablename__ = "airline_plans"
    __table_args__ = (Index("ix_airline_plans_airline_from", "airline_id", "effective_from"),)

    # The same column TenantScoped adds, declared here so it stays the table's first column (as migrated).
    airline_id: Mapped[str] = mapped_column(String(26), ForeignKey("airlines.id", ondelete="CASCADE"))
    plan_id: Mapped[str] = mapped_column(String(26), ForeignKey("plans.id"))
    effective_from: Mapped[datetime]
    created_at: Mapped[datetime]
    # A scheduled change withdrawn before it took effect; the row stays (history is append-only).
    cancelled_at: Mapped[datetime | None]


LongText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql")


class ClosedStatement(IdMixin, TenantScoped, Base):
    """The final statement of a closed month, stored once and served as stored from then on."""

    __tablename__ = "closed_statements"
    __table_args__ = (UniqueConstraint("airline_id", "month", name="uq_closed_statements_airline_month"),)

    month: Mapped[str] = mapped_column(String(7))
    body_json: Mapped[str] = mapped_column(LongText)
    body_csv: Mapped[str] = mapped_column(LongText)
    json_sha256: Mapped[str] = mapped_column(String(64))
    csv_sha256: Mapped[str] = mapped_column(String(64))
    closed_at: Mapped[datetime]
    created_at: Mapped[datetime]
