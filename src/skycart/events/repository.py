"""All SQL of events: the outbox INSERT (one statement, on the caller's session or connection), the log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from skycart.airlines.models import Airline
from skycart.events.models import Event, EventOnce, WebhookAttempt, WebhookDelivery, WebhookEndpoint
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


# The delivery worker's reads and writes span every airline: each claims what is due, whoever's it is.


async def undispatched_of_all_airlines(session: AsyncSession, limit: int) -> list[tuple[str, str, str]]:
    """(id, airline id, type) of recorded events not yet turned into deliveries, oldest first; each claimed
    by one process only. Their data is not read: most airlines have no endpoint to deliver it to."""
    stmt = (
        select(Event.id, Event.airline_id, Event.type)
        .where(Event.dispatched.is_(False))
        .order_by(Event.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [(row[0], row[1], row[2]) for row in await session.execute(stmt)]


async def event_data_of_all_airlines(session: AsyncSession, event_ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = await session.execute(select(Event.id, Event.data).where(Event.id.in_(event_ids)))
    return {row[0]: row[1] for row in rows}


async def enabled_endpoints_of_all_airlines(
    session: AsyncSession, airline_ids: list[str]
) -> list[tuple[str, str, list[str]]]:
    """(id, airline id, event types) of the enabled endpoints of these airlines."""
    stmt = select(WebhookEndpoint.id, WebhookEndpoint.airline_id, WebhookEndpoint.event_types).where(
        WebhookEndpoint.airline_id.in_(airline_ids), WebhookEndpoint.enabled.is_(True)
    )
    return [(row[0], row[1], list(row[2])) for row in await session.execute(stmt)]


async def add_deliveries_of_all_airlines(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(WebhookDelivery), rows)


async def mark_dispatched_of_all_airlines(session: AsyncSession, event_ids: list[str]) -> None:
    await session.execute(update(Event).where(Event.id.in_(event_ids)).values(dispatched=True))


async def due_of_all_airlines(session: AsyncSession, now: datetime, limit: int) -> list[tuple[str, str, str]]:
    """Pending deliveries due now that no process holds, each the oldest pending one of its endpoint and
    ordering key (so one order's events reach an endpoint in the order they were recorded); claimed
    with SKIP LOCKED, so concurrent processes take different ones."""
    earlier = aliased(WebhookDelivery)
    blocked = (
        select(earlier.id)
        .where(
            earlier.endpoint_id == WebhookDelivery.endpoint_id,
            earlier.ordering_key == WebhookDelivery.ordering_key,
            earlier.status == "pending",
            earlier.id < WebhookDelivery.id,
        )
        .exists()
    )
    stmt = (
        select(WebhookDelivery.id, WebhookDelivery.endpoint_id, WebhookDelivery.event_id)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
            WebhookDelivery.endpoint_id.in_(select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True))),
            ~blocked,
        )
        .order_by(WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [(row[0], row[1], row[2]) for row in await session.execute(stmt)]


async def hold_of_all_airlines(session: AsyncSession, delivery_ids: list[str], until: datetime) -> None:
    """Mark deliveries as held by this process until then."""
    await session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id.in_(delivery_ids)).values(claimed_until=until)
    )


async def endpoints_by_id_of_all_airlines(session: AsyncSession, ids: list[str]) -> dict[str, WebhookEndpoint]:
    rows = (await session.execute(select(WebhookEndpoint).where(WebhookEndpoint.id.in_(ids)))).scalars()
    return {row.id: row for row in rows}


async def events_by_id_of_all_airlines(session: AsyncSession, ids: list[str]) -> dict[str, tuple[Event, str]]:
    """Each event with its airline's code."""
    stmt = select(Event, Airline.code).join(Airline, Airline.id == Event.airline_id).where(Event.id.in_(ids))
    return {event.id: (event, code) for event, code in (await session.execute(stmt)).all()}


async def oldest_due_of_all_airlines(session: AsyncSession, now: datetime) -> datetime | None:
    """When the longest-waiting due delivery became due (the delivery lag's start)."""
    stmt = select(func.min(WebhookDelivery.next_attempt_at)).where(
        WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now
    )
    return (await session.execute(stmt)).scalar()


async def deliveries_by_id_of_all_airlines(session: AsyncSession, ids: list[str]) -> dict[str, WebhookDelivery]:
    stmt = select(WebhookDelivery).where(WebhookDelivery.id.in_(ids)).execution_options(populate_existing=True)
    return {row.id: row for row in (await session.execute(stmt)).scalars()}


async def add_attempts_of_all_airlines(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(WebhookAttempt), rows)


async def release_of_all_airlines(session: AsyncSession, delivery_ids: list[str]) -> None:
    """Give back deliveries a stopping process held, for another process to attempt now."""
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(delivery_ids), WebhookDelivery.status == "pending")
        .values(claimed_until=None)
    )


async def once_exists(session: AsyncSession, tenant: Tenant, once_key: str) -> bool:
    stmt = scoped_select(tenant, EventOnce).where(EventOnce.once_key == once_key)
    return (await session.execute(stmt)).first() is not None


async def add_once(session: AsyncSession, row: EventOnce) -> None:
    session.add(row)
    await session.flush()
