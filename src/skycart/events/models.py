from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from skycart.platform.db import Base, IdMixin, TimestampMixin
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


class WebhookEndpoint(IdMixin, TenantScoped, TimestampMixin, Base):
    """Where an airline wants its events posted, and the secret its deliveries are signed with.

    The secret is stored encrypted (signing needs it in the clear, so it cannot be hashed); after a
    rotation the previous one also signs until `previous_until`.
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_airline", "airline_id", "id"),)

    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[str]]
    enabled: Mapped[bool] = mapped_column(default=True)
    secret_sealed: Mapped[str] = mapped_column(Text)
    previous_secret_sealed: Mapped[str | None] = mapped_column(Text)
    previous_until: Mapped[datetime | None]
    # Since when every delivery has failed (None once one succeeds); past 24 h the endpoint is disabled.
    failing_since: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(200))


class WebhookDelivery(IdMixin, TenantScoped, Base):
    """One event owed to one endpoint: pending until a 2xx answer, or failed once its retries are spent."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint", "airline_id", "endpoint_id", "id"),
        Index("ix_webhook_deliveries_order", "endpoint_id", "ordering_key", "status", "id"),
    )

    endpoint_id: Mapped[str] = mapped_column(String(26), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(26), ForeignKey("events.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(40))
    # Deliveries of one key (the order's id, or else the event's) to one endpoint go one at a time, in order.
    ordering_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    # A process attempting it holds it until then; past it (the process died) another may.
    claimed_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class WebhookAttempt(IdMixin, TenantScoped, Base):
    """One POST of a delivery: what the receiver answered, how fast, and the start of its answer."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "airline_id", "delivery_id", "id"),)

    delivery_id: Mapped[str] = mapped_column(String(26), ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None]
    latency_ms: Mapped[int]
    response_excerpt: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(String(200))


class EventOnce(IdMixin, TenantScoped, Base):
    """A fact recorded at most once per airline (e.g. a usage threshold per period): its key, kept with the event."""

    __tablename__ = "event_once"
    __table_args__ = (UniqueConstraint("airline_id", "once_key", name="uq_event_once_airline_key"),)

    once_key: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[str] = mapped_column(String(26))
    created_at: Mapped[datetime]
