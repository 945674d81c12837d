"""How long stored usage is kept: minute rows for days, hour rows for months, flush ids for a week."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from skycart.config import Settings
from skycart.metering.models import MeteringFlush, UsageHour, UsageMinute
from skycart.platform.db import transaction, utcnow

FLUSH_ID_DAYS = 7


async def prune(sessions: async_sessionmaker[AsyncSession], settings: Settings, now: datetime | None = None) -> None:
    """Drop usage older than the retention settings; flush ids are only needed for a few days."""
    now = now or utcnow()
    async with transaction(sessions) as session:
        await session.execute(
            delete(UsageMinute).where(
                UsageMinute.window_start < now - timedelta(days=settings.usage_minute_retention_days)
            )
        )
        await session.execute(
            delete(UsageHour).where(UsageHour.window_start < now - timedelta(days=settings.usage_hour_retention_days))
        )
        await session.execute(
            delete(MeteringFlush).where(MeteringFlush.created_at < now - timedelta(days=FLUSH_ID_DAYS))
        )
