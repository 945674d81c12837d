"""The per-request check of an airline's service package: features, rate limit, quota."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from fastapi import Request

from skycart.billing.features import FEATURE_GATES
from skycart.billing.plans import PlanTerms
from skycart.billing.service import PlanBook
from skycart.errors import DomainError, FeatureNotInPlan, QuotaExceeded, RateLimited
from skycart.limits.limiter import Limiter
from skycart.platform.scope import BILLABLE, RATELIMIT, REFUSAL
from skycart.platform.tenancy import Tenant


class AirlineGuard:
    def __init__(self, plans: PlanBook, limiter: Limiter | None) -> None:
        self.plans = plans
        self.limiter = limiter

    async def __call__(self, request: Request, tenant: Tenant) -> None:
        refused = request.scope.pop(REFUSAL, None)
        if refused is not None:  # decided for this very request already (the warm-menu fast path)
            raise refused
        route = request.scope.get("route")
        plan = await self.plans.terms_for(tenant)
        await self.admit(request.scope, tenant, plan, method=request.method, template=getattr(route, "path", ""))

    def terms_now(self, tenant: Tenant) -> PlanTerms | None:
        """The airline's plan terms if this process holds fresh ones, without waiting (`plans.cached`)."""
        return self.plans.cached(tenant)

    def admit_now(
        self, scope: MutableMapping[str, Any], tenant: Tenant, plan: PlanTerms, *, method: str, template: str
    ) -> bool:
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
        self, scope: MutableMapping[str, Any], tenant: Tenant, plan: PlanTerms, *, method: str, template: str
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
