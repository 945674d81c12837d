"""The Redis lease script and the in-memory store agree, call for call."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skycart.metering.leases import MemoryLeaseStore, QuotaUnknown, RedisLeaseStore
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
