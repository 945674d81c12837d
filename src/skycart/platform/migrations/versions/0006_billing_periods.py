"""billing periods: closed statements, retired plans, cancelled plan changes, offline sale content

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from skycart.platform.db import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql")


def upgrade() -> None:
    op.create_table(
        "closed_statements",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("body_json", LongText, nullable=False),
        sa.Column("body_csv", LongText, nullable=False),
        sa.Column("json_sha256", sa.String(length=64), nullable=False),
        sa.Column("csv_sha256", sa.String(length=64), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("airline_id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(["airline_id"], ["airlines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("airline_id", "month", name="uq_closed_statements_airline_month"),
    )
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retired_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("airline_plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cancelled_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("offline_sales", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("offline_sales", schema=None) as batch_op:
        batch_op.drop_column("content_sha256")
    with op.batch_alter_table("airline_plans", schema=None) as batch_op:
        batch_op.drop_column("cancelled_at")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_column("retired_at")
    op.drop_table("closed_statements")
