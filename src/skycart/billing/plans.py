"""Service packages and which one an airline is on, when. No HTTP, no commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.airlines.models import Airline
from skycart.airlines.service import get_airline
from skycart.billing import periods, repository
from skycart.billing.features import FEATURES, unknown_features
from skycart.billing.models import AirlinePlan, Plan
from skycart.billing.periods import hour_floor
from skycart.billing.schemas import AirlinePlanOut, PlanAssign, PlanIn, PlanOut, PlanStatus, QuotaOut
from skycart.errors import (
    AlreadyExists,
    NotFound,
    PeriodClosed,
    PlanChangeInEffect,
    PlanInUse,
    PlanRetired,
    ValidationFailed,
)
from skycart.money import MoneyError, to_decimal_string, to_minor
from skycart.platform.db import utcnow


@dataclass(frozen=True, slots=True)
class PlanTerms:
    """What the request path needs to know of an airline's plan."""

    code: str
    quota: int | None
    overage: bool
    rate: float
    burst: int
    features: frozenset[str]
    # Derived once per plan, read on every request.
    hard_quota: int | None = None
    limit_header: tuple[bytes, bytes] = (b"", b"")

    def __post_init__(self) -> None:
        object.__setattr__(self, "hard_quota", None if self.overage else self.quota)
        object.__setattr__(self, "limit_header", (b"ratelimit-limit", b"%d" % self.burst))


def terms(plan: Plan) -> PlanTerms:
    return PlanTerms(
        code=plan.code,
        quota=plan.monthly_request_quota,
        overage=plan.overage,
        rate=plan.rate_limit_milli_rps / 1000,
        burst=plan.burst,
        features=frozenset(plan.features),
    )


def plan_out(plan: Plan) -> PlanOut:
    return PlanOut(
        code=plan.code,
        name=plan.name,
        monthly_request_quota=plan.monthly_request_quota,
        overage=plan.overage,
        rate_limit_per_second=plan.rate_limit_milli_rps / 1000,
        burst=plan.burst,
        features=plan.features,
        monthly_fee=to_decimal_string(plan.monthly_fee_minor, plan.currency),
        overage_per_1000=to_decimal_string(plan.overage_per_1000_minor, plan.currency),
        revenue_share_bps=plan.revenue_share_bps,
        currency=plan.currency,
        retired_at=plan.retired_at,
    )


async def list_plans(session: AsyncSession, *, include_retired: bool = False) -> list[Plan]:
    return [plan for plan in await repository.plans(session) if include_retired or plan.retired_at is None]


def _minor(amount: str, currency: str, field: str) -> int:
    try:
        return to_minor(amount, currency)
    except MoneyError as exc:
        raise ValidationFailed(f"{field}: {exc}") from exc


async def create_plan(session: AsyncSession, *, data: PlanIn) -> Plan:
    """Define a new package; codes are unique and plans are never edited in place (history stays true)."""
    unknown = unknown_features(data.features)
    if unknown:
        raise ValidationFailed(
            f"features: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a feature; "
            f"plans may include {', '.join(sorted(FEATURES))} (GET /admin/features)"
        )
    monthly_fee = _minor(data.monthly_fee, data.currency, "monthly_fee")
    overage_per_1000 = _minor(data.overage_per_1000, data.currency, "overage_per_1000")
    if await repository.plan_by_code(session, data.code):
        raise AlreadyExists(f"plan {data.code} already exists")
    plan = Plan(
        code=data.code,
        name=data.name,
        monthly_request_quota=data.monthly_request_quota,
        overage=data.overage,
        rate_limit_milli_rps=int(data.rate_limit_per_second * 1000),
        burst=data.burst,
        features=sorted(set(data.features)),
        currency=data.currency,
        monthly_fee_minor=monthly_fee,
        overage_per_1000_minor=overage_per_1000,
        revenue_share_bps=data.revenue_share_bps,
        created_at=utcnow(),
    )
    try:
        await repository.add(session, plan)
    except IntegrityError as exc:
        raise AlreadyExists(f"plan {data.code} already exists") from exc
    return plan


async def get_plan(session: AsyncSession, code: str) -> Plan:
    plan = await repository.plan_by_code(session, code)
    if plan is None:
        raise NotFound(f"plan {code} not found")
    return plan


Timeline = list[tuple[datetime, Plan]]


async def timeline(session: AsyncSession, *, airline: Airline, default_plan: str) -> Timeline:
    """The airline's plans from the hour each took effect, oldest first; the default plan from the hour
    the airline was created, unless a change took effect then. Cancelled changes are left out."""
    born = hour_floor(airline.created_at)
    changes = [
        (max(hour_floor(change.effective_from), born), plan)
        for change, plan in await repository.plan_history(session, airline.tenant)
        if change.cancelled_at is None
    ]
    if not changes or changes[0][0] > born:
        changes.insert(0, (born, await get_plan(session, default_plan)))
    return changes


def segments_of(history: Timeline, start: datetime, end: datetime) -> list[tuple[Plan, datetime, datetime]]:
    """The plans in force between start and end, each with the part of the span it covers."""
    segments = []
    for index, (since, plan) in enumerate(history):
        until = history[index + 1][0] if index + 1 < len(history) else end
        lo, hi = max(since, start), min(until, end)
        if lo < hi:
            segments.append((plan, lo, hi))
    return segments


def plan_at(history: Timeline, moment: datetime) -> tuple[Plan, datetime] | None:
    """The plan in force at a moment and since when; None before the airline existed."""
    found = None
    for since, plan in history:
        if since > moment:
            break
        found = (plan, since)
    return found


