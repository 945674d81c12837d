"""All SQL for flights and loaded stock."""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from sqlalchemy import or_
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.catalog.models import Product
from skycart.flights.models import Flight, LoadedStock
from skycart.platform.tenancy import Tenant, scoped_delete, scoped_select, scoped_update


async def get(session: AsyncSession, tenant: Tenant, flight_id: str, *, lock: bool = False) -> Flight | None:
    stmt = scoped_select(tenant, Flight).where(Flight.id == flight_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def page(
    session: AsyncSession, tenant: Tenant, *, after: str | None, limit: int, departure_date: date | None
) -> list[Flight]:
    stmt = scoped_select(tenant, Flight).order_by(Flight.id).limit(limit)
    if after:
        stmt = stmt.where(Flight.id > after)
    if departure_date:
        stmt = stmt.where(Flight.departure_date == departure_date)
    return list((await session.execute(stmt)).scalars())


async def add(session: AsyncSession, row: Flight | LoadedStock) -> None:
    session.add(row)
    await session.flush()


async def stock_with_products(
    session: AsyncSession, tenant: Tenant, flight_id: str
) -> list[tuple[LoadedStock, Product]]:
    stmt = (
        scoped_select(tenant, LoadedStock, Product)
        .join(Product, Product.id == LoadedStock.product_id)
        .where(LoadedStock.flight_id == flight_id)
        .order_by(Product.category, Product.sku)
        .execution_options(populate_existing=True)
    )
    return [(row[0], row[1]) for row in await session.execute(stmt)]


async def take_stock_regardless(
    session: AsyncSession, tenant: Tenant, flight_id: str, product_id: str, quantity: int
) -> bool:
    """Count `quantity` units sold even past what was loaded (sales already made offline).

    False when the product has no stock row on the flight.
    """
    result = await session.execute(
        scoped_update(tenant, LoadedStock)
        .where(LoadedStock.flight_id == flight_id, LoadedStock.product_id == product_id)
        .values(quantity_sold=LoadedStock.quantity_sold + quantity)
    )
    return cast(CursorResult[Any], result).rowcount == 1


async def return_stock(session: AsyncSession, tenant: Tenant, flight_id: str, product_id: str, quantity: int) -> None:
    await session.execute(
        scoped_update(tenant, LoadedStock)
        .where(
            LoadedStock.flight_id == flight_id,
            LoadedStock.product_id == product_id,
            LoadedStock.quantity_sold >= quantity,
        )
        .values(quantity_sold=LoadedStock.quantity_sold - quantity)
    )


async def set_loaded(session: AsyncSession, tenant: Tenant, stock_id: str, quantity: int) -> bool:
    """Change the loaded quantity unless more than that is already sold; keeping it as it is always works."""
    result = await session.execute(
        scoped_update(tenant, LoadedStock)
        .where(
            LoadedStock.id == stock_id,
            or_(LoadedStock.quantity_sold <= quantity, LoadedStock.quantity_loaded == quantity),
        )
        .values(quantity_loaded=quantity)
    )
    return cast(CursorResult[Any], result).rowcount == 1


async def unload(session: AsyncSession, tenant: Tenant, stock_id: str) -> bool:
    """Remove a product from a flight unless some of it is sold."""
    result = await session.execute(
        scoped_delete(tenant, LoadedStock).where(LoadedStock.id == stock_id, LoadedStock.quantity_sold == 0)
    )
    return cast(CursorResult[Any], result).rowcount == 1
