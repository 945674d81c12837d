"""`usage.threshold`: an airline is told when its month's billable requests reach 80 % and 100 % of its plan's
monthly quota, each once per month, whichever process notices first.

The figure is `plans.plan_status`'s `used`, the one `/v1/plan` and the month's statement show (the hourly
usage rows), so the event, the plan answer and the bill agree.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from skycart import events
from skycart.airlines import repository as airlines
from skycart.billing import periods, plans
from skycart.platform.db import transaction, utcnow

THRESHOLDS = (80, 100)
_PAGE = 200


async def record_usage_thresholds(
    sessions: async_sessionmaker[AsyncSession], *, default_plan: str, now: datetime | None = None
) -> int:
    """Record each threshold an airline has reached this month and not yet been told of; how many."""
    now = now or utcnow()
    recorded, after = 0, None
    while True:
        async with transaction(sessions, write=False) as session:
            page = await airlines.list_airlines(session, after=after, limit=_PAGE)
        for airline in page:
            async with transaction(sessions) as session:
                status = await plans.plan_status(session, airline=airline, default_plan=default_plan, now=now)
                quota, used = status.quota.included, status.quota.used
                if not quota:
                    continue
                period = periods.label(status.period_start)
                for percent in THRESHOLDS:
                    if used * 100 < quota * percent:
                        break
                    data = {"percent": percent, "used": used, "quota": quota, "period": period}
                    once = f"usage.threshold:{period}:{percent}"
                    if await events.record_once(session, airline.tenant, once, "usage.threshold", data):
                        recorded += 1
        if len(page) < _PAGE:
            return recorded
        after = page[-1].code
