"""Webhook delivery across `skycart serve` processes: two processes make each attempt exactly once, and a
process stopped with SIGTERM mid-delivery loses nothing (the attempt in flight finishes, or is given back)."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from skycart.config import Settings
from skycart.platform.migrate import upgrade
from tests.conftest import flight_body, order_body, product_body, scratch_database
from tests.metering.cluster import onboard, operator_key, servers
from tests.test_scaling import UNLIMITED


class Receiver:
    """Answers each webhook-id's first attempt with `first` (after `first_delay` s), later ones 200."""

    def __init__(self, first: int = 200, first_delay: float = 0.0) -> None:
        self.attempts: Counter[str] = Counter()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    message = self.headers.get("webhook-id", "")
                    receiver.attempts[message] += 1
                    attempt = receiver.attempts[message]
                if attempt == 1 and first_delay:
                    time.sleep(first_delay)
                self.send_response(first if attempt == 1 else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def seen(self) -> Counter[str]:
        with self.lock:
            return Counter(self.attempts)


@pytest.fixture(params=["sqlite", "mariadb"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with scratch_database(request.param, tmp_path) as url:
        upgrade(Settings(database_url=url))
        yield url


ENV = {
    "SKYCART_WEBHOOK_SECRETS_KEYS": Fernet.generate_key().decode(),
    "SKYCART_WEBHOOKS_ALLOW_HTTP": "true",
    "SKYCART_WEBHOOKS_ALLOW_PRIVATE": "true",
    "SKYCART_WEBHOOK_RETRY_SECONDS": "[0.2]",
    "SKYCART_WEBHOOK_POLL_SECONDS": "0.05",
}


def _airline(base: str, url: str, receiver: Receiver) -> tuple[str, str]:
    """An airline with a product, a loaded flight and an endpoint subscribed to order.created: (key, flight)."""
    with httpx.Client(base_url=base, headers={"X-Api-Key": operator_key(url)}, timeout=30) as admin:
        _code, key = onboard(admin, {**UNLIMITED, "features": ["webhooks"]})
    with httpx.Client(base_url=base, headers={"X-Api-Key": key}, timeout=30) as client:
        assert client.post("/v1/products", json=product_body("TEA", ["EUR"])).status_code == 201
        flight = client.post("/v1/flights", json=flight_body()).json()["id"]
        loaded = client.put(f"/v1/flights/{flight}/inventory", json={"items": [{"sku": "TEA", "quantity": 10_000}]})
        assert loaded.status_code == 200, loaded.text
        made = client.post("/v1/webhooks", json={"url": receiver.url, "events": ["order.created"]})
        assert made.status_code == 201, made.text
    return key, flight


def _until(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "did not happen in time"
        time.sleep(0.05)
    return found


def test_two_processes_make_each_attempt_exactly_once(database: str) -> None:
    receiver = Receiver(first=500)  # every event: one failed attempt, then one that succeeds
    with servers(2, database, **ENV) as pair:
        key, flight = _airline(pair[0].url, database, receiver)
        clients = [httpx.Client(base_url=s.url, headers={"X-Api-Key": key}, timeout=30) for s in pair]
        try:
            for n in range(60):
                body = order_body(flight, {"TEA": 1}, currency="EUR")
                answer = clients[n % 2].post("/v1/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
                assert answer.status_code == 201, answer.text
        finally:
            for client in clients:
                client.close()
        _until(lambda: len(receiver.seen()) == 60 and all(n >= 2 for n in receiver.seen().values()))
        time.sleep(1.0)  # anything doubled would have arrived by now
    attempts = receiver.seen()
    assert len(attempts) == 60
    assert set(attempts.values()) == {2}, {k: v for k, v in attempts.items() if v != 2}


def test_a_sigterm_mid_delivery_loses_nothing(database: str) -> None:
    # The first attempt's answer would take longer than the stopping process waits (8 s) and than the read
    # timeout (10 s): it is cut off at 8 s and given back, and the other process delivers it.
    receiver = Receiver(first=200, first_delay=12)
    with servers(2, database, **ENV) as (stopping, other):
        key, flight = _airline(stopping.url, database, receiver)
        # Only the stopping process delivers at first: the other one is paused (SIGSTOP) until it has claimed.
        other.proc.send_signal(signal.SIGSTOP)
        try:
            with httpx.Client(base_url=stopping.url, headers={"X-Api-Key": key}, timeout=30) as client:
                body = order_body(flight, {"TEA": 1}, currency="EUR")
                placed = client.post("/v1/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
                assert placed.status_code == 201, placed.text
            _until(lambda: sum(receiver.seen().values()) == 1, timeout=15)  # in flight now
            stopped_at = time.monotonic()
            stopping.proc.send_signal(signal.SIGTERM)
        finally:
            other.proc.send_signal(signal.SIGCONT)
        assert stopping.proc.wait(timeout=30) == 0, "a graceful stop exits 0"
        assert time.monotonic() - stopped_at < 15
        (message, count), *_ = _until(lambda: [(m, n) for m, n in receiver.seen().items() if n >= 2], timeout=30)
        assert count == 2, "given back once, delivered once by the other process"
        with httpx.Client(base_url=other.url, headers={"X-Api-Key": key}, timeout=30) as client:
            hooks = client.get("/v1/webhooks").json()["items"]
            deliveries = _until(
                lambda: [
                    d
                    for d in client.get(f"/v1/webhooks/{hooks[0]['id']}/deliveries").json()["items"]
                    if d["status"] == "delivered"
                ]
            )
        # The cut-off attempt is recorded when its process saw it fail, or not at all when it was given back.
        assert deliveries[0]["event_id"] == message and deliveries[0]["attempts"] in (1, 2)
        assert deliveries[0]["last_status_code"] == 200
