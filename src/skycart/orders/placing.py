"""The SQL of placing an order: Core statements built once and compiled once per dialect, run on the
checkout's own connection (on MySQL straight to the driver: platform.statements). Each is scoped to the
airline by its bound `airline_id`, taken from the `Tenant` every function here receives.

Per order (one line, MariaDB): the key's claim, one read of the flight with the ordered products and their
stock, the conditional stock UPDATE, the order and its lines (one multi-row INSERT), the order's event
(events.record, on the same connection), the stored answer, and one COMMIT.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, and_, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from skycart.catalog.models import Product
from skycart.flights.models import Flight, LoadedStock
from skycart.orders.models import IdempotencyRecord, Order, OrderLine
from skycart.platform.db import new_id
from skycart.platform.statements import Prepared, Statements
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


def _every_column(model: Any) -> list[str]:
    """An INSERT's columns: all of the table's, each given its value by the caller."""
    return [column.key for column in model.__table__.columns]


_RECORD = Prepared(
    select(
        IdempotencyRecord.request_hash,
        IdempotencyRecord.state,
        IdempotencyRecord.response_status,
        IdempotencyRecord.response_body,
    ).where(IdempotencyRecord.airline_id == _AIRLINE, IdempotencyRecord.key == bindparam("key"))
)

_CLAIM = Prepared(insert(IdempotencyRecord), columns=_every_column(IdempotencyRecord))

_FINISH = Prepared(
    update(IdempotencyRecord)
    .where(IdempotencyRecord.airline_id == _AIRLINE, IdempotencyRecord.key == bindparam("record_key"))
    .values(state="done", response_status=bindparam("status"), response_body=bindparam("body"))
)

# The flight, and each ordered product of the airline with its stock on that flight: no row, no flight;
# a row without product columns, none of the products exists.
_SHOP = Prepared(
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

_LOCK_FLIGHT = Prepared(
    select(Flight.id).where(Flight.airline_id == _AIRLINE, Flight.id == bindparam("flight_id")).with_for_update()
)

_SEAT_LINES = Prepared(
    select(OrderLine.restrictions, OrderLine.quantity)
    .join(Order, and_(Order.airline_id == OrderLine.airline_id, Order.id == OrderLine.order_id))
    .where(
        Order.airline_id == _AIRLINE,
        Order.flight_id == bindparam("flight_id"),
        Order.seat == bindparam("seat"),
        Order.status.in_(bindparam("statuses", expanding=True)),
    )
)

_TAKE_STOCK = Prepared(
    update(LoadedStock)
    .where(
        LoadedStock.airline_id == _AIRLINE,
        LoadedStock.flight_id == bindparam("stock_flight"),
        LoadedStock.product_id == bindparam("stock_product"),
        LoadedStock.quantity_loaded - LoadedStock.quantity_sold >= bindparam("quantity"),
    )
    .values(quantity_sold=LoadedStock.quantity_sold + bindparam("quantity"))
)

# Units left of some products on a flight (read after this transaction's stock UPDATEs: its own rows, exact).
_REMAINING = Prepared(
    select(LoadedStock.product_id, LoadedStock.quantity_loaded - LoadedStock.quantity_sold).where(
        LoadedStock.airline_id == _AIRLINE,
        LoadedStock.flight_id == bindparam("flight_id"),
        LoadedStock.product_id.in_(bindparam("product_ids", expanding=True)),
    )
)

_ORDER = Prepared(insert(Order), columns=_every_column(Order))
_LINES = Prepared(insert(OrderLine), columns=_every_column(OrderLine))
_ORDER_EXISTS = Prepared(select(Order.id).where(Order.airline_id == _AIRLINE, Order.id == bindparam("order_id")))


async def stored_record(db: Statements, tenant: Tenant, key: str) -> StoredRecord | None:
    rows = await db.rows(_RECORD, {"tenant_id": tenant.id, "key": key})
    return None if not rows else StoredRecord(*rows[0])


async def claim(db: Statements, tenant: Tenant, key: str, digest: str, now: datetime) -> bool:
    """Insert the key's record as in progress; False when the key has a record already.

    Inside the order's transaction the new row stays invisible, and its unique key locked, until the
    order commits: a concurrent try with the same key waits for that, then finds the stored answer.
    """
    return await _insert_record(db, tenant, key, digest, now, state="in_progress")


async def record_answer(
    db: Statements, tenant: Tenant, key: str, digest: str, status: int, body: str, now: datetime
) -> bool:
    """Insert the key's record with its final answer; False when the key has a record already."""
    return await _insert_record(db, tenant, key, digest, now, state="done", status=status, body=body)


