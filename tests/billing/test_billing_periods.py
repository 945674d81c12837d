"""Billing periods over HTTP: one truth for requests at plan bounds, final statements that never move,
an append-only plan history, and late facts posted as adjustments of the open month."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta

import httpx

from tests.billing.usage_data import backdate, closed_month, label, month_starts, record_usage
from tests.conftest import AirlineHandle, LiveServer, assert_problem


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _statement(admin: httpx.Client, code: str, month: datetime, **params: str) -> httpx.Response:
    response = admin.get(f"/admin/statements/{code}/{label(month)}", params=params)
    assert response.status_code == 200, response.text
    return response


def _settled_requests(admin: httpx.Client, code: str, at_least: int) -> int:
    """The current month's billed requests once the test server (flushing every 0.3 s) has flushed them all."""
    _, this, _ = month_starts()
    deadline = time.monotonic() + 15
    seen = -1
    while time.monotonic() < deadline:
        found = _statement(admin, code, this).json()["requests"]
        if found == seen and found >= at_least:
            return found
        seen = found
        time.sleep(0.7)
    raise AssertionError(f"usage of {code} did not settle at {at_least} or more (last {seen})")


def _month_usage(admin: httpx.Client, code: str) -> int:
    """Billable requests of the current month in the stored hourly usage rows."""
    _, this, _ = month_starts()
    rows = admin.get(
        "/admin/usage",
        params={
            "airline": code,
            "granularity": "hour",
            "from": this.isoformat(),
            "to": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        },
    )
    assert rows.status_code == 200, rows.text
    return sum(row["billable"] for row in rows.json())


def test_requests_in_the_hour_an_airline_starts_are_billed_once_and_every_view_agrees(
    make_airline, admin: httpx.Client
) -> None:
    airline = make_airline()
    created = _dt(airline.data["created_at"])
    for _ in range(20):
        assert airline.client.get("/v1/products").status_code == 200
    billed = _settled_requests(admin, airline.code, 20)
    _, this, _ = month_starts()
    found = _statement(admin, airline.code, this).json()
    assert (
        billed
        == 20
        == found["requests"]
        == sum(p["requests"] for p in found["plans"])
        == _month_usage(admin, airline.code)
    )
    assert _dt(found["plans"][0]["from"]) == _hour(created), "the first plan bills from the hour the airline began"
    used = airline.client.get("/v1/plan").json()["quota"]["used"]
    assert used == 20
    # /v1/plan is itself a billed request: once flushed, every view counts it once.
    assert _settled_requests(admin, airline.code, 21) == 21 == _month_usage(admin, airline.code)


def test_a_plan_change_takes_effect_from_the_start_of_its_hour_and_no_request_is_lost_or_doubled(
    make_airline, admin: httpx.Client
) -> None:
    airline = make_airline(plan="premium")
    for _ in range(5):
        airline.client.get("/v1/products")
    changed = admin.put(f"/admin/airlines/{airline.code}/plan", json={"plan": "standard"})
    assert changed.status_code == 200, changed.text
    since = _dt(changed.json()["effective_from"])
    assert since == _hour(datetime.now(UTC)) or since == _hour(datetime.now(UTC) - timedelta(minutes=1))
    for _ in range(5):
        airline.client.get("/v1/products")
    assert _settled_requests(admin, airline.code, 10) == 10
    _, this, _ = month_starts()
    found = _statement(admin, airline.code, this).json()
    assert sum(p["requests"] for p in found["plans"]) == found["requests"] == 10 == _month_usage(admin, airline.code)
    assert (found["plans"][-1]["plan"], _dt(found["plans"][-1]["from"])) == ("standard", since)
    assert airline.client.get("/v1/plan").json()["plan"]["code"] == "standard"


