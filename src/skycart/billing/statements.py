"""Monthly statements: plan fees, overage and revenue share an airline owes. No HTTP, no commit.

A month is billed by the plans in force during it, each for the share of the month it covered.
An open month is provisional: fees and included requests are those of the whole month as the plans
are scheduled now (what `/v1/plan` shows as the quota), requests and GMV are counted to date. Once
closed (month end + the grace period) its statement is computed once, stored, and served as stored.
Its GMV is what was known and not cancelled at the close; what arrives later is an adjustment of
the month it arrives in.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.airlines.models import Airline
from skycart.airlines.service import get_airline
from skycart.billing import periods, plans, repository
from skycart.billing.models import ClosedStatement, Plan
from skycart.billing.periods import label as month_label
from skycart.billing.schemas import Adjustment, Statement, StatementPlan
from skycart.config import Settings
from skycart.errors import ValidationFailed
from skycart.metering.models import UsageHour
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
    "final",
    "original_month",
    "reason",
    "order_id",
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
    return periods.month_bounds(start)


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


@dataclass(frozen=True, slots=True)
class StatementDocument:
    """A statement and its JSON and CSV; a closed month's are the stored ones, with their digests."""

    statement: Statement
    json: str
    csv: str
    json_sha256: str | None = None
    csv_sha256: str | None = None


async def document(
    session: AsyncSession,
    *,
    airline_code: str,
    month: str,
    default_plan: str,
    grace_hours: int,
    now: datetime | None = None,
) -> StatementDocument:
    """The statement of one airline for one month: to date while open, the stored final one once closed."""
    now = now or utcnow()
    start, _ = parse_month(month, now=now)
    airline = await get_airline(session, code=airline_code)
    if periods.is_closed(start, now=now, grace_hours=grace_hours):
        stored, _created = await close_month(
            session, airline=airline, start=start, default_plan=default_plan, grace_hours=grace_hours, now=now
        )
        return StatementDocument(
            Statement.model_validate_json(stored.body_json),
            stored.body_json,
            stored.body_csv,
            stored.json_sha256,
            stored.csv_sha256,
        )
    found = await _compute(session, airline, start, default_plan=default_plan, grace_hours=grace_hours, now=now)
    return StatementDocument(found, found.model_dump_json(by_alias=True), to_csv(found))


async def statement(
    session: AsyncSession,
    *,
    airline_code: str,
    month: str,
    default_plan: str,
    grace_hours: int,
    now: datetime | None = None,
) -> Statement:
    """The statement of one airline for one month (to date while the month is open)."""
    found = await document(
        session, airline_code=airline_code, month=month, default_plan=default_plan, grace_hours=grace_hours, now=now
    )
    return found.statement


async def statement_under(session: AsyncSession, settings: Settings, *, airline_code: str, month: str) -> Statement:
    """`statement` with the running settings' default plan and grace period."""
    return (await document_under(session, settings, airline_code=airline_code, month=month)).statement


async def document_under(
    session: AsyncSession, settings: Settings, *, airline_code: str, month: str
) -> StatementDocument:
    """`document` with the running settings' default plan and grace period."""
    return await document(
        session,
        airline_code=airline_code,
        month=month,
        default_plan=settings.default_plan,
        grace_hours=settings.billing_grace_hours,
    )


async def close_month(
    session: AsyncSession, *, airline: Airline, start: datetime, default_plan: str, grace_hours: int, now: datetime
) -> tuple[ClosedStatement, bool]:
    """The stored final statement of a closed month, storing it first if nobody has; True if stored now."""
    tenant = airline.tenant
    month = periods.label(start)
    stored = await repository.closed_statement(session, tenant, month)
    if stored is not None:
        return stored, False
    found = await _compute(session, airline, start, default_plan=default_plan, grace_hours=grace_hours, now=now)
    body_json, body_csv = found.model_dump_json(by_alias=True), to_csv(found)
    row = ClosedStatement(
        airline_id=airline.id,
        month=month,
        body_json=body_json,
        body_csv=body_csv,
        json_sha256=hashlib.sha256(body_json.encode()).hexdigest(),
        csv_sha256=hashlib.sha256(body_csv.encode()).hexdigest(),
        closed_at=found.closes_at,
        created_at=now,
    )
    try:
        async with session.begin_nested():
            await repository.add(session, row)
    except IntegrityError:
        # Another process stored it meanwhile: theirs is the statement.
        stored = await repository.closed_statement(session, tenant, month)
        if stored is None:
            raise
        return stored, False
    return row, True


async def _compute(
    session: AsyncSession, airline: Airline, start: datetime, *, default_plan: str, grace_hours: int, now: datetime
) -> Statement:
    _, end = periods.month_bounds(start)
    tenant = airline.tenant
    closes = periods.closes_at(start, grace_hours)
    history = await plans.timeline(session, airline=airline, default_plan=default_plan)
    segments = []
    for plan, lo, hi in _merged(plans.segments_of(history, start, end)):
        requests = await repository.billable_in(session, UsageHour, tenant, lo, hi)
        gmv = await repository.gmv_by_currency(session, tenant, lo, hi, as_of=closes)
        segments.append(_bill(plan, lo, hi, _micros(end - start), requests, gmv))
    adjustments = await late_facts(session, tenant, history, start, end, grace_hours=grace_hours)
    currency = segments[-1].plan.currency if segments else (await plans.get_plan(session, default_plan)).currency
    return _statement(airline.code, month_label(start), currency, start, end, closes, now, segments, adjustments)


