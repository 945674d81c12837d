"""Recording events (the outbox) and reading the event log. No HTTP, no commit.

`record` writes the event in the caller's transaction: an order rolled back leaves no event, and a
committed one always has its event. Deliveries to the airline's webhook endpoints are made from it
afterwards, outside the request.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, get_args

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from skycart.config import Settings
from skycart.events import repository
from skycart.events.models import Event, EventOnce
from skycart.events.schemas import EventOut, EventType
from skycart.platform.db import new_id, transaction, utcnow
from skycart.platform.pagination import Slice, read_slice
from skycart.platform.statements import Statements
from skycart.platform.tenancy import Tenant

# Every type an event may have (DESIGN.md §4): the API's own list.
EVENT_TYPES: tuple[str, ...] = get_args(EventType)


async def record(
    session: AsyncSession | Statements, tenant: Tenant, type: str, data: dict[str, Any], *, now: datetime | None = None
) -> str:
    """Write the event in the caller's transaction (a session, or the checkout's own statements); its id."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    event_id = new_id()
    row = {
        "id": event_id,
        "airline_id": tenant.id,
        "type": type,
        "data": data,
        "created_at": now or utcnow(),
        "dispatched": False,
    }
    if isinstance(session, Statements):
        await session.execute(repository.INSERT, row)
    else:
        await session.execute(repository.INSERT.statement, row)
    return event_id


async def record_once(
    session: AsyncSession, tenant: Tenant, once_key: str, type: str, data: dict[str, Any]
) -> str | None:
    """`record`, unless an event was already recorded for the airline under `once_key`: the new event's id,
    or None. Concurrent callers (several processes) record it once: the key is unique per airline."""
    if await repository.once_exists(session, tenant, once_key):
        return None
    try:
        async with session.begin_nested():
            event_id = await record(session, tenant, type, data)
            await repository.add_once(
                session, EventOnce(airline_id=tenant.id, once_key=once_key, event_id=event_id, created_at=utcnow())
            )
    except IntegrityError:  # another process recorded it a moment ago
        return None
    return event_id


def event_out(event: Event, airline_code: str) -> EventOut:
    return EventOut(id=event.id, type=event.type, created_at=event.created_at, airline=airline_code, data=event.data)


async def list_events(
    session: AsyncSession, *, tenant: Tenant, after: str | None, limit: int, event_type: str | None
) -> Slice[EventOut]:
    """The airline's events in the order they were recorded (of one type, if given), a page at a time."""
    found = await read_slice(
        lambda n: repository.page(session, tenant, after=after, limit=n, event_type=event_type),
        limit=limit,
        key=lambda event: event.id,
    )
    return Slice([event_out(event, tenant.code) for event in found.rows], found.after)


async def prune(sessions: async_sessionmaker[AsyncSession], settings: Settings, now: datetime | None = None) -> int:
    """Drop events older than SKYCART_EVENTS_RETENTION_DAYS; how many went."""
    before = (now or utcnow()) - timedelta(days=settings.events_retention_days)
    async with transaction(sessions) as session:
        return await repository.delete_of_all_airlines_before(session, before)
