"""Plans, feature gates, limits and usage over real HTTP on the live server."""

from __future__ import annotations

import time

import httpx

from tests.conftest import AirlineHandle, LiveServer, assert_problem, next_code


def test_three_packages_are_seeded_and_standard_is_the_default(admin: httpx.Client) -> None:
    plans = {p["code"]: p for p in admin.get("/admin/plans").json()}
    assert {"basic", "standard", "premium"} <= plans.keys()
    standard = plans["standard"]
    assert {"reports", "offline_sync", "webhooks"} <= set(standard["features"])
    assert "webhooks" in plans["premium"]["features"] and "webhooks" not in plans["basic"]["features"]
    assert standard["rate_limit_per_second"] >= 50 and standard["burst"] >= 100
    assert standard["monthly_fee"] == "199.00" and standard["currency"] == "EUR"


def test_a_new_airline_starts_on_the_default_plan(make_airline, admin: httpx.Client) -> None:
    code = make_airline().code
    history = admin.get(f"/admin/airlines/{code}/plans").json()
    assert [h["plan"]["code"] for h in history] == ["standard", "premium"], "the fixture moved it to premium"
    fresh = next_code()
    assert (
        admin.post("/admin/airlines", json={"code": fresh, "name": "Fresh", "currencies": ["EUR"]}).status_code == 201
    )
    assert [h["plan"]["code"] for h in admin.get(f"/admin/airlines/{fresh}/plans").json()] == ["standard"]


def test_operator_creates_a_plan_and_duplicates_are_refused(admin: httpx.Client) -> None:
    body = {
        "code": "charter",
        "name": "Charter",
        "monthly_request_quota": 5000,
        "overage": False,
        "rate_limit_per_second": "2.5",
        "burst": 5,
        "features": ["reports"],
        "monthly_fee": "10.00",
        "overage_per_1000": "0",
        "revenue_share_bps": 150,
        "currency": "USD",
    }
    created = admin.post("/admin/plans", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["rate_limit_per_second"] == 2.5
    assert_problem(admin.post("/admin/plans", json=body), 409, "already_exists")
    assert_problem(
        admin.post("/admin/plans", json={**body, "code": "x", "monthly_fee": "1.234"}), 422, "validation_error"
    )


def test_unknown_plan_or_airline_is_not_found(admin: httpx.Client, airline: AirlineHandle) -> None:
    assert_problem(admin.put(f"/admin/airlines/{airline.code}/plan", json={"plan": "nope"}), 404, "not_found")
    assert_problem(admin.put("/admin/airlines/ZZ9/plan", json={"plan": "basic"}), 404, "not_found")
    assert_problem(airline.client.get("/admin/plans"), 403, "forbidden")


def test_features_outside_the_plan_are_refused(make_airline) -> None:
    airline = make_airline(plan="basic")
    airline.product("A")
    flight = airline.flight(stock={"A": 1})
    body = assert_problem(airline.client.get(f"/v1/flights/{flight['id']}/report"), 403, "feature_not_in_plan")
    assert body["feature"] == "reports"
    sync = airline.client.post("/v1/sync/sales", json={"flight_id": flight["id"], "sales": []})
    assert_problem(sync, 403, "feature_not_in_plan")
    assert airline.client.get(f"/v1/flights/{flight['id']}/menu").status_code == 200


def test_plan_change_takes_effect(make_airline, admin: httpx.Client, server: LiveServer) -> None:
    airline = make_airline(plan="basic")
    airline.product("A")
    flight = airline.flight(stock={"A": 1})
    assert airline.client.get(f"/v1/flights/{flight['id']}/report").status_code == 403
    assert admin.put(f"/admin/airlines/{airline.code}/plan", json={"plan": "standard"}).status_code == 200
    assert airline.client.get(f"/v1/flights/{flight['id']}/report").status_code == 200
    assert airline.client.get("/v1/plan").json()["plan"]["code"] == "standard"


def test_every_metered_response_carries_ratelimit_headers(airline: AirlineHandle) -> None:
    for response in (airline.client.get("/v1/products"), airline.client.get("/v1/products/NOPE")):
        assert int(response.headers["ratelimit-limit"]) == 1000
        assert 0 <= int(response.headers["ratelimit-remaining"]) <= 1000
        assert int(response.headers["ratelimit-reset"]) >= 0
        assert response.headers["x-request-id"]


def test_rate_limit_answers_429_with_retry_after(make_airline, admin: httpx.Client) -> None:
    body = {
        "code": f"slow-{time.monotonic_ns()}",
        "name": "Slow",
        "monthly_request_quota": None,
        "overage": True,
        "rate_limit_per_second": "1",
        "burst": 3,
        "monthly_fee": "0",
        "revenue_share_bps": 0,
        "currency": "EUR",
    }
    assert admin.post("/admin/plans", json=body).status_code == 201
    airline = make_airline(plan=body["code"])
    statuses = [airline.client.get("/v1/plan") for _ in range(6)]
    refused = [r for r in statuses if r.status_code == 429]
    assert 2 <= len(refused) <= 3, [r.status_code for r in statuses]
    for response in refused:
        assert_problem(response, 429, "rate_limited")
        assert int(response.headers["retry-after"]) >= 1


def test_plan_shows_quota_used_from_metered_usage(airline: AirlineHandle) -> None:
    for _ in range(5):
        airline.client.get("/v1/products")
    time.sleep(1.0)  # the test server flushes every 0.3 s
    status = airline.client.get("/v1/plan").json()
    assert status["plan"]["code"] == "premium" and status["quota"]["included"] is None
    assert status["quota"]["used"] >= 5
    assert status["period_start"].endswith("-01T00:00:00Z")


def test_usage_is_readable_per_minute_hour_and_day(airline: AirlineHandle, admin: httpx.Client) -> None:
    for _ in range(3):
        airline.client.get("/v1/products/NOPE")
    airline.client.get("/v1/products")
    time.sleep(1.0)
    minute = airline.client.get("/v1/usage", params={"granularity": "minute"}).json()
    by_key = {(r["route"], r["status_class"]): r for r in minute}
    missing = by_key[("/v1/products/{sku}", "4xx")]
    assert missing["requests"] == 3 and missing["errors"] == 3 and missing["latency_ms_p95"] is not None
    assert by_key[("/v1/products", "2xx")]["requests"] == 1
    assert {r["airline"] for r in minute} == {airline.code}
    day = airline.client.get("/v1/usage", params={"granularity": "day", "group_by": "airline"}).json()
    assert len(day) == 1 and day[0]["route"] == "*" and day[0]["requests"] >= 4
    everyone = admin.get("/admin/usage", params={"granularity": "hour", "airline": airline.code}).json()
    assert sum(r["requests"] for r in everyone) >= 4
    assert_problem(
        airline.client.get("/v1/usage", params={"granularity": "minute", "from": "2020-01-01T00:00:00Z"}),
        422,
        "validation_error",
    )


def test_metrics_are_for_operators_and_labelled_by_route_template(
    airline: AirlineHandle, admin: httpx.Client, server: LiveServer
) -> None:
    airline.client.get("/v1/products/SOMETHING")
    text = admin.get("/metrics").text
    assert f'skycart_requests_total{{airline="{airline.code}",method="GET",route="/v1/products/{{sku}}"' in text
    assert "/v1/products/SOMETHING" not in text, "raw paths never label metrics"
    assert "skycart_request_duration_seconds_bucket" in text
    assert_problem(airline.client.get("/metrics"), 403, "forbidden")
    with server.client() as anonymous:
        assert_problem(anonymous.get("/metrics"), 401, "unauthenticated")
