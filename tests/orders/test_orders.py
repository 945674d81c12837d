from __future__ import annotations

import uuid
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import AirlineHandle, assert_problem, order_body


def _stock(airline: AirlineHandle, flight_id: str) -> dict[str, dict]:
    items = airline.client.get(f"/v1/flights/{flight_id}/inventory").json()["items"]
    return {item["sku"]: item for item in items}


def _orders(airline: AirlineHandle, flight_id: str) -> list[dict]:
    return airline.client.get("/v1/orders", params={"flight_id": flight_id}).json()["items"]


def test_order_takes_stock_and_is_paid(airline: AirlineHandle) -> None:
    airline.product("WATER", prices={"EUR": "3.00", "USD": "3.30"})
    airline.product("CHIPS", prices={"EUR": "2.75", "USD": "3.00"})
    flight = airline.flight(stock={"WATER": 10, "CHIPS": 10})
    response = airline.order(flight["id"], {"WATER": 2, "CHIPS": 1}, currency="USD")
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "paid" and order["currency"] == "USD" and order["seat"] == "12C"
    assert [(i["sku"], i["quantity"], i["unit_price"], i["line_total"]) for i in order["items"]] == [
        ("WATER", 2, "3.30", "6.60"),
        ("CHIPS", 1, "3.00", "3.00"),
    ]
    assert order["total"] == "9.60"
    assert _stock(airline, flight["id"])["WATER"]["sold"] == 2
    assert airline.client.get(f"/v1/orders/{order['id']}").json() == order


def test_same_sku_twice_in_one_order_is_one_line(airline: AirlineHandle) -> None:
    airline.product("TEA")
    flight = airline.flight(stock={"TEA": 5})
    body = order_body(flight["id"], {}, currency="EUR")
    body["items"] = [{"sku": "TEA", "quantity": 1}, {"sku": "TEA", "quantity": 2}]
    order = airline.client.post("/v1/orders", json=body, headers={"Idempotency-Key": "k1"}).json()
    assert order["items"] == [{"sku": "TEA", "quantity": 3, "unit_price": "4.50", "line_total": "13.50"}]


def test_not_enough_stock_is_out_of_stock_and_takes_nothing(airline: AirlineHandle) -> None:
    airline.product("A")
    airline.product("B")
    flight = airline.flight(stock={"A": 5, "B": 1})
    assert_problem(airline.order(flight["id"], {"A": 2, "B": 2}), 409, "out_of_stock")
    stock = _stock(airline, flight["id"])
    assert stock["A"]["sold"] == 0 and stock["B"]["sold"] == 0, "the whole order is rolled back"
    assert _orders(airline, flight["id"]) == []


def test_product_not_loaded_on_the_flight_is_out_of_stock(airline: AirlineHandle) -> None:
    airline.product("A")
    airline.product("NOT-LOADED")
    flight = airline.flight(stock={"A": 5})
    assert_problem(airline.order(flight["id"], {"NOT-LOADED": 1}), 409, "out_of_stock")


def test_declined_payment_makes_no_order_and_takes_no_stock(airline: AirlineHandle) -> None:
    airline.product("A")
    flight = airline.flight(stock={"A": 5})
    assert_problem(airline.order(flight["id"], {"A": 1}, payment={"token": "tok_declined"}), 402, "payment_declined")
    assert_problem(airline.order(flight["id"], {"A": 1}, payment={"token": "tok_unknown"}), 402, "payment_declined")
    assert _stock(airline, flight["id"])["A"]["sold"] == 0
    assert _orders(airline, flight["id"]) == []


def test_offline_payment_is_paid_offline(airline: AirlineHandle) -> None:
    airline.product("A")
    flight = airline.flight(stock={"A": 5})
    order = airline.order(flight["id"], {"A": 1}, payment={"token": "tok_offline"})
    assert order.status_code == 201 and order.json()["status"] == "paid_offline"


def test_age_restricted_item_needs_age_confirmation(airline: AirlineHandle) -> None:
    airline.product("BEER", min_age=18, restrictions=["alcohol"])
    flight = airline.flight(stock={"BEER": 5})
    assert_problem(airline.order(flight["id"], {"BEER": 1}), 422, "restricted_item")
    ok = airline.order(flight["id"], {"BEER": 1}, passenger={"age_confirmed": True, "name": "A. Passenger"})
    assert ok.status_code == 201, ok.text


def test_duty_free_is_sold_only_on_international_flights(airline: AirlineHandle) -> None:
    airline.product("PERFUME", restrictions=["duty_free"])
    domestic = airline.flight(international=False, stock={"PERFUME": 5})
    international = airline.flight(international=True, stock={"PERFUME": 5})
    assert_problem(airline.order(domestic["id"], {"PERFUME": 1}), 422, "restricted_item")
    assert airline.order(international["id"], {"PERFUME": 1}).status_code == 201


