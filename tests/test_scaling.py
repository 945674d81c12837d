"""Any number of processes behave as one: what one process changes, the others serve within 1 s."""

from __future__ import annotations

import subprocess
import time

import httpx
from sqlalchemy import event

from skycart.platform.logging import request_scope
from tests.conftest import AirlineHandle, LiveServer, flight_body, product_body
from tests.metering.cluster import mariadb_url, onboard, operator_key, private_redis, servers  # noqa: F401

UNLIMITED = {"monthly_request_quota": None, "overage": True, "rate_limit_per_second": "10000", "burst": 10000}


def _within(seconds: float, check) -> float:
    """Poll `check` until true; returns how long it took, failing after `seconds`."""
    started = time.monotonic()
    while True:
        if check():
            return time.monotonic() - started
        assert time.monotonic() - started < seconds, "not seen in time"
        time.sleep(0.02)


def test_changes_through_one_process_are_served_by_the_others_within_a_second(mariadb_url: str) -> None:  # noqa: F811
    op = operator_key(mariadb_url)
    with private_redis() as (redis_url, _redis), servers(3, mariadb_url, SKYCART_REDIS_URL=redis_url) as procs:
        first, *others = [httpx.Client(base_url=p.url) for p in procs]
        admin = httpx.Client(base_url=procs[0].url, headers={"X-Api-Key": op})
        code, key = onboard(admin, UNLIMITED)
        for client in (first, *others):
            client.headers["X-Api-Key"] = key
        assert first.post("/v1/products", json=product_body("TEA", ["EUR"], prices={"EUR": "2.00"})).status_code == 201
        flight = first.post("/v1/flights", json=flight_body()).json()
        first.put(f"/v1/flights/{flight['id']}/inventory", json={"items": [{"sku": "TEA", "quantity": 9}]})
        menu = f"/v1/flights/{flight['id']}/menu"

        def item(client: httpx.Client) -> dict:
            return client.get(menu).json()["items"][0]

        assert all(item(c)["price"] == "2.00" for c in others), "warm the other processes' caches"
        body = product_body("TEA", ["EUR"], prices={"EUR": "2.50"})
        assert first.put("/v1/products/TEA", json=body).status_code == 200
        price_lag = max(_within(1.5, lambda c=c: item(c)["price"] == "2.50") for c in others)

        order = first.post(
            "/v1/orders",
            headers={"Idempotency-Key": "one"},
            json={
                "flight_id": flight["id"],
                "seat": "3A",
                "currency": "EUR",
                "items": [{"sku": "TEA", "quantity": 2}],
                "payment": {"token": "tok_ok"},
            },
        )
        assert order.status_code == 201, order.text
        stock_lag = max(_within(1.5, lambda c=c: item(c)["available"] == 7) for c in others)

        assert admin.put(f"/admin/airlines/{code}/plan", json={"plan": "basic"}).status_code == 200
        gate_lag = max(
            _within(1.5, lambda c=c: c.get(f"/v1/flights/{flight['id']}/report").status_code == 403) for c in others
        )
        patched = admin.patch(f"/admin/airlines/{code}", json={"settings": {"branding": {"colour": "#003366"}}})
        assert patched.status_code == 200
        settings_lag = max(
            _within(1.5, lambda c=c: c.get("/v1/airline").json()["settings"]["branding"] == {"colour": "#003366"})
            for c in others
        )
        for client in (first, *others):
            client.close()
        admin.close()
    lags = (price_lag, stock_lag, gate_lag, settings_lag)
    assert max(lags) <= 1.1, lags


def test_readyz_follows_redis_away_and_back_without_a_restart(mariadb_url: str) -> None:  # noqa: F811
    with private_redis() as (redis_url, redis_proc), servers(1, mariadb_url, SKYCART_REDIS_URL=redis_url) as (p,):
        assert httpx.get(f"{p.url}/readyz").json()["redis"] == "ok"
        redis_proc.kill()
        redis_proc.wait(timeout=10)
        down = httpx.get(f"{p.url}/readyz", timeout=10)
        assert down.status_code == 503 and down.json()["code"] == "service_unavailable"
        port = redis_url.rsplit(":", 1)[1].split("/")[0]
        again = subprocess.Popen(
            ["redis-server", "--port", port, "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _within(10, lambda: httpx.get(f"{p.url}/readyz", timeout=5).status_code == 200)
        finally:
            again.kill()
            again.wait(timeout=10)


def test_a_warm_menu_runs_no_sql(server: LiveServer, airline: AirlineHandle) -> None:
    airline.product("W")
    flight = airline.flight(stock={"W": 3})
    path = f"/v1/flights/{flight['id']}/menu"
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        if request_scope.get() is not None:  # SQL run while serving a request, not by the flusher
            statements.append(statement)

    engine = server.app.state.runtime.engine.sync_engine
    assert airline.client.get(path).status_code == 200  # cold: renders and caches
    event.listen(engine, "before_cursor_execute", count)
    try:
        warm = [airline.client.get(path) for _ in range(5)]
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert all(r.status_code == 200 for r in warm)
    assert statements == []
    time.sleep(1.1)
    event.listen(engine, "before_cursor_execute", count)
    try:
        airline.client.get(path)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert statements, "after a second the menu is read again (the listener does see menu SQL)"
