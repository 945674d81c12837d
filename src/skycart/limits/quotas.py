"""Hard quotas counted exactly in the database, so no loss of Redis can let more than the quota through.

A process takes quota units in small batches (one at a time near the end of the quota) by updating
the airline's counter row for the month under its row lock, as stock is taken: the counter never
passes the quota, whatever happens to Redis (flushed, restarted empty, failed over) or to other
processes. Units a process took but did not spend are given back when its lease ends; a process
that dies keeps its few units, so a crash can only under-admit.

The counter starts, the first time a month needs it, from the month's billable usage already stored.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from skycart.billing import repository as billing
from skycart.limits import repository
from skycart.limits.models import QuotaCounter
from skycart.platform.db import transaction, utcnow
from skycart.platform.tenancy import Tenant


class QuotaBook:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.calls = 0

    async def exchange(
        self, tenant: Tenant, period: str, start: datetime, end: datetime, *, want: int, returned: int, quota: int
    ) -> tuple[int, int]:
        """Give back `returned` unspent units and take up to `want` more: (units taken, units out this month)."""
        self.calls += 1
        for _attempt in range(3):
            try:
                async with transaction(self.sessions) as session:
                    counter = await repository.quota_counter(session, tenant, period)
                    if counter is None:
                        used = await billing.billable_requests(session, tenant, start, end)
                        counter = QuotaCounter(airline_id=tenant.id, period=period, granted=used, updated_at=utcnow())
                        await repository.add(session, counter)
                    out = max(0, counter.granted - returned)
                    taken = max(0, min(want, quota - out))
                    counter.granted = out + taken
                    counter.updated_at = utcnow()
                    return taken, counter.granted
            except IntegrityError:  # another process started the month's counter at the same moment
                continue
        raise RuntimeError(f"the quota counter of {tenant.code} for {period} could not be started")
