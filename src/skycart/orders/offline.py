"""Sales crew devices made offline, uploaded after landing. No HTTP, no commit.

Each sale becomes a `paid_offline` order exactly once per (airline, client_id): the unique key of
`offline_sales` decides, so a re-sent sale, or the same batch from two devices at once, changes
nothing the second time. The goods already left the trolley, so stock is counted sold even past
what was loaded (a discrepancy the flight report shows), and a sale is never refused for stock.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from skycart import events
from skycart.airlines import service as airlines
from skycart.catalog import repository as catalog
from skycart.catalog.models import Product
from skycart.config import Settings
from skycart.errors import Conflict
from skycart.flights import repository as flights
from skycart.flights.models import Flight, LoadedStock
from skycart.flights.service import get_flight
from skycart.money import MoneyError, to_minor
from skycart.orders import repository
from skycart.orders.models import PAID_OFFLINE, OfflineSale, Order, OrderLine
from skycart.orders.schemas import OfflineSaleIn, SaleError, SaleResult, SalesBatch, SyncResult
from skycart.orders.service import order_out
from skycart.platform.db import is_retryable, new_id, utcnow
from skycart.platform.tenancy import Tenant

OFFLINE_PROVIDER = "offline"
# A device's clock may run this far ahead of ours.
CLOCK_SKEW = timedelta(minutes=5)
log = logging.getLogger("skycart.orders.offline")


@dataclass(frozen=True, slots=True)
class SaleWindow:
    """When a flight's offline sales may be dated, around its scheduled departure."""

    before: timedelta
    after: timedelta

    def bounds(self, flight: Flight) -> tuple[datetime, datetime]:
        return flight.scheduled_departure - self.before, flight.scheduled_departure + self.after


def window(settings: Settings) -> SaleWindow:
    return SaleWindow(
        before=timedelta(hours=settings.offline_sale_before_departure_hours),
        after=timedelta(hours=settings.offline_sale_after_departure_hours),
    )


def content_digest(flight_id: str, sale: OfflineSaleIn) -> str:
    """What a sale says, so a client_id re-sent with other content is told from a plain re-send."""
    body = {"flight_id": flight_id, **sale.model_dump(mode="json")}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


class SaleRejected(Exception):
    """A sale that cannot be applied; the rest of the batch still is."""


@dataclass(frozen=True, slots=True)
class PricedLine:
    product: Product
    quantity: int
    unit_price_minor: int


def check_sold_at(sale: OfflineSaleIn, *, opens: datetime, closes: datetime, now: datetime) -> None:
    """A sale is dated inside its flight's window, not in the future, and not before the airline existed."""
    if sale.sold_at > now + CLOCK_SKEW:
        raise SaleRejected(f"sold_at: {sale.sold_at.isoformat()} is in the future")
    if not opens <= sale.sold_at <= closes:
        raise SaleRejected(
            f"sold_at: {sale.sold_at.isoformat()} is outside this flight's sales window "
            f"({opens.isoformat()} to {closes.isoformat()})"
        )


def priced_lines(sale: OfflineSaleIn, products: dict[str, Product], currencies: list[str]) -> list[PricedLine]:
    """The sale's lines at the price charged, one per (sku, unit price); raises SaleRejected."""
    if sale.currency not in currencies:
        raise SaleRejected(f"currency: {sale.currency} is not one of {currencies}")
    quantities: Counter[tuple[str, int]] = Counter()
    for item in sale.items:
        product = products.get(item.sku)
        if product is None:
            raise SaleRejected(f"items: sku {item.sku} is not in the catalog")
        if item.unit_price is not None:
            try:
                unit_price = to_minor(item.unit_price, sale.currency)
            except MoneyError as exc:
                raise SaleRejected(f"items: {item.sku} unit_price: {exc}") from exc
        elif sale.currency in product.prices:
            unit_price = product.prices[sale.currency]
        else:
            raise SaleRejected(f"items: sku {item.sku} has no price in {sale.currency}; send its unit_price")
        quantities[(item.sku, unit_price)] += item.quantity
    return [PricedLine(products[sku], quantity, price) for (sku, price), quantity in quantities.items()]


def _already_applied(client_id: str, first: OfflineSale, digest: str) -> SaleResult:
    """A client_id seen before: a duplicate if the sale says the same, else a conflict (both change nothing)."""
    if first.content_sha256 is None or first.content_sha256 == digest:
        return SaleResult(client_id=client_id, status="duplicate", order_id=first.order_id)
    return SaleResult(
        client_id=client_id,
        status="conflict",
        order_id=first.order_id,
        error=SaleError(code="client_id_conflict", detail=_CONFLICT),
        reason=_CONFLICT,
    )


_CONFLICT = "client_id: already used for a sale with other content; the first sale stands"


