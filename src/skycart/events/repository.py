"""All SQL of events: the outbox INSERT (one statement, on the caller's session or connection), the log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.events.models import Event, WebhookDelivery, WebhookEndpoint
from skycart.platform.statements import Prepared
from skycart.platform.tenancy import Tenant, scoped_delete, scoped_select

INSERT = Prepared(insert(Event), columns=[column.key for column in Event.__table__.columns])


async def page(
    session: AsyncSession, tenant: Tenant, *, after: str | None, limit: int, event_type: str | None
) -> list[Event]:
    stmt = scoped_select(tenant, Event).order_by(Event.id).limit(limit)
    if after:
        stmt = stmt.where(Event.id > after)
    if event_type:
        stmt = stmt.where(Event.type == event_type)
    return list((await session.execute(stmt)).scalars())


async def delete_of_all_airlines_before(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(delete(Event).where(Event.created_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


async def endpoint(session: AsyncSession, tenant: Tenant, endpoint_id: str) -> WebhookEndpoint | None:
    stmt = scoped_select(tenant, WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def endpoints_page(
    session: AsyncSession, tenant: Tenant, *, after: str | None, limit: int
) -> list[WebhookEndpoint]:
    stmt = scoped_select(tenant, WebhookEndpoint).order_by(WebhookEndpoint.id).limit(limit)
    if after:
        stmt = stmt.where(WebhookEndpoint.id > after)
    return list((await session.execute(stmt)).scalars())


async def add(session: AsyncSession, row: WebhookEndpoint) -> None:
    session.add(row)
    await session.flush()


async def remove(session: AsyncSession, tenant: Tenant, endpoint_id: str) -> bool:
    """Delete the endpoint (its deliveries and their attempts go with it)."""
    result = await session.execute(scoped_delete(tenant, WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def delivery(session: AsyncSession, tenant: Tenant, endpoint_id: str, delivery_id: str) -> WebhookDelivery | None:
    stmt = scoped_select(tenant, WebhookDelivery).where(
        WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.id == delivery_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def deliveries_page(
    session: AsyncSession, tenant: Tenant, endpoint_id: str, *, status: str | None, after: str | None, limit: int
) -> list[WebhookDelivery]:
    """Newest first: what an integrator looks at is what just happened."""
    stmt = (
        scoped_select(tenant, WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    if status:
        stmt = stmt.where(WebhookDelivery.status == status)
    if after:
        stmt = stmt.where(WebhookDelivery.id < after)
    return list((await session.execute(stmt)).scalars())
