"""Billing's entry points for routes and pages: which plan terms an airline is on now (cached in process),
and the plan changes that must reach that cache. No HTTP, no commit.

The rules themselves live beside this module: `plans` (the catalogue and each airline's history),
`statements` and `closing` (what is owed per month), `usage` and `sales` (what was used and sold).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from skycart import events
from skycart.airlines import service as airlines
from skycart.billing import plans
from skycart.billing.plans import PlanTerms, current_plan, terms
from skycart.billing.schemas import AirlinePlanOut, PlanAssign
from skycart.platform.cache import REFRESH_AT
from skycart.platform.db import transaction
from skycart.platform.singleflight import SingleFlight
from skycart.platform.tenancy import Tenant

if TYPE_CHECKING:
    from skycart.platform.runtime import Runtime

log = logging.getLogger("skycart.billing")


@dataclass(slots=True)
class _Held:
    terms: PlanTerms
    expires: float  # monotonic: not served from then on
    refresh_at: float  # monotonic: the first read from then on loads the next terms in the background
    refreshing: bool = False


class PlanBook:
    """Each airline's plan terms, cached in process for `ttl` seconds.

    Terms past half their life are loaded again in the background while they are still served, so a busy
    airline's requests never all wait on one load when its terms expire (at the default ttl of 1 s that
    wait was once a second, and made the warm menu's p99 3.5 times its p50). No terms are served more
    than `ttl` after they were loaded; a plan change is seen at once in the process that made it.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], default_plan: str, ttl: float) -> None:
        self.sessions = sessions
        self.default_plan = default_plan
        self.ttl = ttl
        self._cache: dict[str, _Held] = {}
        # Bumped by `forget`: a load that began before it does not store what it read.
        self._generation: dict[str, int] = {}
        self._loading: SingleFlight[PlanTerms] = SingleFlight()
        self._refreshing: set[asyncio.Task[None]] = set()

    async def terms_for(self, tenant: Tenant) -> PlanTerms:
        found = self.cached(tenant)
        if found is not None:
            return found
        return await self._loading.do(tenant.code, lambda: self._load(tenant))

    def cached(self, tenant: Tenant) -> PlanTerms | None:
        """The airline's terms if this process holds fresh ones, without waiting for anything."""
        held = self._cache.get(tenant.code)
        if held is None:
            return None
        now = time.monotonic()
        if now >= held.expires:
            return None
        if now >= held.refresh_at and not held.refreshing:
            held.refreshing = True
            self._refresh_soon(tenant)
        return held.terms

    def _refresh_soon(self, tenant: Tenant) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # read outside the event loop: the terms simply expire
            return
        task = loop.create_task(self._refresh(tenant))
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)

    async def _refresh(self, tenant: Tenant) -> None:
        try:
            await self._loading.do(tenant.code, lambda: self._load(tenant))
        except Exception as exc:  # the terms expire as they would have; the next request loads them
            log.warning("plan_terms_refresh_failed", extra={"airline": tenant.code, "error": type(exc).__name__})

    async def _load(self, tenant: Tenant) -> PlanTerms:
        generation = self._generation.get(tenant.code, 0)
        loaded = time.monotonic()
        async with transaction(self.sessions, write=False) as session:
            airline = await airlines.airline_for(session, tenant)
            plan, _since = await current_plan(session, airline=airline, default_plan=self.default_plan)
        found = terms(plan)
        if self._generation.get(tenant.code, 0) == generation:
            self._cache[tenant.code] = _Held(found, loaded + self.ttl, loaded + self.ttl * REFRESH_AT)
        return found

    def forget(self, code: str) -> None:
        self._generation[code] = self._generation.get(code, 0) + 1
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
    await _record_change(session, assigned)
    _forget_on_commit(session, book, airline_code)
    return assigned


async def cancel_plan_change(
    session: AsyncSession, book: PlanBook, *, airline_code: str, change_id: str
) -> AirlinePlanOut:
    """`plans.cancel_change`, and this process's cached terms of the airline forgotten when it commits."""
    cancelled = await plans.cancel_change(session, airline_code=airline_code, change_id=change_id)
    await _record_change(session, cancelled)
    _forget_on_commit(session, book, airline_code)
    return cancelled


async def _record_change(session: AsyncSession, change: AirlinePlanOut) -> None:
    """`plan.changed`: a change made, scheduled or withdrawn (then with `cancelled_at`), for the airline's systems."""
    airline = await airlines.get_airline(session, code=change.airline)
    await events.record(session, airline.tenant, "plan.changed", change.model_dump(mode="json"))
