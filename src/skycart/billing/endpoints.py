from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from skycart.airlines.auth import AirlineTenant, OperatorKey
from skycart.airlines.service import get_airline
from skycart.billing import plans, report_endpoints, usage
from skycart.billing.features import FEATURES
from skycart.billing.params import From, To, span
from skycart.billing.schemas import (
    AirlinePlanOut,
    FeatureOut,
    PlanAssign,
    PlanCode,
    PlanIn,
    PlanOut,
    PlanStatus,
    UsageRow,
)
from skycart.errors import problem_responses
from skycart.metering.exporters import UsageCollector
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
monitoring = APIRouter(route_class=StrictJsonRoute, tags=["health"], responses=problem_responses(401, 403))

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
    assigned = await plans.assign_plan(
        session, airline_code=code, data=body, grace_hours=runtime.settings.billing_grace_hours
    )
    runtime.metering.plans.forget(code)
    return assigned


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
    cancelled = await plans.cancel_change(session, airline_code=code, change_id=change_id)
    get_runtime(request).metering.plans.forget(code)
    return cancelled


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
    return await usage.usage(session, airline=airline, start=start, end=end, granularity=granularity, group_by=group_by)


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
    return await usage.usage(
        session, airline=tenant.code, start=start, end=end, granularity=granularity, group_by=group_by
    )


@v1.get("/plan")
async def own_plan(tenant: AirlineTenant, request: Request, session: ReadSession) -> PlanStatus:
    airline = await get_airline(session, code=tenant.code)
    return await plans.plan_status(session, airline=airline, default_plan=get_runtime(request).settings.default_plan)


@monitoring.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}},
)
async def metrics(request: Request, _op: OperatorKey) -> Response:
    runtime = get_runtime(request)
    metering = runtime.metering
    registry = CollectorRegistry(auto_describe=False)
    registry.register(UsageCollector(metering.aggregator, metering.flusher, metering.limiter, runtime.menus))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


routers = (admin, v1, monitoring, *report_endpoints.routers)
