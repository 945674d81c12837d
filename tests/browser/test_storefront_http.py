"""The storefront over plain HTTP, as a browser without JavaScript uses it: forms, redirects and cookies."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.browser.conftest import csrf_token
from tests.conftest import AirlineHandle, LiveServer

_KEY = re.compile(r'name="idempotency_key" value="([0-9a-f]{32})"')


@dataclass
class Shop:
    airline: AirlineHandle
    flight: dict[str, Any]
    path: str
    client: httpx.Client

    def page(self, **query: str) -> httpx.Response:
        answer = self.client.get(self.path, params=query)
        assert answer.status_code == 200, answer.text
        return answer

    def add(self, sku: str, quantity: int = 1, **extra: str) -> httpx.Response:
        token = csrf_token(self.page().text)
        data = {"sku": sku, "quantity": str(quantity), "csrf_token": token} | extra
        return self.client.post(f"{self.path}/basket", data=data)

    def pay(self, **fields: str) -> httpx.Response:
        page = self.page().text
        data = {"csrf_token": csrf_token(page), "idempotency_key": _KEY.search(page).group(1), "token": "tok_ok"}
        return self.client.post(f"{self.path}/checkout", data=data | fields)


@pytest.fixture
def shop(server: LiveServer, make_airline: Any) -> Iterator[Shop]:
    airline = make_airline(settings={"branding": {"colour": "#ffcc00"}, "seat_limits": {"alcohol": 2}})
    airline.product("WATER", category="drinks", name={"en": "Still water", "de": "Stilles Wasser"})
    airline.product("WINE", category="alcohol", min_age=18, restrictions=["alcohol"], name={"en": "Red wine"})
    flight = airline.flight(stock={"WATER": 10, "WINE": 1})
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield Shop(airline, flight, f"/shop/{airline.code}/{flight['id']}", client)


def _stock(shop: Shop) -> dict[str, int]:
    items = shop.airline.client.get(f"/v1/flights/{shop.flight['id']}/inventory").json()["items"]
    return {item["sku"]: item["sold"] for item in items}


def test_shop_is_branded_and_shows_the_menu_in_the_chosen_language_and_currency(shop: Shop) -> None:
    page = shop.page(lang="de", currency="USD").text
    assert '<html lang="de">' in page
    assert "--brand: #ffcc00; --on-brand: #111111;" in page, "dark text on a light brand colour"
    assert "Stilles Wasser" in page
    assert "4,50\xa0$" in page, "a German page writes dollars the German way"
    assert "In den Warenkorb" in page


def test_unknown_language_and_currency_fall_back_to_the_airlines_defaults(shop: Shop) -> None:
    page = shop.page(lang="xx", currency="JPY").text
    assert '<html lang="en">' in page
    assert "€4.50" in page


def test_purchase_without_javascript_takes_stock_and_confirms_the_order(shop: Shop) -> None:
    assert shop.add("WATER", 2).status_code == 303
    added = shop.add("WINE")
    assert added.status_code == 303
    assert added.headers["location"].endswith("&added=1#basket")
    page = shop.page().text
    assert "I confirm that I am at least 18 years old." in page
    paid = shop.pay(seat="14c", age_confirmed="on")
    assert paid.status_code == 303, paid.text
    assert "skycart_basket=" in paid.headers["set-cookie"], "the basket is emptied"
    confirmation = shop.client.get(paid.headers["location"])
    assert "Thank you! Your order is confirmed." in confirmation.text
    assert "Crew will bring it to seat 14C." in confirmation.text
    assert _stock(shop) == {"WATER": 2, "WINE": 1}
    orders = shop.airline.client.get("/v1/orders", params={"flight_id": shop.flight["id"], "seat": "14C"}).json()
    assert [order["total"] for order in orders["items"]] == ["13.50"]


def test_age_restricted_item_needs_the_age_confirmation(shop: Shop) -> None:
    shop.add("WINE")
    refused = shop.pay(seat="3A")
    assert refused.status_code == 422
    assert "Please confirm your age" in refused.text
    assert _stock(shop) == {"WATER": 0, "WINE": 0}


def test_declined_payment_keeps_the_basket_and_takes_no_stock(shop: Shop) -> None:
    shop.add("WATER")
    declined = shop.pay(seat="3A", token="tok_declined")
    assert declined.status_code == 402
    assert "The payment was declined." in declined.text
    assert 'value="3A"' in declined.text, "the seat is kept"
    assert _stock(shop) == {"WATER": 0, "WINE": 0}
    assert shop.pay(seat="3A").status_code == 303, "a new attempt succeeds with the same basket"


def test_reposting_one_checkout_form_places_one_order(shop: Shop) -> None:
    shop.add("WATER")
    page = shop.page().text
    form = {
        "csrf_token": csrf_token(page),
        "idempotency_key": _KEY.search(page).group(1),
        "token": "tok_ok",
        "seat": "7B",
    }
    first = shop.client.post(f"{shop.path}/checkout", data=form)
    shop.client.cookies.set("skycart_basket", "WATER*1", path=shop.path)  # the browser's back button
    second = shop.client.post(f"{shop.path}/checkout", data=form)
    assert first.headers["location"] == second.headers["location"]
    assert _stock(shop)["WATER"] == 1


def test_checkout_posted_without_its_csrf_token_is_refused(shop: Shop) -> None:
    shop.add("WATER")
    refused = shop.client.post(f"{shop.path}/checkout", data={"seat": "3A", "token": "tok_ok"})
    assert refused.status_code == 403
    assert _stock(shop)["WATER"] == 0


def test_basket_answers_json_to_the_pages_script(shop: Shop) -> None:
    answer = shop.add("WATER", 3, lang="de")
    answer = shop.client.post(
        f"{shop.path}/basket",
        data={"sku": "WATER", "quantity": "1", "csrf_token": csrf_token(shop.page().text), "lang": "de"},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["count"] == 4
    assert "Stilles Wasser" in body["basket_html"]
    assert body["message"] == "In den Warenkorb gelegt."


def test_basket_cookie_belongs_to_one_flight(shop: Shop) -> None:
    answer = shop.add("WATER")
    cookie = answer.headers["set-cookie"].lower()
    assert f"path={shop.path.lower()}" in cookie
    assert "httponly" in cookie


def test_storefront_needs_a_plan_with_the_storefront_feature(server: LiveServer, make_airline: Any) -> None:
    airline = make_airline(plan="standard")
    flight = airline.flight()
    answer = httpx.get(f"{server.base_url}/shop/{airline.code}/{flight['id']}")
    assert answer.status_code == 403
    assert "does not include the storefront" in answer.text


def test_another_airlines_flight_and_order_are_not_found(shop: Shop, make_airline: Any) -> None:
    other = make_airline()
    other.product("OTHER")
    other_flight = other.flight(stock={"OTHER": 2})
    order = other.order(other_flight["id"], {"OTHER": 1}).json()
    assert shop.client.get(f"/shop/{shop.airline.code}/{other_flight['id']}").status_code == 404
    assert shop.client.get(f"{shop.path}/orders/{order['id']}").status_code == 404
    assert shop.client.get(f"/shop/{other.code}/{shop.flight['id']}").status_code == 404


def test_product_withdrawn_after_it_was_added_is_left_out_of_the_order(shop: Shop) -> None:
    shop.add("WATER")
    shop.add("WINE")
    withdrawn = shop.airline.client.get("/v1/products/WINE").json()
    withdrawn.update(active=False)
    for field in ("images", "created_at", "updated_at"):
        withdrawn.pop(field)
    assert shop.airline.client.put("/v1/products/WINE", json=withdrawn).status_code == 200
    time.sleep(1.1)  # the menu may be a second stale
    paid = shop.pay(seat="5D")
    assert paid.status_code == 303, paid.text
    assert _stock(shop) == {"WATER": 1, "WINE": 0}


def test_unknown_sku_never_enters_the_basket(shop: Shop) -> None:
    assert shop.add("NOT-ON-MENU").status_code == 303
    assert "Your basket is empty." in shop.page().text
    assert not shop.client.cookies.get("skycart_basket")
