"""JSON that the standard library accepts and nothing downstream can store: answered 422, never 500.

The bodies are the ones that answered 500 before (non-finite numbers, a lone surrogate, year 9999);
each is sent as raw bytes over real HTTP, and nothing of it is stored.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import AirlineHandle, assert_problem, flight_body, order_body, product_body

JSON = {"content-type": "application/json"}
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]


def _raw_product(sku: str, attributes: str) -> bytes:
    body = product_body(sku, ["EUR"])
    text = httpx.Request("POST", "/", json=body).content.decode()
    return (text[:-1] + f', "attributes": {attributes}}}').encode()


@pytest.mark.parametrize("number", NON_FINITE)
def test_a_non_finite_number_in_product_attributes_is_invalid_json(airline: AirlineHandle, number: str) -> None:
    sku = f"NF-{NON_FINITE.index(number)}"
    answer = airline.client.post("/v1/products", content=_raw_product(sku, f'{{"weight": {number}}}'), headers=JSON)
    problem = assert_problem(answer, 422, "validation_error")
    assert problem["errors"][0]["type"] == "json_invalid"
    assert airline.client.get(f"/v1/products/{sku}").status_code == 404, "nothing was stored"


@pytest.mark.parametrize("number", NON_FINITE)
def test_a_non_finite_number_in_airline_settings_is_invalid_json(
    airline: AirlineHandle, admin: httpx.Client, number: str
) -> None:
    before = admin.get(f"/admin/airlines/{airline.code}").json()
    answer = admin.patch(
        f"/admin/airlines/{airline.code}", content=f'{{"settings": {{"limit": {number}}}}}'.encode(), headers=JSON
    )
    assert_problem(answer, 422, "validation_error")
    assert admin.get(f"/admin/airlines/{airline.code}").json() == before


def test_a_lone_surrogate_in_a_string_is_invalid_json(airline: AirlineHandle) -> None:
    body = b'{"sku": "SUR-1", "name": {"en": "\\ud800x"}, "category": "snacks", "prices": {"EUR": "1.00"}}'
    problem = assert_problem(airline.client.post("/v1/products", content=body, headers=JSON), 422, "validation_error")
    assert problem["errors"][0]["type"] == "json_invalid"
    assert airline.client.get("/v1/products/SUR-1").status_code == 404


@pytest.mark.parametrize(
    "dates",
    [
        {"scheduled_departure": "9999-12-31T23:00:00-05:00"},
        {"scheduled_departure": "9999-01-01T00:00:00Z"},
        {"scheduled_departure": "1899-06-01T10:00:00Z"},
        {"departure_date": "9999-12-31"},
    ],
)
def test_a_flight_outside_the_plausible_years_is_refused(airline: AirlineHandle, dates: dict[str, str]) -> None:
    answer = airline.client.post("/v1/flights", json=flight_body(**dates))
    problem = assert_problem(answer, 422, "validation_error")
    assert "between 2000 and 2099" in problem["detail"]
    assert airline.client.get("/v1/flights").json()["items"] == []


def _nested(levels: int) -> dict:
    node: dict = {}
    for _ in range(levels - 1):
        node = {"n": node}
    return node


@pytest.mark.parametrize(
    "lax",
    [
        {"passenger": {"age_confirmed": "yes"}},
        {"passenger": {"age_confirmed": 1}},
        {"items": [{"sku": "TEA", "quantity": "1"}]},
        {"items": [{"sku": "TEA", "quantity": 1.0}]},
    ],
)
def test_an_order_takes_booleans_and_integers_only_as_json_booleans_and_integers(
    airline: AirlineHandle, lax: dict
) -> None:
    airline.product("TEA")
    flight = airline.flight(stock={"TEA": 5})
    body = {**order_body(flight["id"], {"TEA": 1}, currency="EUR"), **lax}
    answer = airline.client.post("/v1/orders", json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert_problem(answer, 422, "validation_error")
    assert airline.client.get("/v1/orders").json()["items"] == []


@pytest.mark.parametrize("lax", [{"active": "yes"}, {"active": 1}])
def test_a_product_takes_active_only_as_a_json_boolean(airline: AirlineHandle, lax: dict) -> None:
    assert_problem(
        airline.client.post("/v1/products", json=product_body("LAX", ["EUR"], **lax)), 422, "validation_error"
    )


def test_a_flight_takes_international_and_stock_only_as_json_values_of_their_type(airline: AirlineHandle) -> None:
    assert_problem(airline.client.post("/v1/flights", json=flight_body(international="true")), 422, "validation_error")
    airline.product("TEA")
    flight = airline.flight()
    loaded = airline.client.put(
        f"/v1/flights/{flight['id']}/inventory", json={"items": [{"sku": "TEA", "quantity": "5"}]}
    )
    assert_problem(loaded, 422, "validation_error")


@pytest.mark.parametrize(
    ("attributes", "message"),
    [({"blob": "x" * 20_000}, "16384 bytes"), (_nested(6), "5 levels")],
    ids=["too large", "too deep"],
)
def test_product_attributes_are_bounded_in_size_and_depth(
    airline: AirlineHandle, attributes: dict, message: str
) -> None:
    problem = assert_problem(
        airline.client.post("/v1/products", json=product_body("BIG", ["EUR"], attributes=attributes)),
        422,
        "validation_error",
    )
    assert message in problem["detail"]
    assert airline.client.get("/v1/products/BIG").status_code == 404
    assert (
        airline.client.post("/v1/products", json=product_body("BIG", ["EUR"], attributes=_nested(5))).status_code == 201
    )


def test_a_5_mb_attributes_object_is_refused_before_it_is_read(airline: AirlineHandle) -> None:
    body = product_body("HUGE", ["EUR"], attributes={"blob": "x" * (5 * 1024 * 1024)})
    assert_problem(airline.client.post("/v1/products", json=body), 413, "payload_too_large")


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"notes": "x" * 70_000}, "65536 bytes"), ({"deep": _nested(8)}, "8 levels")],
    ids=["too large", "too deep"],
)
def test_airline_settings_are_bounded_in_size_and_depth(
    airline: AirlineHandle, admin: httpx.Client, settings: dict, message: str
) -> None:
    before = admin.get(f"/admin/airlines/{airline.code}").json()
    problem = assert_problem(
        admin.patch(f"/admin/airlines/{airline.code}", json={"settings": settings}), 422, "validation_error"
    )
    assert message in problem["detail"]
    assert admin.get(f"/admin/airlines/{airline.code}").json() == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_json_route_answers_another_media_type_with_415(airline: AirlineHandle, content_type: str | None) -> None:
    body = httpx.Request("POST", "/", json=product_body("MEDIA", ["EUR"])).content
    headers = {"content-type": content_type} if content_type else {}
    request = airline.client.build_request("POST", "/v1/products", content=body, headers=headers)
    assert ("content-type" in request.headers) == (content_type is not None)
    assert_problem(airline.client.send(request), 415, "unsupported_media_type")
    assert airline.client.get("/v1/products/MEDIA").status_code == 404
    json_suffix = airline.client.post(
        "/v1/products", content=body, headers={"content-type": "application/merge-patch+json"}
    )
    assert json_suffix.status_code == 201, "any application/*+json is JSON"