async def late_facts(
    session: AsyncSession, tenant: Tenant, history: plans.Timeline, start: datetime, end: datetime, *, grace_hours: int
) -> list[tuple[Adjustment, int]]:
    """Sales and cancellations recorded in [start, end) that belong to a month already closed when they came."""
    facts = [
        ("late_sale", oid, made, seen, cur, total)
        for oid, made, seen, cur, total in await repository.late_sales(session, tenant, start, end)
    ] + [
        ("cancellation", oid, made, seen, cur, -total)
        for oid, made, seen, cur, total in await repository.late_cancellations(session, tenant, start, end)
    ]
    out = []
    for reason, order_id, made, seen, currency, gmv in sorted(facts, key=lambda fact: (fact[3], fact[1])):
        in_force = plans.plan_at(history, made)
        if in_force is None or seen < periods.closes_at(made, grace_hours):
            continue  # before the airline existed (never billed), or known while its month was still open
        plan = in_force[0]
        share = _share(gmv, plan.revenue_share_bps)
        out.append(
            (
                Adjustment(
                    month=periods.label(made),
                    reason=reason,
                    order_id=order_id,
                    occurred_at=made,
                    recorded_at=seen,
                    plan=plan.code,
                    currency=currency,
                    gmv=to_decimal_string(gmv, currency),
                    revenue_share_bps=plan.revenue_share_bps,
                    revenue_share=to_decimal_string(share, currency),
                ),
                share,
            )
        )
    return out


def _share(minor: int, bps: int) -> int:
    """A revenue share rounded half away from zero, so a cancellation undoes its sale's share exactly."""
    return half_up(Decimal(minor * bps) / 10_000)


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
        revenue_share={cur: _share(minor, plan.revenue_share_bps) for cur, minor in gmv.items()},
    )


def _statement(
    airline: str,
    month: str,
    currency: str,
    start: datetime,
    end: datetime,
    closes: datetime,
    now: datetime,
    segments: list[Segment],
    adjustments: list[tuple[Adjustment, int]],
) -> Statement:
    gmv: dict[str, int] = defaultdict(int)
    revenue_share: dict[str, int] = defaultdict(int)
    adjusted: dict[str, int] = defaultdict(int)
    total_due: dict[str, int] = defaultdict(int, {currency: 0})
    for segment in segments:
        total_due[segment.plan.currency] += segment.fee + segment.overage
        for cur, amount in segment.gmv.items():
            gmv[cur] += amount
        for cur, amount in segment.revenue_share.items():
            revenue_share[cur] += amount
            total_due[cur] += amount
    for adjustment, share in adjustments:
        adjusted[adjustment.currency] += share
        total_due[adjustment.currency] += share
    included = [s.included for s in segments]
    in_currency = [s for s in segments if s.plan.currency == currency]
    return Statement(
        airline=airline,
        month=month,
        currency=currency,
        from_=start,
        to=end,
        final=now >= closes,
        status="closed" if now >= closes else "open",
        closes_at=closes,
        generated_at=now,
        plans=[_segment_out(s) for s in segments],
        requests=sum(s.requests for s in segments),
        included_requests=None if None in included else sum(i for i in included if i is not None),
        overage_requests=sum(s.overage_requests for s in segments),
        fee=to_decimal_string(sum(s.fee for s in in_currency), currency),
        overage_amount=to_decimal_string(sum(s.overage for s in in_currency), currency),
        gmv=_amounts(gmv),
        revenue_share=_amounts(revenue_share),
        adjustments=[adjustment for adjustment, _share in adjustments],
        adjustments_revenue_share=_amounts(adjusted),
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
    """One row per line item: plan fee and overage per plan, revenue share per currency, each adjustment
    (its amount is the revenue share it adds or takes back), and total due per currency."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    head = {"airline": found.airline, "month": found.month, "final": "true" if found.final else "false"}
    for seg in found.plans:
        span = {"plan": seg.plan, "from": seg.from_.isoformat(), "to": seg.to.isoformat(), "currency": seg.currency}
        writer.writerow({**head, **span, "item": "plan_fee", "amount": seg.fee})
        included = "" if seg.included_requests is None else seg.included_requests
        usage = {"requests": seg.requests, "included_requests": included, "overage_requests": seg.overage_requests}
        writer.writerow({**head, **span, **usage, "item": "overage", "amount": seg.overage_amount})
    for cur, amount in found.revenue_share.items():
        basis = {"gmv": found.gmv.get(cur, ""), "currency": cur}
        writer.writerow({**head, **basis, "item": "revenue_share", "amount": amount})
    for adj in found.adjustments:
        writer.writerow(
            {
                **head,
                "item": "adjustment",
                "plan": adj.plan,
                "gmv": adj.gmv,
                "currency": adj.currency,
                "amount": adj.revenue_share,
                "original_month": adj.month,
                "reason": adj.reason,
                "order_id": adj.order_id,
            }
        )
    for cur, amount in found.total_due.items():
        writer.writerow({**head, "item": "total_due", "currency": cur, "amount": amount})
    return out.getvalue()
