from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class EventOut(BaseModel):
    """An event as the event log lists it and as a webhook delivery carries it."""

    id: str = Field(description="ULID: sortable by time; the `webhook-id` of every delivery of this event")
    type: str
    created_at: datetime
    airline: str = Field(description="The airline's code")
    data: dict[str, Any]
