from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from skycart.airlines.auth import AirlineTenant
from skycart.errors import problem_responses
from skycart.flights import service
from skycart.flights.schemas import (
    FLIGHTS_PREFIX,
    MENU_PATH,
    FlightCreate,
    FlightId,
    FlightOut,
    InventoryOut,
    InventoryPut,
    Menu,
)
from skycart.platform.jsonbody import StrictJsonRoute
from skycart.platform.pagination import Cursor, Limit, Page, decode_cursor, page_of
from skycart.platform.runtime import get_runtime
from skycart.platform.sessions import ReadSession, WriteSession
from skycart.platform.validation import CurrencyCode, LocaleCode

router = APIRouter(
    route_class=StrictJsonRoute, prefix=FLIGHTS_PREFIX, tags=["flights"], responses=problem_responses(401, 403, 422)
)


@router.post("", status_code=status.HTTP_201_CREATED, responses=problem_responses(409))
async def create_flight(body: FlightCreate, tenant: AirlineTenant, session: WriteSession) -> FlightOut:
    return service.flight_out(await service.create_flight(session, tenant=tenant, data=body))


@router.get("")
async def list_flights(
    tenant: AirlineTenant,
    session: ReadSession,
    limit: Limit = 100,
    cursor: Cursor = None,
    departure_date: Annotated[dt.date | None, Query()] = None,
) -> Page[FlightOut]:
    found = await service.list_flights(
        session, tenant=tenant, after=decode_cursor(cursor), limit=limit, departure_date=departure_date
    )
    return page_of(found, [service.flight_out(f) for f in found.rows])


@router.get("/{flight_id}", responses=problem_responses(404))
async def get_flight(flight_id: FlightId, tenant: AirlineTenant, session: ReadSession) -> FlightOut:
    return service.flight_out(await service.get_flight(session, tenant=tenant, flight_id=flight_id))


@router.put("/{flight_id}/inventory", responses=problem_responses(404))
async def load_inventory(
    flight_id: FlightId, body: InventoryPut, tenant: AirlineTenant, session: WriteSession
) -> InventoryOut:
    return await service.load_inventory(session, tenant=tenant, flight_id=flight_id, data=body)


@router.get("/{flight_id}/inventory", responses=problem_responses(404))
async def get_inventory(flight_id: FlightId, tenant: AirlineTenant, session: ReadSession) -> InventoryOut:
    return await service.inventory(session, tenant=tenant, flight_id=flight_id)


@router.get(MENU_PATH, response_model=Menu, responses=problem_responses(404))
async def flight_menu(
    flight_id: FlightId,
    tenant: AirlineTenant,
    request: Request,
    locale: Annotated[LocaleCode | None, Query()] = None,
    currency: Annotated[CurrencyCode | None, Query()] = None,
) -> Response:
    """Served from memory when warm: no SQL; stock figures at most `SKYCART_MENU_CACHE_SECONDS` old."""
    body = await service.cached_menu_json(
        get_runtime(request), tenant=tenant, flight_id=flight_id, locale=locale, currency=currency
    )
    return Response(body, media_type="application/json")