async def _insert_record(
    db: Statements,
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
        await db.execute(_CLAIM, row)
    except IntegrityError:
        return False
    return True


async def finish(db: Statements, tenant: Tenant, key: str, status: int, body: str) -> None:
    """Store the final answer on the key this transaction claimed."""
    await db.execute(_FINISH, {"tenant_id": tenant.id, "record_key": key, "status": status, "body": body})


async def shop(
    db: Statements, tenant: Tenant, flight_id: str, skus: Iterable[str]
) -> tuple[ShopFlight | None, dict[str, ShopProduct]]:
    """The flight (None if the airline has none of this id) and the ordered products found, by SKU."""
    rows = await db.rows(_SHOP, {"tenant_id": tenant.id, "flight_id": flight_id, "skus": list(skus)})
    if not rows:
        return None, {}
    flight = ShopFlight(rows[0][0], bool(rows[0][1]))
    products = {
        sku: ShopProduct(
            id=product_id,
            sku=sku,
            prices=prices,
            min_age=min_age,
            restrictions=list(restrictions or []),
            active=bool(active),
            remaining=None if remaining is None else int(remaining),
        )
        for _flight, _international, product_id, sku, prices, min_age, restrictions, active, remaining in rows
        if product_id is not None
    }
    return flight, products


async def lock_flight(db: Statements, tenant: Tenant, flight_id: str) -> None:
    """Hold the flight's row to the end of the transaction: orders with per-seat limits on it go one by one."""
    await db.rows(_LOCK_FLIGHT, {"tenant_id": tenant.id, "flight_id": flight_id})


async def seat_lines(
    db: Statements, tenant: Tenant, flight_id: str, seat: str | None, statuses: Sequence[str]
) -> list[tuple[list[str], int]]:
    """(restrictions, quantity) of every line the seat bought on the flight in orders of these statuses."""
    params = {"tenant_id": tenant.id, "flight_id": flight_id, "seat": seat, "statuses": list(statuses)}
    return [(list(restrictions or []), int(quantity)) for restrictions, quantity in await db.rows(_SEAT_LINES, params)]


async def take_stock(db: Statements, tenant: Tenant, flight_id: str, product_id: str, quantity: int) -> bool:
    """Sell `quantity` units if that many remain: one conditional UPDATE, never read-then-write."""
    params = {"tenant_id": tenant.id, "stock_flight": flight_id, "stock_product": product_id, "quantity": quantity}
    return await db.execute(_TAKE_STOCK, params) == 1


async def insert_order(db: Statements, tenant: Tenant, order: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    """The order row, then all its lines in one multi-row INSERT."""
    await db.execute(_ORDER, {**order, "airline_id": tenant.id})
    await db.execute(_LINES, [{**line, "airline_id": tenant.id} for line in lines])


async def order_exists(db: Statements, tenant: Tenant, order_id: str) -> bool:
    return bool(await db.rows(_ORDER_EXISTS, {"tenant_id": tenant.id, "order_id": order_id}))


async def remaining(db: Statements, tenant: Tenant, flight_id: str, product_ids: Sequence[str]) -> dict[str, int]:
    """Units left of each product on the flight, by product id."""
    params = {"tenant_id": tenant.id, "flight_id": flight_id, "product_ids": list(product_ids)}
    return {product_id: int(left) for product_id, left in await db.rows(_REMAINING, params)}
