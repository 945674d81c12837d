"""The flight report: loaded, sold, remaining and oversold per SKU, and revenue per currency."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from skycart.airlines import repository as airlines
from skycart.catalog.service import localize
from skycart.flights import repository as flights
from skycart.flights.schemas import FlightReport, ReportLine
from skycart.flights.service import get_flight
from skycart.money import to_decimal_string
from skycart.orders import repository
from skycart.platform.tenancy import Tenant


async def flight_report(session: AsyncSession, *, tenant: Tenant, flight_id: str) -> FlightReport:
    await get_flight(session, tenant=tenant, flight_id=flight_id)
    airline = await airlines.get_by_id(session, tenant.id)
    default_locale = airline.default_locale if airline else "en"
    lines = [
        ReportLine(
            sku=product.sku,
            name=localize(product.name, None, default_locale),
            loaded=stock.quantity_loaded,
            sold=stock.quantity_sold,
            remaining=max(stock.quantity_loaded - stock.quantity_sold, 0),
            discrepancy=max(stock.quantity_sold - stock.quantity_loaded, 0),
        )
        for stock, product in await flights.stock_with_products(session, tenant, flight_id)
    ]
    orders, revenue = await repository.revenue(session, tenant, flight_id)
    return FlightReport(
        flight_id=flight_id,
        items=lines,
        discrepancies=[line.sku for line in lines if line.discrepancy],
        orders=orders,
        revenue={cur: to_decimal_string(minor, cur) for cur, minor in sorted(revenue.items())},
    )
