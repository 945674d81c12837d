from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from skycart.platform.db import Base
from skycart.platform.tenancy import TenantScoped


class Event(TenantScoped, Base):
    """One fact an airline's systems may want pushed to them, written in the transaction that made it true.

    The id is a ULID made when the event is recorded: sortable by time, and the `webhook-id` of every
    delivery of it. `dispatched` turns true once the event's deliveries to the airline's endpoints exist.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_airline_id", "airline_id", "id"),
        Index("ix_events_airline_type_id", "airline_id", "type", "id"),
        Index("ix_events_dispatched_id", "dispatched", "id"),
        Index("ix_events_created", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    dispatched: Mapped[bool] = mapped_column(default=False)
