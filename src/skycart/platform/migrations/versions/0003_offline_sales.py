"""offline sales

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from skycart.platform.db import UTCDateTime, exact_string

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "offline_sales",
        sa.Column("client_id", exact_string(64), nullable=False),
        sa.Column("order_id", sa.String(length=26), nullable=False),
        sa.Column("flight_id", sa.String(length=26), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("airline_id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(["airline_id"], ["airlines.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["flight_id"], ["flights.id"]),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("airline_id", "client_id", name="uq_offline_sales_airline_client"),
    )
    # Trolley sales have no seat.
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column("seat", existing_type=sa.String(length=4), nullable=True)


def downgrade() -> None:
    op.drop_table("offline_sales")
    op.execute("UPDATE orders SET seat = '' WHERE seat IS NULL")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column("seat", existing_type=sa.String(length=4), nullable=False)
