"""Rate limits and hard quotas, decided locally between batched leases.

Each process leases about `lease_seconds` worth of an airline's rate (one token at a time
for slow limits, and one quota unit at a time when a hard quota is nearly used up) and
spends it without a network call.

- The rate lives in Redis and is approximate by design: globally it holds within
  burst + rate x elapsed + processes x lease. When Redis fails, requests are let through
  (fail-open), counted and logged; when it restarts empty, every bucket starts full again, so
  across a restart at most one more burst per airline gets through.
- A hard quota is exact: its units come from the database (`quotas.QuotaBook`), so it is never
  exceeded, whatever happens to Redis; while the database is away such requests are refused
  (503), never let through. Without a QuotaBook (the lease arithmetic's own tests) the lease
  store counts the quota.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from skycart.billing.periods import month_bounds
from skycart.billing.plans import PlanTerms
from skycart.limits.leases import Grant, LeaseStore, QuotaUnknown
from skycart.limits.quotas import QuotaBook
from skycart.platform.db import utcnow
from skycart.platform.singleflight import SingleFlight
from skycart.platform.tenancy import Tenant

log = logging.getLogger("skycart.limits")
QuotaStart = Callable[[str, datetime, datetime], Awaitable[int]]


@dataclass(slots=True)
class Lease:
    period: str
    tokens: int = 0
    quota: int = 0
    bucket_left: float = 0.0
    quota_used: int = -1
    expires: float = 0.0
    granted: int = 0
    tenant: Tenant | None = None  # whose units these are, when they came from the database
    left: int = field(init=False)  # whole tokens the shared bucket kept at leasing time

    def __post_init__(self) -> None:
        self.left = max(0, int(self.bucket_left))


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    headers: tuple[tuple[bytes, bytes], ...]
    code: str | None = None
    retry_after: int = 0


class Limiter:
    def __init__(
        self,
        store: LeaseStore,
        quota_start: QuotaStart,
        *,
        lease_seconds: float = 0.05,
        lease_ttl: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
        quotas: QuotaBook | None = None,
    ) -> None:
        self.store = store
        self.quotas = quotas
        self.quota_start = quota_start
        self.lease_seconds = lease_seconds
        self.lease_ttl = lease_ttl
        self.leases: dict[str, Lease] = {}
        self._leasing: SingleFlight[Lease] = SingleFlight()
        self.fail_open = 0
        self._last_fail_log = 0.0
        self.clock = clock
        self._period = ("", clock(), clock())  # (label, start, end) of the quota period, renewed when it ends

    def _current_period(self) -> tuple[str, datetime, datetime]:
        label, start, end = self._period
        now = self.clock()
        if not start <= now < end:
            start, end = month_bounds(now)
            label = start.strftime("%Y-%m")
            self._period = (label, start, end)
        return label, start, end

    def take(self, airline: str, plan: PlanTerms) -> tuple[tuple[bytes, bytes], ...] | None:
        """Spend one leased token (and quota unit) if this process holds a live lease; its RateLimit
        headers, or None when only `check` can decide. No clock other than the lease's expiry: a lease
        never outlives the quota period it was taken in."""
        lease = self.leases.get(airline)
        if lease is None or lease.tokens < 1 or lease.expires <= time.monotonic():
            return None
        if plan.hard_quota is not None:
            if lease.quota < 1:
                return None
            lease.quota -= 1
        lease.tokens -= 1
        return _headers(plan, lease.left + lease.tokens)

    async def check(self, tenant: Tenant | str, plan: PlanTerms) -> Decision:
        airline = tenant if isinstance(tenant, str) else tenant.code
        owner = None if isinstance(tenant, str) else tenant
        period, start, end = self._current_period()
        # Each refresh that grants tokens serves someone, so waiting callers make progress; only a
        # refresh that grants nothing (bucket or quota empty) refuses.
        for _attempt in range(64):
            lease = self.leases.get(airline)
            if lease is not None and lease.period == period:
                taken = self.take(airline, plan)
                if taken is not None:
                    return Decision(True, taken)
            try:
                # Concurrent requests of one airline share one lease call instead of each making one.
                lease = await self._leasing.do(airline, lambda: self._refresh(airline, plan, period, start, end, owner))
            except Exception as exc:
                if self._exact(plan, owner):
                    raise  # the database could not count a hard quota: refused, never let through
                return self._fail_open(airline, exc)  # Redis down or failing: protection gives way to service
            if lease.granted < 1:
                return self._refusal(plan, lease, end)
        return self._refusal(plan, self.leases[airline], end)

    def _exact(self, plan: PlanTerms, owner: Tenant | None) -> bool:
        return plan.hard_quota is not None and self.quotas is not None and owner is not None

    async def _refresh(
        self, airline: str, plan: PlanTerms, period: str, start: datetime, end: datetime, owner: Tenant | None = None
    ) -> Lease:
        hard = plan.hard_quota
        lease = self.leases.get(airline)
        returned = lease.quota if lease is not None and lease.period == period else 0
        want = max(1, min(plan.burst, int(plan.rate * self.lease_seconds)))
        want_quota = 0
        if hard is not None:
            remaining = hard - lease.quota_used if lease is not None and lease.quota_used >= 0 else 0
            want_quota = want if remaining > 20 * want else 1
        if lease is not None:
            lease.quota = 0  # handed back through `returned`
        if self._exact(plan, owner):
            assert self.quotas is not None and owner is not None and hard is not None
            grant = await self._exact_lease(owner, period, start, end, plan, want, want_quota, hard, returned)
        else:
            grant = await self._lease(airline, period, start, end, plan, want, want_quota, hard, returned)
        now = time.monotonic()
        fresh = Lease(
            period,
            grant.tokens,
            grant.quota,
            grant.bucket_left,
            grant.quota_used,
            now + min(self.lease_ttl, (end - self.clock()).total_seconds()),
            granted=grant.tokens,
            tenant=owner if self._exact(plan, owner) else None,
        )
        self.leases[airline] = fresh
        return fresh

    async def _exact_lease(
        self,
        owner: Tenant,
        period: str,
        start: datetime,
        end: datetime,
        plan: PlanTerms,
        want: int,
        want_quota: int,
        hard: int,
        returned: int,
    ) -> Grant:
        """Rate tokens from the lease store (failing open), then as many quota units from the database."""
        assert self.quotas is not None
        want = min(want, want_quota)  # no more rate tokens than quota units are asked for
        try:
            rate = await self._lease(owner.code, period, start, end, plan, want, 0, None, 0)
        except Exception as exc:
            self._fail_open(owner.code, exc)
            rate = Grant(want, 0, float(plan.burst), -1)
        taken, out = await self.quotas.exchange(
            owner, period, start, end, want=rate.tokens, returned=returned, quota=hard
        )
        return Grant(taken, taken, rate.bucket_left, out)

    def _refusal(self, plan: PlanTerms, lease: Lease, end: datetime) -> Decision:
        headers = _headers(plan, lease.left + max(0, lease.tokens))
        hard = plan.hard_quota
        if hard is not None and lease.quota_used >= hard:
            retry = max(1, math.ceil((end - self.clock()).total_seconds()))
            return Decision(False, headers, "quota_exceeded", retry)
        retry = max(1, math.ceil((1 - lease.bucket_left) / plan.rate))
        return Decision(False, headers, "rate_limited", retry)

    def _fail_open(self, airline: str, exc: Exception) -> Decision:
        self.fail_open += 1
        now = time.monotonic()
        if now - self._last_fail_log > 10:
            self._last_fail_log = now
            log.error("limiter_fail_open", extra={"airline": airline, "error": repr(exc)[:200]})
        self.leases.pop(airline, None)
        return Decision(True, ())

    async def _lease(
        self,
        airline: str,
        period: str,
        start: datetime,
        end: datetime,
        plan: PlanTerms,
        want: int,
        want_quota: int,
        hard: int | None,
        returned: int,
        quota_start: int = -1,
    ) -> Grant:
        async def lease(quota_start: int) -> Grant:
            return await self.store.lease(
                airline,
                period,
                rate=plan.rate,
                burst=plan.burst,
                want=want,
                want_quota=want_quota,
                quota=hard or 0,
                quota_ttl=int((end - start).total_seconds()) + 86_400,
                returned=returned,
                quota_start=quota_start,
            )

        try:
            return await lease(quota_start)
        except QuotaUnknown:
            used = await self.quota_start(airline, start, end)
            return await lease(used)

    async def settle(self, *, force: bool = False) -> None:
        """Give back quota units held by leases that expired unused (all, at shutdown) for other processes."""
        now = time.monotonic()
        for airline, lease in list(self.leases.items()):
            if force or lease.expires <= now:
                del self.leases[airline]
                if lease.quota > 0 and lease.tenant is not None and self.quotas is not None:
                    start, end = month_bounds(datetime.strptime(lease.period, "%Y-%m").replace(tzinfo=UTC))
                    try:
                        await self.quotas.exchange(
                            lease.tenant, lease.period, start, end, want=0, returned=lease.quota, quota=0
                        )
                    except Exception as exc:  # keep trying later
                        self.leases.setdefault(airline, lease)
                        log.warning("limiter_settle_failed", extra={"airline": airline, "error": repr(exc)[:200]})
                elif lease.quota > 0:
                    try:
                        await self.store.lease(
                            airline,
                            lease.period,
                            rate=1.0,
                            burst=1,
                            want=0,
                            want_quota=0,
                            quota=0,
                            quota_ttl=86_400,
                            returned=lease.quota,
                            quota_start=-1,
                        )
                    except QuotaUnknown:  # the counter is gone (new month, Redis restarted): nothing to give back
                        pass
                    except Exception as exc:  # keep trying later
                        self.leases.setdefault(airline, lease)
                        log.warning("limiter_settle_failed", extra={"airline": airline, "error": repr(exc)[:200]})


# The usual RateLimit-Reset values, made once: most answers carry one of them.
_RESETS = tuple((b"ratelimit-reset", b"%d" % seconds) for seconds in range(64))


def _headers(plan: PlanTerms, remaining: int) -> tuple[tuple[bytes, bytes], ...]:
    """RateLimit headers; `remaining` is what the shared bucket kept when leased plus this process's unspent tokens."""
    missing = plan.burst - remaining
    reset = math.ceil(missing / plan.rate) if missing > 0 else 0
    return (
        plan.limit_header,
        (b"ratelimit-remaining", b"%d" % remaining),
        _RESETS[reset] if reset < 64 else (b"ratelimit-reset", b"%d" % reset),
    )