def test_a_closed_month_refuses_a_backdated_change_and_its_final_statement_never_moves(
    make_airline, admin: httpx.Client, server: LiveServer
) -> None:
    old, old_end = closed_month()
    airline = make_airline()
    backdate(server.settings, airline.code, old, [("standard", old)])
    record_usage(server.settings, airline.code, {old + timedelta(days=3): 1_000})
    first = _statement(admin, airline.code, old)
    body = first.json()
    assert (body["final"], body["status"], body["requests"], body["total_due"]) == (
        True,
        "closed",
        1_000,
        {"EUR": "199.00"},
    )
    assert first.headers["etag"].startswith('"sha256-')
    first_csv = _statement(admin, airline.code, old, format="csv")
    history = admin.get(f"/admin/airlines/{airline.code}/plans").json()

    backdated = admin.put(
        f"/admin/airlines/{airline.code}/plan",
        json={"plan": "basic", "effective_from": (old + timedelta(days=14)).isoformat()},
    )
    problem = assert_problem(backdated, 409, "period_closed")
    assert problem["month"] == label(old) and label(old) in problem["detail"]
    # Facts that reach into the month later change nothing that is served for it.
    record_usage(server.settings, airline.code, {old + timedelta(days=4): 77})
    again = _statement(admin, airline.code, old)
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert _statement(admin, airline.code, old, format="csv").content == first_csv.content
    own = airline.client.get(f"/v1/statements/{label(old)}")
    assert own.status_code == 200 and own.content == first.content, "the airline reads the same stored statement"
    assert admin.get(f"/admin/airlines/{airline.code}/plans").json() == history

    rows = list(csv.DictReader(io.StringIO(first_csv.text)))
    assert {row["final"] for row in rows} == {"true"}
    assert first_csv.headers["etag"].startswith('"sha256-') and first_csv.headers["etag"] != first.headers["etag"]


def test_a_change_may_not_start_before_the_airline_existed(airline: AirlineHandle, admin: httpx.Client) -> None:
    history = admin.get(f"/admin/airlines/{airline.code}/plans").json()
    early = _hour(_dt(airline.data["created_at"])) - timedelta(hours=1)
    for moment in (early, datetime(2026, 10, 15, tzinfo=UTC), datetime(2019, 1, 1, tzinfo=UTC)):
        response = admin.put(
            f"/admin/airlines/{airline.code}/plan", json={"plan": "basic", "effective_from": moment.isoformat()}
        )
        assert "exists since" in assert_problem(response, 422, "validation_error")["detail"]
    assert admin.get(f"/admin/airlines/{airline.code}/plans").json() == history, "nothing was added or removed"
    _, this, _ = month_starts()
    assert _statement(admin, airline.code, this).json()["plans"][0]["plan"] == "premium"


def test_a_scheduled_change_waits_can_be_cancelled_and_the_history_only_grows(
    make_airline, admin: httpx.Client
) -> None:
    airline = make_airline(plan="basic")
    later = _hour(datetime.now(UTC)) + timedelta(hours=3)
    scheduled = admin.put(
        f"/admin/airlines/{airline.code}/plan", json={"plan": "premium", "effective_from": later.isoformat()}
    )
    assert scheduled.status_code == 200, scheduled.text
    change = scheduled.json()
    assert _dt(change["effective_from"]) == later and change["cancelled_at"] is None and change["id"]
    assert airline.client.get("/v1/plan").json()["plan"]["code"] == "basic", "not yet"
    before = admin.get(f"/admin/airlines/{airline.code}/plans").json()
    assert [h["plan"]["code"] for h in before] == ["standard", "basic", "premium"]

    cancelled = admin.delete(f"/admin/airlines/{airline.code}/plans/{change['id']}")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancelled_at"] is not None
    assert admin.delete(f"/admin/airlines/{airline.code}/plans/{change['id']}").json() == cancelled.json()
    after = admin.get(f"/admin/airlines/{airline.code}/plans").json()
    assert [h["id"] for h in after] == [h["id"] for h in before], "a cancelled change stays in the history"
    assert after[-1]["cancelled_at"] is not None
    _, this, _ = month_starts()
    assert [p["plan"] for p in _statement(admin, airline.code, this).json()["plans"]] == ["basic"]

    in_force = before[1]["id"]
    assert_problem(admin.delete(f"/admin/airlines/{airline.code}/plans/{in_force}"), 409, "plan_change_in_effect")
    assert_problem(admin.delete(f"/admin/airlines/{airline.code}/plans/01J00000000000000000000000"), 404, "not_found")


def test_another_airlines_plan_change_is_not_found_and_stays(make_airline, admin: httpx.Client) -> None:
    a, b = make_airline(), make_airline()
    later = (_hour(datetime.now(UTC)) + timedelta(hours=5)).isoformat()
    change = admin.put(f"/admin/airlines/{a.code}/plan", json={"plan": "basic", "effective_from": later}).json()
    assert_problem(admin.delete(f"/admin/airlines/{b.code}/plans/{change['id']}"), 404, "not_found")
    assert admin.get(f"/admin/airlines/{a.code}/plans").json()[-1]["cancelled_at"] is None


