"""Orders: the rules an order must pass, what it is written as, delivering and cancelling. No HTTP, no commit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from skycart import events
from skycart.airlines.service import AirlineFacts
from skycart.errors import (
    InvalidTransition,
    LimitExceeded,
    NotFound,
    OutOfStock,
    RestrictedItem,
    ValidationFailed,
)
from skycart.flights import repository as flights
from skycart.flights.service import sellable_on
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
from skycart.orders.placing import ShopFlight, ShopProduct
from skycart.orders.schemas import OrderCreate, OrderLineOut, OrderOut
from skycart.platform.db import new_id, utcnow
from skycart.platform.pagination import Slice, read_slice
from skycart.platform.payments import Authorization, PaymentProvider
from skycart.platform.tenancy import Tenant


def _line_out(sku: str, quantity: int, unit_minor: int, total_minor: int, currency: str) -> OrderLineOut:
    return OrderLineOut(
        sku=sku,
        quantity=quantity,
        unit_price=to_decimal_string(unit_minor, currency),
        line_total=to_decimal_string(total_minor, currency),
    )


def order_out(order: Order, lines: list[OrderLine]) -> OrderOut:
    cur = order.currency
    return OrderOut(
        id=order.id,
        flight_id=order.flight_id,
        seat=order.seat,
        currency=cur,
        items=[_line_out(line.sku, line.quantity, line.unit_price_minor, line.line_total_minor, cur) for line in lines],
        total=to_decimal_string(order.total_minor, cur),
        status=order.status,
        created_at=order.created_at,
        updated_at=order.updated_at,
        delivered_at=order.delivered_at,
        cancelled_at=order.cancelled_at,
    )


COUNTED_STATUSES = OPEN_STATUSES + (DELIVERED,)  # what a seat has bought, for its per-seat limits


def _check_products(
    data: OrderCreate, quantities: Counter[str], products: Mapping[str, ShopProduct], flight: ShopFlight
) -> None:
    unknown = [sku for sku in quantities if sku not in products or not products[sku].active]
    if unknown:
        raise ValidationFailed(f"items: sku {unknown[0]} is not for sale", skus=unknown)
    unpriced = [sku for sku in quantities if data.currency not in products[sku].prices]
    if unpriced:
        raise ValidationFailed(f"items: sku {unpriced[0]} has no price in {data.currency}", skus=unpriced)
    duty_free = [sku for sku in quantities if not sellable_on(products[sku].restrictions, flight)]
    if duty_free:
        raise RestrictedItem(f"{duty_free[0]} is duty-free and sold only on international flights", skus=duty_free)
    aged = [sku for sku in quantities if products[sku].min_age and not data.passenger.age_confirmed]
    if aged:
        raise RestrictedItem(
            f"{aged[0]} needs passenger.age_confirmed=true (minimum age {products[aged[0]].min_age})", skus=aged
        )


def quantities_of(data: OrderCreate) -> Counter[str]:
    """Units per SKU (an SKU may be listed more than once)."""
    quantities: Counter[str] = Counter()
    for item in data.items:
        quantities[item.sku] += item.quantity
    return quantities


def _wanted(
    quantities: Counter[str], products: Mapping[str, ShopProduct], seat_limits: Mapping[str, int]
) -> Counter[str]:
    wanted: Counter[str] = Counter()
    for sku, quantity in quantities.items():
        if sku in products:
            for tag in products[sku].restrictions:
                if tag in seat_limits:
                    wanted[tag] += quantity
    return wanted


def limited_tags(quantities: Counter[str], products: Mapping[str, ShopProduct], airline: AirlineFacts) -> bool:
    """Whether the order holds items under a per-seat limit (then the seat's earlier lines are counted)."""
    return bool(_wanted(quantities, products, airline.seat_limits))


def _check_seat_limits(
    data: OrderCreate,
    quantities: Counter[str],
    products: Mapping[str, ShopProduct],
    seat_limits: Mapping[str, int],
    bought_lines: list[tuple[list[str], int]],
) -> None:
    wanted = _wanted(quantities, products, seat_limits)
    bought: Counter[str] = Counter()
    for restrictions, quantity in bought_lines:
        for tag in restrictions:
            bought[tag] += quantity
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
class CheckedLine:
    product_id: str
    sku: str
    quantity: int
    unit_price_minor: int
    restrictions: list[str]


@dataclass(frozen=True, slots=True)
class CheckedOrder:
    """An order that passed every check, and what it costs: what the payment is authorized for."""

    order_id: str
    total_minor: int
    lines: list[CheckedLine]
    # Holds items under a per-seat limit: counted again under the flight's lock before it is written.
    seat_limited: bool


def check_order(
    data: OrderCreate,
    airline: AirlineFacts,
    flight: ShopFlight | None,
    products: Mapping[str, ShopProduct],
    quantities: Counter[str],
    bought_lines: list[tuple[list[str], int]],
    *,
    order_id: str | None = None,
) -> CheckedOrder:
    """Every rule an order must pass, on what was read for it, in the order the API answers them.

    Stock is checked too, so an order that cannot be served is refused without a payment; the conditional
    UPDATE when it is written remains what guarantees it.
    """
    if flight is None:
        raise NotFound(f"flight {data.flight_id} not found")
    if data.currency not in airline.currencies:
        raise ValidationFailed(f"currency: {data.currency} is not one of {list(airline.currencies)}")
    _check_products(data, quantities, products, flight)
    _check_seat_limits(data, quantities, products, airline.seat_limits, bought_lines)
    for sku, quantity in quantities.items():
        remaining = products[sku].remaining
        if remaining is None or remaining < quantity:
            raise OutOfStock(f"not enough {sku} left on this flight", sku=sku)
    lines = [
        CheckedLine(
            product_id=products[sku].id,
            sku=sku,
            quantity=quantity,
            unit_price_minor=products[sku].prices[data.currency],
            restrictions=list(products[sku].restrictions),
        )
        for sku, quantity in quantities.items()
    ]
    return CheckedOrder(
        order_id=order_id or new_id(),
        total_minor=sum(line.unit_price_minor * line.quantity for line in lines),
        lines=lines,
        seat_limited=bool(_wanted(quantities, products, airline.seat_limits)),
    )


def order_rows(
    order: CheckedOrder, data: OrderCreate, auth: Authorization, provider: str, now: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]], OrderOut]:
    """The order's row, its lines' rows, and the answer: all made from the same values once."""
    status = PAID if auth.status == "approved" else PAID_OFFLINE
    passenger = data.passenger.model_dump(exclude_none=True)
    row = {
        "id": order.order_id,
        "flight_id": data.flight_id,
        "seat": data.seat,
        "currency": data.currency,
        "total_minor": order.total_minor,
        "status": status,
        "payment_provider": provider,
        "payment_reference": auth.reference,
        "passenger": passenger,
        "delivered_at": None,
        "cancelled_at": None,
        "created_at": now,
        "updated_at": now,
    }
    lines = [
        {
            "id": new_id(),
            "order_id": order.order_id,
            "product_id": line.product_id,
            "position": position,
            "sku": line.sku,
            "quantity": line.quantity,
            "unit_price_minor": line.unit_price_minor,
            "line_total_minor": line.unit_price_minor * line.quantity,
            "restrictions": line.restrictions,
        }
        for position, line in enumerate(order.lines)
    ]
    cur = data.currency
    out = OrderOut(
        id=order.order_id,
        flight_id=data.flight_id,
        seat=data.seat,
        currency=cur,
        items=[
            _line_out(line.sku, line.quantity, line.unit_price_minor, line.unit_price_minor * line.quantity, cur)
            for line in order.lines
        ],
        total=to_decimal_string(order.total_minor, cur),
        status=status,
        created_at=now,
        updated_at=now,
        delivered_at=None,
        cancelled_at=None,
    )
    return row, lines, out


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
    return await _recorded(session, tenant, order_id, "order.delivered")


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
    return await _recorded(session, tenant, order_id, "order.cancelled")


async def _recorded(session: AsyncSession, tenant: Tenant, order_id: str, event_type: str) -> OrderOut:
    """The order as it is now, recorded as an event of this type in the same transaction."""
    order = await get_order(session, tenant=tenant, order_id=order_id)
    await events.record(session, tenant, event_type, order.model_dump(mode="json"))
    return order
