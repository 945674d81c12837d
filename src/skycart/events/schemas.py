from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Every type an event may have (DESIGN.md §4; service.EVENT_TYPES); later issues add theirs here.
EventType = Literal[
    "order.created",
    "order.delivered",
    "order.cancelled",
    "preorder.created",
    "preorder.cancelled",
    "flight.updated",
    "flight.cancelled",
    "flight.closed",
    "stock.low",
    "usage.threshold",
    "plan.changed",
    "webhook.disabled",
]
DeliveryStatus = Literal["pending", "delivered", "failed"]


class EventOut(BaseModel):
    """An event as the event log lists it and as a webhook delivery carries it."""

    id: str = Field(description="ULID: sortable by time; the `webhook-id` of every delivery of this event")
    type: str
    created_at: datetime
    airline: str = Field(description="The airline's code")
    data: dict[str, Any]


def _distinct(types: list[str]) -> list[str]:
    return list(dict.fromkeys(types))


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, examples=["https://crew.example-air.com/skycart/events"])
    events: list[EventType] = Field(min_length=1, max_length=20, description="The event types to deliver")
    enabled: bool = Field(default=True, strict=True)

    @field_validator("events")
    @classmethod
    def _distinct_events(cls, types: list[str]) -> list[str]:
        return _distinct(types)


class WebhookPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2048)
    events: list[EventType] | None = Field(default=None, min_length=1, max_length=20)
    enabled: bool | None = Field(default=None, strict=True)

    @field_validator("events")
    @classmethod
    def _distinct_events(cls, types: list[str] | None) -> list[str] | None:
        return None if types is None else _distinct(types)


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    failing_since: datetime | None = Field(description="Since when every delivery has failed; null once one succeeds")
    disabled_reason: str | None = Field(description="Why SkyCart disabled the endpoint, if it did")


class WebhookCreated(WebhookOut):
    secret: str = Field(description="`whsec_…`: shown only now; deliveries are signed with it")


class SecretOut(BaseModel):
    secret: str = Field(description="The new `whsec_…`, shown only now")
    previous_valid_until: datetime = Field(description="Until then deliveries are signed with the old secret too")


class DeliveryOut(BaseModel):
    id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = Field(description="When it is tried next; null once delivered or failed")
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
