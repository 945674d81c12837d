"""Orders: taking stock, charging, delivering and cancelling. No HTTP, no commit."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from skycart.airlines import repository as airlines
from skycart.catalog import repository as catalog
from skycart.catalog.models import Product
from skycart.errors import (
    Conflict,
    InvalidTransition,
    LimitExceeded,
    NotFound,
    OutOfStock,
    RestrictedItem,
    ValidationFailed,
)
from skycart.flights import repository as flights
from skycart.flights.models import Flight
from skycart.flights.service import get_flight, sellable_on
from skycart.money import to_decimal_string
from skycart.orders import repository
from skycart.orders.models import (
    CANCELLED,
    DELIVERED,
    OPEN_STATUSES,
    PAID,
    PAID_OFFLINE,
    Order,
    OrderLine,
)
from skycart.orders.payments import Authorization, PaymentProvider
from skycart.orders.schemas import OrderCreate, OrderLineOut, OrderOut
from skycart.platform.db import new_id, utcnow
from skycart.platform.pagination import Slice, read_slice
from skycart.platform.tenancy import Tenant


def order_out(order: Order, lines: list[OrderLine]) -> OrderOut:
    cur = order.currency
    return OrderOut(
        id=order.id,
        flight_id=order.flight_id,
        seat=order.seat,
        currency=cur,
        items=[
            OrderLineOut(
                sku=line.sku,
                quantity=line.quantity,
                unit_price=to_decimal_string(line.unit_price_minor, cur),
                line_total=to_decimal_string(line.line_total_minor, cur),
            )
            for line in lines
        ],
        total=to_decimal_string(order.total_minor, cur),
        status=order.status,
        created_at=order.created_at,
        updated_at=order.updated_at,
        delivered_at=order.delivered_at,
        cancelled_at=order.cancelled_at,
    )


def _check_products(data: OrderCreate, quantities: Counter[str], products: dict[str, Product], flight: object) -> None:
    unknown = [sku for sku in quantities if sku not in products or not products[sku].active]
    if unknown:
        raise ValidationFailed(f"items: sku {unknown[0]} is not for sale", skus=unknown)
    unpriced = [sku for sku in quantities if data.currency not in products[sku].prices]
    if unpriced:
        raise ValidationFailed(f"items: sku {unpriced[0]} has no price in {data.currency}", skus=unpriced)
    duty_free = [sku for sku in quantities if not sellable_on(products[sku].restrictions, flight)]  # type: ignore[arg-type]
    if duty_free:
        raise RestrictedItem(f"{duty_free[0]} is duty-free and sold only on international flights", skus=duty_free)
    aged = [sku for sku in quantities if products[sku].min_age and not data.passenger.age_confirmed]
    if aged:
        raise RestrictedItem(
            f"{aged[0]} needs passenger.age_confirmed=true (minimum age {products[aged[0]].min_age})", skus=aged
        )


async def _check_seat_limits(
    session: AsyncSession,
    tenant: Tenant,
    data: OrderCreate,
    quantities: Counter[str],
    products: dict[str, Product],
    seat_limits: dict[str, int],
    *,
    lock: bool = True,
) -> None:
    wanted: Counter[str] = Counter()
    for sku, quantity in quantities.items():
        for tag in products[sku].restrictions:
            if tag in seat_limits:
                wanted[tag] += quantity
    if not wanted:
        return
    # Serialize orders with limited items on this flight so two can't both pass the count.
    if lock:
        await flights.get(session, tenant, data.flight_id, lock=True)
    bought: Counter[str] = Counter()
    for line in await repository.seat_lines(session, tenant, data.flight_id, data.seat, OPEN_STATUSES + (DELIVERED,)):
        for tag in line.restrictions:
            bought[tag] += line.quantity
    for tag, quantity in wanted.items():
        if bought[tag] + quantity > seat_limits[tag]:
            raise LimitExceeded(
                f"seat {data.seat} may buy at most {seat_limits[tag]} {tag} item(s) on this flight; "
                f"{bought[tag]} already bought",
                tag=tag,
                limit=seat_limits[tag],
                already=bought[tag],
            )


@dataclass(frozen=True, slots=True)
class Priced:
    """An order that passed every check, and what it costs: what the payment is authorized for."""

    order_id: str
    total_minor: int


async def _checked(
    session: AsyncSession, tenant: Tenant, data: OrderCreate, *, lock: bool
) -> tuple[Flight, Counter[str], dict[str, Product]]:
    flight = await get_flight(session, tenant=tenant, flight_id=data.flight_id)
    airline = await airlines.get_by_id(session, tenant.id)
    if airline is None:
        raise NotFound("airline not found")
    if data.currency not in airline.currencies:
        raise ValidationFailed(f"currency: {data.currency} is not one of {airline.currencies}")
    quantities: Counter[str] = Counter()
    for item in data.items:
        quantities[item.sku] += item.quantity
    products = await catalog.by_skus(session, tenant, quantities)
    _check_products(data, quantities, products, flight)
    seat_limits = airline.settings.get("seat_limits") or {}
    await _check_seat_limits(session, tenant, data, quantities, products, seat_limits, lock=lock)
    return flight, quantities, products


def _total(data: OrderCreate, quantities: Counter[str], products: dict[str, Product]) -> int:
    return sum(products[sku].prices[data.currency] * quantity for sku, quantity in quantities.items())


async def price_order(session: AsyncSession, *, tenant: Tenant, data: OrderCreate) -> Priced:
    """Every check an order must pass and its total, reading only: run before the payment, taking no locks.

    Stock is checked here too, so an order that cannot be served is refused without a payment; the
    conditional UPDATE in `place_order` remains what guarantees it.
    """
    flight, quantities, products = await _checked(session, tenant, data, lock=False)
    remaining = {
        stock.product_id: stock.quantity_loaded - stock.quantity_sold
        for stock, _product in await flights.stock_with_products(session, tenant, flight.id)
    }
    for sku, quantity in quantities.items():
        if remaining.get(products[sku].id, 0) < quantity:
            raise OutOfStock(f"not enough {sku} left on this flight", sku=sku)
    return Priced(new_id(), _total(data, quantities, products))


async def place_order(
    session: AsyncSession, *, tenant: Tenant, data: OrderCreate, priced: Priced, auth: Authorization, provider: str
) -> OrderOut:
    """Take the stock and record the order as paid by `auth`; any failure leaves nothing behind.

    The payment was authorized before this transaction began: the stock rows are locked only for the
    updates and the insert, never during a provider's round trip. The caller voids the authorization
    if this fails.
    """
    flight, quantities, products = await _checked(session, tenant, data, lock=True)
    if _total(data, quantities, products) != priced.total_minor:
        raise Conflict("a price changed while the payment was being authorized; place the order again")
    # A fixed order of row locks keeps concurrent multi-item orders from deadlocking.
    for sku in sorted(quantities, key=lambda s: products[s].id):
        if not await flights.take_stock(session, tenant, flight.id, products[sku].id, quantities[sku]):
            raise OutOfStock(f"not enough {sku} left on this flight", sku=sku)
    lines = [
        OrderLine(
            airline_id=tenant.id,
            order_id=priced.order_id,
            product_id=products[sku].id,
            position=position,
            sku=sku,
            quantity=quantity,
            unit_price_minor=products[sku].prices[data.currency],
            line_total_minor=products[sku].prices[data.currency] * quantity,
            restrictions=list(products[sku].restrictions),
        )
        for position, (sku, quantity) in enumerate(quantities.items())
    ]
    now = utcnow()
    order = Order(
        id=priced.order_id,
        airline_id=tenant.id,
        flight_id=flight.id,
        seat=data.seat,
        currency=data.currency,
        total_minor=priced.total_minor,
        status=PAID if auth.status == "approved" else PAID_OFFLINE,
        payment_provider=provider,
        payment_reference=auth.reference,
        passenger=data.passenger.model_dump(exclude_none=True),
        created_at=now,
        updated_at=now,
    )
    await repository.add_all(session, [order])
    await repository.add_all(session, lines)
    return order_out(order, lines)


async def get_order(session: AsyncSession, *, tenant: Tenant, order_id: str) -> OrderOut:
    order = await repository.get(session, tenant, order_id)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    return order_out(order, (await repository.lines_of(session, tenant, [order.id]))[order.id])


async def list_orders(
    session: AsyncSession, *, tenant: Tenant, after: str | None, limit: int, flight_id: str | None, seat: str | None
) -> Slice[OrderOut]:
    """The airline's orders in id order (of one flight, or one seat), a page at a time, with their lines."""
    found = await read_slice(
        lambda n: repository.page(session, tenant, after=after, limit=n, flight_id=flight_id, seat=seat),
        limit=limit,
        key=lambda o: o.id,
    )
    lines = await repository.lines_of(session, tenant, [o.id for o in found.rows])
    return Slice([order_out(o, lines[o.id]) for o in found.rows], found.after)


