"""All SQL of events: the outbox INSERT (one statement, on the caller's session or connection), the log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.events.models import Event
from skycart.platform.statements import Prepared
from skycart.platform.tenancy import Tenant, scoped_select

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


async def delete_before(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(delete(Event).where(Event.created_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
