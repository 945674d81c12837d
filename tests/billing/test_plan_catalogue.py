"""The plan catalogue: features from the registry, money in the currency's decimals, retiring plans."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from tests.billing.usage_data import backdate, closed_month, label
from tests.conftest import LiveServer, assert_problem


def _plan(**overrides: object) -> dict:
    body = {
        "code": f"p-{uuid.uuid4().hex[:10]}",
        "name": "Catalogue test",
        "monthly_request_quota": None,
        "overage": True,
        "rate_limit_per_second": "50",
        "burst": 100,
        "features": ["reports"],
        "monthly_fee": "10.00",
        "overage_per_1000": "0",
        "revenue_share_bps": 0,
        "currency": "EUR",
    }
    body.update(overrides)
    return body


def test_features_are_listed_with_what_each_gates(admin: httpx.Client) -> None:
    response = admin.get("/admin/features")
    assert response.status_code == 200, response.text
    features = {f["code"]: f for f in response.json()}
    assert set(features) == {"offline_sync", "reports", "storefront", "webhooks"}
    assert "GET /v1/events" in features["webhooks"]["operations"]
    assert "POST /v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry" in features["webhooks"]["operations"]
    assert features["offline_sync"]["operations"] == ["POST /v1/sync/sales"]
    assert features["reports"]["operations"] == ["GET /v1/flights/{flight_id}/report"]
    assert features["storefront"]["pages"] == ["/shop/{airline}/{flight_id}"]
    assert all(f["description"] for f in features.values())


def test_an_unknown_feature_is_refused_and_no_plan_is_made(admin: httpx.Client) -> None:
    body = _plan(features=["reports", "teleport"])
    problem = assert_problem(admin.post("/admin/plans", json=body), 422, "validation_error")
    assert "teleport" in problem["detail"] and "offline_sync" in problem["detail"]
    codes = {p["code"] for p in admin.get("/admin/plans", params={"include_retired": True}).json()}
    assert body["code"] not in codes


def test_plan_money_with_more_decimals_than_the_currency_has_is_a_validation_error(admin: httpx.Client) -> None:
    for overrides, field in (
        ({"currency": "JPY", "monthly_fee": "100.50"}, "monthly_fee"),
        ({"currency": "EUR", "monthly_fee": "1.0001"}, "monthly_fee"),
        ({"currency": "EUR", "overage_per_1000": "0.125"}, "overage_per_1000"),
        ({"currency": "KWD", "overage_per_1000": "0.1234"}, "overage_per_1000"),
    ):
        problem = assert_problem(admin.post("/admin/plans", json=_plan(**overrides)), 422, "validation_error")
        assert problem["detail"].startswith(f"{field}: {overrides['currency']} has"), problem
    yen = admin.post("/admin/plans", json=_plan(currency="JPY", monthly_fee="100", overage_per_1000="5"))
    assert yen.status_code == 201, yen.text
    assert (yen.json()["monthly_fee"], yen.json()["overage_per_1000"]) == ("100", "5")


def test_a_plan_in_use_or_scheduled_cannot_be_retired(make_airline, admin: httpx.Client) -> None:
    plan = admin.post("/admin/plans", json=_plan()).json()
    airline = make_airline(plan=plan["code"])
    problem = assert_problem(admin.delete(f"/admin/plans/{plan['code']}"), 409, "plan_in_use")
    assert problem["airlines"] == [airline.code]
    assert admin.put(f"/admin/airlines/{airline.code}/plan", json={"plan": "premium"}).status_code == 200
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    change = admin.put(
        f"/admin/airlines/{airline.code}/plan", json={"plan": plan["code"], "effective_from": later}
    ).json()
    assert_problem(admin.delete(f"/admin/plans/{plan['code']}"), 409, "plan_in_use")
    assert admin.delete(f"/admin/airlines/{airline.code}/plans/{change['id']}").status_code == 200
    retired = admin.delete(f"/admin/plans/{plan['code']}")
    assert retired.status_code == 200, retired.text
    assert retired.json()["retired_at"] is not None
    assert admin.delete(f"/admin/plans/{plan['code']}").json() == retired.json(), "retiring twice changes nothing"


def test_a_retired_plan_is_no_longer_sold_but_stays_in_history_and_statements(
    make_airline, admin: httpx.Client, server: LiveServer
) -> None:
    old, _ = closed_month()
    plan = admin.post("/admin/plans", json=_plan(name="Winter 2026", monthly_fee="30.00")).json()
    airline = make_airline()
    backdate(server.settings, airline.code, old, [(plan["code"], old)])
    assert admin.put(f"/admin/airlines/{airline.code}/plan", json={"plan": "premium"}).status_code == 200
    assert admin.delete(f"/admin/plans/{plan['code']}").status_code == 200

    assert plan["code"] not in {p["code"] for p in admin.get("/admin/plans").json()}
    listed = {p["code"]: p for p in admin.get("/admin/plans", params={"include_retired": True}).json()}
    assert listed[plan["code"]]["retired_at"] is not None
    other = make_airline()
    assert_problem(admin.put(f"/admin/airlines/{other.code}/plan", json={"plan": plan["code"]}), 409, "plan_retired")
    history = admin.get(f"/admin/airlines/{airline.code}/plans").json()
    assert history[1]["plan"]["code"] == plan["code"] and history[1]["plan"]["retired_at"] is not None
    statement = admin.get(f"/admin/statements/{airline.code}/{label(old)}").json()
    assert [(p["plan"], p["name"], p["fee"]) for p in statement["plans"]] == [(plan["code"], "Winter 2026", "30.00")]


def test_the_default_plan_cannot_be_retired_and_unknown_plans_are_not_found(admin: httpx.Client, make_airline) -> None:
    assert_problem(admin.delete("/admin/plans/standard"), 409, "plan_in_use")
    assert_problem(admin.delete("/admin/plans/no-such-plan"), 404, "not_found")
    airline = make_airline()
    assert_problem(airline.client.delete("/admin/plans/basic"), 403, "forbidden")
    assert_problem(airline.client.get("/admin/features"), 403, "forbidden")
