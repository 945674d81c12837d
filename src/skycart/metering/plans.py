"""Service packages and which one an airline is on, when. No HTTP, no commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.airlines.models import Airline
from skycart.airlines.service import get_airline
from skycart.errors import AlreadyExists, NotFound
from skycart.metering import repository
from skycart.metering.models import AirlinePlan, Plan
from skycart.metering.schemas import AirlinePlanOut, PlanAssign, PlanIn, PlanOut
from skycart.money import to_decimal_string, to_minor
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
    )


def month_bounds(moment: datetime) -> tuple[datetime, datetime]:
    start = moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


async def list_plans(session: AsyncSession) -> list[Plan]:
    return await repository.plans(session)


async def create_plan(session: AsyncSession, *, data: PlanIn) -> Plan:
    """Define a new package; codes are unique and plans are never edited in place (history stays true)."""
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
        monthly_fee_minor=to_minor(data.monthly_fee, data.currency),
        overage_per_1000_minor=to_minor(data.overage_per_1000, data.currency),
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


async def plan_segments(
    session: AsyncSession, *, airline: Airline, default_plan: str, start: datetime, end: datetime
) -> list[tuple[Plan, datetime, datetime]]:
    """The plans in force between start and end, each with the part of the span it covers."""
    history = [(ap.effective_from, plan) for ap, plan in await repository.plan_history(session, airline.id)]
    if not history or history[0][0] > airline.created_at:
        history.insert(0, (airline.created_at, await get_plan(session, default_plan)))
    segments = []
    for index, (since, plan) in enumerate(history):
        until = history[index + 1][0] if index + 1 < len(history) else end
        lo, hi = max(since, start), min(until, end)
        if lo < hi:
            segments.append((plan, lo, hi))
    return segments


async def current_plan(
    session: AsyncSession, *, airline: Airline, default_plan: str, at: datetime | None = None
) -> tuple[Plan, datetime]:
    """The plan in force now, and since when."""
    now = at or utcnow()
    history = [(ap.effective_from, plan) for ap, plan in await repository.plan_history(session, airline.id)]
    in_force = [(since, plan) for since, plan in history if since <= now]
    if in_force:
        since, plan = in_force[-1]
        return plan, since
    return await get_plan(session, default_plan), airline.created_at


async def assign_plan(session: AsyncSession, *, airline_code: str, data: PlanAssign) -> AirlinePlanOut:
    """Put an airline on a plan from a moment on (default now); earlier plans stay in the history."""
    airline = await get_airline(session, code=airline_code)
    plan = await get_plan(session, data.plan)
    now = utcnow()
    effective = data.effective_from or now
    await repository.add(
        session, AirlinePlan(airline_id=airline.id, plan_id=plan.id, effective_from=effective, created_at=now)
    )
    return AirlinePlanOut(airline=airline.code, plan=plan_out(plan), effective_from=effective)


async def history(session: AsyncSession, *, airline_code: str, default_plan: str) -> list[AirlinePlanOut]:
    airline = await get_airline(session, code=airline_code)
    rows = [
        AirlinePlanOut(airline=airline.code, plan=plan_out(plan), effective_from=ap.effective_from)
        for ap, plan in await repository.plan_history(session, airline.id)
    ]
    if not rows or rows[0].effective_from > airline.created_at:
        default = await get_plan(session, default_plan)
        rows.insert(0, AirlinePlanOut(airline=airline.code, plan=plan_out(default), effective_from=airline.created_at))
    return rows


def prorate(amount_minor: int, part_seconds: float, whole_seconds: float) -> int:
    """A share of a monthly amount, rounded half up to a minor unit."""
    share = Decimal(amount_minor) * Decimal(part_seconds) / Decimal(whole_seconds)
    return int(share.quantize(Decimal(1), rounding="ROUND_HALF_UP"))
