from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from tests.conftest import AirlineHandle, assert_problem, product_body


def test_create_answers_201_with_decimal_string_prices_and_defaults(airline: AirlineHandle) -> None:
    body = product_body("WATER-05", ["EUR", "USD"], prices={"EUR": "4.50", "USD": "5"})
    created = airline.client.post("/v1/products", json=body)
    assert created.status_code == 201, created.text
    product = created.json()
    assert product["sku"] == "WATER-05"
    assert product["prices"] == {"EUR": "4.50", "USD": "5.00"}
    assert product["name"] == {"en": "Product WATER-05"}
    assert product["category"] == "snacks"
    assert product["min_age"] is None
    assert product["restrictions"] == []
    assert product["attributes"] == {}
    assert product["active"] is True
    assert product["created_at"] and product["updated_at"]


def test_get_by_sku_returns_what_was_created(airline: AirlineHandle) -> None:
    created = airline.product(
        "WINE-RED",
        name={"en": "Red wine", "de": "Rotwein"},
        min_age=18,
        restrictions=["alcohol"],
        attributes={"volume_ml": 187, "organic": True},
    )
    got = airline.client.get("/v1/products/WINE-RED")
    assert got.status_code == 200, got.text
    assert got.json() == created
    assert got.json()["name"] == {"en": "Red wine", "de": "Rotwein"}
    assert got.json()["attributes"] == {"volume_ml": 187, "organic": True}


def test_unknown_sku_is_not_found(airline: AirlineHandle) -> None:
    assert_problem(airline.client.get("/v1/products/NOPE"), 404, "not_found")
    assert_problem(airline.client.put("/v1/products/NOPE", json=product_body("NOPE", ["EUR"])), 404, "not_found")
    assert_problem(airline.client.delete("/v1/products/NOPE"), 404, "not_found")


def test_put_replaces_the_whole_product_and_omitted_fields_revert_to_defaults(airline: AirlineHandle) -> None:
    airline.product(
        "BEER",
        description={"en": "Cold"},
        min_age=18,
        restrictions=["alcohol"],
        attributes={"abv": 5},
        active=False,
        prices={"EUR": "4.50", "USD": "5.00"},
    )
    replaced = airline.client.put(
        "/v1/products/BEER", json={"name": {"de": "Bier"}, "category": "drinks", "prices": {"EUR": "6.00"}}
    )
    assert replaced.status_code == 200, replaced.text
    got = airline.client.get("/v1/products/BEER").json()
    assert got == replaced.json()
    assert got["name"] == {"de": "Bier"}
    assert got["category"] == "drinks"
    assert got["prices"] == {"EUR": "6.00"}, "a currency left out of the body is no longer priced"
    assert got["description"] == {}
    assert got["min_age"] is None
    assert got["restrictions"] == []
    assert got["attributes"] == {}
    assert got["active"] is True


def test_put_keeps_created_at_and_advances_updated_at(airline: AirlineHandle) -> None:
    created = airline.product("STAMPED")
    replaced = airline.client.put("/v1/products/STAMPED", json=product_body("STAMPED", ["EUR"])).json()
    assert replaced["created_at"] == created["created_at"]
    assert datetime.fromisoformat(replaced["updated_at"]) > datetime.fromisoformat(created["updated_at"])


def test_put_accepts_a_body_sku_equal_to_the_path(airline: AirlineHandle) -> None:
    airline.product("TEA")
    replaced = airline.client.put("/v1/products/TEA", json=product_body("TEA", ["EUR"], category="hot"))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["category"] == "hot"


def test_put_with_a_body_sku_other_than_the_path_is_rejected_and_changes_nothing(airline: AirlineHandle) -> None:
    before = airline.product("COFFEE")
    moved = airline.client.put("/v1/products/COFFEE", json=product_body("TEA", ["EUR"], category="hot"))
    assert_problem(moved, 422, "validation_error")
    assert airline.client.get("/v1/products/COFFEE").json() == before
    assert_problem(airline.client.get("/v1/products/TEA"), 404, "not_found")