async def _close(
    session: AsyncSession, tenant: Tenant, order_id: str, current: str, *, status: str, stamp: str, verb: str
) -> None:
    """Move an open order to its final status, unless a concurrent request moved it first."""
    now = utcnow()
    values = {"status": status, stamp: now, "updated_at": now}
    if not await repository.transition(session, tenant, order_id, from_statuses=OPEN_STATUSES, values=values):
        raise InvalidTransition(f"order {order_id} is {current} and can't be {verb}")


async def deliver_order(session: AsyncSession, *, tenant: Tenant, order_id: str) -> OrderOut:
    """Hand an order to the seat. Delivering twice is harmless; a cancelled order can't be delivered."""
    order = await get_order(session, tenant=tenant, order_id=order_id)
    if order.status == DELIVERED:
        return order
    await _close(session, tenant, order_id, order.status, status=DELIVERED, stamp="delivered_at", verb="delivered")
    return await get_order(session, tenant=tenant, order_id=order_id)


async def cancel_order(session: AsyncSession, *, tenant: Tenant, order_id: str, payments: PaymentProvider) -> OrderOut:
    """Cancel an undelivered order: refund it and put its items back on sale. Cancelling twice is harmless."""
    order = await repository.get(session, tenant, order_id)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    if order.status == CANCELLED:
        return await get_order(session, tenant=tenant, order_id=order_id)
    await _close(session, tenant, order_id, order.status, status=CANCELLED, stamp="cancelled_at", verb="cancelled")
    for line in (await repository.lines_of(session, tenant, [order_id]))[order_id]:
        if line.product_id:
            await flights.return_stock(session, tenant, order.flight_id, line.product_id, line.quantity)
    if order.payment_provider == payments.name:  # cash and offline card sales are refunded on board
        await payments.refund(
            payment_reference=order.payment_reference, amount_minor=order.total_minor, currency=order.currency
        )
    return await get_order(session, tenant=tenant, order_id=order_id)
