"""Tenant isolation: another airline's resource is answered 404 `not_found`, never 403, and is left untouched.

Airline A owns a product, an international flight with loaded stock and a paid order; airline B has
its own key (and a product and flight of its own). Every airline endpoint that names one of A's
resources is called with B's key. `ATTEMPTS` is the table: a new endpoint that takes a resource id
must get a row, and `test_every_parametrized_v1_route_has_an_isolation_row` fails until it does.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from skycart.catalog.models import Product, ProductImage
from skycart.cli import run_in_transaction
from skycart.events.models import Event, WebhookDelivery
from skycart.platform.db import new_id
from tests.conftest import AirlineHandle, LiveServer, assert_problem, order_body, product_body

SKU = "iso-water-01"
B_SKU = "bravo-snack-1"
CURRENCIES = ["EUR", "USD"]
# Resources that exist for nobody, shaped like real ones (same lengths), to compare 404s with.
MISSING = {
    "sku": "iso-water-99",
    "flight_id": "01J00000000000000000000001",
    "order_id": "01J00000000000000000000002",
    "image_id": "01J00000000000000000000003",
    "webhook_id": "01J00000000000000000000004",
    "delivery_id": "01J00000000000000000000005",
}

PRODUCT_REPLACEMENT = {
    "name": {"en": "Taken over"},
    "description": {"en": "B's version"},
    "category": "stolen",
    "prices": {"EUR": "0.01"},
    "active": False,
}

OFFLINE_SALE = {
    "client_id": "iso-sale-1",
    "seat": None,
    "sold_at": "2026-11-26T09:15:00+02:00",
    "currency": "EUR",
    "items": [{"sku": "{sku}", "quantity": 50}],  # would oversell A's stock
    "payment": {"method": "cash"},
}

# (method, path template, body). `{sku}`, `{flight_id}`, `{order_id}` are filled in with A's ids,
# in the path and in any string of the body. Every row is expected to answer B with 404 not_found.
ATTEMPTS: list[tuple[str, str, Any]] = [
    ("GET", "/v1/products/{sku}", None),
    ("PUT", "/v1/products/{sku}", PRODUCT_REPLACEMENT),
    ("DELETE", "/v1/products/{sku}", None),
    ("POST", "/v1/products/{sku}/images", None),
    ("DELETE", "/v1/products/{sku}/images/{image_id}", None),
    ("GET", "/v1/flights/{flight_id}", None),
    ("GET", "/v1/flights/{flight_id}/inventory", None),
    ("PUT", "/v1/flights/{flight_id}/inventory", {"items": []}),  # would unload everything
    ("PUT", "/v1/flights/{flight_id}/inventory", {"items": [{"sku": "{sku}", "quantity": 0}]}),
    ("GET", "/v1/flights/{flight_id}/menu", None),
    ("GET", "/v1/flights/{flight_id}/report", None),
    ("GET", "/v1/orders/{order_id}", None),
    ("POST", "/v1/orders/{order_id}/deliver", None),
    ("POST", "/v1/orders/{order_id}/cancel", None),
    ("POST", "/v1/orders", order_body("{flight_id}", {"{sku}": 1}, currency="EUR")),
    ("POST", "/v1/orders", order_body("{flight_id}", {B_SKU: 1}, currency="EUR")),
    ("POST", "/v1/sync/sales", {"flight_id": "{flight_id}", "sales": [OFFLINE_SALE]}),
    ("GET", "/v1/webhooks/{webhook_id}", None),
    ("PATCH", "/v1/webhooks/{webhook_id}", {"enabled": False, "url": "http://127.0.0.1:9/taken"}),
    ("DELETE", "/v1/webhooks/{webhook_id}", None),
    ("POST", "/v1/webhooks/{webhook_id}/secret", None),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries", None),
    ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", None),
]

# Parametrized by something other than a resource of the caller's (a month): each answers the caller's own.
OWN_ONLY = {("GET", "/v1/statements/{month}")}

# What A reads of its own data; compared byte for byte before and after B's attempts.
A_VIEWS = [
    "/v1/products/{sku}",
    "/v1/products",
    "/v1/flights/{flight_id}",
    "/v1/flights",
    "/v1/flights/{flight_id}/inventory",
    "/v1/flights/{flight_id}/menu",
    "/v1/flights/{flight_id}/report",
    "/v1/orders/{order_id}",
    "/v1/orders?flight_id={flight_id}",
    "/v1/webhooks/{webhook_id}",
    "/v1/webhooks/{webhook_id}/deliveries",
    "/v1/events",
]


@dataclass
class World:
    a: AirlineHandle
    b: AirlineHandle
    ids: dict[str, str]  # A's sku, flight_id, order_id, image_id, webhook_id and delivery_id
    b_flight_id: str


def add_image_row(server: LiveServer, airline_id: str, sku: str) -> str:
    """An image of A's product, written straight to the database (the API answers from the row, not the files)."""

    async def _add(session: Any) -> str:
        product = (
            await session.execute(select(Product).where(Product.airline_id == airline_id, Product.sku == sku))
        ).scalar_one()
        folder = f"airlines/{airline_id}/products/{product.id}/01J00000000000000000000009"
        image = ProductImage(
            airline_id=airline_id,
            product_id=product.id,
            position=1,
            content_type="image/png",
            width=1,
            height=1,
            size_bytes=67,
            storage_keys={
                "original": f"{folder}/original.png",
                "640": f"{folder}/640.webp",
                "160": f"{folder}/160.webp",
            },
        )
        session.add(image)
        await session.flush()
        return image.id

    return run_in_transaction(server.settings, _add)