def test_invalid_put_changes_nothing(airline: AirlineHandle) -> None:
    before = airline.product("CHIPS")
    bad = airline.client.put("/v1/products/CHIPS", json=product_body("CHIPS", ["EUR"], prices={"EUR": "4.505"}))
    assert_problem(bad, 422, "validation_error")
    assert airline.client.get("/v1/products/CHIPS").json() == before


def test_delete_answers_204_and_the_product_is_gone(airline: AirlineHandle) -> None:
    airline.product("GONE")
    deleted = airline.client.delete("/v1/products/GONE")
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    assert_problem(airline.client.get("/v1/products/GONE"), 404, "not_found")
    assert airline.client.get("/v1/products").json()["items"] == []


def test_deleting_a_product_loaded_on_a_flight_is_product_in_use_and_it_remains(airline: AirlineHandle) -> None:
    before = airline.product("LOADED")
    airline.flight(stock={"LOADED": 5})
    assert_problem(airline.client.delete("/v1/products/LOADED"), 409, "product_in_use")
    assert airline.client.get("/v1/products/LOADED").json() == before


def test_duplicate_sku_is_already_exists_and_keeps_the_first(airline: AirlineHandle) -> None:
    first = airline.product("DUP")
    again = airline.client.post("/v1/products", json=product_body("DUP", ["EUR"], category="other"))
    assert_problem(again, 409, "already_exists")
    assert airline.client.get("/v1/products/DUP").json() == first


def test_same_sku_in_two_airlines_is_two_independent_products(make_airline: Any) -> None:
    alpha, beta = make_airline(), make_airline()
    alpha.product("SHARED", category="alpha")
    beta.product("SHARED", category="beta")
    assert alpha.client.get("/v1/products/SHARED").json()["category"] == "alpha"
    assert beta.client.get("/v1/products/SHARED").json()["category"] == "beta"
    assert beta.client.delete("/v1/products/SHARED").status_code == 204
    assert alpha.client.get("/v1/products/SHARED").json()["category"] == "alpha"


def test_another_airlines_product_is_not_found_and_untouchable(make_airline: Any) -> None:
    owner, other = make_airline(), make_airline()
    before = owner.product("PRIVATE")
    assert_problem(other.client.get("/v1/products/PRIVATE"), 404, "not_found")
    assert_problem(other.client.put("/v1/products/PRIVATE", json=product_body("PRIVATE", ["EUR"])), 404, "not_found")
    assert_problem(other.client.delete("/v1/products/PRIVATE"), 404, "not_found")
    assert other.client.get("/v1/products").json()["items"] == []
    assert owner.client.get("/v1/products/PRIVATE").json() == before


INVALID = {
    "too_many_decimals_for_eur": {"prices": {"EUR": "4.505"}},
    "comma_decimal": {"prices": {"EUR": "4,50"}},
    "negative_price": {"prices": {"EUR": "-1"}},
    "exponent_price": {"prices": {"EUR": "1e3"}},
    "leading_zero_price": {"prices": {"EUR": "04.50"}},
    "price_as_json_number": {"prices": {"EUR": 4.5}},
    "price_too_large": {"prices": {"EUR": "1000000000000.01"}},
    "no_price": {"prices": {}},
    "currency_not_the_airlines": {"prices": {"EUR": "4.50", "GBP": "3.90"}},
    "not_a_currency": {"prices": {"EUR": "4.50", "ABC": "3.90"}},
    "locale_not_the_airlines": {"name": {"en": "Water", "fr": "Eau"}},
    "description_locale_not_the_airlines": {"description": {"it": "Acqua"}},
    "no_name": {"name": {}},
    "empty_name_text": {"name": {"en": ""}},
    "sku_with_space": {"sku": "BAD SKU"},
    "sku_with_slash": {"sku": "BAD/SKU"},
    "sku_starting_with_dash": {"sku": "-BAD"},
    "sku_too_long": {"sku": "S" * 65},
    "min_age_above_99": {"min_age": 100},
    "min_age_negative": {"min_age": -1},
    "min_age_boolean": {"min_age": True},
    "min_age_text": {"min_age": "18"},
    "unknown_field": {"colour": "blue"},
    "restriction_not_a_tag": {"restrictions": ["Alcohol!"]},
    "empty_category": {"category": ""},
}


