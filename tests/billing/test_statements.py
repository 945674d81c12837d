"""Monthly statements: plan fees prorated by time, included requests, overage, GMV and revenue share.

Fees and quotas of the seeded plans: basic 49.00 EUR, 100 000 requests, hard quota, 300 bps;
standard 199.00 EUR, 1 000 000 requests, 0.50 EUR per 1000 over, 200 bps; premium 999.00 EUR,
unlimited, 100 bps. Requests go in through the database sink; orders through the API.
"""

from __future__ import annotations

import csv
import io
import time
import uuid
from datetime import datetime, timedelta
from fractions import Fraction

import httpx

from tests.billing.usage_data import (
    amount,
    backdate,
    closed_month,
    half_up,
    label,
    month_starts,
    move_orders,
    record_usage,
    share,
)
from tests.conftest import AirlineHandle, LiveServer, assert_problem

MEAL = {"EUR": "13.75", "USD": "4.50"}


def _statement(admin: httpx.Client, code: str, month: datetime) -> dict:
    response = admin.get(f"/admin/statements/{code}/{label(month)}")
    assert response.status_code == 200, response.text
    return response.json()


def _settled_statement(admin: httpx.Client, code: str, month: datetime) -> dict:
    """The statement once the airline's own API calls are flushed to usage (the test server flushes every 0.3 s)."""
    found = _statement(admin, code, month)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.5)
        again = _statement(admin, code, month)
        if again["requests"] == found["requests"]:
            return again
        found = again
    raise AssertionError("usage kept changing")


def _put_plan(admin: httpx.Client, code: str, plan: str, since: datetime | None = None) -> datetime:
    body = {"plan": plan} if since is None else {"plan": plan, "effective_from": since.isoformat()}
    response = admin.put(f"/admin/airlines/{code}/plan", json=body)
    assert response.status_code == 200, response.text
    return datetime.fromisoformat(response.json()["effective_from"])


def _order(airline: AirlineHandle, flight_id: str, currency: str) -> dict:
    response = airline.order(flight_id, {"MEAL": 1}, currency=currency)
    assert response.status_code == 201, response.text
    return response.json()


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_whole_month_on_one_plan_bills_fee_included_overage_and_revenue_share(
    make_airline, admin: httpx.Client, server: LiveServer
) -> None:
    old, old_end = closed_month()
    _, this, following = month_starts()
    airline = make_airline(plan="standard")
    backdate(server.settings, airline.code, old, [("standard", old)])
    record_usage(
        server.settings,
        airline.code,
        {old + timedelta(days=1): 1_000_000, old + timedelta(days=20, minutes=5): 234_570},
        refused=777,
    )
    closed = _statement(admin, airline.code, old)
    assert [(_dt(p.pop("from")), _dt(p.pop("to"))) for p in closed["plans"]] == [(old, old_end)]
    assert closed["plans"] == [
        {
            "plan": "standard",
            "name": "Standard",
            "currency": "EUR",
            "fee": "199.00",
            "included_requests": 1_000_000,
            "requests": 1_234_570,
            "overage_requests": 234_570,
            "overage_amount": "117.29",  # 234 570 x 0.50 / 1000 = 117.285, half up
            "revenue_share_bps": 200,
            "gmv": {},
            "revenue_share": {},
        }
    ]
    assert (_dt(closed.pop("from")), _dt(closed.pop("to"))) == (old, old_end)
    assert _dt(closed.pop("closes_at")) == old_end + timedelta(hours=server.settings.billing_grace_hours)
    assert {k: v for k, v in closed.items() if k not in ("plans", "generated_at")} == {
        "airline": airline.code,
        "month": label(old),
        "currency": "EUR",
        "final": True,
        "status": "closed",
        "adjustments": [],
        "adjustments_revenue_share": {},
        "requests": 1_234_570,
        "included_requests": 1_000_000,
        "overage_requests": 234_570,
        "fee": "199.00",
        "overage_amount": "117.29",
        "gmv": {},
        "revenue_share": {},
        "total_due": {"EUR": "316.29"},
    }

    airline.product("MEAL", prices=MEAL)
    flight = airline.flight(stock={"MEAL": 10})
    _order(airline, flight["id"], "EUR")
    _order(airline, flight["id"], "USD")
    cancelled = _order(airline, flight["id"], "EUR")
    assert airline.client.post(f"/v1/orders/{cancelled['id']}/cancel").status_code == 200
    current = _statement(admin, airline.code, this)
    assert current["final"] is False and current["status"] == "open"
    assert (_dt(current["from"]), _dt(current["to"])) == (this, following)
    assert [(p["plan"], p["fee"], p["included_requests"]) for p in current["plans"]] == [("standard", "199.00", 10**6)]
    assert current["gmv"] == {"EUR": "13.75", "USD": "4.50"}, "the cancelled order is no revenue"
    assert current["revenue_share"] == {"EUR": "0.28", "USD": "0.09"}  # 2 % of 13.75 = 0.275, half up
    assert current["overage_requests"] == 0 and current["overage_amount"] == "0.00"
    assert current["total_due"] == {"EUR": "199.28", "USD": "0.09"}


