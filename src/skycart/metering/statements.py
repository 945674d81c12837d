"""Monthly statements: plan fees, overage and revenue share an airline owes. No HTTP, no commit.

A month is billed by the plans in force during it, each for the share of the month it covered.
The current month is provisional: fees and included requests are those of the whole month as
the plans are scheduled now (what `/v1/plan` shows as the quota), requests and GMV are counted to date.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from skycart.airlines.service import get_airline
from skycart.config import Settings
from skycart.errors import ValidationFailed
from skycart.metering import plans, repository
from skycart.metering.models import Plan, UsageHour, UsageMinute
from skycart.metering.schemas import Statement, StatementPlan
from skycart.money import to_decimal_string
from skycart.platform.db import utcnow
from skycart.platform.tenancy import Tenant

_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
CSV_COLUMNS = (
    "airline",
    "month",
    "item",
    "plan",
    "from",
    "to",
    "requests",
    "included_requests",
    "overage_requests",
    "gmv",
    "currency",
    "amount",
)


@dataclass(frozen=True, slots=True)
class Segment:
    """A plan in force in [start, end) of the month, and what it bills (minor units)."""

    plan: Plan
    start: datetime
    end: datetime
    fee: int
    included: int | None
    requests: int
    overage_requests: int
    overage: int
    gmv: dict[str, int]
    revenue_share: dict[str, int]


def parse_month(month: str, *, now: datetime) -> tuple[datetime, datetime]:
    """The UTC bounds of a "YYYY-MM" month that has begun; ValidationFailed otherwise."""
    match = _MONTH.fullmatch(month)
    year, number = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if year < 1 or not 1 <= number <= 12:
        raise ValidationFailed(f"month: {month!r} is not a month such as 2026-11")
    start = datetime(year, number, 1, tzinfo=UTC)
    if start > now:
        raise ValidationFailed(f"month: {month} has not begun")
    return plans.month_bounds(start)


def half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _micros(span: timedelta) -> int:
    return span // timedelta(microseconds=1)


def _merged(segments: list[tuple[Plan, datetime, datetime]]) -> list[tuple[Plan, datetime, datetime]]:
    """Adjacent spans of the same plan are one span: assigning the plan an airline is on changes nothing."""
    merged: list[tuple[Plan, datetime, datetime]] = []
    for plan, start, end in segments:
        if merged and merged[-1][0].id == plan.id and merged[-1][2] == start:
            merged[-1] = (plan, merged[-1][1], end)
        else:
            merged.append((plan, start, end))
    return merged


async def statement(
    session: AsyncSession,
    *,
    airline_code: str,
    month: str,
    default_plan: str,
    minute_retention_days: int,
    now: datetime | None = None,
) -> Statement:
    """The statement of one airline for one month (to date for the current month)."""
    now = now or utcnow()
    start, end = parse_month(month, now=now)
    airline = await get_airline(session, code=airline_code)
    tenant = Tenant(airline.id, airline.code)
    spans = await plans.plan_segments(session, airline=airline, default_plan=default_plan, start=start, end=end)
    # Minute rows are exact at segment bounds; hour rows (older months) count an hour where it starts.
    usage_model = UsageMinute if start >= now - timedelta(days=minute_retention_days) else UsageHour
    segments = []
    for plan, lo, hi in _merged(spans):
        requests = await repository.billable_in(session, usage_model, airline.code, lo, hi)
        gmv = await repository.gmv_by_currency(session, tenant, lo, hi)
        segments.append(_bill(plan, lo, hi, _micros(end - start), requests, gmv))
    gmv = await repository.gmv_by_currency(session, tenant, start, end) if segments else {}
    currency = segments[-1].plan.currency if segments else (await plans.get_plan(session, default_plan)).currency
    return _statement(airline.code, month, currency, start, end, now, segments, gmv)


async def statement_under(session: AsyncSession, settings: Settings, *, airline_code: str, month: str) -> Statement:
    """`statement` with the running settings' default plan and minute-row retention."""
    return await statement(
        session,
        airline_code=airline_code,
        month=month,
        default_plan=settings.default_plan,
        minute_retention_days=settings.usage_minute_retention_days,
    )


