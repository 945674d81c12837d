"""Flights, what is loaded on them, and what a passenger on board can buy."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Protocol

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.airlines import service as airlines
from skycart.catalog import images as catalog_images
from skycart.catalog import repository as catalog
from skycart.catalog.service import localize
from skycart.errors import AlreadyExists, NotFound, ValidationFailed
from skycart.flights import repository
from skycart.flights.models import Flight, LoadedStock
from skycart.flights.schemas import (
    FlightCreate,
    FlightOut,
    InventoryOut,
    InventoryPut,
    Menu,
    MenuItem,
    StockOut,
)
from skycart.money import to_decimal_string
from skycart.platform.assets import AssetStore
from skycart.platform.cache import CacheKey
from skycart.platform.db import transaction
from skycart.platform.pagination import Slice, read_slice
from skycart.platform.tenancy import Tenant

if TYPE_CHECKING:
    from skycart.platform.runtime import Runtime

DUTY_FREE = "duty_free"


def flight_out(flight: Flight) -> FlightOut:
    return FlightOut.model_validate(flight, from_attributes=True)


async def get_flight(session: AsyncSession, *, tenant: Tenant, flight_id: str, lock: bool = False) -> Flight:
    flight = await repository.get(session, tenant, flight_id, lock=lock)
    if flight is None:
        raise NotFound(f"flight {flight_id} not found")
    return flight


async def list_flights(
    session: AsyncSession, *, tenant: Tenant, after: str | None, limit: int, departure_date: dt.date | None = None
) -> Slice[Flight]:
    """The airline's flights in id order, a page at a time."""
    return await read_slice(
        lambda n: repository.page(session, tenant, after=after, limit=n, departure_date=departure_date),
        limit=limit,
        key=lambda f: f.id,
    )


async def create_flight(session: AsyncSession, *, tenant: Tenant, data: FlightCreate) -> Flight:
    """Schedule a flight leg; the same number, date and origin twice is a conflict."""
    flight = Flight(airline_id=tenant.id, **data.model_dump())
    try:
        async with session.begin_nested():
            await repository.add(session, flight)
    except IntegrityError as exc:
        raise AlreadyExists(
            f"flight {data.flight_number} on {data.departure_date} from {data.origin} already exists"
        ) from exc
    return flight


class Leg(Protocol):
    """What the sale rules read of a flight: a Flight row, or the checkout's read of one."""

    @property
    def international(self) -> bool: ...


def sellable_on(product_restrictions: list[str], flight: Leg) -> bool:
    """Duty-free goods are sold only on international legs."""
    return flight.international or DUTY_FREE not in product_restrictions


def _stock_out(stock: LoadedStock, sku: str) -> StockOut:
    return StockOut(
        sku=sku,
        loaded=stock.quantity_loaded,
        sold=stock.quantity_sold,
        remaining=max(stock.quantity_loaded - stock.quantity_sold, 0),
    )


async def inventory(session: AsyncSession, *, tenant: Tenant, flight_id: str) -> InventoryOut:
    await get_flight(session, tenant=tenant, flight_id=flight_id)
    rows = await repository.stock_with_products(session, tenant, flight_id)
    return InventoryOut(flight_id=flight_id, items=[_stock_out(stock, product.sku) for stock, product in rows])


async def load_inventory(session: AsyncSession, *, tenant: Tenant, flight_id: str, data: InventoryPut) -> InventoryOut:
    """Replace the flight's loading list; never below what is already sold."""
    await get_flight(session, tenant=tenant, flight_id=flight_id)
    wanted: dict[str, int] = {}
    for line in data.items:
        if line.sku in wanted:
            raise ValidationFailed(f"items: sku {line.sku} is listed twice")
        wanted[line.sku] = line.quantity
    products = await catalog.by_skus(session, tenant, wanted)
    unknown = sorted(set(wanted) - set(products))
    if unknown:
        raise ValidationFailed(f"items: unknown sku(s) {', '.join(unknown[:20])}", unknown_skus=unknown)
    current = {
        product.sku: stock for stock, product in await repository.stock_with_products(session, tenant, flight_id)
    }
    problems: list[str] = []
    for sku, quantity in wanted.items():
        stock = current.get(sku)
        if stock is None:
            await repository.add(
                session,
                LoadedStock(
                    airline_id=tenant.id,
                    flight_id=flight_id,
                    product_id=products[sku].id,
                    quantity_loaded=quantity,
                    quantity_sold=0,
                ),
            )
        elif not await repository.set_loaded(session, tenant, stock.id, quantity):
            problems.append(f"{sku}: {quantity} is less than the {stock.quantity_sold} already sold")
    for sku, stock in current.items():
        if sku not in wanted and not await repository.unload(session, tenant, stock.id):
            problems.append(f"{sku}: cannot unload, {stock.quantity_sold} already sold")
    if problems:
        raise ValidationFailed("; ".join(problems), problems=problems)
    return await inventory(session, tenant=tenant, flight_id=flight_id)


async def menu(
    session: AsyncSession,
    assets: AssetStore,
    *,
    tenant: Tenant,
    flight_id: str,
    locale: str | None,
    currency: str | None,
) -> Menu:
    """Active products loaded on the flight, priced in one currency, in one language, with image URLs."""
    flight = await get_flight(session, tenant=tenant, flight_id=flight_id)
    airline = await airlines.airline_for(session, tenant)
    currency = currency or airline.currencies[0]
    if currency not in airline.currencies:
        raise ValidationFailed(f"currency: {currency} is not one of {airline.currencies}")
    locale = locale or airline.default_locale
    offered = [
        (stock, product)
        for stock, product in await repository.stock_with_products(session, tenant, flight_id)
        if product.active and currency in product.prices and sellable_on(product.restrictions, flight)
    ]
    gallery = await catalog_images.menu_images(session, assets, tenant=tenant, product_ids=[p.id for _, p in offered])
    items = [
        MenuItem(
            sku=product.sku,
            name=localize(product.name, locale, airline.default_locale),
            description=localize(product.description, locale, airline.default_locale),
            category=product.category,
            price=to_decimal_string(product.prices[currency], currency),
            currency=currency,
            available=max(stock.quantity_loaded - stock.quantity_sold, 0),
            min_age=product.min_age,
            restrictions=product.restrictions,
            images=gallery.get(product.id, []),
        )
        for stock, product in offered
    ]
    return Menu(flight_id=flight_id, locale=locale, currency=currency, items=items)


async def cached_menu_json(
    runtime: Runtime, *, tenant: Tenant, flight_id: str, locale: str | None, currency: str | None
) -> bytes:
    """The menu as JSON bytes from the menu cache, which the API, its fast path and the storefront share;
    on a miss it is rendered in a read transaction of its own."""

    async def render() -> bytes:
        async with transaction(runtime.sessions, write=False) as session:
            found = await menu(
                session, runtime.asset_store(), tenant=tenant, flight_id=flight_id, locale=locale, currency=currency
            )
        return orjson.dumps(found.model_dump(mode="json"))

    return await runtime.menus.get_or_render(menu_key(tenant, flight_id, locale, currency), render)


def menu_key(tenant: Tenant, flight_id: str, locale: str | None, currency: str | None) -> CacheKey:
    """Where a rendered menu is kept: the route, the fast path and the storefront all read it by this key."""
    return (tenant.id, flight_id, locale, currency)