def test_mid_month_plan_change_prorates_fees_and_included_requests_and_splits_requests(
    make_airline, admin: httpx.Client, server: LiveServer
) -> None:
    previous, this = closed_month()
    airline = make_airline(plan="standard")
    # Recorded at 13:17:30, in force from 13:00: a plan change takes effect from the start of its hour.
    change = previous + timedelta(days=9, hours=13)
    backdate(
        server.settings,
        airline.code,
        previous,
        [("basic", previous), ("standard", change + timedelta(minutes=17, seconds=30))],
    )
    record_usage(
        server.settings,
        airline.code,
        {previous + timedelta(days=2): 150_000, change - timedelta(minutes=1): 7, change: 900_000},
        refused=10,
    )
    found = _statement(admin, airline.code, previous)

    basic, standard = share(previous, change, previous, this), share(change, this, previous, this)
    fees = [half_up(4_900 * basic), half_up(19_900 * standard)]
    included = [int(100_000 * basic), int(1_000_000 * standard)]
    over = 900_000 - included[1]
    over_minor = half_up(Fraction(over * 50, 1000))
    assert [(p["plan"], _dt(p["from"]), _dt(p["to"])) for p in found["plans"]] == [
        ("basic", previous, change),
        ("standard", change, this),
    ]
    assert [p["fee"] for p in found["plans"]] == [amount(fees[0]), amount(fees[1])]
    assert [p["included_requests"] for p in found["plans"]] == included
    assert [p["requests"] for p in found["plans"]] == [150_007, 900_000]
    assert [p["overage_requests"] for p in found["plans"]] == [0, over], "basic is a hard quota: never overage"
    assert [p["overage_amount"] for p in found["plans"]] == ["0.00", amount(over_minor)]
    assert found["requests"] == 1_050_007 and found["included_requests"] == sum(included)
    assert found["overage_requests"] == over
    assert found["fee"] == amount(sum(fees)) and found["overage_amount"] == amount(over_minor)
    assert found["total_due"] == {"EUR": amount(sum(fees) + over_minor)}


def _split_month(make_airline, server: LiveServer) -> tuple[AirlineHandle, datetime]:
    """An airline on standard in a closed month that moved to premium on its 11th: one EUR order
    before, EUR and USD after."""
    old, _ = closed_month()
    airline = make_airline(plan="standard")
    change = old + timedelta(days=10)
    backdate(server.settings, airline.code, old, [("standard", old), ("premium", change)])
    airline.product("MEAL", prices=MEAL)
    flight = airline.flight(stock={"MEAL": 10})
    orders = [_order(airline, flight["id"], currency)["id"] for currency in ("EUR", "EUR", "USD")]
    move_orders(
        server.settings,
        dict(zip(orders, (change - timedelta(days=2), change, change + timedelta(days=5)), strict=True)),
    )
    return airline, change


