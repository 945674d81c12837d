"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from skycart.platform.db import JSONType, UTCDateTime, exact_string

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "airlines",
        sa.Column("code", sa.String(length=3), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currencies", JSONType, nullable=False),
        sa.Column("default_locale", sa.String(length=16), nullable=False),
        sa.Column("locales", JSONType, nullable=False),
        sa.Column("settings", JSONType, nullable=False),
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_table(
        "api_keys",
        sa.Column("airline_id", sa.String(length=26), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(["airline_id"], ["airlines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index("ix_api_keys_airline", ["airline_id"], unique=False)

    op.create_table(
        "flights",
        sa.Column("flight_number", sa.String(length=8), nullable=False),
        sa.Column("departure_date", sa.Date(), nullable=False),
        sa.Column("origin", sa.String(length=3), nullable=False),
        sa.Column("destination", sa.String(length=3), nullable=False),
        sa.Column("scheduled_departure", UTCDateTime(), nullable=False),
        sa.Column("international", sa.Boolean(), nullable=False),
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("airline_id", sa.String(length=26), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["airline_id"], ["airlines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("airline_id", "flight_number", "departure_date", "origin", name="uq_flights_leg"),
    )
    with op.batch_alter_table("flights", schema=None) as batch_op:
        batch_op.create_index("ix_flights_airline_date", ["airline_id", "departure_date"], unique=False)

    op.create_table(
        "idempotency_records",
        sa.Column("key", exact_string(255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("locked_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("airline_id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(["airline_id"], ["airlines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("airline_id", "key", name="uq_idempotency_airline_key"),
    )
    op.create_table(
        "products",
        sa.Column("sku", exact_string(64), nullable=False),
        sa.Column("name", JSONType, nullable=False),
        sa.Column("description", JSONType, nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("prices", JSONType, nullable=False),
        sa.Column("min_age", sa.Integer(), nullable=True),
        sa.Column("restrictions", JSONType, nullable=False),
        sa.Column("attributes", JSONType, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("airline_id", sa.String(length=26), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["airline_id"], ["airlines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("airline_id", "sku", name="uq_products_airline_sku"),
    )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.create_index("ix_products_airline_category", ["airline_id", "category"], unique=False)

    op.create_table(
        "loaded_stock",
        sa.Column("flight_id", sa.String(length=26), nullable=False),
        sa.Column("product_id", sa.String(length=26), nullable=False),
        sa.Column("quantity_loaded", sa.Integer(), nullable=False),
        sa.Column("quantity_sold", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("airline_id", sa.String(length=26), nullable=False),
        sa.CheckConstraint("quantity_sold >= 0", name="ck_loaded_stock_sold"),
        sa.ForeignKeyConstraint(["airline_id"], ["airlines.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["flight_id"], ["flights.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("airline_id", "flight_id", "product_id", name="uq_loaded_stock_item"),
    )
    op.create_table(
        "orders",
        sa.Column("flight_id", sa.String(length=26), nullable=False),
        sa.Column("seat", sa.String(length=4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payment_provider", sa.String(length=32), nullable=False),
        sa.Column("payment_reference", sa.String(length=64), nullable=False),
        sa.Column("passenger", JSONType, nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("cancelled_at", UTCDateTime(), nullable=True),
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("airline_id", sa.String(length=26), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["airline_id"], ["airlines.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["flight_id"],
            ["flights.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_airline_created", ["airline_id", "created_at"], unique=False)
        batch_op.create_index("ix_orders_airline_flight_seat", ["airline_id", "flight_id", "seat"], unique=False)

    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.String(length=26), nullable=False),
        sa.Column("product_id", sa.String(length=26), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sku", exact_string(64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("line_total_minor", sa.BigInteger(), nullable=False),
        sa.Column("restrictions", JSONType, nullable=False),
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("airline_id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(["airline_id"], ["airlines.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.create_index("ix_order_lines_order", ["airline_id", "order_id"], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes; MySQL refuses to drop an index a foreign key needs first.
    op.drop_table("order_lines")
    op.drop_table("orders")
    op.drop_table("loaded_stock")
    op.drop_table("products")
    op.drop_table("idempotency_records")
    op.drop_table("flights")
    op.drop_table("api_keys")
    op.drop_table("airlines")
