from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from skycart.airlines.auth import AirlineTenant, OperatorKey
from skycart.airlines.service import get_airline
from skycart.errors import problem_responses
from skycart.metering import plans, report_endpoints, repository, usage
from skycart.metering.exporters import UsageCollector
from skycart.metering.params import From, To, span
from skycart.metering.schemas import AirlinePlanOut, PlanAssign, PlanIn, PlanOut, PlanStatus, QuotaOut, UsageRow
from skycart.platform.db import utcnow
from skycart.platform.runtime import get_runtime
from skycart.platform.sessions import ReadSession, WriteSession
from skycart.platform.validation import AirlineCode

admin = APIRouter(prefix="/admin", tags=["operator"], responses=problem_responses(401, 403, 422))
v1 = APIRouter(prefix="/v1", tags=["usage"], responses=problem_responses(401, 403, 422, 429))
monitoring = APIRouter(tags=["health"], responses=problem_responses(401, 403))

GranularityQuery = Annotated[usage.Granularity, Query()]


@admin.get("/plans")
async def list_plans(session: ReadSession, _op: OperatorKey) -> list[PlanOut]:
    return [plans.plan_out(p) for p in await plans.list_plans(session)]


@admin.post("/plans", status_code=status.HTTP_201_CREATED, responses=problem_responses(409))
async def create_plan(body: PlanIn, session: WriteSession, _op: OperatorKey) -> PlanOut:
    return plans.plan_out(await plans.create_plan(session, data=body))


@admin.put("/airlines/{code}/plan", responses=problem_responses(404))
async def assign_plan(
    code: AirlineCode, body: PlanAssign, request: Request, session: WriteSession, _op: OperatorKey
) -> AirlinePlanOut:
    assigned = await plans.assign_plan(session, airline_code=code, data=body)
    get_runtime(request).metering.plans.forget(code)
    return assigned


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
    plan, since = await plans.current_plan(
        session, airline=airline, default_plan=get_runtime(request).settings.default_plan
    )
    period_start, period_end = plans.month_bounds(utcnow())
    used = await repository.billable_requests(session, tenant.code, period_start, period_end)
    quota = plan.monthly_request_quota
    return PlanStatus(
        airline=tenant.code,
        plan=plans.plan_out(plan),
        effective_from=since,
        period_start=period_start,
        period_end=period_end,
        quota=QuotaOut(included=quota, used=used, remaining=None if quota is None else max(quota - used, 0)),
    )


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
