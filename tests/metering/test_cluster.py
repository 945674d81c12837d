"""Metering and limits across several real server processes (MariaDB and Redis)."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import create_engine, text

from tests.metering.cluster import mariadb_url, onboard, operator_key, private_redis, servers  # noqa: F401

UNLIMITED = {"monthly_request_quota": None, "overage": True, "rate_limit_per_second": "10000", "burst": 10000}
# (method, path, body, route template, status class)
MIX = [
    ("GET", "/v1/products", None, "/v1/products", "2xx"),
    ("GET", "/v1/products/NOPE", None, "/v1/products/{sku}", "4xx"),
    ("GET", "/v1/flights/01HZZZZZZZZZZZZZZZZZZZZZZZ", None, "/v1/flights/{flight_id}", "4xx"),
    ("POST", "/v1/products", {"sku": "bad sku"}, "/v1/products", "4xx"),
    ("GET", "/v1/plan", None, "/v1/plan", "2xx"),
]


def _stored(url: str, airlines: list[str]) -> Counter:
    engine = create_engine(url.replace("+asyncmy", "+pymysql"))
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT airline, route, method, status_class, SUM(requests), SUM(billable) FROM usage_minutes "
                "GROUP BY airline, route, method, status_class"
            )
        ).all()
    engine.dispose()
    return Counter({(a, r, m, s): int(n) for a, r, m, s, n, _b in rows if a in airlines})


def _fire(jobs: list, workers: int = 8) -> list[httpx.Response]:
    local = threading.local()

    def _send(job):
        base, key, method, path, body = job
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=30)
        return local.client.request(method, base + path, json=body, headers={"X-Api-Key": key})

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_send, jobs))


def test_three_processes_store_exactly_what_was_sent_after_sigterm(mariadb_url: str) -> None:  # noqa: F811
    op = operator_key(mariadb_url)
    with private_redis() as (redis_url, _redis), servers(3, mariadb_url, SKYCART_REDIS_URL=redis_url) as procs:
        with httpx.Client(base_url=procs[0].url, headers={"X-Api-Key": op}) as admin:
            airlines = [onboard(admin, UNLIMITED) for _ in range(3)]
        expected: Counter = Counter()
        jobs = []
        for i in range(3300):
            code, key = airlines[i % 3]
            method, path, body, route, status_class = MIX[(i // 3) % len(MIX)]
            jobs.append((procs[i % len(procs)].url, key, method, path, body))
            expected[(code, route, method, status_class)] += 1
        responses = _fire(jobs)
        sent = Counter(r.status_code // 100 for r in responses)
        assert sent[5] == 0 and sent[2] + sent[4] == 3300, sent
        assert [p.stop(signal.SIGTERM) for p in procs] == [0, 0, 0], "graceful stops exit 0"
    assert _stored(mariadb_url, [code for code, _ in airlines]) == expected


def test_a_killed_process_loses_at_most_its_last_flush_interval(mariadb_url: str) -> None:  # noqa: F811
    op = operator_key(mariadb_url)
    with servers(1, mariadb_url, SKYCART_METERING_FLUSH_SECONDS="0.5") as (proc,):
        with httpx.Client(base_url=proc.url, headers={"X-Api-Key": op}) as admin:
            code, key = onboard(admin, UNLIMITED)
        first = _fire([(proc.url, key, "GET", "/v1/products", None)] * 200)
        time.sleep(1.5)  # three flush intervals: the first batch is in the database
        second = _fire([(proc.url, key, "GET", "/v1/products", None)] * 200)
        proc.stop(signal.SIGKILL)
    assert all(r.status_code == 200 for r in first + second)
    stored = _stored(mariadb_url, [code])[(code, "/v1/products", "GET", "2xx")]
    assert 200 <= stored <= 400, stored


def test_rate_limit_holds_across_two_processes(mariadb_url: str) -> None:  # noqa: F811
    op = operator_key(mariadb_url)
    plan = {"monthly_request_quota": None, "overage": True, "rate_limit_per_second": "5", "burst": 5}
    with private_redis() as (redis_url, _redis), servers(2, mariadb_url, SKYCART_REDIS_URL=redis_url) as procs:
        with httpx.Client(base_url=procs[0].url, headers={"X-Api-Key": op}) as admin:
            _code, key = onboard(admin, plan)
        started = time.monotonic()
        responses = _fire([(procs[i % 2].url, key, "GET", "/v1/plan", None) for i in range(40)], workers=40)
        elapsed = time.monotonic() - started
    allowed = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(allowed) + len(refused) == 40
    # Each process may hold one leased token beyond the bucket (lease size is 1 at 5 rps).
    assert 5 <= len(allowed) <= 5 + 5 * elapsed + 2, (len(allowed), elapsed)
    assert all(r.json()["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1 for r in refused)
    assert all(r.headers["ratelimit-limit"] == "5" for r in responses)


def test_hard_quota_stops_exactly_at_the_quota_across_processes(mariadb_url: str) -> None:  # noqa: F811
    op = operator_key(mariadb_url)
    plan = {"monthly_request_quota": 30, "overage": False, "rate_limit_per_second": "1000", "burst": 1000}
    with private_redis() as (redis_url, _redis), servers(2, mariadb_url, SKYCART_REDIS_URL=redis_url) as procs:
        with httpx.Client(base_url=procs[0].url, headers={"X-Api-Key": op}) as admin:
            _code, key = onboard(admin, plan)
        with httpx.Client(timeout=30) as client:
            statuses = [client.get(f"{procs[i % 2].url}/v1/plan", headers={"X-Api-Key": key}) for i in range(50)]
        concurrent = _fire([(procs[i % 2].url, key, "GET", "/v1/plan", None) for i in range(20)], workers=20)
    assert [r.status_code for r in statuses] == [200] * 30 + [429] * 20, "sequential traffic gets exactly the quota"
    assert {r.json()["code"] for r in statuses[30:]} == {"quota_exceeded"}
    assert all(int(r.headers["retry-after"]) > 0 for r in statuses[30:])
    assert all(r.status_code == 429 for r in concurrent), "never more than the quota"


def test_requests_are_served_and_metered_when_redis_stops(mariadb_url: str) -> None:  # noqa: F811
    op = operator_key(mariadb_url)
    with private_redis() as (redis_url, redis_proc), servers(2, mariadb_url, SKYCART_REDIS_URL=redis_url) as procs:
        with httpx.Client(base_url=procs[0].url, headers={"X-Api-Key": op}) as admin:
            code, key = onboard(
                admin, {"monthly_request_quota": 1000, "overage": False, "rate_limit_per_second": "1000", "burst": 1000}
            )
        before = _fire([(procs[i % 2].url, key, "GET", "/v1/plan", None) for i in range(50)])
        redis_proc.kill()
        redis_proc.wait(timeout=10)
        after = _fire([(procs[i % 2].url, key, "GET", "/v1/plan", None) for i in range(50)])
        with httpx.Client(headers={"X-Api-Key": op}) as client:
            metrics = client.get(f"{procs[0].url}/metrics").text + client.get(f"{procs[1].url}/metrics").text
        assert [p.stop() for p in procs] == [0, 0]
    assert all(r.status_code == 200 for r in before + after), [
        (r.status_code, r.text[:200]) for r in before + after if r.status_code != 200
    ][:3]
    fail_open = [line for line in metrics.splitlines() if line.startswith("skycart_limiter_fail_open_total")]
    assert sum(float(line.split()[-1]) for line in fail_open) >= 1
    assert _stored(mariadb_url, [code])[(code, "/v1/plan", "GET", "2xx")] == 100
