"""The outbox and the event log: an event is written in the transaction of the change it reports, and
`GET /v1/events` lists an airline's own events, oldest first, by type and page."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from skycart.events.service import prune, record
from skycart.platform.db import create_engine, create_sessionmaker, transaction, utcnow
from skycart.platform.tenancy import Tenant
from tests.conftest import AirlineHandle, LiveServer, assert_problem, order_body


def _events(airline: AirlineHandle, **params: Any) -> list[dict[str, Any]]:
    answer = airline.client.get("/v1/events", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def test_a_placed_order_has_one_order_created_event_carrying_the_order(airline: AirlineHandle) -> None:
    airline.product("TEA")
    flight = airline.flight(stock={"TEA": 5})
    placed = airline.order(flight["id"], {"TEA": 2})
    assert placed.status_code == 201, placed.text
    created = _events(airline, type="order.created")
    assert len(created) == 1
    event = created[0]
    assert event["data"] == placed.json(), "the event carries the order as the 201 answered it"
    assert event["airline"] == airline.code and len(event["id"]) == 26
    # A replay of the same key places nothing, and records nothing.
    key = "replayed-key"
    assert airline.order(flight["id"], {"TEA": 1}, key=key).status_code == 201
    assert airline.order(flight["id"], {"TEA": 1}, key=key).headers.get("idempotent-replayed") == "true"
    assert len(_events(airline, type="order.created")) == 2


def test_an_order_that_is_refused_or_rolled_back_records_nothing(airline: AirlineHandle) -> None:
    airline.product("TEA")
    flight = airline.flight(stock={"TEA": 1})
    assert_problem(airline.order(flight["id"], {"TEA": 2}), 409, "out_of_stock")
    assert_problem(airline.order(flight["id"], {"TEA": 1}, payment={"token": "tok_declined"}), 402, "payment_declined")
    assert_problem(airline.order(flight["id"], {"NOPE": 1}), 422, "validation_error")
    assert [e["type"] for e in _events(airline)] == ["plan.changed"], "only the fixture's plan change"


def test_delivering_and_cancelling_record_their_events_once(airline: AirlineHandle) -> None:
    airline.product("TEA")
    flight = airline.flight(stock={"TEA": 5})
    first = airline.order(flight["id"], {"TEA": 1}).json()
    second = airline.order(flight["id"], {"TEA": 1}).json()
    for _ in range(2):  # the second time is harmless, and no new fact
        assert airline.client.post(f"/v1/orders/{first['id']}/deliver").status_code == 200
        assert airline.client.post(f"/v1/orders/{second['id']}/cancel").status_code == 200
    assert [
        (e["type"], e["data"]["id"])
        for e in _events(airline)
        if e["type"].startswith("order.") and e["type"] != "order.created"
    ] == [
        ("order.delivered", first["id"]),
        ("order.cancelled", second["id"]),
    ]
    cancelled = _events(airline, type="order.cancelled")[0]["data"]
    assert cancelled["status"] == "cancelled"


def test_a_plan_change_is_an_event_of_that_airline_only(make_airline, admin: httpx.Client) -> None:
    airline, other = make_airline(plan="standard"), make_airline()
    seen_before = len(_events(other))
    assert admin.put(f"/admin/airlines/{airline.code}/plan", json={"plan": "premium"}).status_code == 200
    changed = _events(airline, type="plan.changed")
    assert [e["data"]["plan"]["code"] for e in changed] == ["standard", "premium"]
    assert len(_events(other)) == seen_before, "another airline sees none of these"
    assert all(e["airline"] == other.code for e in _events(other))


def test_the_log_pages_in_recorded_order_and_reads_on_after_an_event(airline: AirlineHandle) -> None:
    airline.product("TEA")
    flight = airline.flight(stock={"TEA": 10})
    for _ in range(5):
        assert airline.order(flight["id"], {"TEA": 1}).status_code == 201
    everything = [e["id"] for e in _events(airline)]
    assert everything == sorted(everything) and len(everything) == 6  # the plan change, then 5 orders
    seen, cursor = [], None
    while True:
        page = airline.client.get("/v1/events", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything
    assert [e["id"] for e in _events(airline, after=everything[2])] == everything[3:]
    assert_problem(airline.client.get("/v1/events", params={"type": "order.exploded"}), 422, "validation_error")


def test_the_event_log_needs_the_webhooks_feature(make_airline) -> None:
    basic = make_airline(plan="basic")
    body = assert_problem(basic.client.get("/v1/events"), 403, "feature_not_in_plan")
    assert body["feature"] == "webhooks"


def test_events_older_than_the_retention_are_pruned(airline: AirlineHandle, server: LiveServer) -> None:
    tenant = Tenant(airline.data["id"], airline.code)

    async def scenario() -> int:
        engine = create_engine(server.settings)
        sessions = create_sessionmaker(engine)
        try:
            async with transaction(sessions) as session:
                old = utcnow() - timedelta(days=server.settings.events_retention_days, minutes=1)
                await record(session, tenant, "stock.low", {"sku": "OLD"}, now=old)
                await record(session, tenant, "stock.low", {"sku": "NEW"})
            return await prune(sessions, server.settings)
        finally:
            await engine.dispose()

    assert asyncio.run(scenario()) >= 1
    assert [e["data"]["sku"] for e in _events(airline, type="stock.low")] == ["NEW"]


def test_an_offline_sale_is_an_order_created_once_however_often_it_is_sent(airline: AirlineHandle) -> None:
    airline.product("TEA")
    flight = airline.flight(stock={"TEA": 5})
    sold_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    batch = {
        "flight_id": flight["id"],
        "sales": [
            {
                "client_id": "dev1-0001",
                "seat": "12C",
                "sold_at": sold_at,
                "currency": "EUR",
                "items": [{"sku": "TEA", "quantity": 1}],
                "payment": {"method": "cash"},
            }
        ],
    }
    first = airline.client.post("/v1/sync/sales", json=batch).json()
    again = airline.client.post("/v1/sync/sales", json=batch).json()
    assert [r["status"] for r in first["results"] + again["results"]] == ["inserted", "duplicate"]
    created = _events(airline, type="order.created")
    assert [e["data"]["id"] for e in created] == [first["results"][0]["order_id"]]
    assert created[0]["data"]["status"] == "paid_offline"


def test_stock_low_is_recorded_once_by_the_order_that_crosses_the_threshold(make_airline) -> None:
    airline = make_airline(settings={"stock_low_threshold": 3})
    airline.product("TEA")
    airline.product("COF")
    flight = airline.flight(stock={"TEA": 6, "COF": 50})
    for quantity in (2, 2, 1):  # 6 -> 4 -> 2 (crosses 3) -> 1
        assert airline.order(flight["id"], {"TEA": quantity, "COF": 1}).status_code == 201
    low = _events(airline, type="stock.low")
    assert [e["data"] for e in low] == [{"flight_id": flight["id"], "sku": "TEA", "remaining": 2, "threshold": 3}]


def test_stock_low_is_recorded_by_concurrent_orders_exactly_once(make_airline) -> None:
    airline = make_airline(settings={"stock_low_threshold": 5})
    airline.product("TEA")
    flight = airline.flight(stock={"TEA": 12})

    async def place_all() -> list[int]:
        async with httpx.AsyncClient(base_url=str(airline.client.base_url), headers=airline.client.headers) as client:
            bodies = [
                client.post(
                    "/v1/orders",
                    json=order_body(flight["id"], {"TEA": 1}, currency="EUR"),
                    headers={"Idempotency-Key": f"concurrent-{n}"},
                )
                for n in range(12)
            ]
            return [answer.status_code for answer in await asyncio.gather(*bodies)]

    assert asyncio.run(place_all()) == [201] * 12
    low = _events(airline, type="stock.low")
    assert [e["data"]["remaining"] for e in low] == [4]