def test_per_seat_limit_counts_earlier_orders_but_not_cancelled_ones(airline: AirlineHandle, admin) -> None:
    admin.patch(f"/admin/airlines/{airline.code}", json={"settings": {"seat_limits": {"alcohol": 2}}})
    airline.product("WINE", min_age=18, restrictions=["alcohol"])
    flight = airline.flight(stock={"WINE": 20})
    adult = {"age_confirmed": True}
    first = airline.order(flight["id"], {"WINE": 2}, passenger=adult).json()
    body = assert_problem(airline.order(flight["id"], {"WINE": 1}, passenger=adult), 422, "limit_exceeded")
    assert body["limit"] == 2 and body["already"] == 2
    assert airline.order(flight["id"], {"WINE": 1}, passenger=adult, seat="14A").status_code == 201
    assert_problem(airline.order(flight["id"], {"WINE": 3}, passenger=adult, seat="15A"), 422, "limit_exceeded")
    airline.client.post(f"/v1/orders/{first['id']}/cancel")
    assert airline.order(flight["id"], {"WINE": 2}, passenger=adult).status_code == 201


def test_unknown_inactive_or_unpriced_products_are_validation_errors(make_airline) -> None:
    airline = make_airline(currencies=["EUR", "USD"])
    airline.product("OFF", active=False)
    airline.product("EUR-ONLY", prices={"EUR": "1.00"})
    flight = airline.flight(stock={"OFF": 5, "EUR-ONLY": 5})
    assert_problem(airline.order(flight["id"], {"NOPE": 1}), 422, "validation_error")
    assert_problem(airline.order(flight["id"], {"OFF": 1}), 422, "validation_error")
    assert_problem(airline.order(flight["id"], {"EUR-ONLY": 1}, currency="USD"), 422, "validation_error")
    assert_problem(airline.order(flight["id"], {"EUR-ONLY": 1}, currency="GBP"), 422, "validation_error")
    assert_problem(airline.order(flight["id"], {"EUR-ONLY": 1}, seat="row 12"), 422, "validation_error")
    assert_problem(airline.order("01HZZZZZZZZZZZZZZZZZZZZZZZ", {"EUR-ONLY": 1}), 404, "not_found")
    assert _stock(airline, flight["id"])["EUR-ONLY"]["sold"] == 0


def test_missing_idempotency_key_is_refused(airline: AirlineHandle) -> None:
    airline.product("A")
    flight = airline.flight(stock={"A": 5})
    body = order_body(flight["id"], {"A": 1}, currency="EUR")
    assert_problem(airline.client.post("/v1/orders", json=body), 400, "idempotency_key_required")
    assert_problem(
        airline.client.post("/v1/orders", json=body, headers={"Idempotency-Key": ""}), 400, "idempotency_key_required"
    )
    assert _orders(airline, flight["id"]) == []


