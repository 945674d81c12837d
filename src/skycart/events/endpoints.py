from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from skycart.airlines.auth import AirlineTenant
from skycart.errors import problem_responses
from skycart.events import service, webhooks
from skycart.events.schemas import (
    DeliveryOut,
    DeliveryStatus,
    EventOut,
    EventType,
    SecretOut,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
)
from skycart.platform.jsonbody import StrictJsonRoute
from skycart.platform.pagination import Cursor, Limit, Page, decode_cursor, page_of
from skycart.platform.runtime import get_runtime
from skycart.platform.sessions import ReadSession, WriteSession

router = APIRouter(
    route_class=StrictJsonRoute, prefix="/v1", tags=["events"], responses=problem_responses(401, 403, 422)
)


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


WebhookId = Annotated[str, Path(min_length=1, max_length=26)]


@router.post(
    "/webhooks",
    status_code=201,
    responses=problem_responses(503),
    summary="Subscribe a URL to event types; the signing secret is in this answer only",
)
async def create_webhook(
    body: WebhookIn, tenant: AirlineTenant, request: Request, session: WriteSession
) -> WebhookCreated:
    runtime = get_runtime(request)
    return await webhooks.create_webhook(
        session, tenant=tenant, data=body, settings=runtime.settings, sealer=runtime.sealer
    )


@router.get("/webhooks")
async def list_webhooks(
    tenant: AirlineTenant, session: ReadSession, limit: Limit = 100, cursor: Cursor = None
) -> Page[WebhookOut]:
    found = await webhooks.list_webhooks(session, tenant=tenant, after=decode_cursor(cursor), limit=limit)
    return page_of(found, found.rows)


@router.get("/webhooks/{webhook_id}", responses=problem_responses(404))
async def get_webhook(webhook_id: WebhookId, tenant: AirlineTenant, session: ReadSession) -> WebhookOut:
    return await webhooks.get_webhook(session, tenant=tenant, webhook_id=webhook_id)


@router.patch("/webhooks/{webhook_id}", responses=problem_responses(404))
async def update_webhook(
    webhook_id: WebhookId, body: WebhookPatch, tenant: AirlineTenant, request: Request, session: WriteSession
) -> WebhookOut:
    settings = get_runtime(request).settings
    return await webhooks.update_webhook(session, tenant=tenant, webhook_id=webhook_id, data=body, settings=settings)


@router.delete("/webhooks/{webhook_id}", status_code=204, responses=problem_responses(404))
async def delete_webhook(webhook_id: WebhookId, tenant: AirlineTenant, session: WriteSession) -> Response:
    await webhooks.delete_webhook(session, tenant=tenant, webhook_id=webhook_id)
    return Response(status_code=204)


@router.post(
    "/webhooks/{webhook_id}/secret",
    responses=problem_responses(404, 503),
    summary="Rotate the signing secret; the old one also signs for 24 h",
)
async def rotate_secret(
    webhook_id: WebhookId, tenant: AirlineTenant, request: Request, session: WriteSession
) -> SecretOut:
    sealer = get_runtime(request).sealer
    return await webhooks.rotate_secret(session, tenant=tenant, webhook_id=webhook_id, sealer=sealer)


@router.get("/webhooks/{webhook_id}/deliveries", responses=problem_responses(404))
async def list_deliveries(
    webhook_id: WebhookId,
    tenant: AirlineTenant,
    session: ReadSession,
    limit: Limit = 100,
    cursor: Cursor = None,
    status: Annotated[DeliveryStatus | None, Query(description="Only deliveries in this state")] = None,
) -> Page[DeliveryOut]:
    found = await webhooks.list_deliveries(
        session, tenant=tenant, webhook_id=webhook_id, status=status, after=decode_cursor(cursor), limit=limit
    )
    return page_of(found, found.rows)


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    responses=problem_responses(404),
    summary="Send a delivery again now (a failed one retried, a delivered one replayed with the same webhook-id)",
)
async def retry_delivery(
    webhook_id: WebhookId,
    delivery_id: Annotated[str, Path(min_length=1, max_length=26)],
    tenant: AirlineTenant,
    session: WriteSession,
) -> DeliveryOut:
    return await webhooks.retry_delivery(session, tenant=tenant, webhook_id=webhook_id, delivery_id=delivery_id)
