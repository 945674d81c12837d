from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response

from skycart.airlines.auth import AirlineOfKey, AirlineTenant
from skycart.errors import PROBLEM_JSON, IdempotencyKeyRequired, problem_responses
from skycart.flights.schemas import FlightId, FlightReport
from skycart.orders import checkout, offline, reports, service
from skycart.orders.schemas import SEAT_PATTERN, OrderCreate, OrderOut, SalesBatch, SyncResult
from skycart.platform.jsonbody import StrictJsonRoute
from skycart.platform.pagination import Cursor, Limit, Page, decode_cursor, page_of
from skycart.platform.runtime import get_runtime
from skycart.platform.sessions import ReadSession, WriteSession

router = APIRouter(
    route_class=StrictJsonRoute, prefix="/v1", tags=["orders"], responses=problem_responses(401, 403, 422)
)
OrderId = Annotated[str, Path(min_length=1, max_length=26)]


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderOut,
    responses=problem_responses(400, 402, 404, 409),
    summary="Order to a seat and pay; exactly once per Idempotency-Key",
)
async def place_order(
    body: OrderCreate,
    request: Request,
    tenant: AirlineTenant,
    airline: AirlineOfKey,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Response:
    if not idempotency_key or not idempotency_key.strip():
        raise IdempotencyKeyRequired("send a unique Idempotency-Key header with every new order")
    answer = await checkout.place_order_once(
        get_runtime(request), tenant=tenant, airline=airline, key=idempotency_key, data=body
    )
    return Response(
        answer.body,
        status_code=answer.status,
        media_type=PROBLEM_JSON if answer.status >= 400 else "application/json",
        headers={"Idempotent-Replayed": "true"} if answer.replayed else None,
    )


@router.get("/orders")
async def list_orders(
    tenant: AirlineTenant,
    session: ReadSession,
    limit: Limit = 100,
    cursor: Cursor = None,
    flight_id: Annotated[str | None, Query(max_length=26)] = None,
    seat: Annotated[str | None, Query(pattern=SEAT_PATTERN)] = None,
) -> Page[OrderOut]:
    found = await service.list_orders(
        session, tenant=tenant, after=decode_cursor(cursor), limit=limit, flight_id=flight_id, seat=seat
    )
    return page_of(found, found.rows)


@router.get("/orders/{order_id}", responses=problem_responses(404))
async def get_order(order_id: OrderId, tenant: AirlineTenant, session: ReadSession) -> OrderOut:
    return await service.get_order(session, tenant=tenant, order_id=order_id)


@router.post("/orders/{order_id}/deliver", responses=problem_responses(404, 409))
async def deliver_order(order_id: OrderId, tenant: AirlineTenant, session: WriteSession) -> OrderOut:
    return await service.deliver_order(session, tenant=tenant, order_id=order_id)


@router.post("/orders/{order_id}/cancel", responses=problem_responses(404, 409))
async def cancel_order(order_id: OrderId, request: Request, tenant: AirlineTenant, session: WriteSession) -> OrderOut:
    return await service.cancel_order(session, tenant=tenant, order_id=order_id, payments=get_runtime(request).payments)


@router.get("/flights/{flight_id}/report", tags=["flights"], responses=problem_responses(404))
async def flight_report(flight_id: FlightId, tenant: AirlineTenant, session: ReadSession) -> FlightReport:
    return await reports.flight_report(session, tenant=tenant, flight_id=flight_id)


@router.post(
    "/sync/sales",
    tags=["sync"],
    responses=problem_responses(404, 409),
    summary="Upload sales crew made offline; each client_id is applied once, a bad sale is rejected alone",
)
async def sync_sales(body: SalesBatch, tenant: AirlineTenant, request: Request, session: WriteSession) -> SyncResult:
    return await offline.sync_sales(
        session, tenant=tenant, data=body, window=offline.window(get_runtime(request).settings)
    )
