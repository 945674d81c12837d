"""In Debian's Chromium: the operator's console with its charts, a passenger's purchase on a phone, and the
airline console that then shows it. Each main page is saved as a PNG under test-artifacts/screenshots/."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.browser.conftest import Tab, audit, open_tab, png
from tests.conftest import LiveServer, flight_body

CODES = ("ALP", "BOR", "CIR")
TRAFFIC = {"ALP": 24, "BOR": 12, "CIR": 6}


@dataclass
class World:
    server: LiveServer
    operator_key: str
    keys: dict[str, str]
    flight_id: str

    def api(self, code: str | None = None) -> httpx.Client:
        return self.server.client(self.keys[code] if code else self.operator_key)


def _checked(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


@pytest.fixture(scope="module")
def world(web_server: LiveServer, web_operator_key: str) -> World:
    """Three airlines with traffic; ALP is branded and sells water, wine and pretzels on one flight."""
    keys: dict[str, str] = {}
    with web_server.client(web_operator_key) as admin:
        for code in CODES:
            body = {
                "code": code,
                "name": f"{code.title()} Airways",
                "currencies": ["EUR", "USD"],
                "locales": ["en", "de"],
            }
            _checked(admin.post("/admin/airlines", json=body), 201)
            _checked(admin.put(f"/admin/airlines/{code}/plan", json={"plan": "premium"}), 200)
            keys[code] = _checked(admin.post(f"/admin/airlines/{code}/keys", json={"name": "setup"}), 201)["key"]
        with web_server.client(keys["ALP"]) as alp:
            products = [
                ("WATER", "drinks", {"en": "Still water", "de": "Stilles Wasser"}, None, (40, 110, 200)),
                ("WINE", "alcohol", {"en": "Red wine", "de": "Rotwein"}, 18, (130, 20, 40)),
                ("PRETZEL", "snacks", {"en": "Pretzel", "de": "Brezel"}, None, (180, 120, 50)),
            ]
            for sku, category, name, min_age, colour in products:
                body = {"sku": sku, "category": category, "name": name, "description": {"en": f"{name['en']}, onboard"},
                        "prices": {"EUR": "4.50", "USD": "4.90"}, "min_age": min_age,
                        "restrictions": ["alcohol"] if min_age else []}  # fmt: skip
                _checked(alp.post("/v1/products", json=body), 201)
                upload = alp.post(
                    f"/v1/products/{sku}/images", files={"file": (f"{sku}.png", png(colour), "image/png")}
                )
                logo = _checked(upload, 201)["images"][0]["thumbnails"]["160"]
            branding = {"colour": "#003366", "accent_colour": "#ffcc00", "logo_url": logo}
            _checked(admin.patch("/admin/airlines/ALP", json={"settings": {"branding": branding}}), 200)
            flight = _checked(alp.post("/v1/flights", json=flight_body(international=True)), 201)
            stock = {
                "items": [
                    {"sku": "WATER", "quantity": 20},
                    {"sku": "WINE", "quantity": 6},
                    {"sku": "PRETZEL", "quantity": 9},
                ]
            }
            _checked(alp.put(f"/v1/flights/{flight['id']}/inventory", json=stock), 200)
        for code, requests in TRAFFIC.items():
            with web_server.client(keys[code]) as client:
                for i in range(requests):
                    client.get("/v1/plan" if i % 4 else "/v1/products/NOPE")  # a quarter are 404s: errors
        deadline = time.monotonic() + 10
        while {row["airline"] for row in admin.get("/admin/usage", params={"group_by": "airline"}).json()} < set(CODES):
            assert time.monotonic() < deadline, "usage was not flushed"
            time.sleep(0.2)
    return World(web_server, web_operator_key, keys, flight["id"])


def _sign_in_with_keyboard(tab: Tab, world: World, key: str, *, screenshot: str | None = None) -> None:
    page = tab.page
    page.goto(f"{world.server.base_url}/console")
    assert page.url.startswith(f"{world.server.base_url}/console/sign-in")
    if screenshot:
        audit(tab)
        tab.screenshot(screenshot)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "api_key"
    page.keyboard.type(key)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{world.server.base_url}/console")


def test_operator_reads_usage_charts_changes_a_plan_and_issues_and_revokes_a_key(chromium: Any, world: World) -> None:
    tab = open_tab(chromium)
    page = tab.page
    _sign_in_with_keyboard(tab, world, world.operator_key, screenshot="console-sign-in")

    page.wait_for_selector("#chart-requests .scatterlayer .trace")
    for chart in ("chart-requests", "chart-errors", "chart-latency"):
        assert page.locator(f"#{chart} .scatterlayer .trace").count() == 3, chart
        assert sorted(page.locator(f"#{chart} .legend .legendtext").all_text_contents()) == list(CODES)
    lines = page.locator("#chart-requests .scatterlayer .trace path.js-line")
    assert all(len(lines.nth(i).get_attribute("d") or "") > 20 for i in range(3)), "every trace is drawn"
    audit(tab)
    tab.screenshot("console-operator-overview")

    page.get_by_role("link", name="BOR", exact=True).click()
    page.wait_for_url("**/console/airlines/BOR")
    page.get_by_label("New plan").select_option("basic")
    page.get_by_role("button", name="Change plan").click()
    page.get_by_text("The plan was changed.").wait_for()
    plans = _checked(world.api().get("/admin/airlines/BOR/plans"), 200)
    assert plans[-1]["plan"]["code"] == "basic"

    page.get_by_label("Name of the new key").fill("crew tablets")
    page.get_by_role("button", name="Issue key").click()
    new_key = page.get_by_label("The new key, shown once").input_value()
    assert new_key.startswith("sk_al_")
    assert world.server.client(new_key).get("/v1/plan").status_code == 200
    audit(tab)
    tab.screenshot("console-operator-airline-new-key")

    page.locator("tr", has_text=new_key[:12]).get_by_role("button", name="Revoke").click()
    page.get_by_text("The key was revoked.").wait_for()
    deadline = time.monotonic() + 5
    while world.server.client(new_key).get("/v1/plan").status_code != 401:
        assert time.monotonic() < deadline, "the revoked key still works after 5 s"
        time.sleep(0.2)
    tab.screenshot("console-operator-airline")

    page.locator("ul.months a").first.click()
    page.get_by_role("heading", name="Statement BOR").wait_for()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename.startswith("statement-BOR-")
    tab.screenshot("console-operator-statement")
    tab.assert_no_console_errors()


def test_passenger_buys_on_a_phone_and_the_airline_console_shows_the_sale(chromium: Any, world: World) -> None:
    shop = open_tab(chromium, phone=True)
    page = shop.page
    page.goto(f"{world.server.base_url}/shop/ALP/{world.flight_id}")
    page.get_by_role("heading", name="Drinks").wait_for()
    assert page.locator(".shop-header .logo").evaluate("img => img.naturalWidth") > 0, "the airline's logo loads"
    assert page.locator(".product-card[data-sku=WINE] img").evaluate("img => img.naturalWidth") > 0
    audit(shop)
    shop.screenshot("shop-menu-phone")

    page.get_by_label("Language").select_option("de")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**lang=de**")
    page.get_by_label("Währung").select_option("USD")
    page.get_by_role("button", name="Übernehmen").click()
    page.wait_for_url("**currency=USD**")
    assert "Stilles Wasser" in page.locator(".product-card[data-sku=WATER]").inner_text()
    assert "4,90\xa0$" in page.locator(".product-card[data-sku=WATER] .price").inner_text()

    page.locator(".product-card[data-sku=WATER]").get_by_role("button", name="In den Warenkorb").click()
    page.locator("[data-basket-count]").first.filter(has_text="1").wait_for()
    page.locator(".product-card[data-sku=WINE]").get_by_role("button", name="In den Warenkorb").click()
    page.locator("[data-basket-count]").first.filter(has_text="2").wait_for()
    assert page.get_by_role("status").first.inner_text() == "In den Warenkorb gelegt."
    page.get_by_label("Sitzplatz").fill("14C")
    page.get_by_label("Ich bestätige, dass ich mindestens 18 Jahre alt bin.").check()
    assert page.get_by_label("tok_ok: genehmigt").is_checked()
    audit(shop)
    shop.screenshot("shop-basket-phone")

    page.get_by_role("button", name="bezahlen").click()
    page.wait_for_url("**/orders/**")
    order_id = page.url.split("/orders/")[1].split("?")[0]
    page.get_by_text("Vielen Dank! Ihre Bestellung ist bestätigt.").wait_for()
    assert page.locator("[data-status]").get_attribute("data-status") == "paid"
    audit(shop)
    shop.screenshot("shop-confirmation-phone")
    shop.assert_no_console_errors()

    console = open_tab(chromium)
    _sign_in_with_keyboard(console, world, world.keys["ALP"])
    console.page.wait_for_selector("#chart-requests .scatterlayer .trace")
    audit(console)
    console.screenshot("console-airline-overview")
    console.page.get_by_role("link", name="Flights").click()
    console.page.get_by_role("heading", name="Flights").wait_for()
    console.screenshot("console-airline-flights")
    console.page.locator("table a").first.click()
    stock = console.page.locator("#stock tr[data-sku=WINE]")
    assert stock.locator(".sold").inner_text() == "1"
    assert stock.locator(".remaining").inner_text() == "5"
    assert console.page.locator("#stock tr[data-sku=WATER] .remaining").inner_text() == "19"
    seat = console.page.locator("table.orders[data-seat='14C']")
    assert seat.locator(f"tr[data-order='{order_id}']").count() == 1
    audit(console)
    console.screenshot("console-airline-flight")
    console.assert_no_console_errors()


def test_airline_edits_a_price_deactivates_a_product_and_uploads_an_image(chromium: Any, world: World) -> None:
    tab = open_tab(chromium)
    page = tab.page
    _sign_in_with_keyboard(tab, world, world.keys["ALP"])
    page.get_by_role("link", name="Catalog").click()
    card = page.locator("#product-PRETZEL")
    assert card.locator(".thumb img").count() == 1
    card.get_by_label("Price EUR").fill("3.90")
    card.get_by_label("Active").uncheck()
    card.get_by_role("button", name="Save").click()
    page.get_by_text("The product was saved.").wait_for()
    product = _checked(world.api("ALP").get("/v1/products/PRETZEL"), 200)
    assert (product["prices"]["EUR"], product["active"]) == ("3.90", False)

    page.locator("#product-PRETZEL").get_by_label("Image (JPEG, PNG or WebP)").set_input_files(
        files=[{"name": "pretzel.png", "mimeType": "image/png", "buffer": png((200, 160, 60), 300)}]
    )
    page.locator("#product-PRETZEL").get_by_role("button", name="Upload").click()
    page.get_by_text("The image was added.").wait_for()
    assert len(_checked(world.api("ALP").get("/v1/products/PRETZEL"), 200)["images"]) == 2
    audit(tab)
    tab.screenshot("console-airline-catalog")
    tab.assert_no_console_errors()
