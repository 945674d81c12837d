from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
import orjson

from tests.conftest import AirlineHandle, LiveServer, assert_problem, product_body

HEADER = "sku,category,name.en,name.de,description.en,price.EUR,price.USD,min_age,restrictions,active,attributes"


def import_json(airline: AirlineHandle, rows: Any) -> httpx.Response:
    return airline.client.post("/v1/products:import", json=rows)


def import_csv(airline: AirlineHandle, *lines: str, header: str = HEADER) -> httpx.Response:
    text = "\n".join((header, *lines)) + "\n"
    return airline.client.post(
        "/v1/products:import", content=text.encode(), headers={"content-type": "text/csv; charset=utf-8"}
    )


def all_products(airline: AirlineHandle) -> dict[str, dict[str, Any]]:
    products: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {"limit": 500}
    while True:
        listed = airline.client.get("/v1/products", params=params)
        assert listed.status_code == 200, listed.text
        products.update((p["sku"], p) for p in listed.json()["items"])
        if not listed.json()["next_cursor"]:
            return products
        params["cursor"] = listed.json()["next_cursor"]


def test_import_keeps_created_at_of_replaced_products(airline: AirlineHandle) -> None:
    before = airline.product("KEPT")
    assert import_json(airline, [product_body("KEPT", ["EUR"], category="new")]).json()["updated"] == 1
    after = airline.client.get("/v1/products/KEPT").json()
    assert after["category"] == "new"
    assert after["created_at"] == before["created_at"]
    assert datetime.fromisoformat(after["updated_at"]) > datetime.fromisoformat(before["updated_at"])


def test_json_import_creates_new_and_replaces_existing_products(airline: AirlineHandle) -> None:
    airline.product("OLD", min_age=18, restrictions=["alcohol"])
    rows = [
        product_body("NEW-1", ["EUR"], prices={"EUR": "1.50"}),
        product_body("OLD", ["EUR"], category="drinks", prices={"EUR": "2.00"}),
        product_body("NEW-2", ["EUR", "USD"], active=False),
    ]
    response = import_json(airline, rows)
    assert response.status_code == 200, response.text
    assert response.json() == {"created": 2, "updated": 1, "total": 3}
    products = all_products(airline)
    assert sorted(products) == ["NEW-1", "NEW-2", "OLD"]
    assert products["NEW-1"]["prices"] == {"EUR": "1.50"}
    assert products["NEW-2"]["active"] is False
    assert products["OLD"]["category"] == "drinks"
    assert products["OLD"]["prices"] == {"EUR": "2.00"}
    assert products["OLD"]["min_age"] is None, "an imported row replaces the whole product"
    assert products["OLD"]["restrictions"] == []


def test_json_import_accepts_a_products_wrapper(airline: AirlineHandle) -> None:
    response = import_json(airline, {"products": [product_body("WRAPPED", ["EUR"])]})
    assert response.status_code == 200, response.text
    assert response.json() == {"created": 1, "updated": 0, "total": 1}
    assert airline.client.get("/v1/products/WRAPPED").status_code == 200


def test_importing_the_same_rows_twice_updates_instead_of_creating(airline: AirlineHandle) -> None:
    rows = [product_body(f"TWICE-{i}", ["EUR"]) for i in range(3)]
    assert import_json(airline, rows).json() == {"created": 3, "updated": 0, "total": 3}
    assert import_json(airline, rows).json() == {"created": 0, "updated": 3, "total": 3}
    assert len(all_products(airline)) == 3


def test_empty_import_changes_nothing(airline: AirlineHandle) -> None:
    response = import_json(airline, [])
    assert response.status_code == 200, response.text
    assert response.json() == {"created": 0, "updated": 0, "total": 0}


