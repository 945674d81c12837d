"""Outage drills: real `skycart serve` processes under load while their database or Redis is taken away.

`make drills` runs every drill (about two minutes) and prints one line per drill with its figures;
`python -m drills.run db-outage` runs one. Each drill uses a MariaDB and a Redis of its own on spare
ports, never the shared servers, and stops every process it started. The exit code is 1 when a drill
breaks a promise: an order lost or doubled, a 500, a key still locked after recovery, a hard quota
exceeded, a worker that grew past its bound or a slow client still connected.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from sqlalchemy import create_engine, text
from tests.conftest import flight_body, order_body, product_body
from tests.metering.cluster import (
    ServerProcess,
    onboard,
    operator_key,
    private_mariadb,
    private_redis,
    servers,
    start_redis,
)
from tests.platform.test_bounded_requests import _send_huge, _worker_rss_mib

from skycart.config import Settings
from skycart.platform.migrate import upgrade

console = Console()
UNLIMITED = {"monthly_request_quota": None, "overage": True, "rate_limit_per_second": "10000", "burst": 10000}


@dataclass
class Result:
    name: str
    figures: dict[str, object]
    broken: list[str] = field(default_factory=list)

    def line(self) -> str:
        shown = ", ".join(f"{key} {value}" for key, value in self.figures.items())
        verdict = "[green]ok[/green]" if not self.broken else f"[red]BROKEN: {'; '.join(self.broken)}[/red]"
        return f"{self.name:<14} {shown}  {verdict}"


@dataclass
class Shop:
    procs: list[ServerProcess]
    key: str
    flight: str
    airline: str


def _shop(procs: list[ServerProcess], database_url: str, plan: dict | None = None) -> Shop:
    op = operator_key(database_url)
    with httpx.Client(base_url=procs[0].url, headers={"X-Api-Key": op}, timeout=30) as admin:
        code, key = onboard(admin, plan or UNLIMITED)
    with httpx.Client(base_url=procs[0].url, headers={"X-Api-Key": key}, timeout=30) as client:
        assert client.post("/v1/products", json=product_body("TEA", ["EUR"])).status_code == 201
        flight = client.post("/v1/flights", json=flight_body()).json()["id"]
        stock = {"items": [{"sku": "TEA", "quantity": 100_000}]}
        assert client.put(f"/v1/flights/{flight}/inventory", json=stock).status_code == 200
    return Shop(procs, key, flight, code)


@dataclass
class Load:
    """Clients placing orders, each with a new Idempotency-Key, until stopped."""

    shop: Shop
    clients: int
    answers: list[tuple[str, int, float, str | None]] = field(default_factory=list)  # key, status, seconds, order
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(self.clients)]
        for thread in threads:
            thread.start()
        return threads

    def _client(self, n: int) -> None:
        proc = self.shop.procs[n % len(self.shop.procs)]
        body = order_body(self.shop.flight, {"TEA": 1}, currency="EUR")
        with httpx.Client(base_url=proc.url, headers={"X-Api-Key": self.shop.key}, timeout=60) as client:
            while not self.stop.is_set():
                key = uuid.uuid4().hex
                started = time.monotonic()
                try:
                    answer = client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
                    status = answer.status_code
                    order = answer.json().get("id") if status == 201 else None
                except httpx.TransportError:
                    status, order = 0, None
                self.answers.append((key, status, time.monotonic() - started, order))
                if status != 201:
                    time.sleep(0.05)


def _stored_orders(database_url: str, airline: str) -> set[str]:
    engine = create_engine(database_url.replace("+asyncmy", "+pymysql"))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT o.id FROM orders o JOIN airlines a ON a.id = o.airline_id WHERE a.code = :code"),
                {"code": airline},
            )
            return {row[0] for row in rows}
    finally:
        engine.dispose()


def _settle_cut_off_keys(shop: Shop, load: Load) -> tuple[int, set[str]]:
    """Retry every key whose answer was not final, as a client would: (keys still locked, orders they placed)."""
    locked, placed = 0, set()
    body = order_body(shop.flight, {"TEA": 1}, currency="EUR")
    with httpx.Client(base_url=shop.procs[0].url, headers={"X-Api-Key": shop.key}, timeout=60) as client:
        for key, status, _took, _order in load.answers:
            if status in (201, 402, 409, 422):
                continue
            retry = client.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
            if retry.status_code == 409 and retry.json()["code"] == "idempotency_in_progress":
                locked += 1
            elif retry.status_code == 201:
                placed.add(retry.json()["id"])
    return locked, placed


def _order_drill(name: str, folder: Path, fault: Callable[[object], None], clients: int) -> Result:
    with private_mariadb(folder / name) as database:
        upgrade(Settings(database_url=database.url))
        with servers(2, database.url, output=subprocess.DEVNULL, SKYCART_METERING_FLUSH_SECONDS="1") as procs:
            shop = _shop(procs, database.url)
            load = Load(shop, clients)
            threads = load.run()
            time.sleep(3)
            fault(database)
            back = time.monotonic()
            while not all(_ready(p) for p in procs) and time.monotonic() - back < 60:
                time.sleep(0.2)
            ready_after = time.monotonic() - back
            time.sleep(3)
            load.stop.set()
            for thread in threads:
                thread.join(timeout=90)
            locked, placed = _settle_cut_off_keys(shop, load)
            stored = _stored_orders(database.url, shop.airline)
    statuses = Counter(status for _key, status, _took, _order in load.answers)
    answered = {order for *_rest, order in load.answers if order}
    lost = len((answered | placed) - stored)
    doubled = len(stored - answered - placed)
    figures = {
        "orders attempted": len(load.answers),
        "stored": len(stored),
        "201": statuses[201],
        "503": statuses[503],
        "5xx other": sum(n for s, n in statuses.items() if s >= 500 and s != 503),
        "no answer": statuses[0],
        "slowest": f"{max(took for _key, _s, took, _o in load.answers):.1f} s",
        "ready again after": f"{ready_after:.1f} s",
        "keys locked after recovery": locked,
        "placed on retry": len(placed),
        "lost": lost,
        "doubled": doubled,
    }
    broken = [
        what
        for what, bad in (
            ("orders lost", lost),
            ("orders doubled", doubled),
            ("500s", figures["5xx other"]),
            ("keys locked", locked),
            ("no answer", statuses[0]),
        )
        if bad
    ]
    return Result(name, figures, broken)


def _ready(proc: ServerProcess) -> bool:
    try:
        return httpx.get(f"{proc.url}/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def _outage(database) -> None:
    database.stop()
    time.sleep(10)
    database.start()


def _stall(database) -> None:
    database.stall()
    time.sleep(5)
    database.resume()


def db_outage(folder: Path) -> Result:
    """2 processes, 16 clients ordering; the database killed for 10 s, then started again."""
    return _order_drill("db-outage", folder, _outage, clients=16)


def db_stall(folder: Path) -> Result:
    """2 processes, 8 clients ordering; the database frozen (SIGSTOP) for 5 s."""
    return _order_drill("db-stall", folder, _stall, clients=8)


def redis_restart(folder: Path) -> Result:
    """A hard quota of 300 under 8 concurrent clients: 100 requests, Redis killed, 100, Redis back empty, 120."""
    quota = 300
    with private_mariadb(folder / "redis-restart") as database:
        upgrade(Settings(database_url=database.url))
        with private_redis() as (redis_url, redis_proc):
            port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
            with servers(2, database.url, output=subprocess.DEVNULL, SKYCART_REDIS_URL=redis_url) as procs:
                plan = {
                    "monthly_request_quota": quota,
                    "overage": False,
                    "rate_limit_per_second": "1000",
                    "burst": 1000,
                }
                shop = _shop(procs, database.url, plan)
                served: Counter = Counter()

                def burst(count: int) -> None:
                    def client(n: int) -> None:
                        with httpx.Client(headers={"X-Api-Key": shop.key}, timeout=30) as http:
                            for i in range(n, count, 8):
                                answer = http.get(f"{procs[i % 2].url}/v1/plan")
                                served[answer.status_code] += 1

                    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
                    for thread in threads:
                        thread.start()
                    for thread in threads:
                        thread.join()

                burst(100)
                redis_proc.kill()
                redis_proc.wait(timeout=10)
                burst(100)
                restarted = start_redis(port)
                try:
                    burst(120)
                finally:
                    restarted.kill()
    figures = {"requests": sum(served.values()), "served": served[200], "quota": quota, "429": served[429]}
    broken = ["quota exceeded"] if served[200] > quota else []
    broken += [f"{n} answered {s}" for s, n in served.items() if s >= 500]
    return Result("redis-restart", figures, broken)


def hostile_clients(folder: Path) -> Result:
    """A 50 MB body without a key, and 28 slow-header connections, against one process."""
    url = f"sqlite+aiosqlite:///{folder / 'hostile.db'}"
    upgrade(Settings(database_url=url))
    op = operator_key(url)
    with servers(1, url, output=subprocess.DEVNULL, SKYCART_HEADER_TIMEOUT_SECONDS="2") as (proc,):
        with httpx.Client(base_url=proc.url, headers={"X-Api-Key": op}) as admin:
            onboard(admin)
        before = _worker_rss_mib(proc)
        status, _problem, _sent = _send_huge(proc, "")
        grown = _worker_rss_mib(proc) - before
        slow = [socket.create_connection(("127.0.0.1", proc.port), timeout=10) for _ in range(28)]
        for sock in slow:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        time.sleep(4)
        still_open = 0
        for sock in slow:
            sock.settimeout(0.5)
            try:
                data = sock.recv(65536)
                while data and b"408" in data and sock.recv(65536):
                    pass
            except (TimeoutError, OSError):
                still_open += 1
            sock.close()
        healthy = httpx.get(f"{proc.url}/healthz").status_code
    figures = {
        "50 MB without a key": status,
        "worker RSS grew": f"{grown:.0f} MiB",
        "slow connections still open after 4 s": f"{still_open} of 28",
        "then /healthz": healthy,
    }
    broken = [
        what
        for what, bad in (
            ("not 401", status != 401),
            ("worker grew past 20 MiB", grown >= 20),
            ("slow clients kept", still_open),
            ("unhealthy", healthy != 200),
        )
        if bad
    ]
    return Result("hostile", figures, broken)


DRILLS = {"db-outage": db_outage, "db-stall": db_stall, "redis-restart": redis_restart, "hostile": hostile_clients}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drills", description=__doc__.splitlines()[0])
    parser.add_argument("drills", nargs="*", choices=[[], *DRILLS], help="which (default: all)")
    names = parser.parse_args(argv).drills or list(DRILLS)
    results = []
    with tempfile.TemporaryDirectory(prefix="skycart-drills-") as folder:
        for name in names:
            started = time.monotonic()
            with console.status(f"drill {name} …"):
                result = DRILLS[name](Path(folder))
            results.append(result)
            console.print(result.line() + f"  ({time.monotonic() - started:.0f} s)", highlight=False)
    print(json.dumps({r.name: {"figures": r.figures, "broken": r.broken} for r in results}), file=sys.stderr)
    return 1 if any(r.broken for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
