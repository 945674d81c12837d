"""The SQL of placing an order: Core statements built once (SQLAlchemy keeps their compiled form), run on
the checkout's own connection. Each is scoped to the airline by its bound `airline_id`, taken from the
`Tenant` every function here receives.

Per order (one line, MariaDB): the key's claim, one read of the flight with the ordered products and their
stock, the conditional stock UPDATE, the order and its lines (one multi-row INSERT), the stored answer,
and one COMMIT.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BindParameter, CursorResult, and_, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from skycart.catalog.models import Product
from skycart.flights.models import Flight, LoadedStock
from skycart.orders.models import IdempotencyRecord, Order, OrderLine
from skycart.platform.db import new_id
from skycart.platform.tenancy import Tenant


@dataclass(frozen=True, slots=True)
class ShopProduct:
    """What an order needs to know of one ordered product on this flight."""

    id: str
    sku: str
    prices: dict[str, int]
    min_age: int | None
    restrictions: list[str]
    active: bool
    # Units left on the flight; None when the product is not loaded on it.
    remaining: int | None


@dataclass(frozen=True, slots=True)
class ShopFlight:
    id: str
    international: bool


@dataclass(frozen=True, slots=True)
class StoredRecord:
    request_hash: str
    state: str
    status: int | None
    body: str | None


_AIRLINE: BindParameter[str] = bindparam("tenant_id")

_RECORD = select(
    IdempotencyRecord.request_hash,
    IdempotencyRecord.state,
    IdempotencyRecord.response_status,
    IdempotencyRecord.response_body,
).where(IdempotencyRecord.airline_id == _AIRLINE, IdempotencyRecord.key == bindparam("key"))

_CLAIM = insert(IdempotencyRecord)

_FINISH = (
    update(IdempotencyRecord)
    .where(IdempotencyRecord.airline_id == _AIRLINE, IdempotencyRecord.key == bindparam("record_key"))
    .values(state="done", response_status=bindparam("status"), response_body=bindparam("body"))
)

# The flight, and each ordered product of the airline with its stock on that flight: no row, no flight;
# a row without product columns, none of the products exists.
_SHOP = (
    select(
        Flight.id,
        Flight.international,
        Product.id.label("product_id"),
        Product.sku,
        Product.prices,
        Product.min_age,
        Product.restrictions,
        Product.active,
        (LoadedStock.quantity_loaded - LoadedStock.quantity_sold).label("remaining"),
    )
    .select_from(Flight)
    .outerjoin(
        Product, and_(Product.airline_id == Flight.airline_id, Product.sku.in_(bindparam("skus", expanding=True)))
    )
    .outerjoin(
        LoadedStock,
        and_(
            LoadedStock.airline_id == Flight.airline_id,
            LoadedStock.flight_id == Flight.id,
            LoadedStock.product_id == Product.id,
        ),
    )
    .where(Flight.airline_id == _AIRLINE, Flight.id == bindparam("flight_id"))
)

_LOCK_FLIGHT = (
    select(Flight.id).where(Flight.airline_id == _AIRLINE, Flight.id == bindparam("flight_id")).with_for_update()
)

_SEAT_LINES = (
    select(OrderLine.restrictions, OrderLine.quantity)
    .join(Order, and_(Order.airline_id == OrderLine.airline_id, Order.id == OrderLine.order_id))
    .where(
        Order.airline_id == _AIRLINE,
        Order.flight_id == bindparam("flight_id"),
        Order.seat == bindparam("seat"),
        Order.status.in_(bindparam("statuses", expanding=True)),
    )
)

_TAKE_STOCK = (
    update(LoadedStock)
    .where(
        LoadedStock.airline_id == _AIRLINE,
        LoadedStock.flight_id == bindparam("stock_flight"),
        LoadedStock.product_id == bindparam("stock_product"),
        LoadedStock.quantity_loaded - LoadedStock.quantity_sold >= bindparam("quantity"),
    )
    .values(quantity_sold=LoadedStock.quantity_sold + bindparam("quantity"))
)

_ORDER = insert(Order)
_LINES = insert(OrderLine)
_ORDER_EXISTS = select(Order.id).where(Order.airline_id == _AIRLINE, Order.id == bindparam("order_id"))


async def stored_record(conn: AsyncConnection, tenant: Tenant, key: str) -> StoredRecord | None:
    row = (await conn.execute(_RECORD, {"tenant_id": tenant.id, "key": key})).first()
    return None if row is None else StoredRecord(row[0], row[1], row[2], row[3])


async def claim(conn: AsyncConnection, tenant: Tenant, key: str, digest: str, now: datetime) -> bool:
    """Insert the key's record as in progress; False when the key has a record already.

    Inside the order's transaction the new row stays invisible, and its unique key locked, until the
    order commits: a concurrent try with the same key waits for that, then finds the stored answer.
    """
    return await _insert_record(conn, tenant, key, digest, now, state="in_progress")


async def record_answer(
    conn: AsyncConnection, tenant: Tenant, key: str, digest: str, status: int, body: str, now: datetime
) -> bool:
    """Insert the key's record with its final answer; False when the key has a record already."""
    return await _insert_record(conn, tenant, key, digest, now, state="done", status=status, body=body)


