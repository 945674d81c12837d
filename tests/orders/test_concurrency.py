"""Concurrent buyers over real HTTP: nothing oversold, nothing ordered twice."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import AirlineHandle, order_body


def _all_at_once(count: int, send) -> list[httpx.Response]:
    barrier = threading.Barrier(count)

    def _one(index: int) -> httpx.Response:
        barrier.wait(timeout=30)
        return send(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(_one, range(count)))


def test_thirty_buyers_of_the_last_five_units_make_exactly_five_orders(airline: AirlineHandle) -> None:
    airline.product("LAST")
    flight = airline.flight(stock={"LAST": 5})
    responses = _all_at_once(30, lambda i: airline.order(flight["id"], {"LAST": 1}, seat=f"{i + 1}A", key=f"buyer-{i}"))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 5, 409: 25}, statuses
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"out_of_stock"}
    stock = airline.client.get(f"/v1/flights/{flight['id']}/inventory").json()["items"][0]
    assert (stock["sold"], stock["remaining"]) == (5, 0)
    orders = airline.client.get("/v1/orders", params={"flight_id": flight["id"]}).json()["items"]
    assert len(orders) == 5


def test_twelve_concurrent_requests_with_one_key_make_one_order(airline: AirlineHandle) -> None:
    airline.product("TEA")
    flight = airline.flight(stock={"TEA": 50})
    key = uuid.uuid4().hex
    body = order_body(flight["id"], {"TEA": 1}, currency="EUR")
    responses = _all_at_once(
        12, lambda _i: airline.client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
    )
    created = [r.json() for r in responses if r.status_code == 201]
    in_progress = [r for r in responses if r.status_code == 409]
    assert len(created) + len(in_progress) == 12, [r.text for r in responses]
    assert created, "at least the first request succeeds"
    assert len({order["id"] for order in created}) == 1, "every success is the same order"
    assert all(r.json()["code"] == "idempotency_in_progress" and r.headers["retry-after"] for r in in_progress)
    orders = airline.client.get("/v1/orders", params={"flight_id": flight["id"]}).json()["items"]
    assert len(orders) == 1
    stock = airline.client.get(f"/v1/flights/{flight['id']}/inventory").json()["items"][0]
    assert stock["sold"] == 1
    replay = airline.client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
    assert replay.status_code == 201 and replay.json()["id"] == created[0]["id"]


def test_concurrent_multi_item_orders_in_opposite_order_neither_deadlock_nor_oversell(
    airline: AirlineHandle,
) -> None:
    airline.product("X")
    airline.product("Y")
    flight = airline.flight(stock={"X": 10, "Y": 10})

    def _send(i: int) -> httpx.Response:
        items = {"X": 1, "Y": 1} if i % 2 else {"Y": 1, "X": 1}
        return airline.order(flight["id"], items, seat=f"{i + 1}C")

    responses = _all_at_once(16, _send)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 10, 409: 6}, [r.text for r in responses if r.status_code not in (201, 409)]
    stock = {i["sku"]: i for i in airline.client.get(f"/v1/flights/{flight['id']}/inventory").json()["items"]}
    assert stock["X"]["sold"] == stock["Y"]["sold"] == 10


def test_concurrent_orders_from_one_seat_respect_the_seat_limit(airline: AirlineHandle, admin: httpx.Client) -> None:
    admin.patch(f"/admin/airlines/{airline.code}", json={"settings": {"seat_limits": {"alcohol": 2}}})
    airline.product("BEER", min_age=18, restrictions=["alcohol"])
    flight = airline.flight(stock={"BEER": 50})
    responses = _all_at_once(
        8, lambda i: airline.order(flight["id"], {"BEER": 1}, seat="7D", passenger={"age_confirmed": True})
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 2, 422: 6}, statuses
