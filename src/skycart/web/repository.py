"""All SQL of the web package: console sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.airlines.models import Airline, ApiKey
from skycart.web.models import WebSession


async def add_session(session: AsyncSession, row: WebSession) -> None:
    session.add(row)
    await session.flush()


async def live_session(
    session: AsyncSession, session_id: str, now: datetime
) -> tuple[ApiKey, str | None, datetime] | None:
    """The key behind an unexpired session whose key is not revoked, its airline code, and the expiry."""
    stmt = (
        select(ApiKey, Airline.code, WebSession.expires_at)
        .join(WebSession, WebSession.key_id == ApiKey.id)
        .outerjoin(Airline, Airline.id == ApiKey.airline_id)
        .where(WebSession.id == session_id, WebSession.expires_at > now, ApiKey.revoked_at.is_(None))
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1], row[2]) if row else None


async def delete_session(session: AsyncSession, session_id: str) -> None:
    await session.execute(delete(WebSession).where(WebSession.id == session_id))


async def delete_expired_sessions(session: AsyncSession, now: datetime) -> None:
    await session.execute(delete(WebSession).where(WebSession.expires_at <= now))
