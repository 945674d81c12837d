"""All SQL for the catalog."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from skycart.catalog.models import Product
from skycart.platform.tenancy import Tenant, scoped_delete, scoped_select


async def by_sku(session: AsyncSession, tenant: Tenant, sku: str) -> Product | None:
    stmt = scoped_select(tenant, Product).where(Product.sku == sku)
    return (await session.execute(stmt)).scalar_one_or_none()


async def by_skus(session: AsyncSession, tenant: Tenant, skus: Iterable[str]) -> dict[str, Product]:
    wanted = list(set(skus))
    found: dict[str, Product] = {}
    for start in range(0, len(wanted), 500):
        stmt = scoped_select(tenant, Product).where(Product.sku.in_(wanted[start : start + 500]))
        found.update({p.sku: p for p in (await session.execute(stmt)).scalars()})
    return found


async def page(
    session: AsyncSession,
    tenant: Tenant,
    *,
    after: str | None,
    limit: int,
    category: str | None = None,
    active: bool | None = None,
) -> list[Product]:
    stmt = scoped_select(tenant, Product).order_by(Product.sku).limit(limit)
    if after:
        stmt = stmt.where(Product.sku > after)
    if category is not None:
        stmt = stmt.where(Product.category == category)
    if active is not None:
        stmt = stmt.where(Product.active.is_(active))
    return list((await session.execute(stmt)).scalars())


async def add_all(session: AsyncSession, products: Iterable[Product]) -> None:
    session.add_all(products)
    await session.flush()


async def delete(session: AsyncSession, tenant: Tenant, product_id: str) -> None:
    await session.execute(scoped_delete(tenant, Product).where(Product.id == product_id))
