"""All SQL of limits: the hard-quota counter rows."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from skycart.limits.models import QuotaCounter
from skycart.platform.tenancy import Tenant, scoped_select


async def quota_counter(session: AsyncSession, tenant: Tenant, period: str) -> QuotaCounter | None:
    """The airline's hard-quota counter for a month, locked for this transaction (on SQLite, the write lock)."""
    stmt = scoped_select(tenant, QuotaCounter).where(QuotaCounter.period == period).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def add(session: AsyncSession, row: QuotaCounter) -> None:
    session.add(row)
    await session.flush()
