"""JSON that the standard library accepts and nothing downstream can store: answered 422, never 500.

The bodies are the ones that answered 500 before (non-finite numbers, a lone surrogate, year 9999);
each is sent as raw bytes over real HTTP, and nothing of it is stored.
"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import AirlineHandle, assert_problem, flight_body, product_body

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
