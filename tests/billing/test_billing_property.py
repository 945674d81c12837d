"""One truth at plan bounds, as a property: plan changes at arbitrary instants (some scheduled, some
cancelled) and requests around them, on the real database. For every month, the statement's requests
equal the sum of its plans' requests and the month's usage rows, `/v1/plan`'s `used` equals the
current month's, each plan segment bills exactly the requests made while it was in force, and no
request is counted twice or dropped."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from skycart.airlines.models import Airline
from skycart.airlines.schemas import AirlineCreate
from skycart.airlines.service import create_airline
from skycart.billing import periods, plans, repository, statements
from skycart.billing.schemas import PlanAssign
from skycart.config import Settings
from skycart.metering.aggregate import BILLABLE, REQUESTS, ROW_WIDTH
from skycart.metering.models import UsageHour
from skycart.metering.sink import DatabaseSink
from skycart.platform.db import create_engine, create_sessionmaker, transaction
from skycart.platform.migrate import upgrade
from tests.conftest import next_code

# February is still open on 2 March (72 h of grace); March is the current month.
NOW = datetime(2027, 3, 2, 12, 0, tzinfo=UTC)
FEBRUARY = datetime(2027, 2, 1, tzinfo=UTC)
GRACE = 72
PLANS = ("basic", "standard", "premium")
SECONDS = st.integers(min_value=0, max_value=int((NOW - FEBRUARY).total_seconds()) - 1)

changes = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=int((NOW + timedelta(days=20) - FEBRUARY).total_seconds())),
        st.sampled_from(PLANS),
        st.booleans(),  # cancel it, if it is still scheduled
    ),
    max_size=6,
)
requests = st.lists(st.tuples(SECONDS, st.integers(min_value=1, max_value=50)), max_size=12)


async def _example(database_url: str, created_s: int, made: list, sent: list) -> None:
    config = Settings(database_url=database_url)
    engine = create_engine(config)
    sessions = create_sessionmaker(engine)
    code = next_code()
    created = FEBRUARY + timedelta(seconds=created_s)
    try:
        async with transaction(sessions) as session:
            airline = await create_airline(
                session, data=AirlineCreate(code=code, name="Property Air", currencies=["EUR"])
            )
            airline.created_at = created
            expected: list[tuple[datetime, int, str]] = [(periods.hour_floor(created), -1, "standard")]
            for order, (offset, plan, cancel) in enumerate(made):
                effective = max(FEBRUARY + timedelta(seconds=offset), created)
                change = await plans.assign_plan(
                    session,
                    airline_code=code,
                    data=PlanAssign(plan=plan, effective_from=effective),
                    grace_hours=GRACE,
                    now=NOW + timedelta(microseconds=order),
                )
                if cancel and effective > NOW:
                    await plans.cancel_change(session, airline_code=code, change_id=change.id or "", now=NOW)
                else:
                    expected.append((periods.hour_floor(effective), order, plan))
        batch = {}
        counted: list[tuple[datetime, int]] = []
        for offset, count in sent:
            moment = max(FEBRUARY + timedelta(seconds=offset), periods.hour_floor(created))
            counted.append((moment, count))
            row = batch.setdefault((int(moment.timestamp()) // 60, code, "/v1/products", "GET", "2xx"), [0] * ROW_WIDTH)
            row[REQUESTS] += count
            row[BILLABLE] += count
        if batch:
            assert await DatabaseSink(sessions, "property").write(uuid.uuid4().hex, batch)

        def plan_in_force(moment: datetime) -> str:
            return max((since, order, plan) for since, order, plan in expected if since <= moment)[2]

        total = 0
        async with transaction(sessions) as session:
            airline = (await session.execute(select(Airline).where(Airline.code == code))).scalar_one()
            for month in (FEBRUARY, datetime(2027, 3, 1, tzinfo=UTC)):
                start, end = periods.month_bounds(month)
                found = await statements.statement(
                    session,
                    airline_code=code,
                    month=periods.label(month),
                    default_plan="standard",
                    grace_hours=GRACE,
                    now=NOW,
                )
                rows = await repository.billable_in(session, UsageHour, airline.tenant, start, end)
                assert found.requests == sum(p.requests for p in found.plans) == rows
                covered = [(p.from_, p.to) for p in found.plans]
                begins = max(start, periods.hour_floor(created))
                if begins < end:
                    assert covered[0][0] == begins and covered[-1][1] == end, "the plans cover the month"
                    assert all(a[1] == b[0] for a, b in zip(covered, covered[1:], strict=False)), "no gap, no overlap"
                for segment in found.plans:
                    assert segment.requests == sum(c for m, c in counted if segment.from_ <= m < segment.to)
                    assert plan_in_force(segment.from_) == segment.plan
                    assert all(plan_in_force(h) == segment.plan for h in _hours(segment.from_, segment.to))
                total += found.requests
            status = await plans.plan_status(session, airline=airline, default_plan="standard", now=NOW)
            assert status.quota.used == found.requests, "/v1/plan counts what the month's statement counts"
            assert status.plan.code == plan_in_force(NOW)
        assert total == sum(count for _m, count in counted), "nothing dropped, nothing twice"
    finally:
        await engine.dispose()


def _hours(start: datetime, end: datetime) -> list[datetime]:
    out, hour = [], start
    while hour < end and len(out) < 24 * 40:
        out.append(hour)
        hour += timedelta(hours=1)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(created_s=SECONDS, made=changes, sent=requests)
def test_requests_land_in_exactly_one_plan_segment_of_one_month(backend: str, created_s: int, made, sent) -> None:
    _migrated(backend)
    asyncio.run(_example(backend, created_s, made, sent))


_MIGRATED: set[str] = set()


def _migrated(url: str) -> None:
    if url not in _MIGRATED:
        upgrade(Settings(database_url=url))
        _MIGRATED.add(url)
