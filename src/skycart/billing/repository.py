"""All SQL of billing: plans, plan history, stored usage, closed statements, and the reads of orders that
statements and sales need. Every read of one airline's rows takes its `Tenant`; the few that span every
airline say so in their names (`..._of_all_airlines`) and are reached only from operator routes and jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import TypeVar

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.airlines.models import Airline
from skycart.billing.models import AirlinePlan, ClosedStatement, Plan
from skycart.metering.models import UsageHour, UsageMinute
from skycart.orders.models import CANCELLED, REVENUE_STATUSES, OfflineSale, Order, OrderLine
from skycart.platform.tenancy import Tenant, scoped_columns, scoped_select


async def plans(session: AsyncSession) -> list[Plan]:
    return list((await session.execute(select(Plan).order_by(Plan.monthly_fee_minor, Plan.code))).scalars())


async def plan_by_code(session: AsyncSession, code: str) -> Plan | None:
    return (await session.execute(select(Plan).where(Plan.code == code))).scalar_one_or_none()


async def plan_history(session: AsyncSession, tenant: Tenant) -> list[tuple[AirlinePlan, Plan]]:
    stmt = (
        scoped_select(tenant, AirlinePlan, Plan)
        .join(Plan, Plan.id == AirlinePlan.plan_id)
        .order_by(AirlinePlan.effective_from, AirlinePlan.created_at)
    )
    return [(row[0], row[1]) for row in await session.execute(stmt)]


async def plan_change(session: AsyncSession, tenant: Tenant, change_id: str) -> tuple[AirlinePlan, Plan] | None:
    stmt = (
        scoped_select(tenant, AirlinePlan, Plan)
        .join(Plan, Plan.id == AirlinePlan.plan_id)
        .where(AirlinePlan.id == change_id)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else (row[0], row[1])


async def live_plan_changes_of_all_airlines(session: AsyncSession) -> list[tuple[str, str, datetime]]:
    """(airline code, plan id, effective from) of every change not cancelled, in force order per airline."""
    stmt = (
        select(Airline.code, AirlinePlan.plan_id, AirlinePlan.effective_from)
        .join(Airline, Airline.id == AirlinePlan.airline_id)
        .where(AirlinePlan.cancelled_at.is_(None))
        .order_by(Airline.code, AirlinePlan.effective_from, AirlinePlan.created_at)
    )
    return [(code, plan_id, since) for code, plan_id, since in await session.execute(stmt)]


async def add(session: AsyncSession, row: Plan | AirlinePlan | ClosedStatement) -> None:
    session.add(row)
    await session.flush()


UsageModel = type[UsageMinute] | type[UsageHour]
UsageRow = TypeVar("UsageRow", bound=UsageMinute | UsageHour)


async def billable_requests(session: AsyncSession, tenant: Tenant, start: datetime, end: datetime) -> int:
    """Billable requests in [start, end) on hour boundaries (a month): hour rows outlive minute rows."""
    return await billable_in(session, UsageHour, tenant, start, end)


async def billable_in(session: AsyncSession, model: UsageModel, tenant: Tenant, start: datetime, end: datetime) -> int:
    """Billable requests of the usage windows that start in [start, end)."""
    stmt = select(func.coalesce(func.sum(model.billable), 0)).where(
        model.airline == tenant.code, model.window_start >= start, model.window_start < end
    )
    return int((await session.execute(stmt)).scalar_one())


async def usage_rows(
    session: AsyncSession, tenant: Tenant, model: UsageModel, start: datetime, end: datetime
) -> AsyncIterator[UsageMinute | UsageHour]:
    """The airline's usage rows whose windows start in [start, end), in window order."""
    async for row in _usage_rows(session, model, start, end, airline_code=tenant.code):
        yield row


async def usage_rows_of_all_airlines(
    session: AsyncSession, model: UsageModel, start: datetime, end: datetime, *, airline_code: str | None = None
) -> AsyncIterator[UsageMinute | UsageHour]:
    """Every airline's usage rows (anonymous and operator traffic included), or one code's: operator views only."""
    async for row in _usage_rows(session, model, start, end, airline_code=airline_code):
        yield row


async def _usage_rows(
    session: AsyncSession, model: type[UsageRow], start: datetime, end: datetime, *, airline_code: str | None
) -> AsyncIterator[UsageRow]:
    stmt = select(model).where(model.window_start >= start, model.window_start < end)
    if airline_code is not None:
        stmt = stmt.where(model.airline == airline_code)
    for row in (await session.execute(stmt.order_by(model.window_start))).scalars():
        yield row


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


async def closed_months(session: AsyncSession, tenant: Tenant) -> set[str]:
    """The months ("2026-10") whose final statement the airline has stored."""
    return set((await session.execute(scoped_columns(tenant, ClosedStatement, ClosedStatement.month))).scalars())


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