@pytest.mark.parametrize("overrides", INVALID.values(), ids=INVALID.keys())
def test_invalid_product_is_a_validation_problem_and_creates_nothing(
    airline: AirlineHandle, overrides: dict[str, Any]
) -> None:
    body = product_body("VALID-SKU", ["EUR", "USD"])
    body.update(overrides)
    body_problem = assert_problem(airline.client.post("/v1/products", json=body), 422, "validation_error")
    assert body_problem["errors"], "the problem lists what is wrong"
    assert airline.client.get("/v1/products").json()["items"] == []


def test_missing_required_fields_are_each_reported(airline: AirlineHandle) -> None:
    problem = assert_problem(airline.client.post("/v1/products", json={"sku": "X"}), 422, "validation_error")
    fields = {tuple(e["loc"]) for e in problem["errors"]}
    assert {("body", "name"), ("body", "category"), ("body", "prices")} <= fields


def test_currency_and_locale_problems_name_the_field(airline: AirlineHandle) -> None:
    body = product_body("X", ["EUR"], prices={"GBP": "1.00"}, name={"fr": "Eau"})
    problem = assert_problem(airline.client.post("/v1/products", json=body), 422, "validation_error")
    assert {tuple(e["loc"]) for e in problem["errors"]} == {("body", "prices", "GBP"), ("body", "name", "fr")}


def test_malformed_json_body_is_a_validation_problem(airline: AirlineHandle) -> None:
    response = airline.client.post(
        "/v1/products", content=b'{"sku": "X", "name": ', headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, "validation_error")
    assert airline.client.get("/v1/products").json()["items"] == []


def test_non_finite_numbers_in_attributes_are_a_validation_problem(airline: AirlineHandle) -> None:
    for literal in ("NaN", "Infinity", "-Infinity", "1e400"):
        body = json.dumps(product_body("ODD", ["EUR"]))[:-1] + f', "attributes": {{"x": [{literal}]}}}}'
        response = airline.client.post("/v1/products", content=body, headers={"content-type": "application/json"})
        problem = assert_problem(response, 422, "validation_error")
        # Refused while parsing (strict JSON), at the literal's place in the body.
        assert problem["errors"][0]["type"] == "json_invalid"
        where = problem["errors"][0]["loc"]
        assert where[0] == "body" and body.index(literal) <= int(where[1]) <= body.index(literal) + len(literal)
    assert_problem(airline.client.get("/v1/products/ODD"), 404, "not_found")


def test_jpy_price_with_decimals_is_rejected(make_airline: Any) -> None:
    tokyo = make_airline(currencies=["JPY"])
    body = product_body("RAMEN", ["JPY"], prices={"JPY": "1.5"})
    assert_problem(tokyo.client.post("/v1/products", json=body), 422, "validation_error")
    assert_problem(tokyo.client.get("/v1/products/RAMEN"), 404, "not_found")


def test_jpy_prices_come_back_without_decimals(make_airline: Any) -> None:
    tokyo = make_airline(currencies=["JPY", "EUR"])
    created = tokyo.product("SAKE", prices={"JPY": "450", "EUR": "3.1"})
    assert created["prices"] == {"JPY": "450", "EUR": "3.10"}
    assert tokyo.product("MOCHI", prices={"JPY": "120.00"})["prices"] == {"JPY": "120"}
    assert tokyo.client.get("/v1/products/SAKE").json()["prices"] == {"JPY": "450", "EUR": "3.10"}


