"""event_once: facts recorded at most once per airline (usage thresholds per period)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from skycart.platform.db import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_once",
        sa.Column("once_key", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=26), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("airline_id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(["airline_id"], ["airlines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("airline_id", "once_key", name="uq_event_once_airline_key"),
    )


def downgrade() -> None:
    op.drop_table("event_once")
