"""All SQL for plans, stored usage, and the reads of orders that statements and business usage need."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.airlines.models import Airline
from skycart.billing.models import AirlinePlan, ClosedStatement, Plan
from skycart.limits.models import QuotaCounter
from skycart.metering.models import UsageHour, UsageMinute
from skycart.orders.models import CANCELLED, REVENUE_STATUSES, OfflineSale, Order, OrderLine
from skycart.platform.tenancy import Tenant, scoped_columns, scoped_select


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


async def plan_change(session: AsyncSession, airline_id: str, change_id: str) -> tuple[AirlinePlan, Plan] | None:
    stmt = (
        select(AirlinePlan, Plan)
        .join(Plan, Plan.id == AirlinePlan.plan_id)
        .where(AirlinePlan.airline_id == airline_id, AirlinePlan.id == change_id)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else (row[0], row[1])


async def live_plan_changes(session: AsyncSession) -> list[tuple[str, str, datetime]]:
    """(airline code, plan id, effective from) of every change not cancelled, in force order per airline."""
    stmt = (
        select(Airline.code, AirlinePlan.plan_id, AirlinePlan.effective_from)
        .join(Airline, Airline.id == AirlinePlan.airline_id)
        .where(AirlinePlan.cancelled_at.is_(None))
        .order_by(Airline.code, AirlinePlan.effective_from, AirlinePlan.created_at)
    )
    return [(code, plan_id, since) for code, plan_id, since in await session.execute(stmt)]


async def add(session: AsyncSession, row: Plan | AirlinePlan | ClosedStatement | QuotaCounter) -> None:
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


# When SkyCart learnt of an order: an offline sale when it was synced, any other when it was placed.
_recorded_at = func.coalesce(OfflineSale.received_at, Order.created_at)


async def gmv_by_currency(
    session: AsyncSession, tenant: Tenant, start: datetime, end: datetime, *, as_of: datetime
) -> dict[str, int]:
    """Totals (minor units) of the airline's orders created in [start, end) that were revenue at `as_of`:
    known by then, and not cancelled by then."""
    stmt = (
        scoped_columns(tenant, Order, Order.currency, func.sum(Order.total_minor))
        .outerjoin(OfflineSale, and_(OfflineSale.airline_id == tenant.id, OfflineSale.order_id == Order.id))
        .where(
            Order.created_at >= start,
            Order.created_at < end,
            _recorded_at < as_of,
            or_(Order.status.in_(REVENUE_STATUSES), and_(Order.status == CANCELLED, Order.cancelled_at >= as_of)),
        )
        .group_by(Order.currency)
    )
    return {currency: int(total) for currency, total in await session.execute(stmt)}


async def late_sales(
    session: AsyncSession, tenant: Tenant, start: datetime, end: datetime
) -> list[tuple[str, datetime, datetime, str, int]]:
    """(order id, sold at, synced at, currency, total) of offline sales synced in [start, end) and sold before it."""
    stmt = (
        scoped_columns(
            tenant, Order, Order.id, Order.created_at, OfflineSale.received_at, Order.currency, Order.total_minor
        )
        .join(OfflineSale, and_(OfflineSale.airline_id == tenant.id, OfflineSale.order_id == Order.id))
        .where(OfflineSale.received_at >= start, OfflineSale.received_at < end, Order.created_at < start)
        .order_by(OfflineSale.received_at, Order.id)
    )
    return [(oid, sold, synced, cur, int(total)) for oid, sold, synced, cur, total in await session.execute(stmt)]


async def late_cancellations(
    session: AsyncSession, tenant: Tenant, start: datetime, end: datetime
) -> list[tuple[str, datetime, datetime, str, int]]:
    """(order id, created at, cancelled at, currency, total) of orders cancelled in [start, end), created before it."""
    stmt = (
        scoped_columns(tenant, Order, Order.id, Order.created_at, Order.cancelled_at, Order.currency, Order.total_minor)
        .where(
            Order.status == CANCELLED,
            Order.cancelled_at >= start,
            Order.cancelled_at < end,
            Order.created_at < start,
        )
        .order_by(Order.cancelled_at, Order.id)
    )
    return [(oid, made, gone, cur, int(total)) for oid, made, gone, cur, total in await session.execute(stmt)]


async def closed_statement(session: AsyncSession, tenant: Tenant, month: str) -> ClosedStatement | None:
    stmt = scoped_select(tenant, ClosedStatement).where(ClosedStatement.month == month)
    return (await session.execute(stmt)).scalar_one_or_none()


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


async def quota_counter(session: AsyncSession, tenant: Tenant, period: str) -> QuotaCounter | None:
    """The airline's hard-quota counter for a month, locked for this transaction (on SQLite, the write lock)."""
    stmt = scoped_select(tenant, QuotaCounter).where(QuotaCounter.period == period).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()
