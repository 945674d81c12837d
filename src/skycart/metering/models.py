"""The metering engine's tables: usage per minute and hour, and the flush ids that make a flush once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from skycart.platform.db import Base

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
