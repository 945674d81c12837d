from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from skycart.platform.db import Base, IdMixin
from skycart.platform.tenancy import TenantScoped

# Upper bounds (ms) of the latency histogram buckets; the last bucket is everything above.
LATENCY_BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)
BUCKET_COLUMNS = tuple(f"le_{bound}ms" for bound in LATENCY_BUCKETS_MS) + ("le_inf",)
COUNTER_COLUMNS = ("requests", "errors", "billable", "bytes_in", "bytes_out", "latency_us_sum", *BUCKET_COLUMNS)


class _UsageColumns:
    """One row per (window, airline, route template, method, status class)."""

    window_start: Mapped[datetime]
    airline: Mapped[str] = mapped_column(String(16))
    route: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(8))
    status_class: Mapped[str] = mapped_column(String(3))
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
    # Requests that passed the limiter: what quotas and statements count.
    billable: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_in: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_out: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_us_sum: Mapped[int] = mapped_column(BigInteger, default=0)
    le_1ms: Mapped[int] = mapped_column(BigInteger, default=0)
    le_2ms: Mapped[int] = mapped_column(BigInteger, default=0)
    le_5ms: Mapped[int] = mapped_column(BigInteger, default=0)
    le_10ms: Mapped[int] = mapped_column(BigInteger, default=0)
    le_25ms: Mapped[int] = mapped_column(BigInteger, default=0)
    le_50ms: Mapped[int] = mapped_column(BigInteger, default=0)
    le_100ms: Mapped[int] = mapped_column(BigInteger, default=0)
    le_250ms: Mapped[int] = mapped_column(BigInteger, default=0)
    le_500ms: Mapped[int] = mapped_column(BigInteger, default=0)
    le_1000ms: Mapped[int] = mapped_column(BigInteger, default=0)
    le_2500ms: Mapped[int] = mapped_column(BigInteger, default=0)
    le_inf: Mapped[int] = mapped_column(BigInteger, default=0)


class UsageMinute(_UsageColumns, Base):
    __tablename__ = "usage_minutes"
    __table_args__ = (
        UniqueConstraint("window_start", "airline", "route", "method", "status_class", name="uq_usage_minutes_key"),
        Index("ix_usage_minutes_airline_window", "airline", "window_start"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)


class UsageHour(_UsageColumns, Base):
    __tablename__ = "usage_hours"
    __table_args__ = (
        UniqueConstraint("window_start", "airline", "route", "method", "status_class", name="uq_usage_hours_key"),
        Index("ix_usage_hours_airline_window", "airline", "window_start"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)


class MeteringFlush(Base):
    """A committed flush. Its id makes a retried flush a no-op."""

    __tablename__ = "metering_flushes"

    flush_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    process: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int]
    created_at: Mapped[datetime]


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


class AirlinePlan(IdMixin, Base):
    """An airline's plan from a moment on; the rows of one airline are its plan history."""

    __tablename__ = "airline_plans"
    __table_args__ = (Index("ix_airline_plans_airline_from", "airline_id", "effective_from"),)

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


class QuotaCounter(IdMixin, TenantScoped, Base):
    """Quota units handed out this month under a hard quota: never more than the quota (limits.QuotaBook)."""

    __tablename__ = "quota_counters"
    __table_args__ = (UniqueConstraint("airline_id", "period", name="uq_quota_counters_airline_period"),)

    period: Mapped[str] = mapped_column(String(7))
    granted: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]
