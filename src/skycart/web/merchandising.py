"""Airline console: the catalog (prices, active, images), flights with their stock, and orders by seat."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import ValidationError

from skycart.airlines import service as airlines
from skycart.billing import service as billing
from skycart.catalog import images
from skycart.catalog import service as catalog
from skycart.catalog.schemas import ProductFields
from skycart.errors import ValidationFailed
from skycart.flights import service as flights
from skycart.flights.schemas import FlightId
from skycart.orders import reports
from skycart.orders import service as orders
from skycart.orders.schemas import SEAT_PATTERN
from skycart.platform.runtime import get_runtime
from skycart.platform.uploads import read_file_field
from skycart.platform.validation import SKU_PATTERN
from skycart.web import csrf
from skycart.web.deps import AirlineUser, ConsoleUserDep, PostedForm, check_query_token, console_context
from skycart.web.pages import HtmlRoute, render, see_other, unit_of_work

router = APIRouter(prefix="/console", route_class=HtmlRoute, include_in_schema=False)

SkuPath = Annotated[str, Path(min_length=1, max_length=64, pattern=SKU_PATTERN)]
SeatQuery = Annotated[str | None, Query(max_length=4)]
PAGE_SIZE = 50
_SEAT = re.compile(r"^([0-9]+)([A-K])$")


@router.get("/catalog")
async def catalog_page(
    request: Request,
    user: ConsoleUserDep,
    tenant: AirlineUser,
    after: Annotated[str | None, Query(max_length=64, pattern=SKU_PATTERN)] = None,
) -> Response:
    assets = get_runtime(request).asset_store()
    async with unit_of_work(request, write=False) as session:
        airline = await airlines.get_airline(session, code=tenant.code)
        listed = await catalog.list_products(session, tenant=tenant, after=after, limit=PAGE_SIZE)
        products = await images.product_views(session, assets, tenant=tenant, products=listed.rows)
    context = console_context(
        request,
        user,
        title="Catalog",
        airline=airline,
        products=products,
        next_after=listed.after,
        upload_token=user.csrf_token,
        csrf_field=csrf.FIELD,
    )
    return render(request, "console/catalog.html", context)


@router.post("/catalog/{sku}")
async def save_product(
    request: Request, sku: SkuPath, user: ConsoleUserDep, tenant: AirlineUser, form: PostedForm
) -> Response:
    """Change a product's prices and whether it is on sale; the rest of the product stays as it is."""
    async with unit_of_work(request, write=True) as session:
        airline = await airlines.get_airline(session, code=tenant.code)
        current = catalog.product_out(await catalog.get_product(session, tenant=tenant, sku=sku))
        prices = {
            cur: str(form.get(f"price.{cur}", "")).strip()
            for cur in airline.currencies
            if str(form.get(f"price.{cur}", "")).strip()
        }
        try:
            fields = ProductFields(
                name=current.name,
                description=current.description,
                category=current.category,
                prices=prices,
                min_age=current.min_age,
                restrictions=current.restrictions,
                attributes=current.attributes,
                active=form.get("active") == "on",
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ValidationFailed(f"{where}: {first['msg']}") from exc
        await catalog.replace_product(session, tenant=tenant, sku=sku, data=fields)
    return see_other(f"/console/catalog?notice=saved#product-{sku}")


@router.post("/catalog/{sku}/images")
async def add_image(request: Request, sku: SkuPath, user: ConsoleUserDep, tenant: AirlineUser) -> Response:
    check_query_token(request, user)
    runtime = get_runtime(request)
    product = await images.room_for_image(runtime, tenant=tenant, sku=sku)
    data = await read_file_field(request, field="file", max_bytes=runtime.settings.max_image_bytes)
    await images.upload_image(runtime, tenant=tenant, product=product, data=data)
    return see_other(f"/console/catalog?notice=image#product-{sku}")


@router.get("/flights")
async def flights_page(
    request: Request,
    user: ConsoleUserDep,
    tenant: AirlineUser,
    after: Annotated[str | None, Query(max_length=26)] = None,
) -> Response:
    async with unit_of_work(request, write=False) as session:
        listed = await flights.list_flights(session, tenant=tenant, after=after, limit=PAGE_SIZE)
    context = console_context(
        request,
        user,
        title="Flights",
        flights=[flights.flight_out(f) for f in listed.rows],
        next_after=listed.after,
        airline_code=tenant.code,
    )
    return render(request, "console/flights.html", context)


def _seat_order(seat: str | None) -> tuple[int, str]:
    match = _SEAT.match(seat or "")
    return (int(match.group(1)), match.group(2)) if match else (10_000, seat or "")


@router.get("/flights/{flight_id}")
async def flight_page(
    request: Request, flight_id: FlightId, user: ConsoleUserDep, tenant: AirlineUser, seat: SeatQuery = None
) -> Response:
    """Loaded, sold and remaining stock, discrepancies from offline sales, and the orders seat by seat."""
    seat = (seat or "").strip().upper() or None
    if seat is not None and not re.fullmatch(SEAT_PATTERN, seat):
        raise ValidationFailed(f"seat: {seat!r} is not a seat such as 12C")
    runtime = get_runtime(request)
    features = (await billing.plan_terms(runtime, tenant)).features
    async with unit_of_work(request, write=False) as session:
        flight = flights.flight_out(await flights.get_flight(session, tenant=tenant, flight_id=flight_id))
        report = await reports.flight_report(session, tenant=tenant, flight_id=flight_id)
        found = (
            await orders.list_orders(session, tenant=tenant, after=None, limit=500, flight_id=flight_id, seat=seat)
        ).rows
    by_seat: dict[str, list] = {}
    for order in sorted(found, key=lambda o: (_seat_order(o.seat), o.created_at)):
        by_seat.setdefault(order.seat or "trolley", []).append(order)
    context = console_context(
        request,
        user,
        title=f"Flight {flight.flight_number}",
        flight=flight,
        report=report,
        # Discrepancies and revenue are the flight report, a feature of the plan (as on the API).
        with_report="reports" in features,
        by_seat=by_seat,
        seat=seat,
        shop_url=f"/shop/{tenant.code}/{flight.id}",
    )
    return render(request, "console/flight.html", context)