def add_delivery_row(server: LiveServer, airline_id: str, webhook_id: str) -> str:
    """A failed delivery of one of A's events to A's endpoint, written straight to the database."""

    async def _add(session: Any) -> str:
        now = datetime.now(UTC)
        event = Event(id=new_id(), airline_id=airline_id, type="plan.changed", data={}, created_at=now, dispatched=True)
        session.add(event)
        await session.flush()
        delivery = WebhookDelivery(
            airline_id=airline_id,
            endpoint_id=webhook_id,
            event_id=event.id,
            event_type=event.type,
            ordering_key=event.id,
            status="failed",
            attempts=8,
            next_attempt_at=now,
            created_at=now,
        )
        session.add(delivery)
        await session.flush()
        return delivery.id

    return run_in_transaction(server.settings, _add)


@pytest.fixture
def world(server: LiveServer, make_airline: Any) -> World:
    a = make_airline(name="Alpha Isolation Air", currencies=CURRENCIES)
    b = make_airline(name="Bravo Air", currencies=CURRENCIES)
    a.product(SKU)
    image_id = add_image_row(server, a.data["id"], SKU)
    flight = a.flight(international=True, stock={SKU: 10})
    placed = a.order(flight["id"], {SKU: 2})
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["status"] == "paid"
    # Subscribed to an event nothing in these tests records: its deliveries are only the one below.
    webhook = a.client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hooks", "events": ["flight.closed"]})
    assert webhook.status_code == 201, webhook.text
    delivery_id = add_delivery_row(server, a.data["id"], webhook.json()["id"])
    b.product(B_SKU)
    b_flight = b.flight(international=True, stock={B_SKU: 5})
    ids = {
        "sku": SKU,
        "flight_id": flight["id"],
        "order_id": order["id"],
        "image_id": image_id,
        "webhook_id": webhook.json()["id"],
        "delivery_id": delivery_id,
    }
    return World(a, b, ids, b_flight["id"])


def fill(template: Any, ids: dict[str, str]) -> Any:
    """The template with every `{name}` in its strings (and dict keys) replaced by ids[name]."""
    if isinstance(template, str):
        return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), m.group(0)), template)
    if isinstance(template, dict):
        return {fill(k, ids): fill(v, ids) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, ids) for v in template]
    return template


def attempt(client: httpx.Client, method: str, path: str, body: Any, ids: dict[str, str]) -> httpx.Response:
    return client.request(
        method,
        fill(path, ids),
        json=fill(body, ids) if body is not None else None,
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )


def snapshot(world: World) -> dict[str, bytes]:
    views = {}
    for view in A_VIEWS:
        response = world.a.client.get(fill(view, world.ids))
        assert response.status_code == 200, (view, response.text)
        views[view] = response.content
    return views


def without(text: str, ids: dict[str, str]) -> str:
    """The text with the references the caller itself sent blanked out."""
    for value in ids.values():
        text = text.replace(value, "<ref>")
    return text


def row_id(row: tuple[str, str, Any]) -> str:
    return f"{row[0]} {row[1]}"  # pytest numbers repeated ids


@pytest.mark.parametrize(("method", "path", "body"), ATTEMPTS, ids=[row_id(r) for r in ATTEMPTS])
def test_other_airlines_resource_is_not_found_and_untouched(world: World, method: str, path: str, body: Any) -> None:
    before = snapshot(world)
    response = attempt(world.b.client, method, path, body, world.ids)
    assert_problem(response, 404, "not_found")
    text = without(response.text, world.ids)
    for secret in (world.a.code, world.a.data["id"], world.a.data["name"]):
        assert secret not in text, f"the 404 leaks airline A ({secret!r}): {response.text}"
    assert snapshot(world) == before


@pytest.mark.parametrize(("method", "path", "body"), ATTEMPTS, ids=[row_id(r) for r in ATTEMPTS])
def test_404_for_other_airline_is_indistinguishable_from_missing(
    world: World, method: str, path: str, body: Any
) -> None:
    foreign = attempt(world.b.client, method, path, body, world.ids)
    missing = attempt(world.b.client, method, path, body, MISSING)
    assert_problem(missing, 404, "not_found")
    assert_problem(foreign, 404, "not_found")
    assert foreign.headers["content-type"] == missing.headers["content-type"]
    foreign_body = json.loads(without(foreign.text, world.ids))
    missing_body = json.loads(without(missing.text, MISSING))
    assert foreign_body == missing_body
    assert foreign_body["title"] == missing_body["title"] == "Not found"