def _late_sale_airline(make_airline, server: LiveServer) -> tuple[AirlineHandle, dict, datetime]:
    """An airline on standard (200 bps) in a closed month and on premium (100 bps) since this one began,
    with a flight that departed in the closed month."""
    old, _ = closed_month()
    _, this, _ = month_starts()
    airline = make_airline()
    backdate(server.settings, airline.code, old, [("standard", old), ("premium", this)])
    airline.product("MEAL", prices={"EUR": "11.00", "USD": "12.00"})
    departs = old + timedelta(days=9, hours=7)
    flight = airline.flight(
        departure_date=departs.date().isoformat(), scheduled_departure=departs.isoformat(), stock={"MEAL": 5}
    )
    return airline, flight, departs


def test_a_sale_synced_after_its_month_closed_is_an_adjustment_of_the_open_month(
    make_airline, admin: httpx.Client, server: LiveServer
) -> None:
    old, _ = closed_month()
    _, this, _ = month_starts()
    airline, flight, departs = _late_sale_airline(make_airline, server)
    sale = {
        "client_id": "late-1",
        "sold_at": (departs + timedelta(hours=1)).isoformat(),
        "currency": "EUR",
        "items": [{"sku": "MEAL", "quantity": 1}],
        "payment": {"method": "cash"},
    }
    synced = airline.client.post("/v1/sync/sales", json={"flight_id": flight["id"], "sales": [sale]})
    assert synced.status_code == 200 and synced.json()["inserted"] == 1, synced.text
    order_id = synced.json()["results"][0]["order_id"]

    closed = _statement(admin, airline.code, old).json()
    assert closed["gmv"] == {} and closed["revenue_share"] == {}, "the close had not seen the sale"
    current = _statement(admin, airline.code, this).json()
    assert current["gmv"] == {}, "sold in the closed month, not in this one"
    adjustment = current["adjustments"][0]
    assert {k: v for k, v in adjustment.items() if k not in ("occurred_at", "recorded_at")} == {
        "month": label(old),
        "reason": "late_sale",
        "order_id": order_id,
        "plan": "standard",
        "currency": "EUR",
        "gmv": "11.00",
        "revenue_share_bps": 200,
        "revenue_share": "0.22",
    }
    assert _dt(adjustment["occurred_at"]) == departs + timedelta(hours=1)
    assert current["adjustments_revenue_share"] == {"EUR": "0.22"}
    fee = sum(int(p["fee"].replace(".", "")) for p in current["plans"])
    assert current["total_due"] == {"EUR": f"{(fee + 22) // 100}.{(fee + 22) % 100:02d}"}
    rows = list(csv.DictReader(io.StringIO(_statement(admin, airline.code, this, format="csv").text)))
    late = [r for r in rows if r["item"] == "adjustment"]
    assert [(r["original_month"], r["reason"], r["order_id"], r["gmv"], r["amount"]) for r in late] == [
        (label(old), "late_sale", order_id, "11.00", "0.22")
    ]

    # Cancelling it takes the share back in the open month; the closed month stays as it was.
    assert airline.client.post(f"/v1/orders/{order_id}/cancel").status_code == 200
    current = _statement(admin, airline.code, this).json()
    assert [(a["reason"], a["gmv"], a["revenue_share"]) for a in current["adjustments"]] == [
        ("late_sale", "11.00", "0.22"),
        ("cancellation", "-11.00", "-0.22"),
    ]
    assert current["adjustments_revenue_share"] == {"EUR": "0.00"}
    assert _statement(admin, airline.code, old).json() == closed


def test_an_airline_reads_its_own_statement_as_the_operator_does(
    make_airline, admin: httpx.Client, server: LiveServer
) -> None:
    old, _ = closed_month()
    airline = make_airline()
    backdate(server.settings, airline.code, old, [("basic", old)])
    own = airline.client.get(f"/v1/statements/{label(old)}")
    assert own.status_code == 200, own.text
    assert own.content == _statement(admin, airline.code, old).content
    assert own.json()["plans"][0]["plan"] == "basic" and own.json()["total_due"] == {"EUR": "49.00"}
    as_csv = airline.client.get(f"/v1/statements/{label(old)}", params={"format": "csv"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    _, _, following = month_starts()
    assert_problem(airline.client.get(f"/v1/statements/{label(following)}"), 422, "validation_error")
    assert_problem(airline.client.get("/v1/statements/2026-13"), 422, "validation_error")
