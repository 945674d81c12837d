"""A payment provider's round trip (the sandbox's tok_slow: 2 s) holds no stock row: other buyers of the
same item are served meanwhile, and stock gone during the payment refuses that order alone."""

from __future__ import annotations

import threading
import time
import uuid

import httpx

from tests.conftest import AirlineHandle, order_body


def _order(airline: AirlineHandle, flight_id: str, token: str, seat: str) -> httpx.Response:
    body = order_body(flight_id, {"TEA": 1}, currency="EUR", payment={"token": token}, seat=seat)
    return airline.client.post("/v1/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})


def _while_a_slow_payment_runs(airline: AirlineHandle, flight_id: str) -> tuple[httpx.Response, httpx.Response, float]:
    slow: list[httpx.Response] = []
    paying = threading.Thread(target=lambda: slow.append(_order(airline, flight_id, "tok_slow", "1A")))
    paying.start()
    time.sleep(0.5)  # the slow buyer's payment is being authorized now
    started = time.monotonic()
    fast = _order(airline, flight_id, "tok_ok", "2B")
    took = time.monotonic() - started
    paying.join(timeout=30)
    return slow[0], fast, took


def test_other_buyers_of_the_same_item_are_not_kept_waiting_by_a_slow_payment(airline: AirlineHandle) -> None:
    airline.product("TEA")
    flight = airline.flight(stock={"TEA": 10})
    slow, fast, took = _while_a_slow_payment_runs(airline, flight["id"])
    print(f"\nan order of the same item during a 2 s payment took {took:.3f} s")
    assert fast.status_code == 201 and took < 1.0, (fast.text, took)
    assert slow.status_code == 201, slow.text
    [line] = airline.client.get(f"/v1/flights/{flight['id']}/inventory").json()["items"]
    assert line["sold"] == 2


def test_stock_gone_during_a_payment_refuses_that_order_alone(airline: AirlineHandle) -> None:
    airline.product("TEA")
    flight = airline.flight(stock={"TEA": 1})
    slow, fast, _took = _while_a_slow_payment_runs(airline, flight["id"])
    assert fast.status_code == 201, fast.text
    assert (slow.status_code, slow.json()["code"]) == (409, "out_of_stock")
    [line] = airline.client.get(f"/v1/flights/{flight['id']}/inventory").json()["items"]
    assert line["sold"] == 1
    assert len(airline.client.get("/v1/orders", params={"flight_id": flight["id"]}).json()["items"]) == 1