def test_a_statement_is_the_callers_own_and_never_shows_another_airlines_sales(world: World) -> None:
    month = datetime.now(UTC).strftime("%Y-%m")
    mine = world.a.client.get(f"/v1/statements/{month}")
    assert mine.status_code == 200, mine.text
    assert mine.json()["airline"] == world.a.code and mine.json()["gmv"] == {"EUR": "9.00"}
    before = snapshot(world)
    for form in ("json", "csv"):
        theirs = world.b.client.get(f"/v1/statements/{month}", params={"format": form})
        assert theirs.status_code == 200, theirs.text
        for secret in (world.a.code, world.a.data["id"], "9.00"):
            assert secret not in theirs.text, f"B's statement shows A's {secret!r}: {theirs.text}"
    assert world.b.client.get(f"/v1/statements/{month}").json()["gmv"] == {}
    assert snapshot(world) == before


def test_all_attempts_together_leave_a_byte_for_byte_unchanged(world: World) -> None:
    before = snapshot(world)
    for method, path, body in ATTEMPTS:
        assert_problem(attempt(world.b.client, method, path, body, world.ids), 404, "not_found")
    imported = world.b.client.post("/v1/products:import", json=[product_body(SKU, CURRENCIES, category="b")])
    assert imported.status_code == 200, imported.text
    for method, path, body in ATTEMPTS:  # now B owns a product with A's sku: the rest must still be 404
        if "{sku}" not in path:
            assert_problem(attempt(world.b.client, method, path, body, world.ids), 404, "not_found")
    assert snapshot(world) == before
    assert world.a.client.get(f"/v1/orders/{world.ids['order_id']}").json()["status"] == "paid"


def test_import_of_a_sku_another_airline_owns_creates_an_own_product(world: World) -> None:
    before = snapshot(world)
    row = product_body(SKU, CURRENCIES, name={"en": "Bravo water"}, prices={"EUR": "9.99"}, category="bravo")
    first = world.b.client.post("/v1/products:import", json=[row])
    assert first.status_code == 200, first.text
    assert first.json() == {"created": 1, "updated": 0, "total": 1}, "A's product must not count as B's"
    again = world.b.client.post("/v1/products:import", json=[row])
    assert again.status_code == 200, again.text
    assert again.json() == {"created": 0, "updated": 1, "total": 1}
    mine = world.b.client.get(f"/v1/products/{SKU}")
    assert mine.status_code == 200, mine.text
    assert mine.json()["name"] == {"en": "Bravo water"} and mine.json()["prices"] == {"EUR": "9.99"}
    assert snapshot(world) == before
    # B's copy is B's alone: replacing and deleting it leaves A's product where it was.
    replaced = world.b.client.put(f"/v1/products/{SKU}", json=PRODUCT_REPLACEMENT)
    assert replaced.status_code == 200, replaced.text
    assert world.b.client.delete(f"/v1/products/{SKU}").status_code == 204
    assert_problem(world.b.client.get(f"/v1/products/{SKU}"), 404, "not_found")
    assert snapshot(world) == before


def test_lists_never_show_another_airlines_rows(world: World) -> None:
    b = world.b.client
    by_flight = b.get("/v1/orders", params={"flight_id": world.ids["flight_id"]})
    assert by_flight.status_code == 200, by_flight.text
    assert by_flight.json() == {"items": [], "next_cursor": None}
    assert b.get("/v1/orders").json()["items"] == []
    assert [p["sku"] for p in b.get("/v1/products").json()["items"]] == [B_SKU]
    assert [f["id"] for f in b.get("/v1/flights").json()["items"]] == [world.b_flight_id]
    assert [f["id"] for f in b.get("/v1/flights", params={"limit": 1}).json()["items"]] == [world.b_flight_id]
    assert b.get("/v1/airline").json()["code"] == world.b.code
    # ...while A sees its own rows, so the empty lists above are isolation, not an empty database.
    a = world.a.client
    assert [o["id"] for o in a.get("/v1/orders").json()["items"]] == [world.ids["order_id"]]
    assert [p["sku"] for p in a.get("/v1/products").json()["items"]] == [SKU]
    assert [f["id"] for f in a.get("/v1/flights").json()["items"]] == [world.ids["flight_id"]]


def test_every_parametrized_v1_route_has_an_isolation_row(server: LiveServer) -> None:
    with server.client() as anonymous:
        spec = anonymous.get("/openapi.json")
    assert spec.status_code == 200, spec.text
    routes = {
        (method.upper(), path)
        for path, operations in spec.json()["paths"].items()
        if path.startswith("/v1/")
        for method in operations
        if method in ("get", "put", "post", "delete", "patch")
    }
    parametrized = {(method, path) for method, path in routes if "{" in path}
    assert parametrized, "the spec lists no parametrized /v1 routes"
    covered = {(method, path) for method, path, _ in ATTEMPTS}
    assert parametrized - covered - OWN_ONLY == set(), (
        "add an ATTEMPTS row for each route, proving B gets 404 for A's resource"
    )
    assert routes >= OWN_ONLY
    # A row for a route that no longer exists would pass vacuously on the router's own 404.
    assert covered - routes == set(), "ATTEMPTS names routes the app does not serve"
