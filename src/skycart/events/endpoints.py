from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from skycart.airlines.auth import AirlineTenant
from skycart.errors import problem_responses
from skycart.events import service
from skycart.events.schemas import EventOut
from skycart.platform.pagination import Cursor, Limit, Page, decode_cursor, page_of
from skycart.platform.sessions import ReadSession

router = APIRouter(prefix="/v1", tags=["events"], responses=problem_responses(401, 403, 422))
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


@router.get("/events", summary="The airline's events, oldest first (kept SKYCART_EVENTS_RETENTION_DAYS)")
async def list_events(
    tenant: AirlineTenant,
    session: ReadSession,
    limit: Limit = 100,
    cursor: Cursor = None,
    type: Annotated[EventType | None, Query(description="Only events of this type")] = None,
    after: Annotated[str | None, Query(max_length=26, description="Only events recorded after this event id")] = None,
) -> Page[EventOut]:
    found = await service.list_events(
        session, tenant=tenant, after=decode_cursor(cursor) or after, limit=limit, event_type=type
    )
    return page_of(found, found.rows)
