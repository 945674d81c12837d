"""Console: signing in and out, the usage overview (all airlines for the operator, its own for an airline),
and monthly statements."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from skycart.airlines import service as airlines
from skycart.billing import statements
from skycart.billing.responses import csv_download
from skycart.errors import Forbidden
from skycart.platform.db import utcnow
from skycart.platform.runtime import get_runtime
from skycart.platform.validation import AirlineCode
from skycart.web import csrf, dashboards, sessions
from skycart.web.deps import NOTICES, ConsoleUserDep, OperatorUser, check_origin, console_context
from skycart.web.pages import HtmlRoute, render, secure_cookies, see_other, unit_of_work
from skycart.web.sessions import ConsoleUser

router = APIRouter(prefix="/console", route_class=HtmlRoute, include_in_schema=False)

Month = Annotated[str, Path(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
RangeQuery = Annotated[Literal["24h", "30d"], Query(alias="range")]
Format = Annotated[Literal["html", "csv"], Query()]
PAGE_SIZE = 100


def _lifetime(request: Request) -> timedelta:
    return timedelta(hours=get_runtime(request).settings.web_session_hours)


def _safe_next(value: str | None) -> str:
    """Only a console path: the sign-in form never redirects elsewhere."""
    if value and value.startswith("/console") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console"


@router.get("/sign-in")
async def sign_in_form(request: Request, next: str | None = None) -> Response:
    seed, new = csrf.seed(request)
    notice = NOTICES.get(request.query_params.get("notice", ""))
    context = {"csrf_token": csrf.token_for(seed), "next": _safe_next(next), "error": None, "notice": notice}
    context["hours"] = f"{_lifetime(request).total_seconds() / 3600:g}"
    response = render(request, "console/sign_in.html", context)
    if new:
        csrf.keep_seed(response, seed, secure=secure_cookies(request))
    return response


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    check_origin(request)
    form = await request.form(max_files=0, max_fields=10)
    csrf.check(request.cookies.get(csrf.SEED_COOKIE), form.get(csrf.FIELD))
    plain = str(form.get("api_key", "")).strip()
    target = _safe_next(str(form.get("next", "")))
    token = None
    if 0 < len(plain) <= 200:
        async with unit_of_work(request, write=True) as session:
            token = await sessions.sign_in(session, plain_key=plain, now=utcnow(), lifetime=_lifetime(request))
    if token is None:
        context = {"csrf_token": form.get(csrf.FIELD), "next": target, "error": "Unknown or revoked API key."}
        context["hours"] = f"{_lifetime(request).total_seconds() / 3600:g}"
        return render(request, "console/sign_in.html", context, status=401)
    response = see_other(target)
    response.set_cookie(
        sessions.COOKIE,
        token,
        max_age=int(_lifetime(request).total_seconds()),
        httponly=True,
        secure=secure_cookies(request),
        samesite="lax",
        path="/",
    )
    return response


@router.post("/sign-out")
async def sign_out(request: Request, user: ConsoleUserDep) -> Response:
    check_origin(request)
    form = await request.form(max_files=0, max_fields=10)
    token = request.cookies.get(sessions.COOKIE, "")
    csrf.check(token, form.get(csrf.FIELD))
    async with unit_of_work(request, write=True) as session:
        await sessions.sign_out(session, token=token)
    response = see_other("/console/sign-in?notice=signed-out")
    response.delete_cookie(sessions.COOKIE, path="/", httponly=True, secure=secure_cookies(request), samesite="lax")
    return response


@router.get("")
async def overview(
    request: Request, user: ConsoleUserDep, range_key: RangeQuery = "24h", after: AirlineCode | None = None
) -> Response:
    """The operator sees every airline; an airline sees the same views of itself only."""
    settings = get_runtime(request).settings
    now = utcnow()
    async with unit_of_work(request, write=False) as session:
        if user.is_operator:
            listed = await airlines.list_airlines(session, after=after, limit=PAGE_SIZE)
            page, more = listed.rows, listed.after is not None
        elif user.tenant is not None:
            page, more = [await airlines.get_airline(session, code=user.tenant.code)], False
        else:
            raise Forbidden("this page is for the platform operator or an airline")
        tenant = None if user.is_operator else page[0].tenant
        charts = await dashboards.usage_charts(session, tenant=tenant, range_key=range_key, now=now)
        rows = await dashboards.airline_figures(
            session,
            airlines=page,
            charts=charts,
            default_plan=settings.default_plan,
            now=now,
            single=tenant is not None,
        )
    context = console_context(
        request,
        user,
        charts=charts,
        rows=rows,
        gmv_totals=dashboards.gmv_totals({row.code: row.gmv for row in rows}),
        ranges=dashboards.RANGES,
        next_after=page[-1].code if more else None,
        months=dashboards.statement_months(page[0].created_at, now) if tenant and page else [],
        title="Overview" if tenant is None else f"{page[0].name} ({tenant.code})",
    )
    return render(request, "console/overview.html", context)


async def _statement(request: Request, user: ConsoleUser, code: str, month: str, format: str) -> Response:
    settings = get_runtime(request).settings
    # Writes: the first read of a closed month stores its final statement.
    async with unit_of_work(request, write=True) as session:
        airline = await airlines.get_airline(session, code=code)
        document = await statements.document_under(session, settings, airline_code=code, month=month)
    found = document.statement
    if format == "csv":
        return csv_download(found, document.csv)
    base = f"/console/airlines/{code}" if user.is_operator else "/console"
    context = console_context(
        request, user, statement=found, airline=airline, csv_url=f"{base}/statements/{month}?format=csv"
    )
    return render(request, "console/statement.html", context)


@router.get("/statements/{month}")
async def own_statement(request: Request, month: Month, user: ConsoleUserDep, format: Format = "html") -> Response:
    """An airline's own statement (the operator reads any airline's from that airline's page)."""
    if user.tenant is None:
        return see_other("/console")
    return await _statement(request, user, user.tenant.code, month, format)


@router.get("/airlines/{code}/statements/{month}")
async def airline_statement(
    request: Request, code: AirlineCode, month: Month, user: OperatorUser, format: Format = "html"
) -> Response:
    return await _statement(request, user, code, month, format)
