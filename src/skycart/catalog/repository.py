"""All SQL for the catalog."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.catalog.models import Product, ProductImage
from skycart.platform.tenancy import Tenant, scoped_columns, scoped_delete, scoped_select


async def by_sku(session: AsyncSession, tenant: Tenant, sku: str, *, lock: bool = False) -> Product | None:
    stmt = scoped_select(tenant, Product).where(Product.sku == sku)
    if lock:
        stmt = stmt.with_for_update()
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


async def images_of(session: AsyncSession, tenant: Tenant, product_ids: Iterable[str]) -> dict[str, list[ProductImage]]:
    """Every image of these products, in display order: one query per 500 products."""
    wanted = list(set(product_ids))
    found: dict[str, list[ProductImage]] = {}
    for start in range(0, len(wanted), 500):
        stmt = (
            scoped_select(tenant, ProductImage)
            .where(ProductImage.product_id.in_(wanted[start : start + 500]))
            .order_by(ProductImage.product_id, ProductImage.position)
        )
        for image in (await session.execute(stmt)).scalars():
            found.setdefault(image.product_id, []).append(image)
    return found


async def image_slots(session: AsyncSession, tenant: Tenant, product_id: str) -> tuple[int, int]:
    """(how many images the product has, the highest position taken or 0)."""
    stmt = scoped_columns(
        tenant, ProductImage, func.count(ProductImage.id), func.coalesce(func.max(ProductImage.position), 0)
    ).where(ProductImage.product_id == product_id)
    count, last = (await session.execute(stmt)).one()
    return int(count), int(last)


async def image(session: AsyncSession, tenant: Tenant, product_id: str, image_id: str) -> ProductImage | None:
    stmt = scoped_select(tenant, ProductImage).where(ProductImage.product_id == product_id, ProductImage.id == image_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def add_image(session: AsyncSession, image: ProductImage) -> None:
    session.add(image)
    await session.flush()


async def delete_image(session: AsyncSession, tenant: Tenant, image_id: str) -> None:
    await session.execute(scoped_delete(tenant, ProductImage).where(ProductImage.id == image_id))