def test_plan_change_splits_gmv_and_revenue_share_by_segment(make_airline, admin: httpx.Client, server) -> None:
    this, following = closed_month()
    airline, change = _split_month(make_airline, server)
    found = _statement(admin, airline.code, this)

    fees = [
        half_up(19_900 * share(this, change, this, following)),
        half_up(99_900 * share(change, following, this, following)),
    ]
    standard_included = int(1_000_000 * share(this, change, this, following))
    assert [(p["plan"], _dt(p["from"]), _dt(p["to"])) for p in found["plans"]] == [
        ("standard", this, change),
        ("premium", change, following),
    ]
    assert [p["fee"] for p in found["plans"]] == [amount(fees[0]), amount(fees[1])]
    assert [p["included_requests"] for p in found["plans"]] == [standard_included, None]
    assert found["included_requests"] is None, "one unlimited plan makes the month unlimited"
    assert [p["gmv"] for p in found["plans"]] == [{"EUR": "13.75"}, {"EUR": "13.75", "USD": "4.50"}]
    # 2 % of 13.75 = 0.275 -> 0.28; 1 % of 13.75 = 0.1375 -> 0.14; 1 % of 4.50 = 0.045 -> 0.05
    assert [p["revenue_share"] for p in found["plans"]] == [{"EUR": "0.28"}, {"EUR": "0.14", "USD": "0.05"}]
    assert found["gmv"] == {"EUR": "27.50", "USD": "4.50"}
    assert found["revenue_share"] == {"EUR": "0.42", "USD": "0.05"}
    assert found["overage_requests"] == 0 and found["fee"] == amount(sum(fees))
    assert found["total_due"] == {"EUR": amount(sum(fees) + 42), "USD": "0.05"}


def test_hard_quota_plan_bills_no_overage(make_airline, admin: httpx.Client, server: LiveServer) -> None:
    previous, _ = closed_month()
    airline = make_airline(plan="standard")
    backdate(server.settings, airline.code, previous, [("basic", previous)])
    record_usage(server.settings, airline.code, {previous + timedelta(hours=30): 250_000})
    found = _statement(admin, airline.code, previous)
    assert [(p["plan"], p["fee"], p["included_requests"], p["requests"]) for p in found["plans"]] == [
        ("basic", "49.00", 100_000, 250_000)
    ]
    assert found["overage_requests"] == 0 and found["overage_amount"] == "0.00"
    assert found["total_due"] == {"EUR": "49.00"}


def test_month_without_traffic_bills_the_fee(make_airline, admin: httpx.Client, server: LiveServer) -> None:
    previous, _ = closed_month()
    airline = make_airline(plan="standard")
    backdate(server.settings, airline.code, previous, [("premium", previous)])
    found = _statement(admin, airline.code, previous)
    assert [(p["plan"], p["fee"], p["included_requests"], p["requests"]) for p in found["plans"]] == [
        ("premium", "999.00", None, 0)
    ]
    assert (found["requests"], found["included_requests"], found["overage_requests"]) == (0, None, 0)
    assert found["gmv"] == {} and found["total_due"] == {"EUR": "999.00"}


def test_month_before_the_airline_existed_bills_nothing(make_airline, admin: httpx.Client) -> None:
    previous, _, _ = month_starts()
    airline = make_airline(plan="standard")
    found = _statement(admin, airline.code, previous)
    assert found["plans"] == [] and found["requests"] == 0
    assert found["fee"] == "0.00" and found["total_due"] == {"EUR": "0.00"}


