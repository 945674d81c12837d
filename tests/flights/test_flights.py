from __future__ import annotations

import time

from tests.conftest import AirlineHandle, assert_problem, flight_body


def test_flight_is_created_listed_and_read(airline: AirlineHandle) -> None:
    body = flight_body(international=True, scheduled_departure="2026-12-01T09:30:00+01:00", departure_date="2026-12-01")
    created = airline.client.post("/v1/flights", json=body)
    assert created.status_code == 201, created.text
    flight = created.json()
    assert flight["scheduled_departure"] == "2026-12-01T08:30:00Z", "stored and answered in UTC"
    assert airline.client.get(f"/v1/flights/{flight['id']}").json() == flight
    listed = airline.client.get("/v1/flights", params={"departure_date": "2026-12-01"}).json()["items"]
    assert [f["id"] for f in listed] == [flight["id"]]


def test_same_leg_twice_is_a_conflict(airline: AirlineHandle) -> None:
    body = flight_body()
    assert airline.client.post("/v1/flights", json=body).status_code == 201
    assert_problem(airline.client.post("/v1/flights", json=body), 409, "already_exists")


def test_invalid_flights_are_refused(airline: AirlineHandle) -> None:
    for override in (
        {"origin": "fra"},
        {"destination": "FRA"},
        {"scheduled_departure": "2026-12-01T09:30:00"},
        {"flight_number": "toolong12345"},
        {"departure_date": "2026-02-30"},
    ):
        assert_problem(airline.client.post("/v1/flights", json=flight_body(**override)), 422, "validation_error")
    assert airline.client.get("/v1/flights").json()["items"] == []


def test_inventory_put_replaces_the_loading_list(airline: AirlineHandle) -> None:
    for sku in ("A", "B", "C"):
        airline.product(sku)
    flight = airline.flight(stock={"A": 5, "B": 5})
    put = airline.client.put(
        f"/v1/flights/{flight['id']}/inventory",
        json={"items": [{"sku": "B", "quantity": 8}, {"sku": "C", "quantity": 2}]},
    )
    assert put.status_code == 200, put.text
    assert {i["sku"]: i["loaded"] for i in put.json()["items"]} == {"B": 8, "C": 2}


def test_inventory_never_goes_below_what_is_sold(airline: AirlineHandle) -> None:
    airline.product("A")
    airline.product("B")
    flight = airline.flight(stock={"A": 5, "B": 5})
    assert airline.order(flight["id"], {"A": 3}).status_code == 201
    path = f"/v1/flights/{flight['id']}/inventory"
    below = airline.client.put(path, json={"items": [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 9}]})
    assert_problem(below, 422, "validation_error")
    unload = airline.client.put(path, json={"items": [{"sku": "B", "quantity": 9}]})
    assert_problem(unload, 422, "validation_error")
    items = {i["sku"]: i for i in airline.client.get(path).json()["items"]}
    assert (items["A"]["loaded"], items["A"]["sold"], items["B"]["loaded"]) == (5, 3, 5), "nothing changed"
    assert airline.client.put(path, json={"items": [{"sku": "A", "quantity": 3}]}).status_code == 200


def test_inventory_with_unknown_or_repeated_sku_is_refused(airline: AirlineHandle) -> None:
    airline.product("A")
    flight = airline.flight(stock={"A": 5})
    path = f"/v1/flights/{flight['id']}/inventory"
    body = assert_problem(
        airline.client.put(path, json={"items": [{"sku": "NOPE", "quantity": 1}]}), 422, "validation_error"
    )
    assert body["unknown_skus"] == ["NOPE"]
    twice = {"items": [{"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 2}]}
    assert_problem(airline.client.put(path, json=twice), 422, "validation_error")
    assert_problem(airline.client.put(path, json={"items": [{"sku": "A", "quantity": -1}]}), 422, "validation_error")
    assert airline.client.get(path).json()["items"][0]["loaded"] == 5


def test_menu_is_localized_with_fallback_and_priced_in_the_asked_currency(make_airline) -> None:
    airline = make_airline(currencies=["EUR", "USD"], default_locale="en", locales=["en", "de", "fr"])
    airline.product(
        "WATER",
        name={"en": "Water", "de": "Wasser"},
        description={"en": "Still"},
        prices={"EUR": "3.00", "USD": "3.30"},
    )
    flight = airline.flight(stock={"WATER": 7})
    path = f"/v1/flights/{flight['id']}/menu"
    german = airline.client.get(path, params={"locale": "de", "currency": "USD"}).json()
    assert german["currency"] == "USD" and german["locale"] == "de"
    item = german["items"][0]
    assert (item["name"], item["description"], item["price"], item["available"]) == ("Wasser", "Still", "3.30", 7)
    french = airline.client.get(path, params={"locale": "fr"}).json()
    assert (french["items"][0]["name"], french["currency"]) == ("Water", "EUR"), "falls back to the default locale"
    assert_problem(airline.client.get(path, params={"currency": "GBP"}), 422, "validation_error")
    assert_problem(airline.client.get(path, params={"currency": "eur"}), 422, "validation_error")


def test_menu_shows_only_active_priced_and_allowed_items_with_live_availability(make_airline) -> None:
    airline = make_airline(currencies=["EUR", "USD"])
    airline.product("ON")
    airline.product("OFF", active=False)
    airline.product("EUR-ONLY", prices={"EUR": "1.00"})
    airline.product("DUTY", restrictions=["duty_free"])
    airline.product("UNLOADED")
    domestic = airline.flight(stock={"ON": 3, "OFF": 3, "EUR-ONLY": 3, "DUTY": 3})
    international = airline.flight(international=True, stock={"ON": 3, "DUTY": 3})
    usd = airline.client.get(f"/v1/flights/{domestic['id']}/menu", params={"currency": "USD"}).json()
    assert [i["sku"] for i in usd["items"]] == ["ON"]
    eur = airline.client.get(f"/v1/flights/{domestic['id']}/menu", params={"currency": "EUR"}).json()
    assert sorted(i["sku"] for i in eur["items"]) == ["EUR-ONLY", "ON"]
    abroad = airline.client.get(f"/v1/flights/{international['id']}/menu").json()
    assert sorted(i["sku"] for i in abroad["items"]) == ["DUTY", "ON"]
    airline.order(international["id"], {"ON": 3})
    assert airline.order(international["id"], {"ON": 1}).status_code == 409, "orders are exact at once"
    time.sleep(1.05)  # menus (their stock figures included) are at most one second stale
    sold_out = airline.client.get(f"/v1/flights/{international['id']}/menu").json()
    assert {i["sku"]: i["available"] for i in sold_out["items"]} == {"DUTY": 3, "ON": 0}


def test_unknown_flight_is_not_found_everywhere(airline: AirlineHandle) -> None:
    missing = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
    for path in ("", "/menu", "/report", "/inventory"):
        assert_problem(airline.client.get(f"/v1/flights/{missing}{path}"), 404, "not_found")
    assert_problem(airline.client.put(f"/v1/flights/{missing}/inventory", json={"items": []}), 404, "not_found")