async def _insert_record(
    conn: AsyncConnection,
    tenant: Tenant,
    key: str,
    digest: str,
    now: datetime,
    *,
    state: str,
    status: int | None = None,
    body: str | None = None,
) -> bool:
    row = {
        "id": new_id(),
        "airline_id": tenant.id,
        "key": key,
        "request_hash": digest,
        "state": state,
        "response_status": status,
        "response_body": body,
        "locked_at": now,
        "created_at": now,
    }
    try:
        await conn.execute(_CLAIM, row)
    except IntegrityError:
        return False
    return True


async def finish(conn: AsyncConnection, tenant: Tenant, key: str, status: int, body: str) -> None:
    """Store the final answer on the key this transaction claimed."""
    await conn.execute(_FINISH, {"tenant_id": tenant.id, "record_key": key, "status": status, "body": body})


async def shop(
    conn: AsyncConnection, tenant: Tenant, flight_id: str, skus: Iterable[str]
) -> tuple[ShopFlight | None, dict[str, ShopProduct]]:
    """The flight (None if the airline has none of this id) and the ordered products found, by SKU."""
    rows = (await conn.execute(_SHOP, {"tenant_id": tenant.id, "flight_id": flight_id, "skus": list(skus)})).all()
    if not rows:
        return None, {}
    flight = ShopFlight(rows[0].id, bool(rows[0].international))
    products = {
        row.sku: ShopProduct(
            id=row.product_id,
            sku=row.sku,
            prices=row.prices,
            min_age=row.min_age,
            restrictions=list(row.restrictions or []),
            active=bool(row.active),
            remaining=None if row.remaining is None else int(row.remaining),
        )
        for row in rows
        if row.product_id is not None
    }
    return flight, products


async def lock_flight(conn: AsyncConnection, tenant: Tenant, flight_id: str) -> None:
    """Hold the flight's row to the end of the transaction: orders with per-seat limits on it go one by one."""
    await conn.execute(_LOCK_FLIGHT, {"tenant_id": tenant.id, "flight_id": flight_id})


async def seat_lines(
    conn: AsyncConnection, tenant: Tenant, flight_id: str, seat: str | None, statuses: Sequence[str]
) -> list[tuple[list[str], int]]:
    """(restrictions, quantity) of every line the seat bought on the flight in orders of these statuses."""
    params = {"tenant_id": tenant.id, "flight_id": flight_id, "seat": seat, "statuses": list(statuses)}
    return [(list(row[0] or []), int(row[1])) for row in await conn.execute(_SEAT_LINES, params)]


async def take_stock(conn: AsyncConnection, tenant: Tenant, flight_id: str, product_id: str, quantity: int) -> bool:
    """Sell `quantity` units if that many remain: one conditional UPDATE, never read-then-write."""
    params = {"tenant_id": tenant.id, "stock_flight": flight_id, "stock_product": product_id, "quantity": quantity}
    result = cast(CursorResult[Any], await conn.execute(_TAKE_STOCK, params))
    return result.rowcount == 1


async def insert_order(
    conn: AsyncConnection, tenant: Tenant, order: dict[str, Any], lines: list[dict[str, Any]]
) -> None:
    """The order row, then all its lines in one multi-row INSERT."""
    await conn.execute(_ORDER, {**order, "airline_id": tenant.id})
    await conn.execute(_LINES, [{**line, "airline_id": tenant.id} for line in lines])


async def order_exists(conn: AsyncConnection, tenant: Tenant, order_id: str) -> bool:
    return (await conn.execute(_ORDER_EXISTS, {"tenant_id": tenant.id, "order_id": order_id})).first() is not None
