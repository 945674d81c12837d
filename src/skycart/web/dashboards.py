"""What the console's usage views show, read through the metering services: charts and per-airline figures."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from skycart.airlines.models import Airline
from skycart.billing import plans, usage
from skycart.billing import sales as business
from skycart.billing.schemas import PlanOut, QuotaOut, UsageRow
from skycart.money import to_decimal_string, to_minor
from skycart.platform.tenancy import Tenant

_AIRLINE_CODE = re.compile(r"^[A-Z0-9]{2,3}$")
# More lines than this make a chart unreadable; the table below it lists every airline.
CHART_AIRLINES = 10


@dataclass(frozen=True, slots=True)
class Range:
    key: str
    label: str
    step: timedelta
    windows: int
    granularity: usage.Granularity

    def bounds(self, now: datetime) -> tuple[datetime, datetime, list[datetime]]:
        """[start, end) and the window starts of the range, the current (partial) window last."""
        current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        if self.granularity == "day":
            current = current.replace(hour=0)
        starts = [current - self.step * (self.windows - 1 - i) for i in range(self.windows)]
        return starts[0], now, starts


RANGES = {
    "24h": Range("24h", "last 24 hours", timedelta(hours=1), 24, "hour"),
    "30d": Range("30d", "last 30 days", timedelta(days=1), 30, "day"),
}


@dataclass
class Chart:
    """A line chart, one trace per airline; drawn by Plotly in the browser, listed as a table without it."""

    id: str
    title: str
    y_title: str
    x: list[str]
    series: dict[str, list[float | None]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"title": self.title, "y_title": self.y_title, "x": self.x, "series": self.series}


@dataclass
class UsageCharts:
    range: Range
    requests: Chart
    errors: Chart
    latency: Chart
    totals: dict[str, tuple[int, int]]  # airline -> (requests, errors) over the range

    @property
    def charts(self) -> list[Chart]:
        return [self.requests, self.errors, self.latency]


@dataclass
class AirlineFigures:
    """One airline's row in the console: plan, quota this month, traffic, latency, GMV."""

    code: str
    name: str
    plan: PlanOut
    plan_since: datetime
    quota: QuotaOut
    requests: int = 0
    errors: int = 0
    p95_today: float | None = None
    gmv: dict[str, str] = field(default_factory=dict)

    @property
    def quota_percent(self) -> float | None:
        if self.quota.included is None or self.quota.included == 0:
            return None
        return round(100 * self.quota.used / self.quota.included, 1)


async def _usage(
    session: AsyncSession, tenant: Tenant | None, *, start: datetime, end: datetime, granularity: usage.Granularity
) -> list[UsageRow]:
    """One airline's usage rows per window, or (tenant None: the operator's overview) every airline's."""
    if tenant is None:
        return await usage.usage_of_all_airlines(
            session, start=start, end=end, granularity=granularity, group_by="airline"
        )
    return await usage.usage_of(session, tenant, start=start, end=end, granularity=granularity, group_by="airline")


async def usage_charts(session: AsyncSession, *, tenant: Tenant | None, range_key: str, now: datetime) -> UsageCharts:
    """Requests, errors and latency p95 per window for one airline, or (tenant None) the busiest airlines."""
    span = RANGES.get(range_key, RANGES["24h"])
    start, end, starts = span.bounds(now)
    rows = await _usage(session, tenant, start=start, end=end, granularity=span.granularity)
    by_airline: dict[str, dict[datetime, UsageRow]] = defaultdict(dict)
    for row in rows:
        if _AIRLINE_CODE.match(row.airline):  # not the operator's or anonymous traffic
            by_airline[row.airline][row.window_start] = row
    totals = {
        code: (sum(r.requests for r in windows.values()), sum(r.errors for r in windows.values()))
        for code, windows in by_airline.items()
    }
    shown = sorted(totals, key=lambda code: (-totals[code][0], code))[:CHART_AIRLINES]
    x = [moment.isoformat() for moment in starts]
    charts = UsageCharts(
        range=span,
        requests=Chart("chart-requests", f"Requests per airline, {span.label}", "requests", x),
        errors=Chart("chart-errors", f"Errors (4xx and 5xx) per airline, {span.label}", "errors", x),
        latency=Chart("chart-latency", f"Latency p95 per airline, {span.label}", "milliseconds", x),
        totals=totals,
    )
    for code in sorted(shown):
        windows = by_airline[code]
        charts.requests.series[code] = [windows[s].requests if s in windows else 0 for s in starts]
        charts.errors.series[code] = [windows[s].errors if s in windows else 0 for s in starts]
        charts.latency.series[code] = [windows[s].latency_ms_p95 if s in windows else None for s in starts]
    return charts


