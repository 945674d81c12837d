"""POST /v1/sync/sales: crew devices upload sales made offline; each sale is applied exactly once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from tests.billing.usage_data import backdate
from tests.conftest import AirlineHandle, LiveServer, assert_problem

# Crew devices report local time with its offset.
LOCAL = timezone(timedelta(hours=2))


_moment: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _one_moment_per_test() -> None:
    # One value per test: a sale built twice must have the same content, or it is a conflict.
    _moment["now"] = datetime.now(LOCAL).replace(microsecond=0).isoformat()


def just_now() -> str:
    """This test's start: inside the test flight's sales window (it departs in 2 h) and in the hour its
    airline was created, which is as early as a sale may be dated."""
    return _moment["now"]


def sale(
    client_id: str,
    items: dict[str, int] | list[dict[str, Any]],
    *,
    seat: str | None = "12C",
    currency: str = "EUR",
    method: str = "cash",
    sold_at: str | None = None,
) -> dict[str, Any]:
    lines = [{"sku": sku, "quantity": qty} for sku, qty in items.items()] if isinstance(items, dict) else items
    return {
        "client_id": client_id,
        "seat": seat,
        "sold_at": sold_at or just_now(),
        "currency": currency,
        "items": lines,
        "payment": {"method": method},
    }


def sync(airline: AirlineHandle, flight_id: str, sales: list[dict[str, Any]]) -> dict[str, Any]:
    response = airline.client.post("/v1/sync/sales", json={"flight_id": flight_id, "sales": sales})
    assert response.status_code == 200, response.text
    return response.json()


def statuses(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["client_id"], r["status"]) for r in answer["results"]]


def stock(airline: AirlineHandle, flight_id: str) -> dict[str, dict[str, Any]]:
    items = airline.client.get(f"/v1/flights/{flight_id}/inventory").json()["items"]
    return {item["sku"]: item for item in items}


def orders(airline: AirlineHandle, flight_id: str) -> list[dict[str, Any]]:
    return airline.client.get("/v1/orders", params={"flight_id": flight_id, "limit": 500}).json()["items"]


def report(airline: AirlineHandle, flight_id: str) -> dict[str, Any]:
    response = airline.client.get(f"/v1/flights/{flight_id}/report")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_batch_becomes_paid_offline_orders_and_takes_stock(airline: AirlineHandle) -> None:
    airline.product("WATER", prices={"EUR": "3.00", "USD": "3.30"})
    airline.product("CHIPS", prices={"EUR": "2.75", "USD": "3.00"})
    flight = airline.flight(stock={"WATER": 10, "CHIPS": 10})
    sold = datetime.now(LOCAL).replace(microsecond=0)
    answer = sync(
        airline,
        flight["id"],
        [
            sale("dev1-0001", {"WATER": 2, "CHIPS": 1}, sold_at=sold.isoformat()),
            sale("dev1-0002", {"WATER": 1}, seat=None, currency="USD", method="card_offline"),
        ],
    )
    assert (answer["inserted"], answer["duplicates"], answer["rejected"]) == (2, 0, 0)
    assert statuses(answer) == [("dev1-0001", "inserted"), ("dev1-0002", "inserted")]
    assert all(r["order_id"] and r["error"] is None for r in answer["results"])
    first = airline.client.get(f"/v1/orders/{answer['results'][0]['order_id']}").json()
    assert (first["status"], first["seat"], first["currency"], first["total"]) == ("paid_offline", "12C", "EUR", "8.75")
    assert [(i["sku"], i["quantity"], i["unit_price"], i["line_total"]) for i in first["items"]] == [
        ("WATER", 2, "3.00", "6.00"),
        ("CHIPS", 1, "2.75", "2.75"),
    ]
    assert datetime.fromisoformat(first["created_at"]) == sold.astimezone(UTC), "sold_at in UTC"
    assert first["created_at"].endswith("Z") or first["created_at"].endswith("+00:00")
    trolley = airline.client.get(f"/v1/orders/{answer['results'][1]['order_id']}").json()
    assert (trolley["status"], trolley["seat"], trolley["total"]) == ("paid_offline", None, "3.30")
    assert {sku: line["sold"] for sku, line in stock(airline, flight["id"]).items()} == {"WATER": 3, "CHIPS": 1}
    assert len(orders(airline, flight["id"])) == 2


def test_the_same_batch_sent_twice_changes_nothing_the_second_time(airline: AirlineHandle) -> None:
    airline.product("TEA")
    flight = airline.flight(stock={"TEA": 10})
    batch = [sale("s-1", {"TEA": 1}), sale("s-2", {"TEA": 2}, seat="3A")]
    first = sync(airline, flight["id"], batch)
    before = (stock(airline, flight["id"]), orders(airline, flight["id"]), report(airline, flight["id"]))
    again = sync(airline, flight["id"], batch)
    assert (again["inserted"], again["duplicates"], again["rejected"]) == (0, 2, 0)
    assert statuses(again) == [("s-1", "duplicate"), ("s-2", "duplicate")]
    assert [r["order_id"] for r in again["results"]] == [r["order_id"] for r in first["results"]]
    assert (stock(airline, flight["id"]), orders(airline, flight["id"]), report(airline, flight["id"])) == before
    assert before[0]["TEA"]["sold"] == 3


def test_a_batch_mixing_new_and_already_sent_sales_applies_only_the_new(airline: AirlineHandle) -> None:
    airline.product("TEA")
    flight = airline.flight(stock={"TEA": 10})
    first = sync(airline, flight["id"], [sale("m-1", {"TEA": 1}), sale("m-2", {"TEA": 1})])
    answer = sync(airline, flight["id"], [sale("m-3", {"TEA": 4}), sale("m-2", {"TEA": 1}), sale("m-4", {"TEA": 1})])
    assert (answer["inserted"], answer["duplicates"], answer["rejected"]) == (2, 1, 0)
    assert statuses(answer) == [("m-3", "inserted"), ("m-2", "duplicate"), ("m-4", "inserted")]
    assert answer["results"][1]["order_id"] == first["results"][1]["order_id"]
    assert stock(airline, flight["id"])["TEA"]["sold"] == 7
    assert len(orders(airline, flight["id"])) == 4


def test_selling_more_than_loaded_is_a_discrepancy_not_a_refusal(airline: AirlineHandle) -> None:
    airline.product("A")
    airline.product("B")
    flight = airline.flight(stock={"A": 2, "B": 5})
    answer = sync(airline, flight["id"], [sale("o-1", {"A": 3}), sale("o-2", {"A": 2, "B": 1})])
    assert answer["inserted"] == 2
    body = report(airline, flight["id"])
    a = next(line for line in body["items"] if line["sku"] == "A")
    b = next(line for line in body["items"] if line["sku"] == "B")
    assert (a["loaded"], a["sold"], a["remaining"], a["discrepancy"]) == (2, 5, 0, 3)
    assert (b["remaining"], b["discrepancy"]) == (4, 0)
    assert body["discrepancies"] == ["A"]
    assert_problem(airline.order(flight["id"], {"A": 1}), 409, "out_of_stock")
    assert stock(airline, flight["id"])["A"]["sold"] == 5, "online orders still never oversell"


def test_a_product_not_loaded_gets_stock_loaded_zero_and_a_discrepancy(airline: AirlineHandle) -> None:
    airline.product("LOADED")
    airline.product("EXTRA")
    flight = airline.flight(stock={"LOADED": 5})
    assert sync(airline, flight["id"], [sale("n-1", {"EXTRA": 2, "LOADED": 1})])["inserted"] == 1
    extra = stock(airline, flight["id"])["EXTRA"]
    assert (extra["loaded"], extra["sold"], extra["remaining"]) == (0, 2, 0)
    body = report(airline, flight["id"])
    assert [(line["sku"], line["discrepancy"]) for line in body["items"]] == [("EXTRA", 2), ("LOADED", 0)]
    assert body["discrepancies"] == ["EXTRA"]
    assert sync(airline, flight["id"], [sale("n-2", {"EXTRA": 1})])["inserted"] == 1
    assert stock(airline, flight["id"])["EXTRA"]["sold"] == 3, "the row made by the first sale is reused"


def test_a_rejected_sale_leaves_nothing_and_the_rest_still_applies(airline: AirlineHandle) -> None:
    airline.product("A")
    flight = airline.flight(stock={"A": 10})
    answer = sync(
        airline,
        flight["id"],
        [sale("r-1", {"A": 1}), sale("r-2", {"A": 4, "NOPE": 1}), sale("r-3", {"A": 2})],
    )
    assert (answer["inserted"], answer["duplicates"], answer["rejected"]) == (2, 0, 1)
    assert statuses(answer) == [("r-1", "inserted"), ("r-2", "rejected"), ("r-3", "inserted")]
    rejected = answer["results"][1]
    assert rejected["order_id"] is None
    assert rejected["error"]["code"] == "validation_error" and "NOPE" in rejected["error"]["detail"]
    assert stock(airline, flight["id"])["A"]["sold"] == 3, "the rejected sale took no stock"
    assert len(orders(airline, flight["id"])) == 2
    fixed = sync(airline, flight["id"], [sale("r-2", {"A": 4})])
    assert statuses(fixed) == [("r-2", "inserted")], "a rejected sale's client_id is not used up"


def test_a_client_id_twice_in_one_batch_rejects_the_later_sale(airline: AirlineHandle) -> None:
    airline.product("A")
    flight = airline.flight(stock={"A": 10})
    answer = sync(airline, flight["id"], [sale("d-1", {"A": 1}), sale("d-2", {"A": 1}), sale("d-1", {"A": 5})])
    assert statuses(answer) == [("d-1", "inserted"), ("d-2", "inserted"), ("d-1", "rejected")]
    assert answer["results"][2]["error"]["code"] == "validation_error"
    assert answer["results"][2]["order_id"] is None
    assert stock(airline, flight["id"])["A"]["sold"] == 2


def test_unit_price_defaults_to_the_current_price_or_is_what_was_charged(make_airline) -> None:
    airline = make_airline(currencies=["EUR", "USD", "JPY"])
    airline.product("A", prices={"EUR": "4.50", "USD": "5.00"})
    flight = airline.flight(stock={"A": 20})
    answer = sync(
        airline,
        flight["id"],
        [
            sale("p-default", {"A": 2}),
            sale("p-given", [{"sku": "A", "quantity": 3, "unit_price": "2.00"}]),
            sale("p-mixed", [{"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 2, "unit_price": "0"}]),
            sale("p-merged", [{"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 1, "unit_price": "4.50"}]),
            sale("p-no-price", {"A": 1}, currency="JPY"),
            sale("p-jpy-given", [{"sku": "A", "quantity": 2, "unit_price": "700"}], currency="JPY"),
            sale("p-too-precise", [{"sku": "A", "quantity": 1, "unit_price": "1.005"}]),
            sale("p-other-currency", {"A": 1}, currency="GBP"),
        ],
    )
    by_id = {r["client_id"]: r for r in answer["results"]}
    assert [r["status"] for r in answer["results"]] == ["inserted"] * 4 + ["rejected", "inserted"] + ["rejected"] * 2
    assert all(by_id[c]["error"]["code"] == "validation_error" for c in ("p-no-price", "p-too-precise"))
    assert "JPY" in by_id["p-no-price"]["error"]["detail"]
    assert "GBP" in by_id["p-other-currency"]["error"]["detail"]

    def order(client_id: str) -> dict[str, Any]:
        return airline.client.get(f"/v1/orders/{by_id[client_id]['order_id']}").json()

    def lines(client_id: str) -> list[tuple]:
        return [(i["sku"], i["quantity"], i["unit_price"], i["line_total"]) for i in order(client_id)["items"]]

    assert (lines("p-default"), order("p-default")["total"]) == ([("A", 2, "4.50", "9.00")], "9.00")
    assert (lines("p-given"), order("p-given")["total"]) == ([("A", 3, "2.00", "6.00")], "6.00")
    assert lines("p-mixed") == [("A", 1, "4.50", "4.50"), ("A", 2, "0.00", "0.00")]
    assert order("p-mixed")["total"] == "4.50"
    assert lines("p-merged") == [("A", 2, "4.50", "9.00")], "same sku at the same price is one line"
    assert (lines("p-jpy-given"), order("p-jpy-given")["total"]) == ([("A", 2, "700", "1400")], "1400")
    assert stock(airline, flight["id"])["A"]["sold"] == 2 + 3 + 3 + 2 + 2
    assert report(airline, flight["id"])["revenue"] == {"EUR": "28.50", "JPY": "1400"}


def test_report_revenue_and_order_count_include_offline_sales(airline: AirlineHandle) -> None:
    airline.product("A", prices={"EUR": "2.50", "USD": "3.00"})
    flight = airline.flight(stock={"A": 10})
    assert airline.order(flight["id"], {"A": 2}).status_code == 201
    sync(airline, flight["id"], [sale("v-1", {"A": 1}), sale("v-2", {"A": 2}, currency="USD")])
    body = report(airline, flight["id"])
    assert body["revenue"] == {"EUR": "7.50", "USD": "6.00"}
    assert body["orders"] == 3
    assert body["items"] == [
        {"sku": "A", "name": "Product A", "loaded": 10, "sold": 5, "remaining": 5, "discrepancy": 0}
    ]
    assert body["discrepancies"] == []


def test_cancelling_an_offline_sale_restocks_it_and_resending_it_does_not_revive_it(airline: AirlineHandle) -> None:
    airline.product("A")
    flight = airline.flight(stock={"A": 1})
    order_id = sync(airline, flight["id"], [sale("c-1", {"A": 3})])["results"][0]["order_id"]
    cancelled = airline.client.post(f"/v1/orders/{order_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text
    again = sync(airline, flight["id"], [sale("c-1", {"A": 3})])
    assert (statuses(again), again["results"][0]["order_id"]) == ([("c-1", "duplicate")], order_id)
    body = report(airline, flight["id"])
    assert (body["items"][0]["sold"], body["discrepancies"], body["revenue"], body["orders"]) == (0, [], {}, 0)


def test_an_unchanged_loading_list_can_be_put_again_after_a_discrepancy(airline: AirlineHandle) -> None:
    airline.product("A")
    flight = airline.flight(stock={"A": 2})
    sync(airline, flight["id"], [sale("i-1", {"A": 5})])
    path = f"/v1/flights/{flight['id']}/inventory"
    assert airline.client.put(path, json={"items": [{"sku": "A", "quantity": 2}]}).status_code == 200
    assert_problem(airline.client.put(path, json={"items": [{"sku": "A", "quantity": 1}]}), 422, "validation_error")
    assert (stock(airline, flight["id"])["A"]["loaded"], report(airline, flight["id"])["discrepancies"]) == (2, ["A"])


def test_client_ids_are_per_airline_and_case_exact(make_airline) -> None:
    alpha, bravo = make_airline(), make_airline()
    for airline in (alpha, bravo):
        airline.product("A")
    alpha_flight, bravo_flight = alpha.flight(stock={"A": 10}), bravo.flight(stock={"A": 10})
    assert statuses(sync(alpha, alpha_flight["id"], [sale("abc", {"A": 1}), sale("ABC", {"A": 1})])) == [
        ("abc", "inserted"),
        ("ABC", "inserted"),
    ]
    assert statuses(sync(bravo, bravo_flight["id"], [sale("abc", {"A": 1})])) == [("abc", "inserted")]
    assert stock(bravo, bravo_flight["id"])["A"]["sold"] == 1


def test_another_airlines_flight_is_not_found_and_nothing_changes(make_airline) -> None:
    alpha, bravo = make_airline(), make_airline()
    alpha.product("A")
    bravo.product("A")
    flight = alpha.flight(stock={"A": 10})
    before = (report(alpha, flight["id"]), orders(alpha, flight["id"]))
    foreign = bravo.client.post("/v1/sync/sales", json={"flight_id": flight["id"], "sales": [sale("x-1", {"A": 3})]})
    assert_problem(foreign, 404, "not_found")
    missing = alpha.client.post(
        "/v1/sync/sales", json={"flight_id": "01HZZZZZZZZZZZZZZZZZZZZZZZ", "sales": [sale("x-1", {"A": 3})]}
    )
    assert_problem(missing, 404, "not_found")
    assert (report(alpha, flight["id"]), orders(alpha, flight["id"])) == before
    assert statuses(sync(alpha, flight["id"], [sale("x-1", {"A": 3})])) == [("x-1", "inserted")]


def test_malformed_batches_are_refused_whole(airline: AirlineHandle) -> None:
    airline.product("A")
    flight = airline.flight(stock={"A": 10})
    good = sale("ok-1", {"A": 1})

    def post(sales: list[dict[str, Any]]) -> httpx.Response:
        return airline.client.post("/v1/sync/sales", json={"flight_id": flight["id"], "sales": sales})

    too_many = [sale(f"bulk-{i}", {"A": 1}) for i in range(501)]
    assert_problem(post(too_many), 422, "validation_error")
    for bad in (
        {**good, "sold_at": "2026-11-26T09:15:00"},  # no offset
        {**good, "payment": {"method": "voucher"}},
        {**good, "client_id": ""},
        {**good, "client_id": "x" * 65},
        {**good, "client_id": "has space"},
        {**good, "seat": "row 12"},
        {**good, "items": []},
        {**good, "items": [{"sku": "A", "quantity": 0}]},
        {**good, "items": [{"sku": "A", "quantity": 1, "unit_price": "-1.00"}]},
    ):
        assert_problem(post([good, bad]), 422, "validation_error")
    assert stock(airline, flight["id"])["A"]["sold"] == 0
    assert orders(airline, flight["id"]) == []
    assert sync(airline, flight["id"], too_many[:500])["inserted"] == 500
    assert stock(airline, flight["id"])["A"]["sold"] == 500


def test_eight_devices_sending_the_same_batch_at_once_create_each_sale_once(airline: AirlineHandle) -> None:
    airline.product("X")
    airline.product("Y")
    airline.product("UNLOADED")
    flight = airline.flight(stock={"X": 5, "Y": 50})
    batch = [
        sale(f"race-{i:02d}", {"X": 1, "Y": 2} if i % 2 else {"UNLOADED": 1, "Y": 1}, seat=f"{i + 1}C")
        for i in range(20)
    ]
    barrier = threading.Barrier(8)

    def send(_index: int) -> httpx.Response:
        barrier.wait(timeout=30)
        return airline.client.post("/v1/sync/sales", json={"flight_id": flight["id"], "sales": batch})

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(send, range(8)))
    assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses if r.status_code != 200]
    answers = [r.json() for r in responses]
    assert sum(a["inserted"] for a in answers) == 20
    assert all(a["inserted"] + a["duplicates"] == 20 and a["rejected"] == 0 for a in answers)
    for index, entry in enumerate(batch):
        results = [a["results"][index] for a in answers]
        assert all(r["client_id"] == entry["client_id"] for r in results)
        assert [r["status"] for r in results].count("inserted") == 1, results
        assert len({r["order_id"] for r in results}) == 1, "every device is told the same order"
    assert len(orders(airline, flight["id"])) == 20
    sold = {sku: line["sold"] for sku, line in stock(airline, flight["id"]).items()}
    assert sold == {"X": 10, "Y": 30, "UNLOADED": 10}
    assert report(airline, flight["id"])["discrepancies"] == ["UNLOADED", "X"]


def test_devices_syncing_different_sales_of_the_same_products_at_once_lose_no_unit(airline: AirlineHandle) -> None:
    for sku in ("NEW", "X", "Y"):  # the unloaded product's stock row is created first, by racing inserts
        airline.product(sku)
    flight = airline.flight(stock={"X": 5, "Y": 5})
    batches = [
        [sale(f"dev{d}-{i}", {"X": 1, "Y": 1, "NEW": 1} if (d + i) % 2 else {"NEW": 1, "Y": 2}) for i in range(10)]
        for d in range(8)
    ]
    barrier = threading.Barrier(8)

    def send(device: int) -> dict[str, Any]:
        barrier.wait(timeout=30)
        for _attempt in range(20):
            response = airline.client.post("/v1/sync/sales", json={"flight_id": flight["id"], "sales": batches[device]})
            if response.status_code != 409:  # a lost lock race is answered 409 + Retry-After; resending is safe
                assert response.status_code == 200, response.text
                return response.json()
            assert_problem(response, 409, "conflict")
            assert response.headers["retry-after"]
        raise AssertionError("never synced")

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, range(8)))
    assert all((answer["inserted"], answer["duplicates"], answer["rejected"]) == (10, 0, 0) for answer in answers)
    sold = {sku: line["sold"] for sku, line in stock(airline, flight["id"]).items()}
    assert sold == {"X": 40, "Y": 120, "NEW": 80}
    assert len(orders(airline, flight["id"])) == 80


def test_a_sale_dated_outside_its_flights_window_or_in_the_future_is_rejected_alone(
    airline: AirlineHandle, server: LiveServer
) -> None:
    week_ago = datetime.now(UTC) - timedelta(days=7)
    backdate(server.settings, airline.code, week_ago, [("premium", week_ago)])
    airline.product("TEA")
    departs = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    flight = airline.flight(scheduled_departure=departs.isoformat(), stock={"TEA": 10})
    batch = [
        sale("w-2019", {"TEA": 1}, sold_at="2019-06-01T10:00:00Z"),
        sale("w-2030", {"TEA": 1}, sold_at="2030-06-01T10:00:00Z"),
        sale("w-days-before", {"TEA": 1}, sold_at=(departs - timedelta(days=3)).isoformat()),
        sale("w-soon", {"TEA": 1}, sold_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat()),
        sale("w-good", {"TEA": 2}, sold_at=(departs + timedelta(minutes=40)).isoformat()),
    ]
    answer = sync(airline, flight["id"], batch)
    assert (answer["inserted"], answer["rejected"]) == (1, 4)
    by_id = {r["client_id"]: r for r in answer["results"]}
    assert by_id["w-good"]["status"] == "inserted"
    for client_id in ("w-2019", "w-days-before"):
        assert by_id[client_id]["status"] == "rejected" and "sales window" in by_id[client_id]["reason"]
    for client_id in ("w-2030", "w-soon"):
        assert by_id[client_id]["status"] == "rejected" and "in the future" in by_id[client_id]["reason"]
    assert all(r["reason"] == r["error"]["detail"] for r in answer["results"] if r["status"] == "rejected")
    assert stock(airline, flight["id"])["TEA"]["sold"] == 2
    assert len(orders(airline, flight["id"])) == 1
    # Nor before the airline existed, although inside the window.
    fresh = airline.flight(scheduled_departure=departs.isoformat(), stock={"TEA": 1})
    backdate(server.settings, airline.code, datetime.now(UTC), [("premium", datetime.now(UTC))])
    early = sync(airline, fresh["id"], [sale("w-before-airline", {"TEA": 1}, sold_at=departs.isoformat())])
    assert early["rejected"] == 1 and "sales window" in early["results"][0]["reason"]


def test_a_client_id_resent_with_other_content_is_a_conflict_and_the_first_sale_stands(
    airline: AirlineHandle,
) -> None:
    airline.product("TEA")
    flight = airline.flight(stock={"TEA": 10})
    first = sale("c-1", {"TEA": 1})
    assert sync(airline, flight["id"], [first])["inserted"] == 1
    order_id = orders(airline, flight["id"])[0]["id"]
    changed = {**first, "items": [{"sku": "TEA", "quantity": 3}]}
    answer = sync(airline, flight["id"], [changed, sale("c-2", {"TEA": 1})])
    assert (answer["inserted"], answer["duplicates"], answer["conflicts"], answer["rejected"]) == (1, 0, 1, 0)
    conflict = answer["results"][0]
    assert (conflict["status"], conflict["order_id"]) == ("conflict", order_id)
    assert "other content" in conflict["reason"] and conflict["error"]["code"] == "client_id_conflict"
    assert sync(airline, flight["id"], [first])["duplicates"] == 1, "the same content again is a plain duplicate"
    assert stock(airline, flight["id"])["TEA"]["sold"] == 2
    assert airline.client.get(f"/v1/orders/{order_id}").json()["items"][0]["quantity"] == 1
