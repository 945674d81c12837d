"""All SQL for airlines and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.airlines.models import Airline, ApiKey
from skycart.platform.tenancy import Tenant


async def get_by_code(session: AsyncSession, code: str) -> Airline | None:
    return (await session.execute(select(Airline).where(Airline.code == code))).scalar_one_or_none()


async def get_by_id(session: AsyncSession, airline_id: str) -> Airline | None:
    return await session.get(Airline, airline_id)


async def list_airlines(session: AsyncSession, *, after: str | None, limit: int) -> list[Airline]:
    stmt = select(Airline).order_by(Airline.code).limit(limit)
    if after:
        stmt = stmt.where(Airline.code > after)
    return list((await session.execute(stmt)).scalars())


async def count_airlines(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(Airline))).scalar_one())


async def add(session: AsyncSession, row: Airline | ApiKey) -> None:
    session.add(row)
    await session.flush()


async def key_by_hash(session: AsyncSession, key_hash: str) -> tuple[ApiKey, Airline | None] | None:
    """The key with this hash, and the airline it belongs to (None for an operator key)."""
    stmt = (
        select(ApiKey, Airline).outerjoin(Airline, Airline.id == ApiKey.airline_id).where(ApiKey.key_hash == key_hash)
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row else None


async def revoke_key(session: AsyncSession, key_id: str, at: datetime) -> bool:
    """Revoke a live key; False when there is no such live key."""
    result = await session.execute(
        update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=at)
    )
    return cast(CursorResult[Any], result).rowcount == 1


async def airline_keys(session: AsyncSession, tenant: Tenant) -> list[ApiKey]:
    """An airline's keys, newest first, revoked ones included (they show when they stopped)."""
    stmt = select(ApiKey).where(ApiKey.airline_id == tenant.id).order_by(ApiKey.created_at.desc(), ApiKey.id)
    return list((await session.execute(stmt)).scalars())


async def key_owner(session: AsyncSession, key_id: str) -> str | None:
    """The code of the airline a key belongs to; None for an operator key or no such key."""
    stmt = select(Airline.code).join(ApiKey, ApiKey.airline_id == Airline.id).where(ApiKey.id == key_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def key_exists(session: AsyncSession, key_id: str) -> bool:
    return (await session.execute(select(ApiKey.id).where(ApiKey.id == key_id))).first() is not None