async def latency_today(session: AsyncSession, *, tenant: Tenant | None, now: datetime) -> dict[str, float | None]:
    """Latency p95 per airline since midnight UTC, from the whole day's histogram."""
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if now <= midnight:
        return {}
    rows = await _usage(session, tenant, start=midnight, end=now, granularity="day")
    return {row.airline: row.latency_ms_p95 for row in rows}


async def quota(
    session: AsyncSession, *, airline: Airline, default_plan: str, now: datetime
) -> tuple[PlanOut, datetime, QuotaOut]:
    """The plan in force, since when, and the month's billable requests against its quota."""
    found = await plans.plan_status(session, airline=airline, default_plan=default_plan, now=now)
    return found.plan, found.effective_from, found.quota


async def gmv(
    session: AsyncSession, *, tenants: list[Tenant], range_key: str, now: datetime
) -> dict[str, dict[str, str]]:
    """Airline -> currency -> GMV of the revenue orders created in the range."""
    span = RANGES.get(range_key, RANGES["24h"])
    start, end, _ = span.bounds(now)
    granularity: business.BusinessGranularity = "hour" if span.granularity == "hour" else "day"
    rows = await business.business_usage(session, tenants=tenants, start=start, end=end, granularity=granularity)
    minor: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        minor[row.airline][row.currency] += to_minor(row.gmv, row.currency)
    return {
        code: {cur: to_decimal_string(amount, cur) for cur, amount in sorted(per.items())}
        for code, per in minor.items()
    }


def gmv_totals(per_airline: dict[str, dict[str, str]]) -> dict[str, str]:
    """GMV per currency over all the airlines shown."""
    minor: dict[str, int] = defaultdict(int)
    for per in per_airline.values():
        for cur, amount in per.items():
            minor[cur] += to_minor(amount, cur)
    return {cur: to_decimal_string(amount, cur) for cur, amount in sorted(minor.items())}


async def airline_figures(
    session: AsyncSession,
    *,
    airlines: list[Airline],
    charts: UsageCharts,
    default_plan: str,
    now: datetime,
    single: bool = False,
) -> list[AirlineFigures]:
    """A figures row for each airline, with the range's totals from `charts`."""
    latency = await latency_today(session, tenant=airlines[0].tenant if single and airlines else None, now=now)
    sales = await gmv(session, tenants=[a.tenant for a in airlines], range_key=charts.range.key, now=now)
    rows = []
    for airline in airlines:
        plan, since, used = await quota(session, airline=airline, default_plan=default_plan, now=now)
        requests, errors = charts.totals.get(airline.code, (0, 0))
        rows.append(
            AirlineFigures(
                code=airline.code,
                name=airline.name,
                plan=plan,
                plan_since=since,
                quota=used,
                requests=requests,
                errors=errors,
                p95_today=latency.get(airline.code),
                gmv=sales.get(airline.code, {}),
            )
        )
    return rows


def statement_months(since: datetime, now: datetime, limit: int = 24) -> list[str]:
    """Statement months from the airline's first to the current one, newest first."""
    year, month = now.astimezone(UTC).year, now.astimezone(UTC).month
    first = (since.astimezone(UTC).year, since.astimezone(UTC).month)
    found: list[str] = []
    while (year, month) >= first and len(found) < limit:
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return found
