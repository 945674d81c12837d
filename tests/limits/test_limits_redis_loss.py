"""Hard quotas and rate limits when Redis is lost: two `skycart serve` processes, MariaDB, and a Redis of the
test's own that is stopped, restarted empty or flushed between phases of traffic.

A hard quota is counted in the database, so no loss of Redis lets more than the quota through, and with
sequential traffic exactly the quota is served. A rate limit is approximate by design: while Redis
answers, at most burst + rate x elapsed + processes x lease per window, and a restart (every bucket
starts full again) adds at most one burst; while Redis is unreachable it fails open.
"""

from __future__ import annotations

import math
import time
from collections import Counter

import httpx
import pytest
import redis

from tests.metering.cluster import mariadb_url, onboard, operator_key, private_redis, servers, start_redis  # noqa: F401

QUOTA = 300


def _send(procs: list, key: str, count: int) -> Counter:
    answers: Counter = Counter()
    with httpx.Client(headers={"X-Api-Key": key}, timeout=30) as client:
        for i in range(count):
            answer = client.get(f"{procs[i % len(procs)].url}/v1/plan")
            answers[answer.status_code if answer.status_code != 429 else answer.json()["code"]] += 1
    return answers


@pytest.mark.parametrize("loss", ["stopped", "restarted empty", "flushed"])
def test_a_hard_quota_serves_exactly_the_quota_whatever_happens_to_redis(mariadb_url: str, loss: str) -> None:  # noqa: F811
    op = operator_key(mariadb_url)
    with private_redis() as (redis_url, redis_proc), servers(2, mariadb_url, SKYCART_REDIS_URL=redis_url) as procs:
        port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
        with httpx.Client(base_url=procs[0].url, headers={"X-Api-Key": op}) as admin:
            _code, key = onboard(
                admin,
                {"monthly_request_quota": QUOTA, "overage": False, "rate_limit_per_second": "1000", "burst": 1000},
            )
        answers = _send(procs, key, 100)
        restarted = None
        if loss == "flushed":
            redis.Redis.from_url(redis_url).flushall()
        else:
            redis_proc.kill()
            redis_proc.wait(timeout=10)
            if loss == "stopped":
                answers += _send(procs, key, 100)  # Redis is away: the rate fails open, the quota holds
            restarted = start_redis(port)
        try:
            answers += _send(procs, key, 120 if loss == "stopped" else 220)
        finally:
            if restarted is not None:
                restarted.kill()
    print(f"\nRedis {loss}: {dict(answers)} for a quota of {QUOTA}")
    assert answers[200] == QUOTA, answers
    assert answers["quota_exceeded"] == 320 - QUOTA


def test_a_rate_limit_across_a_redis_restart_stays_within_its_stated_bound(mariadb_url: str) -> None:  # noqa: F811
    op = operator_key(mariadb_url)
    rate, burst, processes, lease_seconds = 20.0, 20, 2, 0.05
    with private_redis() as (redis_url, redis_proc), servers(2, mariadb_url, SKYCART_REDIS_URL=redis_url) as procs:
        port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
        with httpx.Client(base_url=procs[0].url, headers={"X-Api-Key": op}) as admin:
            _code, key = onboard(
                admin, {"monthly_request_quota": None, "overage": True, "rate_limit_per_second": "20", "burst": burst}
            )
        started = time.monotonic()
        answers = _send(procs, key, 150)
        redis_proc.kill()
        redis_proc.wait(timeout=10)
        restarted = start_redis(port)  # back at once, empty: no request is sent while it is away
        try:
            answers += _send(procs, key, 150)
        finally:
            restarted.kill()
        elapsed = time.monotonic() - started
    # One burst at the start, one more after the restart, the refill, and what each process may hold leased.
    bound = 2 * burst + math.ceil(rate * elapsed) + processes * max(1, int(rate * lease_seconds))
    print(f"\nrate {rate}/s, burst {burst}, {elapsed:.2f} s with a Redis restart: {answers[200]} served, bound {bound}")
    assert answers[200] <= bound, answers
    assert answers["rate_limited"] > 0
