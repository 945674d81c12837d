"""Closing billing periods: every airline's months that have closed get their final statement stored.

Run by `skycart billing close`, by every process's housekeeping, and at the first read of a closed
month; storing is idempotent (one row per airline and month), so running it again, or in several
processes at once, stores nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from skycart.airlines import repository as airlines
from skycart.airlines.models import Airline
from skycart.billing import periods, repository
from skycart.billing.statements import close_month
from skycart.platform.db import transaction, utcnow

_PAGE = 200


@dataclass
class CloseReport:
    airlines: int = 0
    stored: int = 0
    already: int = 0


def due_months(airline: Airline, *, now: datetime, grace_hours: int) -> list[datetime]:
    """The starts of the closed months since the airline was created, oldest first."""
    months = []
    start, _ = periods.month_bounds(airline.created_at)
    while periods.is_closed(start, now=now, grace_hours=grace_hours):
        months.append(start)
        start = periods.month_bounds(start + timedelta(days=32))[0]
    return months


async def close_due(
    sessions: async_sessionmaker[AsyncSession],
    *,
    default_plan: str,
    grace_hours: int,
    now: datetime | None = None,
    on_airline: Callable[[str, int], None] | None = None,
) -> CloseReport:
    """Store the final statement of every closed month that has none, one transaction per airline."""
    now = now or utcnow()
    report = CloseReport()
    after = None
    while True:
        async with transaction(sessions, write=False) as session:
            page = await airlines.list_airlines(session, after=after, limit=_PAGE)
        for airline in page:
            stored = 0
            async with transaction(sessions) as session:
                done = await repository.closed_months(session, airline.tenant)
                for start in due_months(airline, now=now, grace_hours=grace_hours):
                    if periods.label(start) in done:
                        report.already += 1
                        continue
                    _row, created = await close_month(
                        session,
                        airline=airline,
                        start=start,
                        default_plan=default_plan,
                        grace_hours=grace_hours,
                        now=now,
                    )
                    stored += created
                    report.already += not created
            report.airlines += 1
            report.stored += stored
            if on_airline is not None:
                on_airline(airline.code, stored)
        if len(page) < _PAGE:
            return report
        after = page[-1].code