def test_csv_import_reads_every_column(airline: AirlineHandle) -> None:
    response = import_csv(
        airline,
        'WINE,drinks,Red wine,Rotwein,Dry red,7.50,8.5,18,alcohol|duty_free,false,"{""volume_ml"": 187}"',
        "WATER,drinks,Water,,,2,,,,,",
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"created": 2, "updated": 0, "total": 2}
    wine = airline.client.get("/v1/products/WINE").json()
    assert wine["category"] == "drinks"
    assert wine["name"] == {"en": "Red wine", "de": "Rotwein"}
    assert wine["description"] == {"en": "Dry red"}
    assert wine["prices"] == {"EUR": "7.50", "USD": "8.50"}
    assert wine["min_age"] == 18
    assert wine["restrictions"] == ["alcohol", "duty_free"]
    assert wine["active"] is False
    assert wine["attributes"] == {"volume_ml": 187}
    water = airline.client.get("/v1/products/WATER").json()
    assert water["name"] == {"en": "Water"}, "empty cells leave a locale out"
    assert water["description"] == {}
    assert water["prices"] == {"EUR": "2.00"}
    assert (water["min_age"], water["restrictions"], water["active"], water["attributes"]) == (None, [], True, {})


def test_csv_import_accepts_a_byte_order_mark_and_crlf_lines(airline: AirlineHandle) -> None:
    text = "\ufeffsku,category,name.en,price.EUR\r\nBOM-1,snacks,Nuts,3.00\r\n"
    response = airline.client.post("/v1/products:import", content=text.encode(), headers={"content-type": "text/csv"})
    assert response.status_code == 200, response.text
    assert airline.client.get("/v1/products/BOM-1").json()["prices"] == {"EUR": "3.00"}


def test_one_bad_row_rejects_the_whole_import_and_leaves_existing_products_unchanged(
    airline: AirlineHandle,
) -> None:
    before = airline.product("KEEP", category="original")
    rows = [
        product_body("BATCH-1", ["EUR"]),
        product_body("KEEP", ["EUR"], category="changed"),
        product_body("BATCH-3", ["EUR"], prices={"EUR": "4.505"}),
        product_body("BATCH-4", ["EUR"]),
    ]
    problem = assert_problem(import_json(airline, rows), 422, "validation_error")
    assert [(e["row"], e["sku"], e["field"]) for e in problem["errors"]] == [(3, "BATCH-3", "prices")]
    assert "EUR" in problem["errors"][0]["message"]
    assert all_products(airline) == {"KEEP": before}


def test_csv_bad_row_rejects_the_whole_import(airline: AirlineHandle) -> None:
    response = import_csv(
        airline, "GOOD-1,snacks,Nuts,,,3.00,,,,,", "BAD-2,snacks,Chips,,,three,,,,,", "GOOD-3,snacks,Bar,,,1.00,,,,,"
    )
    problem = assert_problem(response, 422, "validation_error")
    assert [(e["row"], e["sku"], e["field"]) for e in problem["errors"]] == [(2, "BAD-2", "prices.EUR")]
    assert all_products(airline) == {}


def test_error_report_is_one_based_sorted_by_row_and_names_sku_field_and_message(airline: AirlineHandle) -> None:
    response = import_csv(
        airline,
        "OK-1,snacks,Nuts,,,3.00,,,,,",
        "BAD-LOCALE,snacks,Nuts,Noix,,3.00,,,,,",
        "BAD-ACTIVE,snacks,Nuts,,,3.00,,,,perhaps,",
        "BAD-AGE,snacks,Nuts,,,3.00,,120,,,",
        "OK-5,snacks,Nuts,,,3.00,,,,,",
        header="sku,category,name.en,name.fr,description.en,price.EUR,price.USD,min_age,restrictions,active,attributes",
    )
    problem = assert_problem(response, 422, "validation_error")
    rows = [e["row"] for e in problem["errors"]]
    assert rows == sorted(rows)
    assert rows == [2, 3, 4], "a parse error, a schema error and an airline error, each on its own row"
    assert [(e["sku"], e["field"]) for e in problem["errors"]] == [
        ("BAD-LOCALE", "name.fr"),
        ("BAD-ACTIVE", "active"),
        ("BAD-AGE", "min_age"),
    ]
    assert all(e["message"] for e in problem["errors"])
    assert "in 3 row(s)" in problem["detail"]
    assert all_products(airline) == {}


