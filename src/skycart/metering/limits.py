"""Rate limits and hard quotas, decided locally between batched leases.

Each process leases about `lease_seconds` worth of an airline's rate (one token at a time
for slow limits, and one quota unit at a time when a hard quota is nearly used up) and
spends it without a network call. Globally the rate then holds within burst + rate x elapsed
+ processes x lease, and a hard quota is never exceeded. When Redis fails, requests are let
through (fail-open), counted and logged.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from skycart.metering.leases import LeaseStore, QuotaUnknown
from skycart.metering.plans import PlanTerms, month_bounds
from skycart.platform.db import utcnow
from skycart.platform.singleflight import SingleFlight

log = logging.getLogger("skycart.limits")
QuotaStart = Callable[[str, datetime, datetime], Awaitable[int]]


@dataclass
class Lease:
    period: str
    tokens: int = 0
    quota: int = 0
    bucket_left: float = 0.0
    quota_used: int = -1
    expires: float = 0.0
    granted: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    headers: list[tuple[bytes, bytes]]
    code: str | None = None
    retry_after: int = 0


class Limiter:
    def __init__(
        self, store: LeaseStore, quota_start: QuotaStart, *, lease_seconds: float = 0.05, lease_ttl: float = 1.0
    ) -> None:
        self.store = store
        self.quota_start = quota_start
        self.lease_seconds = lease_seconds
        self.lease_ttl = lease_ttl
        self.leases: dict[str, Lease] = {}
        self._leasing: SingleFlight[Lease] = SingleFlight()
        self.fail_open = 0
        self._last_fail_log = 0.0
        self._period: tuple[float, str, datetime, datetime] = (0.0, "", utcnow(), utcnow())

    def _current_period(self, now: float) -> tuple[str, datetime, datetime]:
        checked, label, start, end = self._period
        if now - checked > 1.0:
            start, end = month_bounds(utcnow())
            label = start.strftime("%Y-%m")
            self._period = (now, label, start, end)
        return label, start, end

    def _take(self, airline: str, plan: PlanTerms, now: float, period: str) -> Decision | None:
        """Spend one leased token (and quota unit), if this process holds a live one."""
        lease = self.leases.get(airline)
        if lease is None or lease.tokens < 1 or lease.expires <= now or lease.period != period:
            return None
        if plan.hard_quota is not None:
            if lease.quota < 1:
                return None
            lease.quota -= 1
        lease.tokens -= 1
        return Decision(True, _headers(plan, lease))

    async def check(self, airline: str, plan: PlanTerms) -> Decision:
        now = time.monotonic()
        period, start, end = self._current_period(now)
        # Each refresh that grants tokens serves someone, so waiting callers make progress; only a
        # refresh that grants nothing (bucket or quota empty) refuses.
        for _attempt in range(64):
            taken = self._take(airline, plan, now, period)
            if taken is not None:
                return taken
            try:
                # Concurrent requests of one airline share one lease call instead of each making one.
                lease = await self._leasing.do(airline, lambda: self._refresh(airline, plan, period, start, end))
            except Exception as exc:  # Redis down or failing: protection gives way to service
                return self._fail_open(airline, exc)
            if lease.granted < 1:
                return self._refusal(plan, lease, end)
            now = time.monotonic()
        return self._refusal(plan, self.leases[airline], end)

    async def _refresh(self, airline: str, plan: PlanTerms, period: str, start: datetime, end: datetime) -> Lease:
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
        grant = await self._lease(airline, period, start, end, plan, want, want_quota, hard, returned)
        fresh = Lease(
            period,
            grant.tokens,
            grant.quota,
            grant.bucket_left,
            grant.quota_used,
            time.monotonic() + self.lease_ttl,
            granted=grant.tokens,
        )
        self.leases[airline] = fresh
        return fresh

    def _refusal(self, plan: PlanTerms, lease: Lease, end: datetime) -> Decision:
        hard = plan.hard_quota
        if hard is not None and lease.quota_used >= hard:
            retry = max(1, math.ceil((end - utcnow()).total_seconds()))
            return Decision(False, _headers(plan, lease), "quota_exceeded", retry)
        retry = max(1, math.ceil((1 - lease.bucket_left) / plan.rate))
        return Decision(False, _headers(plan, lease), "rate_limited", retry)

    def _fail_open(self, airline: str, exc: Exception) -> Decision:
        self.fail_open += 1
        now = time.monotonic()
        if now - self._last_fail_log > 10:
            self._last_fail_log = now
            log.error("limiter_fail_open", extra={"airline": airline, "error": repr(exc)[:200]})
        self.leases.pop(airline, None)
        return Decision(True, [])

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
    ):  # noqa: ANN202
        args = dict(
            rate=plan.rate,
            burst=plan.burst,
            want=want,
            want_quota=want_quota,
            quota=hard or 0,
            quota_ttl=int((end - start).total_seconds()) + 86_400,
            returned=returned,
        )
        try:
            return await self.store.lease(airline, period, quota_start=quota_start, **args)
        except QuotaUnknown:
            used = await self.quota_start(airline, start, end)
            return await self.store.lease(airline, period, quota_start=used, **args)

    async def settle(self, *, force: bool = False) -> None:
        """Give back quota units held by leases that expired unused (all, at shutdown) for other processes."""
        now = time.monotonic()
        for airline, lease in list(self.leases.items()):
            if force or lease.expires <= now:
                del self.leases[airline]
                if lease.quota > 0:
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


def _headers(plan: PlanTerms, lease: Lease) -> list[tuple[bytes, bytes]]:
    remaining = int(lease.bucket_left) + lease.tokens
    if remaining < 0:
        remaining = 0
    missing = plan.burst - remaining
    reset = math.ceil(missing / plan.rate) if missing > 0 else 0
    return [
        (b"ratelimit-limit", plan.burst_header),
        (b"ratelimit-remaining", b"%d" % remaining),
        (b"ratelimit-reset", b"%d" % reset),
    ]
