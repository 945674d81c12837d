"""Schemathesis fuzzes every operation of the app's own OpenAPI document over real HTTP:
no 5xx, and every response (errors included) matches the documented schema and media type."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from skycart.app import create_app
from skycart.config import Settings
from tests.conftest import AirlineHandle, LiveServer

# Schema-valid input may still break a business rule (an ISO code that is not a real currency, a
# price in a currency the airline does not sell in); those answers are documented 4xx problems.
BUSINESS_RULES = [positive_data_acceptance]
SPEC = create_app(Settings()).openapi()
OPERATIONS = [
    (path, method.upper())
    for path, item in SPEC["paths"].items()
    for method in item
    if method in ("get", "post", "put", "patch", "delete")
]


@pytest.fixture
def fuzz_airline(make_airline) -> AirlineHandle:
    airline = make_airline()
    airline.product("FUZZ-1", min_age=18, restrictions=["alcohol"])
    airline.flight(stock={"FUZZ-1": 5})
    return airline


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_every_response_matches_the_openapi_document(
    path: str, method: str, server: LiveServer, fuzz_airline: AirlineHandle, operator_key: str
) -> None:
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    operation = schema[path][method]
    key = operator_key if path.startswith("/admin") else fuzz_airline.key

    @given(case=operation.as_strategy())
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def fuzz(case) -> None:
        case.call_and_validate(base_url=server.base_url, headers={"X-Api-Key": key}, excluded_checks=BUSINESS_RULES)

    fuzz()
