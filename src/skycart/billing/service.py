"""Billing's entry points for routes and pages: which plan terms an airline is on now (cached in process),
and the plan changes that must reach that cache. No HTTP, no commit.

The rules themselves live beside this module: `plans` (the catalogue and each airline's history),
`statements` and `closing` (what is owed per month), `usage` and `sales` (what was used and sold).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from skycart.airlines import service as airlines
from skycart.billing import plans
from skycart.billing.plans import PlanTerms, current_plan, terms
from skycart.billing.schemas import AirlinePlanOut, PlanAssign
from skycart.platform.db import transaction
from skycart.platform.singleflight import SingleFlight
from skycart.platform.tenancy import Tenant

if TYPE_CHECKING:
    from skycart.platform.runtime import Runtime


class PlanBook:
    """Each airline's plan terms, cached in process for a few seconds."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], default_plan: str, ttl: float) -> None:
        self.sessions = sessions
        self.default_plan = default_plan
        self.ttl = ttl
        self._cache: dict[str, tuple[PlanTerms, float]] = {}
        self._loading: SingleFlight[PlanTerms] = SingleFlight()

    async def terms_for(self, tenant: Tenant) -> PlanTerms:
        found = self.cached(tenant)
        if found is not None:
            return found
        return await self._loading.do(tenant.code, lambda: self._load(tenant))

    def cached(self, tenant: Tenant) -> PlanTerms | None:
        """The airline's terms if this process holds fresh ones, without waiting for anything."""
        cached = self._cache.get(tenant.code)
        return cached[0] if cached is not None and cached[1] > time.monotonic() else None

    async def _load(self, tenant: Tenant) -> PlanTerms:
        async with transaction(self.sessions, write=False) as session:
            airline = await airlines.airline_for(session, tenant)
            plan, _since = await current_plan(session, airline=airline, default_plan=self.default_plan)
        found = terms(plan)
        self._cache[tenant.code] = (found, time.monotonic() + self.ttl)
        return found

    def forget(self, code: str) -> None:
        self._cache.pop(code, None)


def plan_book(runtime: Runtime) -> PlanBook:
    """The running app's plan book (made at start-up)."""
    book: PlanBook = runtime.plan_book
    return book


async def plan_terms(runtime: Runtime, tenant: Tenant) -> PlanTerms:
    """The terms of the plan the airline is on now, as the request path sees them."""
    return await plan_book(runtime).terms_for(tenant)


def _forget_on_commit(session: AsyncSession, book: PlanBook, code: str) -> None:
    """Drop the airline's cached terms once this transaction commits, so the next request reads the change
    (dropping them before the commit would let a request cache the old terms again meanwhile)."""
    event.listen(session.sync_session, "after_commit", lambda _session: book.forget(code), once=True)


async def assign_plan(
    session: AsyncSession, book: PlanBook, *, airline_code: str, data: PlanAssign, grace_hours: int
) -> AirlinePlanOut:
    """`plans.assign_plan`, and this process's cached terms of the airline forgotten when it commits."""
    assigned = await plans.assign_plan(session, airline_code=airline_code, data=data, grace_hours=grace_hours)
    _forget_on_commit(session, book, airline_code)
    return assigned


async def cancel_plan_change(
    session: AsyncSession, book: PlanBook, *, airline_code: str, change_id: str
) -> AirlinePlanOut:
    """`plans.cancel_change`, and this process's cached terms of the airline forgotten when it commits."""
    cancelled = await plans.cancel_change(session, airline_code=airline_code, change_id=change_id)
    _forget_on_commit(session, book, airline_code)
    return cancelled