async def _apply(
    session: AsyncSession, tenant: Tenant, flight_id: str, sale: OfflineSaleIn, lines: list[PricedLine]
) -> SaleResult:
    """Record one sale in its own savepoint, unless its client_id is already taken."""
    now = utcnow()
    order = Order(
        id=new_id(),
        airline_id=tenant.id,
        flight_id=flight_id,
        seat=sale.seat,
        currency=sale.currency,
        total_minor=sum(line.unit_price_minor * line.quantity for line in lines),
        status=PAID_OFFLINE,
        payment_provider=OFFLINE_PROVIDER,
        payment_reference=sale.payment.method,
        passenger={},
        created_at=sale.sold_at,
        updated_at=now,
    )
    digest = content_digest(flight_id, sale)
    claim = OfflineSale(
        airline_id=tenant.id,
        client_id=sale.client_id,
        order_id=order.id,
        flight_id=flight_id,
        received_at=now,
        content_sha256=digest,
    )
    order_lines = [
        OrderLine(
            airline_id=tenant.id,
            order_id=order.id,
            product_id=line.product.id,
            position=position,
            sku=line.product.sku,
            quantity=line.quantity,
            unit_price_minor=line.unit_price_minor,
            line_total_minor=line.unit_price_minor * line.quantity,
            restrictions=list(line.product.restrictions),
        )
        for position, line in enumerate(lines)
    ]
    try:
        async with session.begin_nested():
            await repository.add_all(session, [order])
            await repository.add_all(session, [claim])
            await repository.add_all(session, order_lines)
            # In the sale's savepoint: a sale undone leaves no event.
            await events.record(session, tenant, "order.created", order_out(order, order_lines).model_dump(mode="json"))
    except IntegrityError:
        # Another request claimed this client_id since we looked: its sale stands, ours is undone.
        first = (await repository.offline_sales(session, tenant, [sale.client_id])).get(sale.client_id)
        if first is None:
            raise
        return _already_applied(sale.client_id, first, digest)
    return SaleResult(client_id=sale.client_id, status="inserted", order_id=order.id)


async def _count_sold(session: AsyncSession, tenant: Tenant, flight_id: str, product_id: str, quantity: int) -> None:
    """Add to the flight's sold count, creating a row loaded with 0 for a product that was not loaded."""
    if await flights.take_stock_regardless(session, tenant, flight_id, product_id, quantity):
        return
    try:
        async with session.begin_nested():
            await flights.add(
                session,
                LoadedStock(
                    airline_id=tenant.id,
                    flight_id=flight_id,
                    product_id=product_id,
                    quantity_loaded=0,
                    quantity_sold=quantity,
                ),
            )
    except IntegrityError:
        # Another request created the row meanwhile.
        if not await flights.take_stock_regardless(session, tenant, flight_id, product_id, quantity):
            raise


def _rejected(client_id: str, detail: str) -> SaleResult:
    return SaleResult(
        client_id=client_id, status="rejected", error=SaleError(code="validation_error", detail=detail), reason=detail
    )


def _lost_a_race(exc: BaseException) -> bool:
    """A deadlock or lock timeout, possibly hidden behind the failed savepoint rollback that followed it."""
    seen: BaseException | None = exc
    while seen is not None:
        if is_retryable(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def sync_sales(session: AsyncSession, *, tenant: Tenant, data: SalesBatch, window: SaleWindow) -> SyncResult:
    """Apply each new sale of the batch once; duplicates change nothing; a rejected sale rejects only itself."""
    flight = await get_flight(session, tenant=tenant, flight_id=data.flight_id)
    airline = await airlines.airline_for(session, tenant)
    opens, closes = window.bounds(flight)
    # Nothing before the hour the airline was created, from which its first plan bills.
    opens, now = max(opens, airline.created_at.replace(minute=0, second=0, microsecond=0)), utcnow()
    products = await catalog.by_skus(session, tenant, {item.sku for sale in data.sales for item in sale.items})
    known = await repository.offline_sales(session, tenant, [sale.client_id for sale in data.sales])
    results: list[SaleResult | None] = [None] * len(data.sales)
    todo: list[tuple[int, OfflineSaleIn, list[PricedLine]]] = []
    first_at: dict[str, int] = {}
    for index, sale in enumerate(data.sales):
        if sale.client_id in first_at:
            results[index] = _rejected(
                sale.client_id, f"client_id: repeats sales[{first_at[sale.client_id]}] of this batch"
            )
            continue
        first_at[sale.client_id] = index
        if sale.client_id in known:
            results[index] = _already_applied(sale.client_id, known[sale.client_id], content_digest(flight.id, sale))
            continue
        try:
            check_sold_at(sale, opens=opens, closes=closes, now=now)
            todo.append((index, sale, priced_lines(sale, products, airline.currencies)))
        except SaleRejected as exc:
            results[index] = _rejected(sale.client_id, str(exc))
    sold: Counter[str] = Counter()
    try:
        # Claims in client_id order and stock in product order: concurrent batches take locks alike.
        for index, sale, lines in sorted(todo, key=lambda entry: entry[1].client_id):
            result = await _apply(session, tenant, flight.id, sale, lines)
            results[index] = result
            if result.status == "inserted":
                for line in lines:
                    sold[line.product.id] += line.quantity
        for product_id in sorted(sold):
            await _count_sold(session, tenant, flight.id, product_id, sold[product_id])
    except OperationalError as exc:
        if not _lost_a_race(exc):
            raise
        raise Conflict(
            "another upload for this flight got in the way; send the batch again", headers={"Retry-After": "1"}
        ) from exc
    done = [result for result in results if result is not None]
    counts: Counter[str] = Counter(result.status for result in done)
    log.info(
        "offline_sales_synced",
        extra={"airline": tenant.code, "flight_id": flight.id, **counts},
    )
    return SyncResult(
        inserted=counts["inserted"],
        duplicates=counts["duplicate"],
        rejected=counts["rejected"],
        conflicts=counts["conflict"],
        results=done,
    )
