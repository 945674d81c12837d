"""All SQL for plans, stored usage, and the reads of orders that statements and business usage need."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.metering.models import AirlinePlan, Plan, UsageHour, UsageMinute
from skycart.orders.models import REVENUE_STATUSES, Order, OrderLine
from skycart.platform.tenancy import Tenant, scoped_columns


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
    """Billable requests in [start, end) on hour boundaries (a month): hour rows outlive minute rows."""
    return await billable_in(session, UsageHour, airline, start, end)


async def billable_in(
    session: AsyncSession, model: type[UsageMinute] | type[UsageHour], airline: str, start: datetime, end: datetime
) -> int:
    """Billable requests of the usage windows that start in [start, end)."""
    stmt = select(func.coalesce(func.sum(model.billable), 0)).where(
        model.airline == airline, model.window_start >= start, model.window_start < end
    )
    return int((await session.execute(stmt)).scalar_one())


async def gmv_by_currency(session: AsyncSession, tenant: Tenant, start: datetime, end: datetime) -> dict[str, int]:
    """Totals (minor units) of the airline's revenue orders created in [start, end), per currency."""
    stmt = (
        scoped_columns(tenant, Order, Order.currency, func.sum(Order.total_minor))
        .where(Order.status.in_(REVENUE_STATUSES), Order.created_at >= start, Order.created_at < end)
        .group_by(Order.currency)
    )
    return {currency: int(total) for currency, total in await session.execute(stmt)}


async def revenue_orders(
    session: AsyncSession, tenant: Tenant, start: datetime, end: datetime
) -> AsyncIterator[tuple[datetime, str, int, int]]:
    """(created_at, currency, total minor, item quantity) of each revenue order created in [start, end), streamed."""
    stmt = (
        scoped_columns(
            tenant,
            Order,
            Order.created_at,
            Order.currency,
            Order.total_minor,
            func.coalesce(func.sum(OrderLine.quantity), 0),
        )
        .outerjoin(OrderLine, and_(OrderLine.airline_id == tenant.id, OrderLine.order_id == Order.id))
        .where(Order.status.in_(REVENUE_STATUSES), Order.created_at >= start, Order.created_at < end)
        .group_by(Order.id, Order.created_at, Order.currency, Order.total_minor)
    )
    result = await session.stream(stmt)
    async for created_at, currency, total, items in result:
        yield created_at, currency, int(total), int(items)
