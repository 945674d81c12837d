"""Billing's routes: the plan catalogue, airlines' plans and usage, statements and sales."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status

from skycart.airlines.auth import AirlineTenant, OperatorKey
from skycart.airlines.service import get_airline
from skycart.billing import plans, service, statements, usage
from skycart.billing import sales as business
from skycart.billing.features import FEATURES
from skycart.billing.params import From, To, span
from skycart.billing.responses import statement_response
from skycart.billing.schemas import (
    AirlinePlanOut,
    BusinessUsageRow,
    FeatureOut,
    PlanAssign,
    PlanCode,
    PlanIn,
    PlanOut,
    PlanStatus,
    Statement,
    UsageRow,
)
from skycart.errors import problem_responses
from skycart.platform.jsonbody import StrictJsonRoute
from skycart.platform.runtime import get_runtime
from skycart.platform.sessions import ReadSession, WriteSession
from skycart.platform.validation import AirlineCode

admin = APIRouter(
    route_class=StrictJsonRoute, prefix="/admin", tags=["operator"], responses=problem_responses(401, 403, 422)
)
v1 = APIRouter(
    route_class=StrictJsonRoute, prefix="/v1", tags=["usage"], responses=problem_responses(401, 403, 422, 429)
)

GranularityQuery = Annotated[usage.Granularity, Query()]


@admin.get("/plans")
async def list_plans(
    session: ReadSession,
    _op: OperatorKey,
    include_retired: Annotated[bool, Query(description="also list plans no longer sold")] = False,
) -> list[PlanOut]:
    return [plans.plan_out(p) for p in await plans.list_plans(session, include_retired=include_retired)]


@admin.post("/plans", status_code=status.HTTP_201_CREATED, responses=problem_responses(409))
async def create_plan(body: PlanIn, session: WriteSession, _op: OperatorKey) -> PlanOut:
    return plans.plan_out(await plans.create_plan(session, data=body))


@admin.delete("/plans/{plan_code}", responses=problem_responses(404, 409), summary="Retire a plan")
async def retire_plan(plan_code: PlanCode, request: Request, session: WriteSession, _op: OperatorKey) -> PlanOut:
    settings = get_runtime(request).settings
    return plans.plan_out(await plans.retire_plan(session, code=plan_code, default_plan=settings.default_plan))


@admin.get("/features", summary="The features plans may include, and what each gates")
async def list_features(_op: OperatorKey) -> list[FeatureOut]:
    return [
        FeatureOut(
            code=feature.code,
            description=feature.description,
            operations=[f"{method} {template}" for method, template in feature.operations],
            pages=list(feature.pages),
        )
        for feature in FEATURES.values()
    ]


@admin.put("/airlines/{code}/plan", responses=problem_responses(404, 409))
async def assign_plan(
    code: AirlineCode, body: PlanAssign, request: Request, session: WriteSession, _op: OperatorKey
) -> AirlinePlanOut:
    runtime = get_runtime(request)
    return await service.assign_plan(
        session,
        service.plan_book(runtime),
        airline_code=code,
        data=body,
        grace_hours=runtime.settings.billing_grace_hours,
    )


@admin.delete(
    "/airlines/{code}/plans/{change_id}",
    responses=problem_responses(404, 409),
    summary="Cancel a scheduled plan change",
)
async def cancel_plan_change(
    code: AirlineCode,
    change_id: Annotated[str, Path(pattern=r"^[0-9A-Za-z]{26}$")],
    request: Request,
    session: WriteSession,
    _op: OperatorKey,
) -> AirlinePlanOut:
    book = service.plan_book(get_runtime(request))
    return await service.cancel_plan_change(session, book, airline_code=code, change_id=change_id)


@admin.get("/airlines/{code}/plans", responses=problem_responses(404), summary="An airline's plan history")
async def plan_history(
    code: AirlineCode, request: Request, session: ReadSession, _op: OperatorKey
) -> list[AirlinePlanOut]:
    return await plans.history(session, airline_code=code, default_plan=get_runtime(request).settings.default_plan)


@admin.get("/usage")
async def admin_usage(
    session: ReadSession,
    _op: OperatorKey,
    start: From = None,
    end: To = None,
    granularity: GranularityQuery = "hour",
    airline: Annotated[AirlineCode | None, Query()] = None,
    group_by: Annotated[usage.GroupBy, Query()] = "route",
) -> list[UsageRow]:
    start, end = span(start, end)
    return await usage.usage_of_all_airlines(
        session, start=start, end=end, granularity=granularity, group_by=group_by, airline_code=airline
    )


@v1.get("/usage")
async def own_usage(
    tenant: AirlineTenant,
    session: ReadSession,
    start: From = None,
    end: To = None,
    granularity: GranularityQuery = "hour",
    group_by: Annotated[usage.GroupBy, Query()] = "route",
) -> list[UsageRow]:
    start, end = span(start, end)
    return await usage.usage_of(session, tenant, start=start, end=end, granularity=granularity, group_by=group_by)


@v1.get("/plan")
async def own_plan(tenant: AirlineTenant, request: Request, session: ReadSession) -> PlanStatus:
    airline = await get_airline(session, code=tenant.code)
    return await plans.plan_status(session, airline=airline, default_plan=get_runtime(request).settings.default_plan)


Month = Annotated[str, Path(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", examples=["2026-11"], description="UTC month")]
Granularity = Annotated[business.BusinessGranularity, Query()]
FormatQuery = Annotated[Literal["json", "csv"], Query()]
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
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
        tenants = await business.all_airline_tenants(session)
    else:
        found = await get_airline(session, code=airline)
        tenants = [found.tenant]
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


routers = (admin, v1)
