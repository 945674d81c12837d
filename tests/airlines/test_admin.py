from __future__ import annotations

import httpx

from tests.conftest import AirlineHandle, LiveServer, assert_problem, next_code


def test_operator_creates_airline_and_reads_it_back(admin: httpx.Client) -> None:
    code = next_code()
    body = {
        "code": code,
        "name": "Alpine Air",
        "currencies": ["CHF", "EUR"],
        "default_locale": "de",
        "locales": ["fr"],
        "settings": {"seat_limits": {"alcohol": 2}},
    }
    created = admin.post("/admin/airlines", json=body)
    assert created.status_code == 201, created.text
    got = admin.get(f"/admin/airlines/{code}").json()
    assert got["currencies"] == ["CHF", "EUR"]
    assert got["locales"] == ["de", "fr"], "the default locale is always one of the locales"
    assert got["settings"]["seat_limits"] == {"alcohol": 2}


def test_duplicate_airline_code_is_a_conflict(admin: httpx.Client, airline: AirlineHandle) -> None:
    again = admin.post("/admin/airlines", json={"code": airline.code, "name": "Copy", "currencies": ["EUR"]})
    assert_problem(again, 409, "already_exists")


def test_invalid_airline_gets_validation_problem_with_every_error(admin: httpx.Client) -> None:
    response = admin.post("/admin/airlines", json={"code": "toolong", "name": "", "currencies": ["ABC"]})
    body = assert_problem(response, 422, "validation_error")
    fields = {tuple(e["loc"]) for e in body["errors"]}
    assert {("body", "code"), ("body", "name")} <= fields
    assert any(loc[:2] == ("body", "currencies") for loc in fields)


def test_patch_merges_settings_and_null_removes_a_key(admin: httpx.Client, airline: AirlineHandle) -> None:
    admin.patch(f"/admin/airlines/{airline.code}", json={"settings": {"seat_limits": {"alcohol": 2}, "x": 1}})
    patched = admin.patch(f"/admin/airlines/{airline.code}", json={"name": "Renamed", "settings": {"x": None}})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["name"] == "Renamed"
    assert body["settings"]["seat_limits"] == {"alcohol": 2}
    assert "x" not in body["settings"]


def test_patch_with_invalid_settings_changes_nothing(admin: httpx.Client, airline: AirlineHandle) -> None:
    before = admin.get(f"/admin/airlines/{airline.code}").json()
    bad = admin.patch(f"/admin/airlines/{airline.code}", json={"name": "New", "settings": {"seat_limits": {"a": -1}}})
    assert_problem(bad, 422, "validation_error")
    assert admin.get(f"/admin/airlines/{airline.code}").json() == before


def test_unknown_airline_is_not_found(admin: httpx.Client) -> None:
    assert_problem(admin.get("/admin/airlines/ZZ9"), 404, "not_found")
    assert_problem(admin.post("/admin/airlines/ZZ9/keys", json={}), 404, "not_found")


def test_requests_without_a_valid_key_are_unauthenticated(server: LiveServer) -> None:
    with server.client() as anonymous, server.client("sk_al_not-a-key") as unknown:
        assert_problem(anonymous.get("/v1/products"), 401, "unauthenticated")
        assert_problem(unknown.get("/v1/products"), 401, "unauthenticated")
        assert_problem(anonymous.get("/admin/airlines"), 401, "unauthenticated")


def test_airline_key_on_admin_endpoints_is_forbidden(airline: AirlineHandle) -> None:
    assert_problem(airline.client.get("/admin/airlines"), 403, "forbidden")
    assert_problem(airline.client.post("/admin/airlines", json={}), 403, "forbidden")


def test_operator_key_on_airline_endpoints_is_forbidden(admin: httpx.Client) -> None:
    assert_problem(admin.get("/v1/products"), 403, "forbidden")


def test_plain_key_is_shown_once_and_a_revoked_key_stops_working(
    admin: httpx.Client, airline: AirlineHandle, server: LiveServer
) -> None:
    issued = admin.post(f"/admin/airlines/{airline.code}/keys", json={"name": "crew tablets"})
    assert issued.status_code == 201
    key = issued.json()
    assert key["key"].startswith("sk_al_") and key["prefix"] == key["key"][:12]
    with server.client(key["key"]) as crew:
        assert crew.get("/v1/products").status_code == 200
        assert admin.delete(f"/admin/keys/{key['id']}").status_code == 204
        assert_problem(crew.get("/v1/products"), 401, "unauthenticated")
    assert admin.delete(f"/admin/keys/{key['id']}").status_code == 204, "revoking twice is harmless"
    assert_problem(admin.delete("/admin/keys/01HZZZZZZZZZZZZZZZZZZZZZZZ"), 404, "not_found")
    assert airline.client.get("/v1/products").status_code == 200, "the airline's other keys keep working"


def test_airlines_list_is_paginated(admin: httpx.Client, make_airline) -> None:
    for _ in range(3):
        make_airline()
    first = admin.get("/admin/airlines", params={"limit": 2}).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = admin.get("/admin/airlines", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert {a["code"] for a in first["items"]}.isdisjoint({a["code"] for a in second["items"]})
    assert_problem(admin.get("/admin/airlines", params={"cursor": "!!!"}), 422, "validation_error")
