"""events: the outbox and event log; the `webhooks` feature in the Standard and Premium plans

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from skycart.platform.db import JSONType, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

WITH_WEBHOOKS = ("standard", "premium")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("data", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("dispatched", sa.Boolean(), nullable=False),
        sa.Column("airline_id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(["airline_id"], ["airlines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_events_airline_id", "events", ["airline_id", "id"])
    op.create_index("ix_events_airline_type_id", "events", ["airline_id", "type", "id"])
    op.create_index("ix_events_dispatched_id", "events", ["dispatched", "id"])
    op.create_index("ix_events_created", "events", ["created_at"])
    _features(add=True)


def downgrade() -> None:
    _features(add=False)
    op.drop_table("events")


def _features(*, add: bool) -> None:
    plans = sa.table("plans", sa.column("code", sa.String), sa.column("features", JSONType))
    bind = op.get_bind()
    for code, features in bind.execute(
        sa.select(plans.c.code, plans.c.features).where(plans.c.code.in_(WITH_WEBHOOKS))
    ):
        current = features if isinstance(features, list) else json.loads(features)
        wanted = sorted({*current, "webhooks"}) if add else [f for f in current if f != "webhooks"]
        if wanted != current:
            bind.execute(plans.update().where(plans.c.code == code).values(features=wanted))
