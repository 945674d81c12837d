"""Hypothesis feeds hostile JSON to every operation of the OpenAPI document that takes a JSON body.

Each body is a valid one for its operation with one part replaced (or one field added) by what a
schema-driven fuzzer never sends: non-finite numbers and numbers past a double, lone surrogates,
huge integers, deep nesting, strings where booleans or integers belong, out-of-range dates; or a
body made of the operation's field names at any depth. Whatever arrives, the answer is never a
5xx, and every refusal is a problem+json.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skycart.app import create_app
from skycart.config import Settings
from tests.conftest import AirlineHandle, LiveServer, flight_body, order_body, product_body

SPEC = create_app(Settings()).openapi()
JSON_OPERATIONS = [
    (path, method)
    for path, item in SPEC["paths"].items()
    for method, operation in item.items()
    if isinstance(operation, dict) and "application/json" in operation.get("requestBody", {}).get("content", {})
]
# Written into the body as they are: not one of them is JSON that a strict parser accepts.
RAW = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", '"\\ud800x"', '"\\udfff"', '"a\\ud83d"']


class Raw(str):
    """A token written into the body verbatim."""


def _field_names() -> list[str]:
    names: set[str] = set()
    for schema in SPEC["components"]["schemas"].values():
        names |= set(schema.get("properties", {}))
    return sorted(names)


KEYS = st.one_of(st.sampled_from(_field_names()), st.text(max_size=8))
LEAVES = st.one_of(
    st.sampled_from(RAW).map(Raw),
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**18, max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["yes", "1", "true", "0", "", "9999-12-31", "9999-12-31T23:00:00-05:00", "0.125", "-1"]),
)
VALUES = st.recursive(
    LEAVES,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=6)),
    max_leaves=25,
)
RANDOM_BODIES = st.one_of(st.dictionaries(KEYS, VALUES, min_size=1, max_size=8), st.lists(VALUES, max_size=4))


def valid_body(path: str, method: str, flight_id: str) -> Any:
    """A body the operation accepts (or refuses only for a business rule, e.g. a code already taken)."""
    product = product_body("FUZZ-2", ["EUR"], attributes={"size": {"ml": 330}}, min_age=18)
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    sale = {"client_id": "c-1", "seat": "12C", "sold_at": now, "currency": "EUR", "payment": {"method": "cash"}}
    bodies = {
        ("/admin/airlines", "post"): {"code": "ZZ9", "name": "Fuzz", "currencies": ["EUR"], "settings": {}},
        ("/admin/airlines/{code}", "patch"): {"name": "Fuzz Air", "settings": {"branding": {"color": "red"}}},
        ("/admin/airlines/{code}/keys", "post"): {"name": "fuzz"},
        ("/v1/products", "post"): product,
        ("/v1/products/{sku}", "put"): {k: v for k, v in product.items() if k != "sku"},
        ("/v1/products:import", "post"): [product],
        ("/v1/flights", "post"): flight_body(),
        ("/v1/flights/{flight_id}/inventory", "put"): {"items": [{"sku": "FUZZ-1", "quantity": 3}]},
        ("/v1/orders", "post"): order_body(flight_id, {"FUZZ-1": 1}, currency="EUR"),
        ("/v1/sync/sales", "post"): {
            "flight_id": flight_id,
            "sales": [{**sale, "items": [{"sku": "FUZZ-1", "quantity": 1}]}],
        },
        ("/admin/plans", "post"): {
            "code": "fuzz",
            "name": "Fuzz",
            "overage": True,
            "rate_limit_per_second": "10",
            "burst": 10,
            "monthly_fee": "1.00",
            "revenue_share_bps": 100,
            "currency": "EUR",
            "features": [],
        },
        ("/admin/airlines/{code}/plan", "put"): {"plan": "basic"},
        ("/v1/webhooks", "post"): {"url": "http://127.0.0.1:9/fuzz", "events": ["flight.closed"]},
        ("/v1/webhooks/{webhook_id}", "patch"): {"url": "http://127.0.0.1:9/fuzzed", "events": ["flight.closed"]},
    }
    return copy.deepcopy(bodies[path, method])


def _places(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a body: the keys and indexes that lead to it."""
    found = [at]
    if isinstance(node, dict):
        for key, child in node.items():
            found += _places(child, (*at, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _places(child, (*at, index))
    return found


@st.composite
def hostile_bodies(draw: st.DrawFn, base: Any) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(RANDOM_BODIES)
    body = copy.deepcopy(base)
    place = draw(st.sampled_from(_places(body)))
    value = draw(VALUES)
    if not place:
        return value
    parent = body
    for step in place[:-1]:
        parent = parent[step]
    if isinstance(parent, dict) and draw(st.booleans()):
        parent[draw(KEYS)] = value  # a field added beside it
    else:
        parent[place[-1]] = value
    return body


def render(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(key)}:{render(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(render(item) for item in value) + "]"
    return json.dumps(value)


def _path(template: str, airline: AirlineHandle, flight_id: str) -> str:
    filled = template.replace("{code}", airline.code).replace("{sku}", "FUZZ-1").replace("{flight_id}", flight_id)
    return filled.replace("{webhook_id}", airline.data["webhook_id"])


@pytest.fixture
def hostile_airline(make_airline) -> tuple[AirlineHandle, str]:
    airline = make_airline()
    airline.product("FUZZ-1")
    # Subscribed to an event nothing here records, so the worker never posts to it.
    hook = airline.client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/fuzz", "events": ["flight.closed"]})
    assert hook.status_code == 201, hook.text
    airline.data["webhook_id"] = hook.json()["id"]
    return airline, airline.flight(stock={"FUZZ-1": 5})["id"]


@pytest.mark.parametrize(("path", "method"), JSON_OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in JSON_OPERATIONS])
def test_hostile_json_never_gets_a_5xx(
    path: str, method: str, server: LiveServer, hostile_airline: tuple[AirlineHandle, str], operator_key: str
) -> None:
    airline, flight_id = hostile_airline
    key = operator_key if path.startswith("/admin") else airline.key
    url = _path(path, airline, flight_id)
    seen: dict[int, int] = {}

    with httpx.Client(base_url=server.base_url, headers={"X-Api-Key": key}, timeout=30) as client:

        @given(body=hostile_bodies(valid_body(path, method, flight_id)))
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(body: Any) -> None:
            text = render(body)
            headers = {"content-type": "application/json", "Idempotency-Key": f"fuzz-{abs(hash(text))}"}
            answer = client.request(method.upper(), url, content=text.encode(), headers=headers)
            seen[answer.status_code] = seen.get(answer.status_code, 0) + 1
            assert answer.status_code < 500, (text[:500], answer.text[:500])
            if answer.status_code >= 400:
                assert answer.headers["content-type"].startswith("application/problem+json"), answer.headers
                assert isinstance(answer.json()["code"], str)

        fuzz()
    assert sum(seen.values()) >= 40 and set(seen) - {200, 201}, seen


@pytest.mark.parametrize(("path", "method"), JSON_OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in JSON_OPERATIONS])
def test_each_starting_body_is_accepted_as_it_is(
    path: str, method: str, server: LiveServer, hostile_airline: tuple[AirlineHandle, str], operator_key: str
) -> None:
    """So the hostile part is what a refusal is about, not the rest of the body."""
    airline, flight_id = hostile_airline
    key = operator_key if path.startswith("/admin") else airline.key
    with httpx.Client(base_url=server.base_url, headers={"X-Api-Key": key}, timeout=30) as client:
        answer = client.request(
            method.upper(),
            _path(path, airline, flight_id),
            json=valid_body(path, method, flight_id),
            headers={"Idempotency-Key": "fuzz-valid"},
        )
    assert answer.status_code in (200, 201, 409), answer.text
