"""All SQL for plans and stored usage."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.metering.models import AirlinePlan, Plan, UsageMinute


async def plans(session: AsyncSession) -> list[Plan]:
    return list((await session.execute(select(Plan).order_by(Plan.monthly_fee_minor, Plan.code))).scalars())


async def plan_by_code(session: AsyncSession, code: str) -> Plan | None:
    return (await session.execute(select(Plan).where(Plan.code == code))).scalar_one_or_none()


async def plan_history(session: AsyncSession, airline_id: str) -> list[tuple[AirlinePlan, Plan]]:
    stmt = (
        select(AirlinePlan, Plan)
        .join(Plan, Plan.id == AirlinePlan.plan_id)
        .where(AirlinePlan.airline_id == airline_id)
        .order_by(AirlinePlan.effective_from, AirlinePlan.created_at)
    )
    return [(row[0], row[1]) for row in await session.execute(stmt)]


async def add(session: AsyncSession, row: Plan | AirlinePlan) -> None:
    session.add(row)
    await session.flush()


async def billable_requests(session: AsyncSession, airline: str, start: datetime, end: datetime) -> int:
    stmt = select(func.coalesce(func.sum(UsageMinute.billable), 0)).where(
        UsageMinute.airline == airline, UsageMinute.window_start >= start, UsageMinute.window_start < end
    )
    return int((await session.execute(stmt)).scalar_one())
