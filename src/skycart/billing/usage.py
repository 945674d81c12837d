"""Reading stored usage: per minute, hour or day, with latency percentiles from the histogram."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from skycart.billing import repository
from skycart.billing.repository import UsageModel
from skycart.billing.schemas import UsageRow
from skycart.errors import ValidationFailed
from skycart.metering.models import BUCKET_COLUMNS, COUNTER_COLUMNS, LATENCY_BUCKETS_MS, UsageHour, UsageMinute
from skycart.platform.tenancy import Tenant

Granularity = Literal["minute", "hour", "day"]
GroupBy = Literal["route", "airline"]
MAX_SPAN = {"minute": timedelta(days=2), "hour": timedelta(days=93), "day": timedelta(days=800)}
ALL = "*"


def percentile(buckets: list[int], fraction: float) -> float | None:
    """Estimate a latency percentile (ms) by interpolating inside the histogram bucket it falls in."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = fraction * total
    seen = 0
    lower = 0.0
    for index, count in enumerate(buckets):
        upper = float(LATENCY_BUCKETS_MS[index]) if index < len(LATENCY_BUCKETS_MS) else lower * 2
        if count and seen + count >= rank:
            return round(lower + (upper - lower) * (rank - seen) / count, 2)
        seen += count
        lower = upper
    return round(lower, 2)


def _bucket_start(moment: datetime, granularity: Granularity) -> datetime:
    if granularity == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment


async def usage_of(
    session: AsyncSession,
    tenant: Tenant,
    *,
    start: datetime,
    end: datetime,
    granularity: Granularity,
    group_by: GroupBy = "route",
) -> list[UsageRow]:
    """The airline's usage rows in [start, end), summed to the granularity asked."""
    model = _model(start, end, granularity)
    return await _summed(repository.usage_rows(session, tenant, model, start, end), granularity, group_by)


async def usage_of_all_airlines(
    session: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    granularity: Granularity,
    group_by: GroupBy = "route",
    airline_code: str | None = None,
) -> list[UsageRow]:
    """Every airline's usage (or one code's, anonymous traffic included): for operator views only."""
    model = _model(start, end, granularity)
    rows = repository.usage_rows_of_all_airlines(session, model, start, end, airline_code=airline_code)
    return await _summed(rows, granularity, group_by)


def _model(start: datetime, end: datetime, granularity: Granularity) -> UsageModel:
    if end <= start:
        raise ValidationFailed("to: must be after from")
    if end - start > MAX_SPAN[granularity]:
        raise ValidationFailed(f"from/to: at most {MAX_SPAN[granularity].days} days per {granularity} query")
    return UsageMinute if granularity == "minute" else UsageHour


async def _summed(
    rows: AsyncIterator[UsageMinute | UsageHour], granularity: Granularity, group_by: GroupBy
) -> list[UsageRow]:
    totals: dict[tuple, list[int]] = {}
    async for row in rows:
        labels = (row.route, row.method, row.status_class) if group_by == "route" else (ALL, ALL, ALL)
        key = (_bucket_start(row.window_start.astimezone(UTC), granularity), row.airline, *labels)
        counters = totals.setdefault(key, [0] * len(COUNTER_COLUMNS))
        for i, column in enumerate(COUNTER_COLUMNS):
            counters[i] += getattr(row, column)
    first_bucket = COUNTER_COLUMNS.index(BUCKET_COLUMNS[0])
    out = []
    for (window, airline_code, route_label, method, status_class), c in sorted(totals.items()):
        values = dict(zip(COUNTER_COLUMNS, c, strict=True))
        out.append(
            UsageRow(
                airline=airline_code,
                window_start=window,
                route=route_label,
                method=method,
                status_class=status_class,
                requests=values["requests"],
                errors=values["errors"],
                billable=values["billable"],
                bytes_in=values["bytes_in"],
                bytes_out=values["bytes_out"],
                latency_ms_p50=percentile(c[first_bucket:], 0.5),
                latency_ms_p95=percentile(c[first_bucket:], 0.95),
            )
        )
    return out
