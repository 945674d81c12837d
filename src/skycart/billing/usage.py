"""Reading stored usage: per minute, hour or day, with latency percentiles from the histogram."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.billing.schemas import UsageRow
from skycart.errors import ValidationFailed
from skycart.metering.models import BUCKET_COLUMNS, COUNTER_COLUMNS, LATENCY_BUCKETS_MS, UsageHour, UsageMinute

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


async def usage(
    session: AsyncSession,
    *,
    airline: str | None,
    start: datetime,
    end: datetime,
    granularity: Granularity,
    group_by: GroupBy = "route",
    route: str | None = None,
) -> list[UsageRow]:
    """Usage rows in [start, end) for one airline (or all), summed to the granularity asked."""
    if end <= start:
        raise ValidationFailed("to: must be after from")
    if end - start > MAX_SPAN[granularity]:
        raise ValidationFailed(f"from/to: at most {MAX_SPAN[granularity].days} days per {granularity} query")
    model = UsageMinute if granularity == "minute" else UsageHour
    stmt = select(model).where(model.window_start >= start, model.window_start < end)
    if airline is not None:
        stmt = stmt.where(model.airline == airline)
    if route is not None:
        stmt = stmt.where(model.route == route)
    totals: dict[tuple, list[int]] = {}
    for row in (await session.execute(stmt.order_by(model.window_start))).scalars():
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