def test_every_bad_row_is_reported_in_row_order(airline: AirlineHandle) -> None:
    rows = [
        product_body("R1", ["EUR"], prices={"GBP": "1.00"}),
        product_body("R2", ["EUR"]),
        {"sku": "R3"},
        product_body("bad sku", ["EUR"]),
        product_body("R5", ["EUR"], name={"fr": "Noix"}),
    ]
    problem = assert_problem(import_json(airline, rows), 422, "validation_error")
    errors = problem["errors"]
    assert [e["row"] for e in errors] == sorted(e["row"] for e in errors)
    assert {e["row"] for e in errors} == {1, 3, 4, 5}
    assert {(e["row"], e["field"]) for e in errors} >= {
        (1, "prices.GBP"),
        (3, "name"),
        (3, "category"),
        (3, "prices"),
        (4, "sku"),
        (5, "name.fr"),
    }
    assert next(e for e in errors if e["row"] == 4)["sku"] == "bad sku"
    assert all_products(airline) == {}


def test_json_rows_that_are_not_objects_are_row_errors(airline: AirlineHandle) -> None:
    problem = assert_problem(import_json(airline, [product_body("FINE", ["EUR"]), 7, None]), 422, "validation_error")
    assert [(e["row"], e["sku"]) for e in problem["errors"]] == [(2, None), (3, None)]
    assert all_products(airline) == {}


def test_duplicate_sku_inside_one_import_is_a_row_error(airline: AirlineHandle) -> None:
    rows = [product_body("TWIN", ["EUR"]), product_body("OTHER", ["EUR"]), product_body("TWIN", ["EUR"])]
    problem = assert_problem(import_json(airline, rows), 422, "validation_error")
    assert [(e["row"], e["sku"], e["field"]) for e in problem["errors"]] == [(3, "TWIN", "sku")]
    assert "row 1" in problem["errors"][0]["message"]
    assert all_products(airline) == {}


def test_csv_bad_active_value_is_a_row_error(airline: AirlineHandle) -> None:
    response = import_csv(airline, "A-1,snacks,Nuts,,,3.00,,,,true,", "A-2,snacks,Nuts,,,3.00,,,,maybe,")
    problem = assert_problem(response, 422, "validation_error")
    assert [(e["row"], e["sku"], e["field"]) for e in problem["errors"]] == [(2, "A-2", "active")]
    assert "maybe" in problem["errors"][0]["message"]
    assert all_products(airline) == {}


def test_csv_bad_json_in_attributes_is_a_row_error(airline: AirlineHandle) -> None:
    response = import_csv(airline, 'J-1,snacks,Nuts,,,3.00,,,,,"{""ok"": 1}"', "J-2,snacks,Nuts,,,3.00,,,,,{not json")
    problem = assert_problem(response, 422, "validation_error")
    assert [(e["row"], e["sku"], e["field"]) for e in problem["errors"]] == [(2, "J-2", "attributes")]
    assert all_products(airline) == {}


def test_csv_attributes_that_are_not_an_object_are_a_row_error(airline: AirlineHandle) -> None:
    problem = assert_problem(import_csv(airline, "J-1,snacks,Nuts,,,3.00,,,,,[1]"), 422, "validation_error")
    assert [(e["row"], e["field"]) for e in problem["errors"]] == [(1, "attributes")]


def test_csv_non_numeric_min_age_is_a_row_error(airline: AirlineHandle) -> None:
    problem = assert_problem(import_csv(airline, "AGE,snacks,Nuts,,,3.00,,adult,,,"), 422, "validation_error")
    assert [(e["row"], e["sku"], e["field"]) for e in problem["errors"]] == [(1, "AGE", "min_age")]


def test_csv_row_with_more_cells_than_the_header_is_a_row_error(airline: AirlineHandle) -> None:
    response = import_csv(airline, "C-1,snacks,Nuts,,,3.00,,,,,", "C-2,snacks,Nuts,,,3.00,,,,,,extra")
    problem = assert_problem(response, 422, "validation_error")
    assert [(e["row"], e["sku"]) for e in problem["errors"]] == [(2, "C-2")]
    assert all_products(airline) == {}


def test_csv_without_a_sku_column_is_rejected(airline: AirlineHandle) -> None:
    assert_problem(import_csv(airline, "snacks,Nuts", header="category,name.en"), 422, "validation_error")


def test_csv_that_is_not_utf8_is_rejected(airline: AirlineHandle) -> None:
    body = "sku,category,name.en,price.EUR\nX,snacks,Caf\xe9,1.00\n".encode("latin-1")
    response = airline.client.post("/v1/products:import", content=body, headers={"content-type": "text/csv"})
    assert_problem(response, 422, "validation_error")
    assert all_products(airline) == {}


