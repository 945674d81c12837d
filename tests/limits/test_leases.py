"""The Redis lease script and the in-memory store agree, call for call."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skycart.billing.plans import PlanTerms
from skycart.limits.leases import MemoryLeaseStore, QuotaUnknown, RedisLeaseStore
from skycart.limits.limiter import Limiter
from tests.conftest import _answers, service_missing

CALL = st.tuples(st.integers(0, 7), st.integers(0, 3), st.integers(0, 3))  # want, want quota, returned


@pytest.fixture(scope="module")
def redis_url() -> str:
    if not _answers(6379):
        service_missing("Redis on 127.0.0.1:6379")
    return "redis://127.0.0.1:6379/15"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(CALL, min_size=1, max_size=12), burst=st.integers(1, 10), quota=st.integers(0, 12))
def test_redis_script_and_memory_store_grant_the_same(redis_url: str, calls, burst: int, quota: int) -> None:
    import redis.asyncio as aioredis

    async def _run() -> None:
        client = aioredis.from_url(redis_url)
        stores = [RedisLeaseStore(client), MemoryLeaseStore()]
        airline = uuid.uuid4().hex[:8]
        started = [False, False]
        try:
            for want, want_quota, returned in calls:
                grants = []
                for index, store in enumerate(stores):
                    args = dict(
                        rate=0.000001,
                        burst=burst,
                        want=want,
                        want_quota=want_quota,
                        quota=quota,
                        quota_ttl=60,
                        returned=returned,
                    )
                    try:
                        grant = await store.lease(airline, "2026-11", quota_start=-1, **args)
                    except QuotaUnknown:
                        assert not started[index], "the counter exists once started"
                        grant = await store.lease(airline, "2026-11", quota_start=0, **args)
                    started[index] = started[index] or grant.quota_used >= 0
                    grants.append((grant.tokens, grant.quota, round(grant.bucket_left, 3), grant.quota_used))
                assert grants[0] == grants[1]
                tokens, granted_quota, _left, used = grants[0]
                assert tokens <= want and granted_quota <= want_quota
                if want_quota:
                    assert tokens == granted_quota and used <= quota, "a hard quota is never exceeded"
        finally:
            await client.delete(f"skycart:rate:{{{airline}}}", f"skycart:quota:{{{airline}}}:2026-11")
            await client.aclose()

    asyncio.run(_run())


def test_a_lease_ends_with_its_quota_period_and_the_next_period_counts_afresh() -> None:
    """Leased quota units of one month are never spent in the next, whose counter starts from the database."""
    now = [datetime(2026, 11, 30, 23, 59, 59, 500_000, tzinfo=UTC)]
    started_from: list[tuple[datetime, datetime]] = []

    async def quota_start(_airline: str, start: datetime, end: datetime) -> int:
        started_from.append((start, end))
        return 0

    plan = PlanTerms("hard", 10_000, False, 1000.0, 1000, frozenset())
    limiter = Limiter(MemoryLeaseStore(), quota_start, lease_seconds=0.05, lease_ttl=30.0, clock=lambda: now[0])

    async def scenario() -> None:
        for _ in range(2):  # the first lease holds one quota unit; once the counter is known, 50 at a time
            assert (await limiter.check("AAA", plan)).allowed
        november = limiter.leases["AAA"]
        assert november.period == "2026-11" and (november.quota, november.quota_used) == (49, 51)
        assert november.expires - time.monotonic() <= 0.5, "the lease ends with November, not 30 s later"
        now[0] = datetime(2026, 12, 1, 0, 0, 0, 100_000, tzinfo=UTC)
        while time.monotonic() < november.expires:  # November's lease runs out in real time too
            await asyncio.sleep(0.05)
        assert limiter.take("AAA", plan) is None, "49 November units are left, but not for December"
        assert (await limiter.check("AAA", plan)).allowed
        december = limiter.leases["AAA"]
        assert december.period == "2026-12" and december.quota_used == december.granted
        assert [start.month for start, _end in started_from] == [11, 12], "each month's counter starts once"

    asyncio.run(scenario())