def test_plans_in_two_currencies_are_each_due_in_their_own(
    make_airline, admin: httpx.Client, server: LiveServer
) -> None:
    previous, this = closed_month()
    code = f"usd-{uuid.uuid4().hex[:8]}"
    plan = {
        "code": code,
        "name": "Dollar",
        "monthly_request_quota": None,
        "overage": True,
        "rate_limit_per_second": "50",
        "burst": 100,
        "monthly_fee": "300.00",
        "revenue_share_bps": 0,
        "currency": "USD",
    }
    assert admin.post("/admin/plans", json=plan).status_code == 201
    airline = make_airline(plan="standard")
    half = previous + (this - previous) / 2  # a whole hour in months of 28 to 31 days
    backdate(server.settings, airline.code, previous, [("basic", previous), (code, half)])
    found = _statement(admin, airline.code, previous)
    assert [(p["plan"], p["currency"], p["fee"]) for p in found["plans"]] == [
        ("basic", "EUR", "24.50"),
        (code, "USD", "150.00"),
    ]
    assert found["currency"] == "USD", "the plan in force at the end of the month sets the currency"
    assert found["fee"] == "150.00"
    assert found["total_due"] == {"EUR": "24.50", "USD": "150.00"}


def test_csv_has_one_row_per_line_item_matching_the_json(make_airline, admin: httpx.Client, server: LiveServer) -> None:
    this, _ = closed_month()
    airline, _change = _split_month(make_airline, server)
    found = _statement(admin, airline.code, this)
    response = admin.get(f"/admin/statements/{airline.code}/{label(this)}", params={"format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    filename = f"statement-{airline.code}-{label(this)}.csv"
    assert response.headers["content-disposition"] == f'attachment; filename="{filename}"'
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {(r["airline"], r["month"]) for r in rows} == {(airline.code, label(this))}
    by_item = [(r["item"], r["plan"], r["currency"], r["amount"]) for r in rows]
    assert by_item == [
        ("plan_fee", "standard", "EUR", found["plans"][0]["fee"]),
        ("overage", "standard", "EUR", found["plans"][0]["overage_amount"]),
        ("plan_fee", "premium", "EUR", found["plans"][1]["fee"]),
        ("overage", "premium", "EUR", found["plans"][1]["overage_amount"]),
        ("revenue_share", "", "EUR", "0.42"),
        ("revenue_share", "", "USD", "0.05"),
        ("total_due", "", "EUR", found["total_due"]["EUR"]),
        ("total_due", "", "USD", "0.05"),
    ]
    span = (_dt(found["plans"][0]["from"]), _dt(found["plans"][0]["to"]))
    assert [(_dt(r["from"]), _dt(r["to"])) for r in rows[:2]] == [span, span]
    assert rows[1]["requests"] == str(found["plans"][0]["requests"])
    assert rows[1]["included_requests"] == str(found["plans"][0]["included_requests"])
    assert rows[3]["included_requests"] == "", "unlimited"
    assert [r["gmv"] for r in rows[4:6]] == ["27.50", "4.50"]


def test_unknown_airline_is_not_found(admin: httpx.Client) -> None:
    _, this, _ = month_starts()
    assert_problem(admin.get(f"/admin/statements/00/{label(this)}"), 404, "not_found")


def test_malformed_or_future_month_or_unknown_format_is_a_validation_error(
    airline: AirlineHandle, admin: httpx.Client
) -> None:
    _, this, following = month_starts()
    for month in ("2026-13", "26-01", "2026-1", "0000-01", label(following)):
        assert_problem(admin.get(f"/admin/statements/{airline.code}/{month}"), 422, "validation_error")
    response = admin.get(f"/admin/statements/{airline.code}/{label(this)}", params={"format": "xml"})
    assert_problem(response, 422, "validation_error")


def test_airline_key_on_the_statement_route_is_forbidden(airline: AirlineHandle) -> None:
    _, this, _ = month_starts()
    assert_problem(airline.client.get(f"/admin/statements/{airline.code}/{label(this)}"), 403, "forbidden")