def test_kwd_prices_have_three_decimals(make_airline: Any) -> None:
    kuwait = make_airline(currencies=["KWD"])
    assert kuwait.product("DATES", prices={"KWD": "1.25"})["prices"] == {"KWD": "1.250"}
    assert kuwait.product("NUTS", prices={"KWD": "0.125"})["prices"] == {"KWD": "0.125"}
    body = product_body("TOO-FINE", ["KWD"], prices={"KWD": "0.1255"})
    assert_problem(kuwait.client.post("/v1/products", json=body), 422, "validation_error")


@pytest.mark.parametrize(
    ("sent", "returned"),
    [
        ("4.50", "4.50"),
        ("4.500", "4.50"),
        ("4.5", "4.50"),
        ("0", "0.00"),
        ("0.01", "0.01"),
        ("12", "12.00"),
        ("999999999999.99", "999999999999.99"),
    ],
)
def test_eur_amounts_are_stored_exactly_and_returned_with_two_decimals(
    airline: AirlineHandle, sent: str, returned: str
) -> None:
    airline.product("PRICED", prices={"EUR": sent})
    assert airline.client.get("/v1/products/PRICED").json()["prices"]["EUR"] == returned


def test_repeated_restrictions_are_kept_once_in_order(airline: AirlineHandle) -> None:
    created = airline.product("DUTY", restrictions=["duty_free", "alcohol", "duty_free"])
    assert created["restrictions"] == ["duty_free", "alcohol"]


def _all_pages(airline: AirlineHandle, **params: Any) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = airline.client.get("/v1/products", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([p["sku"] for p in body["items"]])
        cursor = body["next_cursor"]
        if not cursor:
            return pages
        assert len(pages) < 50, "pagination does not end"


def test_pagination_covers_every_product_once_in_sku_order(airline: AirlineHandle) -> None:
    skus = ["M-1", "A-9", "Z-0", "B-2", "a-lower", "C-3", "0-DIGIT"]
    for sku in skus:
        airline.product(sku)
    pages = _all_pages(airline, limit=3)
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [sku for page in pages for sku in page] == sorted(skus)


def test_a_page_that_ends_the_list_exactly_has_no_next_cursor(airline: AirlineHandle) -> None:
    for sku in ("P1", "P2", "P3", "P4"):
        airline.product(sku)
    assert _all_pages(airline, limit=2) == [["P1", "P2"], ["P3", "P4"]]
    assert _all_pages(airline, limit=4) == [["P1", "P2", "P3", "P4"]]


def test_list_filters_by_category_and_active(airline: AirlineHandle) -> None:
    airline.product("D1", category="drinks")
    airline.product("D2", category="drinks", active=False)
    airline.product("S1", category="snacks")
    airline.product("S2", category="snacks", active=False)
    airline.product("S3", category="snacks")
    assert _all_pages(airline, category="drinks") == [["D1", "D2"]]
    assert _all_pages(airline, active="true") == [["D1", "S1", "S3"]]
    assert _all_pages(airline, active="false") == [["D2", "S2"]]
    assert _all_pages(airline, category="snacks", active="true", limit=1) == [["S1"], ["S3"]]
    assert _all_pages(airline, category="perfume") == [[]]


def test_list_rejects_a_bad_cursor_and_a_bad_limit(airline: AirlineHandle) -> None:
    assert_problem(airline.client.get("/v1/products", params={"cursor": "!!!"}), 422, "validation_error")
    assert_problem(airline.client.get("/v1/products", params={"limit": 0}), 422, "validation_error")
    assert_problem(airline.client.get("/v1/products", params={"limit": 501}), 422, "validation_error")
    assert_problem(airline.client.get("/v1/products", params={"active": "maybe"}), 422, "validation_error")
