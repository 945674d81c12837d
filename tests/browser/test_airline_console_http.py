"""The airline's console over plain HTTP: its usage, statements, catalog, flights and orders."""

from __future__ import annotations

import re
from typing import Any

from skycart.platform.db import utcnow
from tests.browser.conftest import csrf_token, png, sign_in
from tests.conftest import AirlineHandle, LiveServer


def _cell(page: str, sku: str, column: str) -> str:
    row = page.split(f'<tr data-sku="{sku}"')[1].split("</tr>")[0]
    return re.search(rf'class="num {column}">([^<]*)<', row).group(1).strip()


def test_airline_overview_shows_its_own_usage_for_either_range(server: LiveServer, airline: AirlineHandle) -> None:
    with sign_in(server, airline.key) as client:
        day = client.get("/console")
        month = client.get("/console", params={"range": "30d"})
    assert day.status_code == month.status_code == 200
    assert "Requests per airline, last 24 hours" in day.text
    assert "Requests per airline, last 30 days" in month.text
    assert f'href="/console/statements/{utcnow():%Y-%m}"' in day.text


def test_airline_reads_its_own_statement_and_csv(server: LiveServer, airline: AirlineHandle) -> None:
    month = f"{utcnow():%Y-%m}"
    with sign_in(server, airline.key) as client:
        page = client.get(f"/console/statements/{month}")
        csv = client.get(f"/console/statements/{month}", params={"format": "csv"})
    assert f"Statement {airline.code} {month}" in page.text
    assert csv.headers["content-disposition"] == f'attachment; filename="statement-{airline.code}-{month}.csv"'
    assert f"{airline.code},{month},plan_fee,premium" in csv.text


def test_flight_page_shows_stock_discrepancies_and_orders_by_seat(server: LiveServer, airline: AirlineHandle) -> None:
    airline.product("TEA")
    airline.product("GIN", min_age=18, restrictions=["alcohol"])
    flight = airline.flight(stock={"TEA": 5, "GIN": 1})
    placed = airline.order(flight["id"], {"TEA": 2}, seat="3A").json()
    airline.order(flight["id"], {"TEA": 1}, seat="21F")
    sale = {"client_id": "tablet-1", "seat": "3A", "sold_at": utcnow().isoformat(), "currency": "EUR",
            "items": [{"sku": "GIN", "quantity": 3}], "payment": {"method": "cash"}}  # fmt: skip
    synced = airline.client.post("/v1/sync/sales", json={"flight_id": flight["id"], "sales": [sale]})
    assert synced.json()["inserted"] == 1
    with sign_in(server, airline.key) as client:
        page = client.get(f"/console/flights/{flight['id']}").text
        seat = client.get(f"/console/flights/{flight['id']}", params={"seat": "3a"}).text
    assert (_cell(page, "TEA", "loaded"), _cell(page, "TEA", "sold"), _cell(page, "TEA", "remaining")) == (
        "5",
        "3",
        "2",
    )
    assert (_cell(page, "GIN", "sold"), _cell(page, "GIN", "remaining")) == ("3", "0")
    assert _cell(page, "GIN", "discrepancy").startswith("2")
    assert "Sold beyond what was loaded (offline sales): GIN." in page
    assert page.index('data-seat="3A"') < page.index('data-seat="21F"'), "seats in seat order"
    assert f'data-order="{placed["id"]}"' in seat
    assert 'data-seat="21F"' not in seat


def test_flight_page_without_the_reports_feature_shows_stock_only(server: LiveServer, make_airline: Any) -> None:
    airline = make_airline(plan="basic")
    airline.product("TEA")
    flight = airline.flight(stock={"TEA": 4})
    with sign_in(server, airline.key) as client:
        page = client.get(f"/console/flights/{flight['id']}").text
    assert _cell(page, "TEA", "remaining") == "4"
    assert "discrepancy" not in page.split('<table id="stock">')[1].split("</table>")[0]
    assert "part of plans with the <em>reports</em> feature" in page


def test_catalog_edit_changes_only_prices_and_active(server: LiveServer, airline: AirlineHandle) -> None:
    before = airline.product("CAKE", name={"en": "Cake", "de": "Kuchen"}, min_age=None, attributes={"kcal": 300})
    with sign_in(server, airline.key) as client:
        token = csrf_token(client.get("/console/catalog").text)
        saved = client.post("/console/catalog/CAKE", data={"price.EUR": "5.10", "price.USD": "", "csrf_token": token})
        refused = client.post("/console/catalog/CAKE", data={"price.EUR": "5.101", "csrf_token": token})
    assert saved.status_code == 303
    assert refused.status_code == 422
    after = airline.client.get("/v1/products/CAKE").json()
    assert after["prices"] == {"EUR": "5.10"}
    assert after["active"] is False
    assert (after["name"], after["attributes"]) == (before["name"], before["attributes"])


def test_image_upload_needs_the_token_in_its_query(server: LiveServer, airline: AirlineHandle) -> None:
    airline.product("PIE")
    upload = {"file": ("pie.png", png((10, 120, 60)), "image/png")}
    with sign_in(server, airline.key) as client:
        token = csrf_token(client.get("/console/catalog").text)
        refused = client.post("/console/catalog/PIE/images", files=upload)
        added = client.post("/console/catalog/PIE/images", params={"csrf_token": token}, files=upload)
        page = client.get("/console/catalog").text
    assert refused.status_code == 403
    assert added.status_code == 303
    images = airline.client.get("/v1/products/PIE").json()["images"]
    assert len(images) == 1
    assert images[0]["thumbnails"]["160"] in page
