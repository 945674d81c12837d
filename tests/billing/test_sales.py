"""Business usage from the orders tables: orders, items and GMV per airline, window and currency."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from tests.conftest import AirlineHandle, assert_problem


def _sell(airline: AirlineHandle) -> list[dict]:
    """Three revenue orders in two currencies and one cancelled order; the revenue orders are returned."""
    airline.product("SNACK", prices={"EUR": "4.50", "USD": "5.25"})
    airline.product("JUICE", prices={"EUR": "3.00", "USD": "3.10"})
    flight = airline.flight(stock={"SNACK": 50, "JUICE": 50})
    orders = []
    for items, currency in (({"SNACK": 2, "JUICE": 1}, "EUR"), ({"JUICE": 1}, "EUR"), ({"SNACK": 3}, "USD")):
        response = airline.order(flight["id"], items, currency=currency)
        assert response.status_code == 201, response.text
        orders.append(response.json())
    cancelled = airline.order(flight["id"], {"SNACK": 7}, currency="EUR").json()
    assert airline.client.post(f"/v1/orders/{cancelled['id']}/cancel").status_code == 200
    return orders


def _expected(code: str, orders: list[dict], granularity: str) -> list[dict]:
    """The rows the orders make, computed from the orders the API returned."""
    totals: dict[tuple[datetime, str], list] = defaultdict(lambda: [0, 0, Decimal(0)])
    for order in orders:
        created = datetime.fromisoformat(order["created_at"]).astimezone(UTC)
        window = created.replace(minute=0, second=0, microsecond=0)
        if granularity == "day":
            window = window.replace(hour=0)
        row = totals[(window, order["currency"])]
        row[0] += 1
        row[1] += sum(item["quantity"] for item in order["items"])
        row[2] += Decimal(order["total"])
    return [
        {"airline": code, "window_start": window, "currency": cur, "orders": n, "items": items, "gmv": f"{gmv:.2f}"}
        for (window, cur), (n, items, gmv) in sorted(totals.items())
    ]


def _rows(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    rows = response.json()
    for row in rows:
        row["window_start"] = datetime.fromisoformat(row["window_start"])
    return rows


@pytest.mark.parametrize("granularity", ["hour", "day"])
def test_orders_items_and_gmv_per_window_and_currency_leave_out_cancelled_orders(
    airline: AirlineHandle, granularity: str
) -> None:
    orders = _sell(airline)
    rows = _rows(airline.client.get("/v1/usage/orders", params={"granularity": granularity}))
    assert rows == _expected(airline.code, orders, granularity)
    assert sum(r["orders"] for r in rows) == 3 and sum(r["items"] for r in rows) == 7
    gmv: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        gmv[row["currency"]] += Decimal(row["gmv"])
    assert gmv == {"EUR": Decimal("15.00"), "USD": Decimal("15.75")}, "the cancelled order is left out"


def test_operator_sees_one_airline_or_all(make_airline, admin: httpx.Client) -> None:
    first, second = make_airline(), make_airline()
    first_orders, second_orders = _sell(first), _sell(second)
    one = _rows(admin.get("/admin/usage/orders", params={"airline": first.code, "granularity": "day"}))
    assert one == _expected(first.code, first_orders, "day")
    everyone = _rows(admin.get("/admin/usage/orders", params={"granularity": "day"}))
    assert [r for r in everyone if r["airline"] == first.code] == one
    assert [r for r in everyone if r["airline"] == second.code] == _expected(second.code, second_orders, "day")


def test_window_is_half_open(airline: AirlineHandle) -> None:
    orders = _sell(airline)
    first, last = (datetime.fromisoformat(o["created_at"]) for o in (orders[0], orders[-1]))
    params = {"from": first.isoformat(), "to": last.isoformat(), "granularity": "hour"}
    rows = _rows(airline.client.get("/v1/usage/orders", params=params))
    assert rows == _expected(airline.code, orders[:-1], "hour"), "`from` is in, `to` is out"


def test_another_airlines_key_never_sees_its_business_usage(make_airline) -> None:
    alpha, bravo = make_airline(), make_airline()
    _sell(alpha)
    rows = _rows(bravo.client.get("/v1/usage/orders", params={"granularity": "day", "airline": alpha.code}))
    assert rows == [], "bravo sold nothing; the `airline` parameter is not an airline route's to take"
    bravo_orders = _sell(bravo)
    rows = _rows(bravo.client.get("/v1/usage/orders", params={"granularity": "day"}))
    assert rows == _expected(bravo.code, bravo_orders, "day")


def test_bad_windows_and_granularities_are_validation_errors(airline: AirlineHandle, admin: httpx.Client) -> None:
    now = datetime.now(UTC)
    for params in (
        {"from": now.isoformat(), "to": (now - timedelta(hours=1)).isoformat()},
        {"from": (now - timedelta(days=94)).isoformat(), "to": now.isoformat(), "granularity": "hour"},
        {"from": (now - timedelta(days=801)).isoformat(), "to": now.isoformat(), "granularity": "day"},
        {"granularity": "minute"},
        {"from": "yesterday"},
    ):
        assert_problem(airline.client.get("/v1/usage/orders", params=params), 422, "validation_error")
        assert_problem(admin.get("/admin/usage/orders", params=params), 422, "validation_error")
    long_days = {"from": (now - timedelta(days=400)).isoformat(), "to": now.isoformat(), "granularity": "day"}
    assert airline.client.get("/v1/usage/orders", params=long_days).status_code == 200


def test_unknown_airline_is_not_found_and_airline_keys_are_forbidden_on_the_admin_route(
    airline: AirlineHandle, admin: httpx.Client
) -> None:
    assert_problem(admin.get("/admin/usage/orders", params={"airline": "00"}), 404, "not_found")
    assert_problem(airline.client.get("/admin/usage/orders"), 403, "forbidden")