def _bill(plan: Plan, start: datetime, end: datetime, month_micros: int, requests: int, gmv: dict[str, int]) -> Segment:
    """What one plan bills for its part of the month."""
    micros = _micros(end - start)
    quota = plan.monthly_request_quota
    included = None if quota is None else quota * micros // month_micros
    overage_requests = max(0, requests - included) if plan.overage and included is not None else 0
    return Segment(
        plan=plan,
        start=start,
        end=end,
        fee=plans.prorate(plan.monthly_fee_minor, micros, month_micros),  # only the ratio counts
        included=included,
        requests=requests,
        overage_requests=overage_requests,
        overage=half_up(Decimal(overage_requests * plan.overage_per_1000_minor) / 1000),
        gmv=gmv,
        revenue_share={cur: half_up(Decimal(minor * plan.revenue_share_bps) / 10_000) for cur, minor in gmv.items()},
    )


def _statement(
    airline: str,
    month: str,
    currency: str,
    start: datetime,
    end: datetime,
    now: datetime,
    segments: list[Segment],
    gmv: dict[str, int],
) -> Statement:
    revenue_share: dict[str, int] = defaultdict(int)
    total_due: dict[str, int] = defaultdict(int, {currency: 0})
    for segment in segments:
        total_due[segment.plan.currency] += segment.fee + segment.overage
        for cur, amount in segment.revenue_share.items():
            revenue_share[cur] += amount
            total_due[cur] += amount
    included = [s.included for s in segments]
    in_currency = [s for s in segments if s.plan.currency == currency]
    return Statement(
        airline=airline,
        month=month,
        currency=currency,
        from_=start,
        to=end,
        final=now >= end,
        generated_at=now,
        plans=[_segment_out(s) for s in segments],
        requests=sum(s.requests for s in segments),
        included_requests=None if None in included else sum(i for i in included if i is not None),
        overage_requests=sum(s.overage_requests for s in segments),
        fee=to_decimal_string(sum(s.fee for s in in_currency), currency),
        overage_amount=to_decimal_string(sum(s.overage for s in in_currency), currency),
        gmv=_amounts(gmv),
        revenue_share=_amounts(revenue_share),
        total_due=_amounts(total_due),
    )


def _amounts(minor: dict[str, int]) -> dict[str, str]:
    return {cur: to_decimal_string(amount, cur) for cur, amount in sorted(minor.items())}


def _segment_out(segment: Segment) -> StatementPlan:
    plan = segment.plan
    return StatementPlan(
        plan=plan.code,
        name=plan.name,
        currency=plan.currency,
        from_=segment.start,
        to=segment.end,
        fee=to_decimal_string(segment.fee, plan.currency),
        included_requests=segment.included,
        requests=segment.requests,
        overage_requests=segment.overage_requests,
        overage_amount=to_decimal_string(segment.overage, plan.currency),
        revenue_share_bps=plan.revenue_share_bps,
        gmv=_amounts(segment.gmv),
        revenue_share=_amounts(segment.revenue_share),
    )


def to_csv(found: Statement) -> str:
    """One row per line item: plan fee and overage per plan, revenue share and total due per currency."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    head = {"airline": found.airline, "month": found.month}
    for seg in found.plans:
        span = {"plan": seg.plan, "from": seg.from_.isoformat(), "to": seg.to.isoformat(), "currency": seg.currency}
        writer.writerow({**head, **span, "item": "plan_fee", "amount": seg.fee})
        included = "" if seg.included_requests is None else seg.included_requests
        usage = {"requests": seg.requests, "included_requests": included, "overage_requests": seg.overage_requests}
        writer.writerow({**head, **span, **usage, "item": "overage", "amount": seg.overage_amount})
    for cur, amount in found.revenue_share.items():
        basis = {"gmv": found.gmv.get(cur, ""), "currency": cur}
        writer.writerow({**head, **basis, "item": "revenue_share", "amount": amount})
    for cur, amount in found.total_due.items():
        writer.writerow({**head, "item": "total_due", "currency": cur, "amount": amount})
    return out.getvalue()
