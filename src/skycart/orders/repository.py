"""All SQL for orders, their lines, idempotency records and offline sales."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import func
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.orders.models import REVENUE_STATUSES, OfflineSale, Order, OrderLine
from skycart.platform.tenancy import Tenant, scoped_columns, scoped_select, scoped_update


async def add_all(session: AsyncSession, rows: Sequence[Any]) -> None:
    session.add_all(rows)
    await session.flush()


async def get(session: AsyncSession, tenant: Tenant, order_id: str) -> Order | None:
    stmt = scoped_select(tenant, Order).where(Order.id == order_id).execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def lines_of(session: AsyncSession, tenant: Tenant, order_ids: Sequence[str]) -> dict[str, list[OrderLine]]:
    lines: dict[str, list[OrderLine]] = {order_id: [] for order_id in order_ids}
    if not order_ids:
        return lines
    stmt = scoped_select(tenant, OrderLine).where(OrderLine.order_id.in_(order_ids)).order_by(OrderLine.position)
    for line in (await session.execute(stmt)).scalars():
        lines[line.order_id].append(line)
    return lines


async def page(
    session: AsyncSession, tenant: Tenant, *, after: str | None, limit: int, flight_id: str | None, seat: str | None
) -> list[Order]:
    stmt = scoped_select(tenant, Order).order_by(Order.id).limit(limit)
    if after:
        stmt = stmt.where(Order.id > after)
    if flight_id:
        stmt = stmt.where(Order.flight_id == flight_id)
    if seat:
        stmt = stmt.where(Order.seat == seat)
    return list((await session.execute(stmt)).scalars())


async def transition(
    session: AsyncSession, tenant: Tenant, order_id: str, *, from_statuses: Sequence[str], values: dict[str, Any]
) -> bool:
    """Move an order on only if it is still in one of `from_statuses` (safe under concurrency)."""
    result = await session.execute(
        scoped_update(tenant, Order).where(Order.id == order_id, Order.status.in_(from_statuses)).values(**values)
    )
    return cast(CursorResult[Any], result).rowcount == 1


async def revenue(session: AsyncSession, tenant: Tenant, flight_id: str) -> tuple[int, dict[str, int]]:
    stmt = (
        scoped_columns(tenant, Order, Order.currency, func.count(), func.sum(Order.total_minor))
        .where(Order.flight_id == flight_id, Order.status.in_(REVENUE_STATUSES))
        .group_by(Order.currency)
    )
    rows = (await session.execute(stmt)).all()
    return sum(r[1] for r in rows), {r[0]: int(r[2] or 0) for r in rows}


async def offline_sales(session: AsyncSession, tenant: Tenant, client_ids: Sequence[str]) -> dict[str, OfflineSale]:
    """The already-applied sales among `client_ids`, by client id."""
    wanted = list(set(client_ids))
    found: dict[str, OfflineSale] = {}
    for start in range(0, len(wanted), 500):
        stmt = scoped_select(tenant, OfflineSale).where(OfflineSale.client_id.in_(wanted[start : start + 500]))
        found.update({sale.client_id: sale for sale in (await session.execute(stmt)).scalars()})
    return found
