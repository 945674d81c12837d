"""A `skycart serve` process whose database (a MariaDB of the test's own) goes away, stalls and comes back.

While it is away every answer is a 503 `service_unavailable` with Retry-After, within about 5 s, never a
500; `/readyz` says 503; a known key's refused requests are metered to its airline; no log line carries a
statement's values. When it is back the same process serves again, without a restart.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import pytest

from skycart.config import Settings
from skycart.platform.migrate import upgrade
from tests.conftest import flight_body, order_body, product_body
from tests.metering.cluster import PrivateMariaDB, onboard, operator_key, private_mariadb, servers

# The slowest a refused answer may take: a stalled server costs a ping and a new connection, each
# bounded by the statement timeout (2.5 s), plus scheduling.
BOUND_SECONDS = 6.0


def _timed(client: httpx.Client, method: str, path: str, **kwargs) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = client.request(method, path, **kwargs)
    return answer, time.monotonic() - started


def _order(client: httpx.Client, flight_id: str, key: str | None = None) -> tuple[httpx.Response, float]:
    body = order_body(flight_id, {"TEA": 1}, currency="EUR")
    return _timed(client, "POST", "/v1/orders", json=body, headers={"Idempotency-Key": key or uuid.uuid4().hex})


def _assert_unavailable(answer: httpx.Response, took: float) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "service_unavailable"
    assert int(answer.headers["retry-after"]) > 0
    assert took < BOUND_SECONDS, f"answered after {took:.1f} s"


def _wait_until(check, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "did not recover"
        time.sleep(0.2)


@pytest.fixture
def database(tmp_path: Path):
    with private_mariadb(tmp_path / "mariadb") as server:
        upgrade(Settings(database_url=server.url))
        yield server


def test_an_outage_is_answered_503_in_bounded_time_and_the_process_recovers_by_itself(
    database: PrivateMariaDB,
) -> None:
    op = operator_key(database.url)
    with servers(1, database.url, SKYCART_LOG_LEVEL="INFO", SKYCART_METERING_FLUSH_SECONDS="0.5") as (proc,):
        with httpx.Client(base_url=proc.url, headers={"X-Api-Key": op}, timeout=30) as admin:
            code, key = onboard(admin)
        client = httpx.Client(base_url=proc.url, headers={"X-Api-Key": key}, timeout=30)
        assert client.post("/v1/products", json=product_body("TEA", ["EUR"])).status_code == 201
        flight = client.post("/v1/flights", json=flight_body()).json()["id"]
        assert (
            client.put(f"/v1/flights/{flight}/inventory", json={"items": [{"sku": "TEA", "quantity": 100}]}).status_code
            == 200
        )
        assert _order(client, flight)[0].status_code == 201

        database.stop()
        time.sleep(2.5)  # past the key cache: the key must now be looked up, and cannot be
        refused = [_order(client, flight) for _ in range(5)]
        refused += [_timed(client, "GET", "/v1/products"), _timed(client, "GET", "/v1/orders")]
        ready = httpx.get(f"{proc.url}/readyz", timeout=10)

        database.start()
        _wait_until(lambda: httpx.get(f"{proc.url}/readyz", timeout=5).status_code == 200)
        served, _ = _order(client, flight)
        time.sleep(1.5)  # a flush
        with httpx.Client(base_url=proc.url, headers={"X-Api-Key": op}, timeout=30) as admin:
            usage = admin.get("/admin/usage", params={"airline": code, "granularity": "minute"}).json()
        assert proc.stop() == 0
        printed = proc.proc.stdout.read()

    for answer, took in refused:
        _assert_unavailable(answer, took)
    print(f"\noutage: {len(refused)} refused, slowest {max(took for _, took in refused):.2f} s")
    assert ready.status_code == 503
    assert served.status_code == 201, "the same process serves again once the database is back"
    # The refused orders never reached routing (their key could not be looked up): they count as unmatched.
    errors = sum(row["errors"] for row in usage if row["status_class"] == "5xx")
    assert errors == len(refused), f"every refused request is metered to {code}, not to anonymous: {usage}"
    lines = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    assert [line for line in lines if line.get("event") == "database_unavailable"]
    assert "parameters" not in printed and "INSERT" not in printed and "tok_ok" not in printed
    assert not [line for line in lines if line.get("event") == "unhandled_error"]


def test_a_stalled_database_is_answered_503_within_the_statement_timeout(database: PrivateMariaDB) -> None:
    op = operator_key(database.url)
    with servers(1, database.url) as (proc,):
        with httpx.Client(base_url=proc.url, headers={"X-Api-Key": op}, timeout=30) as admin:
            _code, key = onboard(admin)
        client = httpx.Client(base_url=proc.url, headers={"X-Api-Key": key}, timeout=30)
        assert client.get("/v1/products").status_code == 200
        database.stall()
        try:
            stalled = [_timed(client, "GET", "/v1/products") for _ in range(2)]
        finally:
            database.resume()
        _wait_until(lambda: client.get("/v1/products").status_code == 200)
    for answer, took in stalled:
        _assert_unavailable(answer, took)
