"""Statements and business usage: what airlines owe and what they sold."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from skycart.airlines.auth import AirlineTenant, OperatorKey
from skycart.airlines.service import get_airline
from skycart.billing import sales as business
from skycart.billing import statements
from skycart.billing.params import From, To, span
from skycart.billing.schemas import BusinessUsageRow, Statement
from skycart.errors import problem_responses
from skycart.platform.jsonbody import StrictJsonRoute
from skycart.platform.runtime import get_runtime
from skycart.platform.sessions import ReadSession, WriteSession
from skycart.platform.tenancy import Tenant
from skycart.platform.validation import AirlineCode

admin = APIRouter(
    route_class=StrictJsonRoute, prefix="/admin", tags=["operator"], responses=problem_responses(401, 403, 422)
)
v1 = APIRouter(
    route_class=StrictJsonRoute, prefix="/v1", tags=["usage"], responses=problem_responses(401, 403, 422, 429)
)

Month = Annotated[str, Path(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", examples=["2026-11"], description="UTC month")]
Granularity = Annotated[business.BusinessGranularity, Query()]
FormatQuery = Annotated[Literal["json", "csv"], Query()]
CSV_RESPONSE = {
    200: {
        "description": "The statement; `?format=csv` gives one row per line item",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


@admin.get(
    "/statements/{code}/{month}",
    response_model=Statement,
    responses={**problem_responses(404), **CSV_RESPONSE},
    summary="An airline's monthly statement",
)
async def statement(
    code: AirlineCode,
    month: Month,
    request: Request,
    session: WriteSession,
    _op: OperatorKey,
    format: FormatQuery = "json",
) -> Response:
    found = await statements.document_under(session, get_runtime(request).settings, airline_code=code, month=month)
    return statement_response(found, format)


@v1.get(
    "/statements/{month}",
    response_model=Statement,
    responses={**problem_responses(404), **CSV_RESPONSE},
    summary="Your monthly statement",
)
async def own_statement(
    month: Month, tenant: AirlineTenant, request: Request, session: WriteSession, format: FormatQuery = "json"
) -> Response:
    found = await statements.document_under(
        session, get_runtime(request).settings, airline_code=tenant.code, month=month
    )
    return statement_response(found, format)


def statement_response(found: statements.StatementDocument, format: str) -> Response:
    """A statement as JSON or as a CSV download; a closed month's bytes are the stored ones, with their digest."""
    digest = found.json_sha256 if format == "json" else found.csv_sha256
    headers = {} if digest is None else {"ETag": f'"sha256-{digest}"'}
    if format == "json":
        return Response(found.json, media_type="application/json", headers=headers)
    return csv_download(found.statement, found.csv, headers)


def csv_download(found: Statement, body: str | None = None, headers: dict[str, str] | None = None) -> Response:
    """A statement as a CSV file download."""
    return Response(
        statements.to_csv(found) if body is None else body,
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="statement-{found.airline}-{found.month}.csv"',
            **(headers or {}),
        },
    )


@admin.get("/usage/orders", responses=problem_responses(404), summary="Orders, items and GMV per window")
async def admin_business_usage(
    session: ReadSession,
    _op: OperatorKey,
    start: From = None,
    end: To = None,
    granularity: Granularity = "hour",
    airline: Annotated[AirlineCode | None, Query(description="default: every airline")] = None,
) -> list[BusinessUsageRow]:
    start, end = span(start, end)
    if airline is None:
        tenants = await business.all_airlines(session)
    else:
        found = await get_airline(session, code=airline)
        tenants = [Tenant(found.id, found.code)]
    return await business.business_usage(session, tenants=tenants, start=start, end=end, granularity=granularity)


@v1.get("/usage/orders", summary="Your orders, items and GMV per window")
async def own_business_usage(
    tenant: AirlineTenant,
    session: ReadSession,
    start: From = None,
    end: To = None,
    granularity: Granularity = "hour",
) -> list[BusinessUsageRow]:
    start, end = span(start, end)
    return await business.business_usage(session, tenants=[tenant], start=start, end=end, granularity=granularity)


routers = (admin, v1)
