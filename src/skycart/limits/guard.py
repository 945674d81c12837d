"""The per-request check of an airline's service package: features, rate limit, quota."""

from __future__ import annotations

import time
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from skycart.airlines import repository as airlines
from skycart.billing.features import FEATURE_GATES
from skycart.billing.plans import PlanTerms, current_plan, terms
from skycart.errors import DomainError, FeatureNotInPlan, NotFound, QuotaExceeded, RateLimited
from skycart.limits.limiter import Limiter
from skycart.platform.db import transaction
from skycart.platform.scope import BILLABLE, RATELIMIT
from skycart.platform.singleflight import SingleFlight
from skycart.platform.tenancy import Tenant


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
            airline = await airlines.get_by_id(session, tenant.id)
            if airline is None:
                raise NotFound("airline not found")
            plan, _since = await current_plan(session, airline=airline, default_plan=self.default_plan)
        found = terms(plan)
        self._cache[tenant.code] = (found, time.monotonic() + self.ttl)
        return found

    def forget(self, code: str) -> None:
        self._cache.pop(code, None)


class AirlineGuard:
    def __init__(self, plans: PlanBook, limiter: Limiter | None) -> None:
        self.plans = plans
        self.limiter = limiter

    async def __call__(self, request: Request, tenant: Tenant) -> None:
        route = request.scope.get("route")
        plan = await self.plans.terms_for(tenant)
        await self.admit(request.scope, tenant, plan, method=request.method, template=getattr(route, "path", ""))

    def admit_now(self, scope: dict[str, Any], tenant: Tenant, plan: PlanTerms, *, method: str, template: str) -> bool:
        """`admit` without waiting: True when this process could let the request through on its own;
        False when the caller must await `admit` (no leased capacity here, a refusal, a feature gate)."""
        if (method, template) in FEATURE_GATES:
            return False
        if self.limiter is not None:
            headers = self.limiter.take(tenant.code, plan)
            if headers is None:
                return False
            scope[RATELIMIT] = headers
        scope[BILLABLE] = True
        return True

    async def admit(
        self, scope: dict[str, Any], tenant: Tenant, plan: PlanTerms, *, method: str, template: str
    ) -> None:
        """Raise the refusal if the package does not let this request through; else mark it billable."""
        if self.admit_now(scope, tenant, plan, method=method, template=template):
            return
        feature = FEATURE_GATES.get((method, template))
        if feature is not None and feature not in plan.features:
            raise FeatureNotInPlan(f"the {plan.code} plan does not include {feature}", feature=feature, plan=plan.code)
        if self.limiter is None:  # limits switched off
            scope[BILLABLE] = True
            return
        decision = await self.limiter.check(tenant, plan)
        scope[RATELIMIT] = decision.headers
        if not decision.allowed:
            error: type[DomainError] = QuotaExceeded if decision.code == "quota_exceeded" else RateLimited
            raise error(
                f"{tenant.code}: {error.title.lower()} on the {plan.code} plan; retry after {decision.retry_after} s",
                headers={"Retry-After": str(decision.retry_after)},
            )
        scope[BILLABLE] = True