def test_unsupported_content_type_is_415(airline: AirlineHandle) -> None:
    response = airline.client.post("/v1/products:import", content=b"sku\nX\n", headers={"content-type": "text/plain"})
    assert_problem(response, 415, "unsupported_media_type")
    assert all_products(airline) == {}


def test_malformed_json_import_is_a_validation_problem(airline: AirlineHandle) -> None:
    response = airline.client.post(
        "/v1/products:import", content=b'[{"sku": "X"', headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, "validation_error")


def test_json_import_that_is_not_a_list_is_a_validation_problem(airline: AirlineHandle) -> None:
    assert_problem(import_json(airline, product_body("SINGLE", ["EUR"])), 422, "validation_error")
    assert all_products(airline) == {}


def test_json_import_over_the_row_limit_is_rejected(airline: AirlineHandle) -> None:
    rows = [product_body(f"L{i}", ["EUR"]) for i in range(10_001)]
    problem = assert_problem(import_json(airline, rows), 422, "validation_error")
    assert "10000" in problem["detail"]
    assert all_products(airline) == {}


def test_csv_import_over_the_row_limit_is_rejected(airline: AirlineHandle) -> None:
    lines = [f"L{i},snacks,Nuts,,,1.00,,,,," for i in range(10_001)]
    problem = assert_problem(import_csv(airline, *lines), 422, "validation_error")
    assert "10000" in problem["detail"]
    assert all_products(airline) == {}


def test_import_at_the_row_limit_is_accepted(airline: AirlineHandle) -> None:
    rows = [product_body(f"L{i:05d}", ["EUR"]) for i in range(10_000)]
    response = import_json(airline, rows)
    assert response.status_code == 200, response.text
    assert response.json() == {"created": 10_000, "updated": 0, "total": 10_000}
    assert sorted(all_products(airline)) == [row["sku"] for row in rows]


def test_body_over_the_byte_limit_is_413(airline: AirlineHandle) -> None:
    body = b"[" + b" " * (10 * 1024 * 1024) + b"]"
    response = airline.client.post("/v1/products:import", content=body, headers={"content-type": "application/json"})
    assert_problem(response, 413, "payload_too_large")


def test_imported_products_belong_to_the_importing_airline_only(make_airline: Any) -> None:
    importer, other = make_airline(), make_airline()
    other.product("SHARED", category="mine")
    assert import_json(importer, [product_body("SHARED", ["EUR"], category="theirs")]).json()["created"] == 1
    assert other.client.get("/v1/products/SHARED").json()["category"] == "mine"
    assert importer.client.get("/v1/products/SHARED").json()["category"] == "theirs"


def test_concurrent_imports_of_the_same_new_skus_succeed_or_ask_for_a_retry(
    server: LiveServer, airline: AirlineHandle
) -> None:
    def run(rows: list[dict[str, Any]]) -> httpx.Response:
        with server.client(airline.key) as client:
            return client.post("/v1/products:import", json=rows)

    for attempt in range(3):
        rows = [product_body(f"RACE-{attempt}-{i:03d}", ["EUR"]) for i in range(200)]
        with ThreadPoolExecutor(6) as pool:
            responses = list(pool.map(run, [rows] * 6))
        for response in responses:
            if response.status_code != 200:
                problem = assert_problem(response, 409, "conflict")
                assert "retry" in problem["detail"] and response.headers["retry-after"] == "1"
        assert sum(r.json()["created"] == 200 for r in responses if r.status_code == 200) == 1
    listed = all_products(airline)
    assert len(listed) == 600


def test_a_slow_upload_does_not_hold_up_other_writes(server: LiveServer, airline: AirlineHandle) -> None:
    body = orjson.dumps([product_body("SLOW", ["EUR"])])

    def trickle() -> Iterator[bytes]:
        yield body[:5]
        time.sleep(2)
        yield body[5:]

    with ThreadPoolExecutor(1) as pool, server.client(airline.key) as uploader:
        upload = pool.submit(
            uploader.post, "/v1/products:import", content=trickle(), headers={"content-type": "application/json"}
        )
        time.sleep(0.3)
        started = time.monotonic()
        airline.product("FAST")
        assert time.monotonic() - started < 1.0, "a create waited for another client's upload"
        assert upload.result().json() == {"created": 1, "updated": 0, "total": 1}