def test_repeated_idempotency_key_replays_the_first_answer(airline: AirlineHandle) -> None:
    airline.product("A")
    flight = airline.flight(stock={"A": 5})
    key = uuid.uuid4().hex
    first = airline.order(flight["id"], {"A": 1}, key=key)
    again = airline.order(flight["id"], {"A": 1}, key=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    assert len(_orders(airline, flight["id"])) == 1
    assert _stock(airline, flight["id"])["A"]["sold"] == 1


def test_idempotency_key_with_another_body_is_refused(airline: AirlineHandle) -> None:
    airline.product("A")
    flight = airline.flight(stock={"A": 5})
    key = uuid.uuid4().hex
    assert airline.order(flight["id"], {"A": 1}, key=key).status_code == 201
    assert_problem(airline.order(flight["id"], {"A": 2}, key=key), 422, "idempotency_key_reused")
    assert _stock(airline, flight["id"])["A"]["sold"] == 1


def test_a_declined_answer_is_replayed_for_the_same_key(airline: AirlineHandle) -> None:
    airline.product("A")
    flight = airline.flight(stock={"A": 5})
    key = uuid.uuid4().hex
    declined = {"token": "tok_declined"}
    first = assert_problem(airline.order(flight["id"], {"A": 1}, key=key, payment=declined), 402, "payment_declined")
    assert (
        assert_problem(airline.order(flight["id"], {"A": 1}, key=key, payment=declined), 402, "payment_declined")
        == first
    )


def test_deliver_then_cancel_is_refused(airline: AirlineHandle) -> None:
    airline.product("A")
    flight = airline.flight(stock={"A": 5})
    order = airline.order(flight["id"], {"A": 1}).json()
    delivered = airline.client.post(f"/v1/orders/{order['id']}/deliver")
    assert delivered.status_code == 200 and delivered.json()["status"] == "delivered"
    assert delivered.json()["delivered_at"]
    assert airline.client.post(f"/v1/orders/{order['id']}/deliver").json()["status"] == "delivered"
    assert_problem(airline.client.post(f"/v1/orders/{order['id']}/cancel"), 409, "invalid_status_transition")
    assert _stock(airline, flight["id"])["A"]["sold"] == 1


def test_cancel_restocks_once_and_cancelled_cannot_be_delivered(airline: AirlineHandle) -> None:
    airline.product("A")
    flight = airline.flight(stock={"A": 5})
    order = airline.order(flight["id"], {"A": 3}, payment={"token": "tok_offline"}).json()
    cancelled = airline.client.post(f"/v1/orders/{order['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert airline.client.post(f"/v1/orders/{order['id']}/cancel").json()["status"] == "cancelled"
    assert _stock(airline, flight["id"])["A"]["sold"] == 0, "restocked exactly once"
    assert_problem(airline.client.post(f"/v1/orders/{order['id']}/deliver"), 409, "invalid_status_transition")


def test_orders_are_listed_by_flight_and_seat(airline: AirlineHandle) -> None:
    airline.product("A")
    flight = airline.flight(stock={"A": 50})
    other = airline.flight(stock={"A": 50})
    ids = [airline.order(flight["id"], {"A": 1}, seat=seat).json()["id"] for seat in ("1A", "1A", "2B")]
    airline.order(other["id"], {"A": 1}, seat="1A")
    by_seat = airline.client.get("/v1/orders", params={"flight_id": flight["id"], "seat": "1A"}).json()
    assert [o["id"] for o in by_seat["items"]] == ids[:2]
    page = airline.client.get("/v1/orders", params={"flight_id": flight["id"], "limit": 2}).json()
    rest = airline.client.get("/v1/orders", params={"flight_id": flight["id"], "cursor": page["next_cursor"]}).json()
    assert [o["id"] for o in page["items"] + rest["items"]] == ids
    assert_problem(airline.client.get("/v1/orders/01HZZZZZZZZZZZZZZZZZZZZZZZ"), 404, "not_found")


def test_flight_report_shows_loaded_sold_remaining_and_revenue(make_airline) -> None:
    airline = make_airline(currencies=["EUR", "JPY"])
    airline.product("A", prices={"EUR": "2.50", "JPY": "400"})
    flight = airline.flight(stock={"A": 10})
    airline.order(flight["id"], {"A": 2}, currency="EUR")
    airline.order(flight["id"], {"A": 1}, currency="JPY")
    cancelled = airline.order(flight["id"], {"A": 3}, currency="EUR").json()
    airline.client.post(f"/v1/orders/{cancelled['id']}/cancel")
    report = airline.client.get(f"/v1/flights/{flight['id']}/report").json()
    assert report["items"] == [
        {"sku": "A", "name": "Product A", "loaded": 10, "sold": 3, "remaining": 7, "discrepancy": 0}
    ]
    assert report["discrepancies"] == []
    assert report["revenue"] == {"EUR": "5.00", "JPY": "400"}
    assert report["orders"] == 2


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.tuples(st.integers(0, 99_999), st.integers(1, 99)), min_size=1, max_size=6))
def test_order_total_is_the_exact_sum_of_its_lines(airline: AirlineHandle, lines: list[tuple[int, int]]) -> None:
    stock, expected = {}, Decimal(0)
    suffix = uuid.uuid4().hex[:8]
    for index, (cents, quantity) in enumerate(lines):
        sku = f"P{index}-{suffix}"
        price = f"{cents // 100}.{cents % 100:02d}"
        airline.product(sku, prices={"EUR": price})
        stock[sku] = quantity
        expected += Decimal(price) * quantity
    flight = airline.flight(stock=stock)
    order = airline.order(flight["id"], stock)
    assert order.status_code == 201, order.text
    body = order.json()
    assert Decimal(body["total"]) == expected
    assert sum(Decimal(line["line_total"]) for line in body["items"]) == expected
    assert all(Decimal(li["unit_price"]) * li["quantity"] == Decimal(li["line_total"]) for li in body["items"])


def test_skus_and_idempotency_keys_are_case_sensitive(airline: AirlineHandle) -> None:
    airline.product("abc", prices={"EUR": "1.00"})
    airline.product("ABC", prices={"EUR": "2.00"})
    assert airline.client.get("/v1/products/abc").json()["prices"]["EUR"] == "1.00"
    flight = airline.flight(stock={"abc": 5, "ABC": 5})
    lower = airline.order(flight["id"], {"abc": 1}, key="order-key")
    upper = airline.order(flight["id"], {"ABC": 1}, key="ORDER-KEY")
    assert lower.status_code == upper.status_code == 201, upper.text
    assert lower.json()["id"] != upper.json()["id"]
