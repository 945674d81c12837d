"""Idempotency-Keys after an infrastructure failure, against a `skycart serve` process and a MariaDB of the
test's own: a key whose order did not commit is free again as soon as the database is back, and no
request holds a key longer than SKYCART_IDEMPOTENCY_LOCK_SECONDS."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from skycart.config import Settings
from skycart.platform.migrate import upgrade
from tests.conftest import flight_body, order_body, product_body
from tests.metering.cluster import PrivateMariaDB, onboard, operator_key, private_mariadb, servers


@pytest.fixture
def database(tmp_path: Path):  # noqa: ANN201
    with private_mariadb(tmp_path / "mariadb") as server:
        upgrade(Settings(database_url=server.url))
        yield server


def _shop(proc_url: str, op: str) -> tuple[httpx.Client, str]:
    with httpx.Client(base_url=proc_url, headers={"X-Api-Key": op}, timeout=30) as admin:
        _code, key = onboard(admin)
    client = httpx.Client(base_url=proc_url, headers={"X-Api-Key": key}, timeout=60)
    assert client.post("/v1/products", json=product_body("TEA", ["EUR"])).status_code == 201
    flight = client.post("/v1/flights", json=flight_body()).json()["id"]
    stocked = client.put(f"/v1/flights/{flight}/inventory", json={"items": [{"sku": "TEA", "quantity": 10}]})
    assert stocked.status_code == 200
    return client, flight


def _sold(client: httpx.Client, flight: str) -> int:
    return client.get(f"/v1/flights/{flight}/inventory").json()["items"][0]["sold"]


def test_a_key_cut_off_by_an_outage_is_free_as_soon_as_the_database_is_back(database: PrivateMariaDB) -> None:
    op = operator_key(database.url)
    # A long lock time: what frees the key must be its release, not the takeover of a stale key.
    with servers(1, database.url, SKYCART_IDEMPOTENCY_LOCK_SECONDS="120") as (proc,):
        client, flight = _shop(proc.url, op)
        key = uuid.uuid4().hex
        body = order_body(flight, {"TEA": 1}, currency="EUR", payment={"token": "tok_slow"})
        answers: list[httpx.Response] = []
        cut_off = threading.Thread(
            target=lambda: answers.append(client.post("/v1/orders", json=body, headers={"Idempotency-Key": key}))
        )
        cut_off.start()
        time.sleep(0.7)  # the key is claimed and the payment is being authorized
        database.stop()
        cut_off.join(timeout=30)
        database.start()
        deadline = time.monotonic() + 30
        while httpx.get(f"{proc.url}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        back = time.monotonic()
        retries: list[int] = []
        while True:
            retry = client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
            retries.append(retry.status_code)
            if retry.status_code != 409 or time.monotonic() - back > 10:
                break
            time.sleep(0.2)
        settled_in = time.monotonic() - back
        again = client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
        sold = _sold(client, flight)
    print(f"\nkey settled {settled_in:.2f} s after the database was back; answers {retries}")
    assert answers[0].status_code == 503, answers[0].text
    assert retries[-1] == 201, retries
    assert settled_in < 5, "free at once, not after the lock time"
    assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == retry.json()["id"]
    assert sold == 1, "one order, one unit: nothing lost, nothing doubled"


def test_no_request_holds_its_key_past_the_lock_time(database: PrivateMariaDB) -> None:
    op = operator_key(database.url)
    with servers(1, database.url, SKYCART_IDEMPOTENCY_LOCK_SECONDS="1") as (proc,):
        client, flight = _shop(proc.url, op)
        key = uuid.uuid4().hex
        slow = order_body(flight, {"TEA": 1}, currency="EUR", payment={"token": "tok_slow"})  # 2 s > 1 s
        started = time.monotonic()
        first = client.post("/v1/orders", json=slow, headers={"Idempotency-Key": key})
        took = time.monotonic() - started
        second = client.post("/v1/orders", json=slow, headers={"Idempotency-Key": key})
        sold = _sold(client, flight)
    assert first.status_code == 503 and first.headers["retry-after"], first.text
    assert took < 2, f"gave the key up after {took:.2f} s"
    assert second.status_code == 503, "not 409: the key was free again at once"
    assert sold == 0, "nothing was kept of the orders that gave up"
