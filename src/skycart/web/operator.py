"""Operator console: one airline's usage, plan and keys; changing the plan, issuing and revoking keys."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import ValidationError

from skycart.airlines import service as airlines
from skycart.airlines.auth import forget_key
from skycart.billing import plans
from skycart.billing import service as billing
from skycart.billing.schemas import PlanAssign
from skycart.errors import ValidationFailed
from skycart.platform.db import utcnow
from skycart.platform.runtime import get_runtime
from skycart.platform.validation import AirlineCode
from skycart.web import dashboards
from skycart.web.deps import OperatorUser, PostedForm, console_context
from skycart.web.pages import HtmlRoute, render, see_other, unit_of_work
from skycart.web.sessions import ConsoleUser

router = APIRouter(prefix="/console", route_class=HtmlRoute, include_in_schema=False)

RangeQuery = Annotated[Literal["24h", "30d"], Query(alias="range")]
KeyId = Annotated[str, Path(min_length=26, max_length=26, pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")]


async def _airline_page(
    request: Request, user: ConsoleUser, code: str, range_key: str, *, new_key: str | None = None
) -> Response:
    settings = get_runtime(request).settings
    now = utcnow()
    async with unit_of_work(request, write=False) as session:
        airline = await airlines.get_airline(session, code=code)
        charts = await dashboards.usage_charts(session, tenant=airline.tenant, range_key=range_key, now=now)
        (figures,) = await dashboards.airline_figures(
            session, airlines=[airline], charts=charts, default_plan=settings.default_plan, now=now, single=True
        )
        history = await plans.history(session, airline_code=code, default_plan=settings.default_plan)
        offered = [plans.plan_out(plan) for plan in await plans.list_plans(session)]
        keys = await airlines.airline_keys(session, tenant=airline.tenant)
    context = console_context(
        request,
        user,
        title=f"{airline.name} ({airline.code})",
        airline=airline,
        charts=charts,
        rows=[figures],
        figures=figures,
        gmv_totals=figures.gmv,
        ranges=dashboards.RANGES,
        history=history,
        plans=offered,
        keys=keys,
        new_key=new_key,
        months=dashboards.statement_months(airline.created_at, now),
    )
    return render(request, "console/airline.html", context)


@router.get("/airlines/{code}")
async def airline_page(
    request: Request, code: AirlineCode, user: OperatorUser, range_key: RangeQuery = "24h"
) -> Response:
    return await _airline_page(request, user, code, range_key)


@router.post("/airlines/{code}/plan")
async def change_plan(request: Request, code: AirlineCode, user: OperatorUser, form: PostedForm) -> Response:
    try:
        data = PlanAssign(plan=str(form.get("plan", "")))
    except ValidationError as exc:
        raise ValidationFailed(f"plan: {exc.errors()[0]['msg']}") from exc
    runtime = get_runtime(request)
    async with unit_of_work(request, write=True) as session:
        # Like the API: this process forgets the old terms at the commit, the others within the plan cache's TTL.
        await billing.assign_plan(
            session,
            billing.plan_book(runtime),
            airline_code=code,
            data=data,
            grace_hours=runtime.settings.billing_grace_hours,
        )
    return see_other(f"/console/airlines/{code}?notice=plan")


@router.post("/airlines/{code}/keys")
async def issue_key(request: Request, code: AirlineCode, user: OperatorUser, form: PostedForm) -> Response:
    """The new key is on this answer only: it is never stored or shown again."""
    name = str(form.get("name", "")).strip()[:100]
    async with unit_of_work(request, write=True) as session:
        airline = await airlines.get_airline(session, code=code)
        _key, plain = await airlines.issue_key(session, role=airlines.ROLE_AIRLINE, airline=airline, name=name)
    return await _airline_page(request, user, code, "24h", new_key=plain)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: KeyId, user: OperatorUser, form: PostedForm) -> Response:
    async with unit_of_work(request, write=True) as session:
        airline_code = await airlines.airline_of_key(session, key_id=key_id)
        await airlines.revoke_key(session, key_id=key_id)
    forget_key(request, key_id)
    return see_other(f"/console/airlines/{airline_code}?notice=revoked")