async def current_plan(
    session: AsyncSession, *, airline: Airline, default_plan: str, at: datetime | None = None
) -> tuple[Plan, datetime]:
    """The plan in force now, and since when."""
    history = await timeline(session, airline=airline, default_plan=default_plan)
    return plan_at(history, at or utcnow()) or (history[0][1], history[0][0])


async def assign_plan(
    session: AsyncSession, *, airline_code: str, data: PlanAssign, grace_hours: int, now: datetime | None = None
) -> AirlinePlanOut:
    """Put an airline on a plan from the hour of a moment on (default now), or schedule it for later.

    The history only grows: a change may not reach into a closed month or before the airline existed.
    """
    airline = await get_airline(session, code=airline_code)
    plan = await get_plan(session, data.plan)
    if plan.retired_at is not None:
        raise PlanRetired(f"plan {plan.code} is retired and can no longer be assigned")
    now = now or utcnow()
    effective = hour_floor(data.effective_from or now)
    born = hour_floor(airline.created_at)
    if effective < born:
        raise ValidationFailed(
            f"effective_from: {airline.code} exists since {born.isoformat()}; a plan cannot start before that"
        )
    first_open = periods.first_open_instant(now, grace_hours)
    if effective < first_open:
        closed = periods.label(effective)
        raise PeriodClosed(
            f"effective_from: {closed} is closed (since {periods.closes_at(effective, grace_hours).isoformat()}); "
            f"plan changes may start from {first_open.isoformat()} on",
            month=closed,
        )
    change = AirlinePlan(airline_id=airline.id, plan_id=plan.id, effective_from=effective, created_at=now)
    await repository.add(session, change)
    return _change_out(airline, change, plan)


async def cancel_change(
    session: AsyncSession, *, airline_code: str, change_id: str, now: datetime | None = None
) -> AirlinePlanOut:
    """Withdraw a scheduled change that has not taken effect; the row stays in the history, marked."""
    airline = await get_airline(session, code=airline_code)
    found = await repository.plan_change(session, airline.tenant, change_id)
    if found is None:
        raise NotFound(f"plan change {change_id} not found")
    change, plan = found
    now = now or utcnow()
    if change.cancelled_at is None:
        if change.effective_from <= now:
            raise PlanChangeInEffect(
                f"plan change {change_id} took effect at {change.effective_from.isoformat()}; "
                "put the airline on another plan instead"
            )
        change.cancelled_at = now
        await session.flush()
    return _change_out(airline, change, plan)


async def retire_plan(session: AsyncSession, *, code: str, default_plan: str, now: datetime | None = None) -> Plan:
    """Stop selling a plan. Refused while it is the default or any airline is on it or scheduled to be."""
    plan = await get_plan(session, code)
    if plan.retired_at is not None:
        return plan
    if plan.code == default_plan:
        raise PlanInUse(f"plan {code} is the default plan new airlines get", plan=code)
    now = now or utcnow()
    current: dict[str, str] = {}
    scheduled: set[str] = set()
    for airline_code, plan_id, effective_from in await repository.live_plan_changes_of_all_airlines(session):
        if effective_from <= now:
            current[airline_code] = plan_id
        elif plan_id == plan.id:
            scheduled.add(airline_code)
    users = sorted(scheduled | {airline for airline, plan_id in current.items() if plan_id == plan.id})
    if users:
        raise PlanInUse(f"plan {code} is in use by {', '.join(users[:20])}", plan=code, airlines=users)
    plan.retired_at = now
    await session.flush()
    return plan


async def plan_status(
    session: AsyncSession, *, airline: Airline, default_plan: str, now: datetime | None = None
) -> PlanStatus:
    """The plan in force, since when, and this month's billable requests against its quota.

    `used` is the month's hourly usage rows: the same figure the month's statement splits over its plans.
    """
    now = now or utcnow()
    plan, since = await current_plan(session, airline=airline, default_plan=default_plan, at=now)
    start, end = periods.month_bounds(now)
    used = await repository.billable_requests(session, airline.tenant, start, end)
    quota = plan.monthly_request_quota
    return PlanStatus(
        airline=airline.code,
        plan=plan_out(plan),
        effective_from=since,
        period_start=start,
        period_end=end,
        quota=QuotaOut(included=quota, used=used, remaining=None if quota is None else max(quota - used, 0)),
    )


def _change_out(airline: Airline, change: AirlinePlan | None, plan: Plan) -> AirlinePlanOut:
    return AirlinePlanOut(
        id=None if change is None else change.id,
        airline=airline.code,
        plan=plan_out(plan),
        effective_from=hour_floor(airline.created_at) if change is None else change.effective_from,
        created_at=airline.created_at if change is None else change.created_at,
        cancelled_at=None if change is None else change.cancelled_at,
    )


async def history(session: AsyncSession, *, airline_code: str, default_plan: str) -> list[AirlinePlanOut]:
    """The plan the airline started on, then every change ever made for it, cancelled ones included.

    A change from the hour the airline was created replaces the plan it started on from the start.
    """
    airline = await get_airline(session, code=airline_code)
    started = _change_out(airline, None, await get_plan(session, default_plan))
    return [started] + [
        _change_out(airline, change, plan) for change, plan in await repository.plan_history(session, airline.tenant)
    ]


def prorate(amount_minor: int, part_seconds: float, whole_seconds: float) -> int:
    """A share of a monthly amount, rounded half up to a minor unit."""
    share = Decimal(amount_minor) * Decimal(part_seconds) / Decimal(whole_seconds)
    return int(share.quantize(Decimal(1), rounding="ROUND_HALF_UP"))
