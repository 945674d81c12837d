"""Idempotency-Keys after an infrastructure failure, against a `skycart serve` process and a MariaDB of the
test's own (or a proxy that breaks a COMMIT): a key whose order did not commit is free again as soon as the
database is back, a key whose commit outcome is unknown is settled, and no request holds a key longer than
SKYCART_IDEMPOTENCY_LOCK_SECONDS."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from skycart.config import Settings
from skycart.platform.migrate import upgrade
from tests.conftest import flight_body, order_body, product_body, scratch_database
from tests.metering.cluster import PrivateMariaDB, onboard, operator_key, private_mariadb, servers


@pytest.fixture
def database(tmp_path: Path):
    with private_mariadb(tmp_path / "mariadb") as server:
        upgrade(Settings(database_url=server.url))
        yield server


def _shop(proc_url: str, op: str) -> tuple[httpx.Client, str]:
    with httpx.Client(base_url=proc_url, headers={"X-Api-Key": op}, timeout=30) as admin:
        _code, key = onboard(admin)
    client = httpx.Client(base_url=proc_url, headers={"X-Api-Key": key}, timeout=60)
    assert client.post("/v1/products", json=product_body("TEA", ["EUR"])).status_code == 201
    flight = client.post("/v1/flights", json=flight_body()).json()["id"]
    stocked = client.put(f"/v1/flights/{flight}/inventory", json={"items": [{"sku": "TEA", "quantity": 10}]})
    assert stocked.status_code == 200
    return client, flight


def _sold(client: httpx.Client, flight: str) -> int:
    return client.get(f"/v1/flights/{flight}/inventory").json()["items"][0]["sold"]


def test_a_key_cut_off_by_an_outage_is_free_as_soon_as_the_database_is_back(database: PrivateMariaDB) -> None:
    op = operator_key(database.url)
    # A long lock time: what frees the key must be its release, not the takeover of a stale key.
    with servers(1, database.url, SKYCART_IDEMPOTENCY_LOCK_SECONDS="120") as (proc,):
        client, flight = _shop(proc.url, op)
        key = uuid.uuid4().hex
        body = order_body(flight, {"TEA": 1}, currency="EUR", payment={"token": "tok_slow"})
        answers: list[httpx.Response] = []
        cut_off = threading.Thread(
            target=lambda: answers.append(client.post("/v1/orders", json=body, headers={"Idempotency-Key": key}))
        )
        cut_off.start()
        time.sleep(0.7)  # the key is claimed and the payment is being authorized
        database.stop()
        cut_off.join(timeout=30)
        database.start()
        deadline = time.monotonic() + 30
        while httpx.get(f"{proc.url}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        back = time.monotonic()
        retries: list[int] = []
        while True:
            retry = client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
            retries.append(retry.status_code)
            if retry.status_code != 409 or time.monotonic() - back > 10:
                break
            time.sleep(0.2)
        settled_in = time.monotonic() - back
        again = client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
        sold = _sold(client, flight)
    print(f"\nkey settled {settled_in:.2f} s after the database was back; answers {retries}")
    assert answers[0].status_code == 503, answers[0].text
    assert retries[-1] == 201, retries
    assert settled_in < 5, "free at once, not after the lock time"
    assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == retry.json()["id"]
    assert sold == 1, "one order, one unit: nothing lost, nothing doubled"


def test_no_request_holds_its_key_past_the_lock_time(database: PrivateMariaDB) -> None:
    op = operator_key(database.url)
    with servers(1, database.url, SKYCART_IDEMPOTENCY_LOCK_SECONDS="1") as (proc,):
        client, flight = _shop(proc.url, op)
        key = uuid.uuid4().hex
        slow = order_body(flight, {"TEA": 1}, currency="EUR", payment={"token": "tok_slow"})  # 2 s > 1 s
        started = time.monotonic()
        first = client.post("/v1/orders", json=slow, headers={"Idempotency-Key": key})
        took = time.monotonic() - started
        second = client.post("/v1/orders", json=slow, headers={"Idempotency-Key": key})
        sold = _sold(client, flight)
    assert first.status_code == 503 and first.headers["retry-after"], first.text
    assert took < 2, f"gave the key up after {took:.2f} s"
    assert second.status_code == 503, "not 409: the key was free again at once"
    assert sold == 0, "nothing was kept of the orders that gave up"


class CommitCutter:
    """A TCP proxy in front of MariaDB that, once armed, breaks the connection carrying an order's COMMIT.

    With `commit_lands` the COMMIT reaches the server (which commits) and only its answer is lost; without,
    the COMMIT is dropped and the server rolls the transaction back when the connection goes. Either way the
    app sees the same broken connection: the outcome is unknown to it. `blackout` then refuses new
    connections for that many seconds, so the database cannot be asked at once.
    """

    _ORDER_INSERT = re.compile(rb"^\s*INSERT INTO `?orders`?\s", re.IGNORECASE)

    def __init__(self, upstream_port: int, *, commit_lands: bool) -> None:
        self.upstream_port = upstream_port
        self.commit_lands = commit_lands
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.fired = threading.Event()
        self._armed: tuple[bool, float] | None = None
        self._refuse_until = 0.0
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._muted: set[socket.socket] = set()  # upstreams whose answers are no longer passed on
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, *, blackout: float) -> None:
        self._armed = (self.commit_lands, blackout)

    def close(self) -> None:
        self.listener.close()
        self._cut_all()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if time.monotonic() < self._refuse_until:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._to_server, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._to_client, args=(upstream, client), daemon=True).start()

    def _cut_all(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _to_client(self, upstream: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                if upstream in self._muted:
                    return
                client.sendall(data)

    def _to_server(self, client: socket.socket, upstream: socket.socket) -> None:
        buffer = b""
        placing = False
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                buffer += data
                while len(buffer) >= 4 and len(buffer) >= 4 + int.from_bytes(buffer[:3], "little"):
                    size = 4 + int.from_bytes(buffer[:3], "little")
                    packet, buffer = buffer[:size], buffer[size:]
                    query = packet[5:] if packet[4:5] == b"\x03" else b""
                    if self._ORDER_INSERT.match(query):
                        placing = True
                    elif query in (b"COMMIT", b"ROLLBACK"):
                        if query == b"COMMIT" and placing and self._armed is not None:
                            self._fire(packet, upstream)
                            return
                        placing = False
                    upstream.sendall(packet)

    def _fire(self, commit: bytes, upstream: socket.socket) -> None:
        assert self._armed is not None
        commit_lands, blackout = self._armed
        self._armed = None
        self._refuse_until = time.monotonic() + blackout
        self.fired.set()
        self._muted.add(upstream)
        if commit_lands:
            upstream.sendall(commit)
            time.sleep(0.3)  # the server commits; its OK is never passed on
        self._cut_all()


def _log_lines(path: Path, message: str) -> list[dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == message]


@dataclass
class _Cut:
    answers: list[httpx.Response]
    replayed: httpx.Response
    sold: int
    orders: list[dict]


def _order_through_a_cut_commit(proxy: CommitCutter, database_url: str, log_path: Path, blackout: float) -> _Cut:
    """One order whose COMMIT the proxy cuts, then retries with its key until it is answered."""
    proxied = make_url(database_url).set(port=proxy.port).render_as_string(hide_password=False)
    with (
        log_path.open("w") as log_file,
        servers(1, proxied, output=log_file.fileno(), SKYCART_LOG_LEVEL="INFO") as (proc,),
    ):
        client, flight = _shop(proc.url, operator_key(database_url))
        key = uuid.uuid4().hex
        body = order_body(flight, {"TEA": 1}, currency="EUR")
        proxy.arm(blackout=blackout)
        answers = [client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})]
        assert proxy.fired.is_set(), "the order's COMMIT went through the proxy"
        deadline = time.monotonic() + 20
        while answers[-1].status_code in (409, 503) and time.monotonic() < deadline:
            time.sleep(0.3)
            answers.append(client.post("/v1/orders", json=body, headers={"Idempotency-Key": key}))
        while not _log_lines(log_path, "order_outcome_settled") and time.monotonic() < deadline:
            time.sleep(0.1)
        replayed = client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
        orders = client.get("/v1/orders", params={"flight_id": flight}).json()["items"]
        return _Cut(answers, replayed, _sold(client, flight), orders)


@pytest.mark.parametrize("database_answers", [True, False], ids=["database-answers", "database-away"])
@pytest.mark.parametrize("commit_lands", [True, False], ids=["committed", "not-committed"])
def test_a_key_whose_commit_outcome_is_unknown_is_settled(
    tmp_path: Path, commit_lands: bool, database_answers: bool
) -> None:
    """The connection breaks during the order's COMMIT. Asked at once (or, with the database away, by the
    next try and a background task), the database settles it: a committed order is answered or replayed and
    its payment kept; an uncommitted one is placed again by the next try and its first payment voided."""
    log_path = tmp_path / "server.log"
    with scratch_database("mariadb", tmp_path) as database_url:
        upgrade(Settings(database_url=database_url))
        proxy = CommitCutter(make_url(database_url).port or 3306, commit_lands=commit_lands)
        try:
            cut = _order_through_a_cut_commit(proxy, database_url, log_path, blackout=0 if database_answers else 3)
        finally:
            proxy.close()
    settled = _log_lines(log_path, "order_outcome_settled")
    voided = [line["order_id"] for line in _log_lines(log_path, "payment_voided")]
    first, last = cut.answers[0], cut.answers[-1]
    print(f"\nanswers {[a.status_code for a in cut.answers]}; settled {settled}; voided {voided}")
    assert last.status_code == 201, [a.status_code for a in cut.answers]
    assert cut.replayed.status_code == 201 and cut.replayed.headers.get("idempotent-replayed") == "true"
    assert cut.replayed.json()["id"] == last.json()["id"]
    assert cut.sold == 1 and len(cut.orders) == 1, "one order, one unit: nothing lost, nothing doubled"
    assert len(settled) == 1 and settled[0]["committed"] is commit_lands
    if database_answers:
        assert first.status_code == (201 if commit_lands else 503), first.text
    else:
        assert first.status_code == 503 and first.headers["retry-after"], first.text
    if commit_lands:
        assert voided == [], "the committed order keeps its payment"
        assert settled[0]["order_id"] == cut.orders[0]["id"]
    else:
        assert voided == [settled[0]["order_id"]], "only the order that did not commit is voided"
        assert settled[0]["order_id"] != cut.orders[0]["id"], "the next try placed it again"
