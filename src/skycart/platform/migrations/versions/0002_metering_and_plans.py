"""metering and plans

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.types import TypeEngine

from skycart.platform.db import JSONType, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metering_flushes",
        sa.Column("flush_id", sa.String(length=64), nullable=False),
        sa.Column("process", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("flush_id"),
    )
    op.create_table(
        "plans",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("monthly_request_quota", sa.BigInteger(), nullable=True),
        sa.Column("overage", sa.Boolean(), nullable=False),
        sa.Column("rate_limit_milli_rps", sa.BigInteger(), nullable=False),
        sa.Column("burst", sa.Integer(), nullable=False),
        sa.Column("features", JSONType, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("monthly_fee_minor", sa.BigInteger(), nullable=False),
        sa.Column("overage_per_1000_minor", sa.BigInteger(), nullable=False),
        sa.Column("revenue_share_bps", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_table(
        "usage_hours",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("airline", sa.String(length=16), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("status_class", sa.String(length=3), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("billable", sa.BigInteger(), nullable=False),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("bytes_out", sa.BigInteger(), nullable=False),
        sa.Column("latency_us_sum", sa.BigInteger(), nullable=False),
        sa.Column("le_1ms", sa.BigInteger(), nullable=False),
        sa.Column("le_2ms", sa.BigInteger(), nullable=False),
        sa.Column("le_5ms", sa.BigInteger(), nullable=False),
        sa.Column("le_10ms", sa.BigInteger(), nullable=False),
        sa.Column("le_25ms", sa.BigInteger(), nullable=False),
        sa.Column("le_50ms", sa.BigInteger(), nullable=False),
        sa.Column("le_100ms", sa.BigInteger(), nullable=False),
        sa.Column("le_250ms", sa.BigInteger(), nullable=False),
        sa.Column("le_500ms", sa.BigInteger(), nullable=False),
        sa.Column("le_1000ms", sa.BigInteger(), nullable=False),
        sa.Column("le_2500ms", sa.BigInteger(), nullable=False),
        sa.Column("le_inf", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("window_start", "airline", "route", "method", "status_class", name="uq_usage_hours_key"),
    )
    with op.batch_alter_table("usage_hours", schema=None) as batch_op:
        batch_op.create_index("ix_usage_hours_airline_window", ["airline", "window_start"], unique=False)

    op.create_table(
        "usage_minutes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("airline", sa.String(length=16), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("status_class", sa.String(length=3), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("billable", sa.BigInteger(), nullable=False),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("bytes_out", sa.BigInteger(), nullable=False),
        sa.Column("latency_us_sum", sa.BigInteger(), nullable=False),
        sa.Column("le_1ms", sa.BigInteger(), nullable=False),
        sa.Column("le_2ms", sa.BigInteger(), nullable=False),
        sa.Column("le_5ms", sa.BigInteger(), nullable=False),
        sa.Column("le_10ms", sa.BigInteger(), nullable=False),
        sa.Column("le_25ms", sa.BigInteger(), nullable=False),
        sa.Column("le_50ms", sa.BigInteger(), nullable=False),
        sa.Column("le_100ms", sa.BigInteger(), nullable=False),
        sa.Column("le_250ms", sa.BigInteger(), nullable=False),
        sa.Column("le_500ms", sa.BigInteger(), nullable=False),
        sa.Column("le_1000ms", sa.BigInteger(), nullable=False),
        sa.Column("le_2500ms", sa.BigInteger(), nullable=False),
        sa.Column("le_inf", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("window_start", "airline", "route", "method", "status_class", name="uq_usage_minutes_key"),
    )
    with op.batch_alter_table("usage_minutes", schema=None) as batch_op:
        batch_op.create_index("ix_usage_minutes_airline_window", ["airline", "window_start"], unique=False)

    op.create_table(
        "airline_plans",
        sa.Column("airline_id", sa.String(length=26), nullable=False),
        sa.Column("plan_id", sa.String(length=26), nullable=False),
        sa.Column("effective_from", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(["airline_id"], ["airlines.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("airline_plans", schema=None) as batch_op:
        batch_op.create_index("ix_airline_plans_airline_from", ["airline_id", "effective_from"], unique=False)

    typed: dict[str, TypeEngine[Any]] = {"features": JSONType, "created_at": UTCDateTime()}
    names = (
        "id",
        "code",
        "name",
        "monthly_request_quota",
        "overage",
        "rate_limit_milli_rps",
        "burst",
        "features",
        "currency",
        "monthly_fee_minor",
        "overage_per_1000_minor",
        "revenue_share_bps",
        "created_at",
    )
    plans = sa.table("plans", *(sa.column(name, typed.get(name)) for name in names))
    created = datetime(2026, 11, 1, tzinfo=UTC)
    op.bulk_insert(
        plans,
        [
            {
                "id": "01JBASIC000000000000000000",
                "code": "basic",
                "name": "Basic",
                "monthly_request_quota": 100_000,
                "overage": False,
                "rate_limit_milli_rps": 10_000,
                "burst": 20,
                "features": [],
                "currency": "EUR",
                "monthly_fee_minor": 4_900,
                "overage_per_1000_minor": 0,
                "revenue_share_bps": 300,
                "created_at": created,
            },
            {
                "id": "01JSTANDARD000000000000000",
                "code": "standard",
                "name": "Standard",
                "monthly_request_quota": 1_000_000,
                "overage": True,
                "rate_limit_milli_rps": 50_000,
                "burst": 100,
                "features": ["offline_sync", "reports"],
                "currency": "EUR",
                "monthly_fee_minor": 19_900,
                "overage_per_1000_minor": 50,
                "revenue_share_bps": 200,
                "created_at": created,
            },
            {
                "id": "01JPREMIUM0000000000000000",
                "code": "premium",
                "name": "Premium",
                "monthly_request_quota": None,
                "overage": True,
                "rate_limit_milli_rps": 500_000,
                "burst": 1000,
                "features": ["offline_sync", "reports", "storefront"],
                "currency": "EUR",
                "monthly_fee_minor": 99_900,
                "overage_per_1000_minor": 0,
                "revenue_share_bps": 100,
                "created_at": created,
            },
        ],
    )


def downgrade() -> None:
    op.drop_table("airline_plans")
    op.drop_table("usage_minutes")
    op.drop_table("usage_hours")
    op.drop_table("plans")
    op.drop_table("metering_flushes")
