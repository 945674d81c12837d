"""Deliveries to a real HTTP receiver, checked as the receiver sees them: signed so that the `standardwebhooks`
package verifies them, retried with the same `webhook-id`, in order per order, given up and the endpoint
disabled when they keep failing. A server of these tests' own (its own database, a short retry schedule)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

from skycart.airlines import service as airline_service
from skycart.cli import run_in_transaction
from skycart.config import Settings
from skycart.platform.migrate import upgrade
from tests.conftest import (
    WEBHOOK_SECRETS_KEY,
    LiveServer,
    flight_body,
    next_code,
    order_body,
    product_body,
    scratch_database,
    serving,
)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that keeps what it is sent and answers each path from a script."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    # Per path, the statuses of the next answers (then 200).
    script: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with state.lock:
                state.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                statuses = state.script.get(self.path) or []
                status = statuses.pop(0) if statuses else 200
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()


@dataclass
class Hooked:
    server: LiveServer
    admin: httpx.Client


@pytest.fixture(scope="module")
def hooked(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hooked]:
    kind = "sqlite" if backend.startswith("sqlite") else "mariadb"
    folder = tmp_path_factory.mktemp("delivery")
    with scratch_database(kind, folder) as url:
        settings = Settings(
            database_url=url,
            log_level="WARNING",
            access_log=False,
            assets_dir=folder,
            webhook_secrets_keys=SecretStr(WEBHOOK_SECRETS_KEY),
            webhooks_allow_http=True,
            webhooks_allow_private=True,
            webhook_retry_seconds=[0.3],
            webhook_give_up_seconds=1,
            webhook_disable_after_seconds=2,
            webhook_poll_seconds=0.05,
        )
        upgrade(settings)

        async def _operator(session: Any) -> str:
            return (await airline_service.issue_key(session, role=airline_service.ROLE_OPERATOR, airline=None))[1]

        key = run_in_transaction(settings, _operator)
        with serving(settings, kind) as live, live.client(key) as admin:
            yield Hooked(live, admin)


@dataclass
class Airline:
    code: str
    client: httpx.Client
    flight_id: str


@pytest.fixture
def airline(hooked: Hooked) -> Iterator[Airline]:
    admin, code = hooked.admin, next_code()
    assert (
        admin.post("/admin/airlines", json={"code": code, "name": "Hook Air", "currencies": ["EUR"]}).status_code == 201
    )
    assert admin.put(f"/admin/airlines/{code}/plan", json={"plan": "premium"}).status_code == 200
    key = admin.post(f"/admin/airlines/{code}/keys", json={"name": "tests"}).json()["key"]
    with hooked.server.client(key) as client:
        assert client.post("/v1/products", json=product_body("TEA", ["EUR"])).status_code == 201
        flight = client.post("/v1/flights", json=flight_body())
        assert flight.status_code == 201, flight.text
        flight_id = flight.json()["id"]
        loaded = client.put(f"/v1/flights/{flight_id}/inventory", json={"items": [{"sku": "TEA", "quantity": 100}]})
        assert loaded.status_code == 200, loaded.text
        yield Airline(code, client, flight_id)


def _subscribe(airline: Airline, url: str, events: list[str]) -> dict[str, Any]:
    made = airline.client.post("/v1/webhooks", json={"url": url, "events": events})
    assert made.status_code == 201, made.text
    return made.json()


def _order(airline: Airline, **overrides: Any) -> httpx.Response:
    body = order_body(airline.flight_id, {"TEA": 1}, currency="EUR", **overrides)
    return airline.client.post("/v1/orders", json=body, headers={"Idempotency-Key": next_code() + str(time.time())})


def _until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "did not happen in time"
        time.sleep(0.05)


def test_a_delivery_is_signed_so_that_standard_webhooks_verifies_it(airline: Airline, receiver: Receiver) -> None:
    hook = _subscribe(airline, receiver.url("/signed"), ["order.created"])
    placed = _order(airline)
    assert placed.status_code == 201, placed.text
    (got,) = _until(lambda: receiver.at("/signed"))
    payload = Webhook(hook["secret"]).verify(got.body, got.headers)  # raises unless the signature holds
    (event,) = airline.client.get("/v1/events", params={"type": "order.created"}).json()["items"]
    assert payload == got.event == event
    assert got.headers["webhook-id"] == event["id"]
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 30
    assert got.event["data"] == placed.json()
    with pytest.raises(Exception):  # noqa: B017 - the package's own error type for a bad signature
        Webhook("whsec_" + "A" * 32).verify(got.body, got.headers)
    deliveries = _until(
        lambda: [
            d
            for d in airline.client.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["items"]
            if d["status"] == "delivered"
        ]
    )
    assert deliveries[0]["attempts"] == 1 and deliveries[0]["event_id"] == event["id"]


def test_a_receiver_failing_twice_gets_three_attempts_with_one_webhook_id(airline: Airline, receiver: Receiver) -> None:
    receiver.script["/flaky"] = [500, 500]
    hook = _subscribe(airline, receiver.url("/flaky"), ["order.created"])
    assert _order(airline).status_code == 201
    attempts = _until(lambda: receiver.at("/flaky") if len(receiver.at("/flaky")) >= 3 else None)
    time.sleep(0.5)  # nothing more comes once it is delivered
    assert len(receiver.at("/flaky")) == 3
    assert len({a.headers["webhook-id"] for a in attempts}) == 1
    assert len({a.body for a in attempts}) == 1, "the same bytes on every attempt"
    for attempt in attempts:
        Webhook(hook["secret"]).verify(attempt.body, attempt.headers)
    (delivery,) = _until(
        lambda: [
            d
            for d in airline.client.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["items"]
            if d["status"] == "delivered"
        ]
    )
    assert (delivery["attempts"], delivery["last_status_code"]) == (3, 200)


def test_a_refused_order_sends_nothing(hooked: Hooked, airline: Airline, receiver: Receiver) -> None:
    _subscribe(airline, receiver.url("/refused"), ["order.created", "plan.changed"])
    assert _order(airline, payment={"token": "tok_declined"}).status_code == 402
    # An event recorded after the refused order: once it arrives, anything before it would have too.
    assert hooked.admin.put(f"/admin/airlines/{airline.code}/plan", json={"plan": "standard"}).status_code == 200

    def standard_arrived() -> bool:
        return any(r.event["data"].get("plan", {}).get("code") == "standard" for r in receiver.at("/refused"))

    _until(standard_arrived)
    time.sleep(0.3)
    assert [r.event["type"] for r in receiver.at("/refused") if r.event["type"] != "plan.changed"] == []


def test_one_orders_events_reach_an_endpoint_in_the_order_they_were_recorded(
    airline: Airline, receiver: Receiver
) -> None:
    receiver.script["/ordered"] = [500]  # order.created is retried: order.cancelled must wait for it
    _subscribe(airline, receiver.url("/ordered"), ["order.created", "order.cancelled"])
    order = _order(airline).json()
    assert airline.client.post(f"/v1/orders/{order['id']}/cancel").status_code == 200
    got = _until(lambda: receiver.at("/ordered") if len(receiver.at("/ordered")) >= 3 else None)
    assert [g.event["type"] for g in got] == ["order.created", "order.created", "order.cancelled"]


def test_an_endpoint_that_keeps_failing_is_given_up_disabled_and_reported(airline: Airline, receiver: Receiver) -> None:
    receiver.script["/down"] = [503] * 100
    down = _subscribe(airline, receiver.url("/down"), ["order.created"])
    _subscribe(airline, receiver.url("/ops"), ["webhook.disabled"])
    assert _order(airline).status_code == 201

    def failed() -> list[dict[str, Any]]:
        listed = airline.client.get(f"/v1/webhooks/{down['id']}/deliveries", params={"status": "failed"})
        return listed.json()["items"]

    (gave_up,) = _until(failed)  # 1 s after it was made (this server's give-up time)
    assert gave_up["attempts"] >= 3 and gave_up["last_status_code"] == 503 and gave_up["next_attempt_at"] is None
    assert airline.client.get(f"/v1/webhooks/{down['id']}").json()["enabled"] is True, "failing for 1 s only"
    time.sleep(1.2)  # past this server's 2 s of failing: the next failure disables the endpoint
    assert _order(airline).status_code == 201
    (disabled,) = _until(lambda: receiver.at("/ops"))
    assert disabled.event["type"] == "webhook.disabled"
    assert disabled.event["data"]["webhook_id"] == down["id"]
    shown = airline.client.get(f"/v1/webhooks/{down['id']}").json()
    assert shown["enabled"] is False and "failed" in shown["disabled_reason"] and shown["failing_since"]
    tried = len(receiver.at("/down"))
    time.sleep(0.6)
    assert len(receiver.at("/down")) == tried, "a disabled endpoint is sent nothing"
    # Switched on again, its paused delivery goes on (and fails on, here).
    assert airline.client.patch(f"/v1/webhooks/{down['id']}", json={"enabled": True}).json()["disabled_reason"] is None
    _until(lambda: len(receiver.at("/down")) > tried)


def test_retry_replays_a_delivery_with_the_same_webhook_id_and_a_rotated_secret_signs_too(
    airline: Airline, receiver: Receiver
) -> None:
    hook = _subscribe(airline, receiver.url("/replay"), ["order.created"])
    assert _order(airline).status_code == 201
    (first,) = _until(lambda: receiver.at("/replay"))
    rotated = airline.client.post(f"/v1/webhooks/{hook['id']}/secret").json()
    (delivery,) = _until(
        lambda: [
            d
            for d in airline.client.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["items"]
            if d["status"] == "delivered"
        ]
    )
    again = airline.client.post(f"/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/retry")
    assert again.status_code == 202, again.text
    second = _until(lambda: receiver.at("/replay")[1:])[0]
    assert second.headers["webhook-id"] == first.headers["webhook-id"] and second.body == first.body
    assert len(second.headers["webhook-signature"].split(" ")) == 2, "the old and the new secret both sign"
    Webhook(hook["secret"]).verify(second.body, second.headers)
    Webhook(rotated["secret"]).verify(second.body, second.headers)


def test_prometheus_counts_the_attempts(hooked: Hooked, airline: Airline, receiver: Receiver) -> None:
    _subscribe(airline, receiver.url("/counted"), ["order.created"])
    assert _order(airline).status_code == 201
    _until(lambda: receiver.at("/counted"))

    def counted() -> str | None:
        text = hooked.admin.get("/metrics").text
        return text if 'skycart_webhook_attempts_total{outcome="delivered"}' in text else None

    text = _until(counted)
    assert "skycart_webhook_delivery_lag_seconds" in text


def test_the_body_is_the_event_envelope(airline: Airline, receiver: Receiver) -> None:
    _subscribe(airline, receiver.url("/envelope"), ["order.created"])
    assert _order(airline).status_code == 201
    (got,) = _until(lambda: receiver.at("/envelope"))
    assert set(got.event) == {"id", "type", "created_at", "airline", "data"}
    assert got.event["airline"] == airline.code and got.headers["content-type"] == "application/json"
