"""Usage and months for metering tests: usage goes in through the real database sink."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from sqlalchemy import delete, select, update

from skycart.airlines.models import Airline
from skycart.billing.models import AirlinePlan, Plan
from skycart.config import Settings
from skycart.metering.aggregate import BILLABLE, ERRORS, REQUESTS, ROW_WIDTH
from skycart.metering.sink import DatabaseSink
from skycart.orders.models import Order
from skycart.platform.db import create_engine, create_sessionmaker, transaction

MICROSECOND = timedelta(microseconds=1)


def record_usage(settings: Settings, airline: str, billable_at: dict[datetime, int], *, refused: int = 0) -> None:
    """Store `billable` requests in the minute of each moment, and `refused` (429, not billable) beside each."""
    batch = {}
    for moment, billable in billable_at.items():
        minute = int(moment.timestamp()) // 60
        served = [0] * ROW_WIDTH
        served[REQUESTS] = served[BILLABLE] = billable
        batch[(minute, airline, "/v1/products", "GET", "2xx")] = served
        if refused:
            limited = [0] * ROW_WIDTH
            limited[REQUESTS] = limited[ERRORS] = refused
            batch[(minute, airline, "/v1/products", "GET", "4xx")] = limited

    async def _write() -> None:
        engine = create_engine(settings)
        try:
            assert await DatabaseSink(create_sessionmaker(engine), "test").write(uuid.uuid4().hex, batch)
        finally:
            await engine.dispose()

    asyncio.run(_write())


def month_starts(now: datetime | None = None) -> tuple[datetime, datetime, datetime]:
    """The starts of the previous, the current and the next month (UTC)."""
    this = (now or datetime.now(UTC)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    previous = this.replace(year=this.year - 1, month=12) if this.month == 1 else this.replace(month=this.month - 1)
    following = this.replace(year=this.year + 1, month=1) if this.month == 12 else this.replace(month=this.month + 1)
    return previous, this, following


def label(month_start: datetime) -> str:
    return month_start.strftime("%Y-%m")


def half_up(value: Fraction) -> int:
    """Round a non-negative amount half up to a whole minor unit."""
    return int(value + Fraction(1, 2))


def share(start: datetime, end: datetime, month_start: datetime, month_end: datetime) -> Fraction:
    """The exact share of the month [start, end) covers, to the microsecond."""
    return Fraction((end - start) // MICROSECOND, (month_end - month_start) // MICROSECOND)


def amount(minor: int) -> str:
    """Minor units of a two-decimal currency as the API writes them."""
    return f"{minor // 100}.{minor % 100:02d}"


def closed_month(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The bounds of the month before last: closed whatever today's date, as the grace period is days."""
    previous, _, _ = month_starts(now)
    return month_starts(previous)[0], previous


def _in_database(settings: Settings, work) -> None:
    async def _run() -> None:
        engine = create_engine(settings)
        try:
            async with transaction(create_sessionmaker(engine)) as session:
                await work(session)
        finally:
            await engine.dispose()

    asyncio.run(_run())


def backdate(settings: Settings, code: str, created_at: datetime, plans: list[tuple[str, datetime]]) -> None:
    """Make an airline created through the API just now one that has existed since `created_at`, on these
    plans from these moments: a past that the API (rightly) lets nobody write."""

    async def _write(session) -> None:
        airline = (await session.execute(select(Airline).where(Airline.code == code))).scalar_one()
        airline.created_at = created_at
        await session.execute(delete(AirlinePlan).where(AirlinePlan.airline_id == airline.id))
        for plan_code, since in plans:
            plan = (await session.execute(select(Plan).where(Plan.code == plan_code))).scalar_one()
            session.add(AirlinePlan(airline_id=airline.id, plan_id=plan.id, effective_from=since, created_at=since))

    _in_database(settings, _write)


def move_orders(settings: Settings, created_at: dict[str, datetime]) -> None:
    """Date orders placed through the API just now as if placed at these moments."""

    async def _write(session) -> None:
        for order_id, moment in created_at.items():
            await session.execute(update(Order).where(Order.id == order_id).values(created_at=moment))

    _in_database(settings, _write)
