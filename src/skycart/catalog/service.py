"""Catalog rules: one SKU per airline, prices in the airline's currencies, text in its locales."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.airlines import service as airlines
from skycart.airlines.models import Airline
from skycart.catalog import repository
from skycart.catalog.models import Product
from skycart.catalog.schemas import ImageOut, ImportResult, ImportRowError, ProductCreate, ProductFields, ProductOut
from skycart.errors import AlreadyExists, Conflict, NotFound, ProductInUse, ValidationFailed
from skycart.money import to_decimal_string, to_minor
from skycart.platform.db import is_retryable, utcnow
from skycart.platform.pagination import Slice, read_slice
from skycart.platform.tenancy import Tenant


def localize(texts: dict[str, str], locale: str | None, default_locale: str) -> str:
    """The text in `locale`, else its base language, else the airline's default, else any."""
    if not texts:
        return ""
    for candidate in (locale, locale.split("-")[0] if locale else None, default_locale):
        if candidate and candidate in texts:
            return texts[candidate]
    return next(iter(texts.values()))


def product_out(product: Product, images: list[ImageOut] | None = None) -> ProductOut:
    return ProductOut(
        sku=product.sku,
        name=product.name,
        description=product.description,
        category=product.category,
        prices={cur: to_decimal_string(minor, cur) for cur, minor in product.prices.items()},
        min_age=product.min_age,
        restrictions=product.restrictions,
        attributes=product.attributes,
        active=product.active,
        images=images or [],
        created_at=product.created_at,
        updated_at=product.updated_at,
    )


def check_against_airline(fields: ProductFields, airline: Airline) -> list[tuple[str, str]]:
    """(field, message) for every price or text the airline cannot sell or show."""
    problems = [
        (f"prices.{cur}", f"{cur} is not one of the airline's currencies {airline.currencies}")
        for cur in fields.prices
        if cur not in airline.currencies
    ]
    for field in ("name", "description"):
        problems += [
            (f"{field}.{loc}", f"{loc} is not one of the airline's locales {airline.locales}")
            for loc in getattr(fields, field)
            if loc not in airline.locales
        ]
    return problems


def _apply(product: Product, fields: ProductFields) -> None:
    product.name = dict(fields.name)
    product.description = dict(fields.description)
    product.category = fields.category
    product.prices = {cur: to_minor(amount, cur) for cur, amount in fields.prices.items()}
    product.min_age = fields.min_age
    product.restrictions = list(fields.restrictions)
    product.attributes = dict(fields.attributes)
    product.active = fields.active


def _reject(problems: list[tuple[str, str]]) -> None:
    if problems:
        field, message = problems[0]
        raise ValidationFailed(
            f"{field}: {message}", errors=[{"loc": ["body", *f.split(".")], "message": m} for f, m in problems]
        )


async def list_products(
    session: AsyncSession,
    *,
    tenant: Tenant,
    after: str | None,
    limit: int,
    category: str | None = None,
    active: bool | None = None,
) -> Slice[Product]:
    """The airline's products in SKU order, a page at a time."""
    return await read_slice(
        lambda n: repository.page(session, tenant, after=after, limit=n, category=category, active=active),
        limit=limit,
        key=lambda p: p.sku,
    )


async def get_product(session: AsyncSession, *, tenant: Tenant, sku: str) -> Product:
    product = await repository.by_sku(session, tenant, sku)
    if product is None:
        raise NotFound(f"product {sku} not found")
    return product


async def create_product(session: AsyncSession, *, tenant: Tenant, data: ProductCreate) -> Product:
    """Add a product; its SKU must be new for this airline."""
    _reject(check_against_airline(data, await airlines.airline_for(session, tenant)))
    if await repository.by_sku(session, tenant, data.sku):
        raise AlreadyExists(f"product {data.sku} already exists")
    product = Product(airline_id=tenant.id, sku=data.sku)
    _apply(product, data)
    try:
        await repository.add_all(session, [product])
    except IntegrityError as exc:
        raise AlreadyExists(f"product {data.sku} already exists") from exc
    return product


async def replace_product(session: AsyncSession, *, tenant: Tenant, sku: str, data: ProductFields) -> Product:
    """Replace an existing product's fields as a whole."""
    product = await get_product(session, tenant=tenant, sku=sku)
    _reject(check_against_airline(data, await airlines.airline_for(session, tenant)))
    _apply(product, data)
    product.updated_at = utcnow()
    await session.flush()
    return product


async def delete_product(session: AsyncSession, *, tenant: Tenant, sku: str) -> list[str]:
    """Delete a product that no flight carries; a loaded product stays (withdraw it with active=false).

    Returns the asset keys of its images' files, for the caller to remove once the deletion is committed.
    """
    product = await get_product(session, tenant=tenant, sku=sku)
    images = (await repository.images_of(session, tenant, [product.id])).get(product.id, [])
    try:
        await repository.delete(session, tenant, product.id)
        await session.flush()
    except IntegrityError as exc:
        raise ProductInUse(f"product {sku} is loaded on flights; set active=false to withdraw it") from exc
    return [key for image in images for key in image.storage_keys.values()]


async def import_products(
    session: AsyncSession, *, tenant: Tenant, rows: Sequence[ProductCreate | None], row_errors: list[ImportRowError]
) -> ImportResult:
    """Create or replace every row, or none: any row error rejects the whole import."""
    airline = await airlines.airline_for(session, tenant)
    errors = list(row_errors)
    seen: dict[str, int] = {}
    for index, row in enumerate(rows, start=1):
        if row is None:
            continue
        if row.sku in seen:
            errors.append(
                ImportRowError(row=index, sku=row.sku, field="sku", message=f"duplicate of row {seen[row.sku]}")
            )
        seen.setdefault(row.sku, index)
        errors += [
            ImportRowError(row=index, sku=row.sku, field=field, message=message)
            for field, message in check_against_airline(row, airline)
        ]
    if errors:
        errors.sort(key=lambda e: e.row)
        raise ValidationFailed(
            f"{len(errors)} error(s) in {len({e.row for e in errors})} row(s); nothing was imported",
            errors=[e.model_dump() for e in errors],
        )
    existing = await repository.by_skus(session, tenant, seen)
    created: list[Product] = []
    now = utcnow()
    for row in rows:
        if row is None:
            # A row that failed to parse has its error in row_errors, so the import stopped above.
            raise ValueError("an import row that failed to parse came without its error in row_errors")
        product = existing.get(row.sku)
        if product is None:
            product = Product(airline_id=tenant.id, sku=row.sku)
            created.append(product)
        else:
            product.updated_at = now
        _apply(product, row)
    try:
        await repository.add_all(session, created)
    except (IntegrityError, OperationalError) as exc:
        # Another import or create added one of these SKUs meanwhile; replaying the import is safe.
        if isinstance(exc, OperationalError) and not is_retryable(exc):
            raise
        raise Conflict("products changed while importing; retry the import", headers={"Retry-After": "1"}) from exc
    return ImportResult(created=len(created), updated=len(rows) - len(created), total=len(rows))
