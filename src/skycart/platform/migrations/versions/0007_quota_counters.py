"""quota counters: the exact count of requests admitted under each airline's hard quota, per month

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from skycart.platform.db import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quota_counters",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("granted", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("airline_id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(["airline_id"], ["airlines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("airline_id", "period", name="uq_quota_counters_airline_period"),
    )


def downgrade() -> None:
    op.drop_table("quota_counters")
