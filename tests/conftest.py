"""Test servers: the real app on real HTTP, against SQLite and against MariaDB.

Every test that uses `server` runs once per backend (`--backend all|sqlite|mariadb`). Under
CI=true a backend whose service does not answer fails the run instead of skipping.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet
from pydantic import SecretStr

from skycart.airlines import service as airline_service
from skycart.app import create_app
from skycart.cli import run_in_transaction
from skycart.config import Settings
from skycart.platform.migrate import upgrade

MARIADB_URL = os.environ.get("SKYCART_TEST_MARIADB_URL", "mysql+asyncmy://root@127.0.0.1:3306")
BACKENDS = ("sqlite", "mariadb")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# A sealing key made for this test run only.
WEBHOOK_SECRETS_KEY = Fernet.generate_key().decode()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--backend", choices=("all", *BACKENDS), default="all", help="database backend(s) to test")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--backend")
        backends = BACKENDS if chosen == "all" else (chosen,)
        marker = metafunc.definition.get_closest_marker("mariadb_only")
        if marker:
            backends = tuple(b for b in backends if b == "mariadb")
        metafunc.parametrize("backend", backends, indirect=True, scope="session")


def service_missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is not reachable and CI=true: a missing service fails the run")
    pytest.skip(f"{what} is not reachable")


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mariadb_admin(sql: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(MARIADB_URL.replace("+asyncmy", "+pymysql").replace("+aiomysql", "+pymysql"))
    with engine.begin() as conn:
        conn.execute(text(sql))
    engine.dispose()


@contextmanager
def scratch_database(kind: str, tmp_dir: Path) -> Iterator[str]:
    """An empty database of the given kind, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_dir / f'skycart-{uuid.uuid4().hex[:8]}.db'}"
        return
    if not _answers(3306):
        service_missing("MariaDB on 127.0.0.1:3306")
    name = f"skycart_test_{uuid.uuid4().hex[:10]}"
    _mariadb_admin(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")  # the server's default, case-insensitive collation
    try:
        yield f"{MARIADB_URL}/{name}"
    finally:
        _mariadb_admin(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The database URL the live server of this backend uses (migrated by `server`)."""
    with scratch_database(request.param, tmp_path_factory.mktemp(request.param)) as url:
        yield url


@dataclass
class LiveServer:
    base_url: str
    settings: Settings
    backend: str
    app: Any = None

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"X-Api-Key": key} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)


@pytest.fixture(scope="session")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The app served by uvicorn on a free port, over real HTTP."""
    assets = tmp_path_factory.mktemp("assets")
    with app_server(backend, "sqlite" if backend.startswith("sqlite") else "mariadb", assets) as live:
        yield live


@contextmanager
def app_server(database_url: str, backend: str, assets_dir: Path) -> Iterator[LiveServer]:
    """The app on a migrated database, with the test settings: quick flushes, no access log, its own assets folder."""
    settings = Settings(
        database_url=database_url,
        log_level="WARNING",
        metering_flush_seconds=0.3,
        access_log=False,
        assets_dir=assets_dir,
        # Webhook receivers in tests listen on 127.0.0.1 over plain HTTP (tests/events check the guard).
        webhook_secrets_keys=SecretStr(WEBHOOK_SECRETS_KEY),
        webhooks_allow_http=True,
        webhooks_allow_private=True,
    )
    upgrade(settings)
    with serving(settings, backend) as live:
        yield live


@contextmanager
def serving(settings: Settings, backend: str) -> Iterator[LiveServer]:
    """The app for `settings` served by uvicorn in a thread on a free port, until the block ends."""
    port = _free_port()
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", settings, backend, app)
    finally:
        uv.should_exit = True
        thread.join(timeout=20)


@pytest.fixture(scope="session")
def operator_key(server: LiveServer) -> str:
    async def _create(session: Any) -> str:
        _key, plain = await airline_service.issue_key(session, role=airline_service.ROLE_OPERATOR, airline=None)
        return plain

    return run_in_transaction(server.settings, _create)


@pytest.fixture
def admin(server: LiveServer, operator_key: str) -> Iterator[httpx.Client]:
    with server.client(operator_key) as client:
        yield client


# 3,630 airline codes a test run can use (the suite takes more than a thousand); none is ZZ8 or ZZ9, which
# tests name.
_codes = (
    f"{a}{b}{c}"
    for a, b, c in itertools.product("QWXYZ", "ABCDEFGHJKLMNPRSTUVWXY", "0123456789ABCDEFGHJKLMNPRSTUVWXYZ")
)
_codes_lock = threading.Lock()


def next_code() -> str:
    with _codes_lock:
        return next(_codes)


@dataclass
class AirlineHandle:
    """An airline created through the API, with a client authenticated as it."""

    code: str
    key: str
    client: httpx.Client
    data: dict[str, Any] = field(default_factory=dict)

    def product(self, sku: str, **overrides: Any) -> dict[str, Any]:
        body = product_body(sku, self.data["currencies"], **overrides)
        response = self.client.post("/v1/products", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def flight(self, *, international: bool = False, stock: dict[str, int] | None = None, **overrides: Any) -> dict:
        body = flight_body(international=international, **overrides)
        response = self.client.post("/v1/flights", json=body)
        assert response.status_code == 201, response.text
        flight = response.json()
        if stock:
            items = [{"sku": sku, "quantity": qty} for sku, qty in stock.items()]
            loaded = self.client.put(f"/v1/flights/{flight['id']}/inventory", json={"items": items})
            assert loaded.status_code == 200, loaded.text
        return flight

    def order(
        self, flight_id: str, items: dict[str, int], *, key: str | None = None, **overrides: Any
    ) -> httpx.Response:
        currency = overrides.pop("currency", self.data["currencies"][0])
        body = order_body(flight_id, items, currency=currency, **overrides)
        return self.client.post("/v1/orders", json=body, headers={"Idempotency-Key": key or uuid.uuid4().hex})


_flight_numbers = itertools.count(1)


def product_body(sku: str, currencies: list[str], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sku": sku,
        "name": {"en": f"Product {sku}"},
        "description": {"en": f"About {sku}"},
        "category": "snacks",
        "prices": {cur: ("450" if cur == "JPY" else "4.50") for cur in currencies},
    }
    body.update(overrides)
    return body


def flight_body(*, international: bool = False, **overrides: Any) -> dict[str, Any]:
    today = date.today()
    body = {
        "flight_number": f"QX{next(_flight_numbers)}",
        "departure_date": today.isoformat(),
        "origin": "FRA",
        "destination": "JFK" if international else "MUC",
        "scheduled_departure": (datetime.now(UTC) + timedelta(hours=2)).isoformat(),
        "international": international,
    }
    body.update(overrides)
    return body


def order_body(flight_id: str, items: dict[str, int], *, currency: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "flight_id": flight_id,
        "seat": "12C",
        "currency": currency,
        "items": [{"sku": sku, "quantity": qty} for sku, qty in items.items()],
        "payment": {"token": "tok_ok"},
        "passenger": {"age_confirmed": False},
    }
    body.update(overrides)
    return body


@pytest.fixture
def make_airline(server: LiveServer, admin: httpx.Client) -> Iterator[Any]:
    clients: list[httpx.Client] = []

    def _make(plan: str = "premium", **overrides: Any) -> AirlineHandle:
        body = {
            "code": next_code(),
            "name": "Test Air",
            "currencies": ["EUR", "USD"],
            "default_locale": "en",
            "locales": ["en", "de"],
        }
        body.update(overrides)
        created = admin.post("/admin/airlines", json=body)
        assert created.status_code == 201, created.text
        # Tests about other things must not meet the default plan's rate limit.
        assert admin.put(f"/admin/airlines/{body['code']}/plan", json={"plan": plan}).status_code == 200
        key = admin.post(f"/admin/airlines/{body['code']}/keys", json={"name": "tests"})
        assert key.status_code == 201, key.text
        client = server.client(key.json()["key"])
        clients.append(client)
        return AirlineHandle(code=body["code"], key=key.json()["key"], client=client, data=created.json())

    yield _make
    for client in clients:
        client.close()


@pytest.fixture
def airline(make_airline: Any) -> AirlineHandle:
    return make_airline()


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    return body
