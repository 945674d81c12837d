"""What the outbox costs an order, and how fast one process delivers webhooks (MariaDB).

One `skycart serve --workers 1` pinned to CPU 0, a private MariaDB and wrk on CPU 1, and a receiver in
this process answering 200. Two airlines on the same server: one without a webhook endpoint, one with an
endpoint subscribed to `order.created`. Interleaved rounds (the order alternates) of `POST /v1/orders`:

  no-endpoint   every order records its `order.created` event (the outbox row), and nothing is delivered
  one-endpoint  the same, and each event is dispatched, signed, posted to the receiver and settled by the
                same process; the round's CPU is counted until its last delivery has arrived

Per arm and round: orders/s, p50 and p99, the server's CPU per order (from /proc). After every round:
orders stored = 201 answers, stock sold = quantities ordered, and for the endpoint's airline every
order's event arrived exactly once (distinct `webhook-id`s = orders); otherwise FAIL and exit 1.

Then the delivery throughput of the one process: `--backlog` events recorded at once for the subscribed
airline, timed from the first to the last arrival at the receiver.

    .venv/bin/python bench/outbox.py [--rounds 6] [--seconds 8] [--connections 16] [--backlog 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from rich.table import Table

from metering import _tree_cpu_seconds
from orders import (
    LUA,
    ROOT,
    Database,
    _body,
    _check,
    _database,
    _kill,
    _seed,
    _snapshot,
    _start_server,
    _wrk,
    console,
)

ARMS = ("no-endpoint", "one-endpoint")


class Receiver:
    """Counts what it is sent, by `webhook-id`, and answers 200 at once."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.arrived: list[float] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.seen[self.headers.get("webhook-id", "")] += 1
                    receiver.arrived.append(time.monotonic())
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/events"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def total(self) -> int:
        with self.lock:
            return sum(self.seen.values())


@dataclass
class Arm:
    orders_per_s: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)


def _wait_for(receiver: Receiver, total: int, timeout: float = 120) -> float:
    deadline = time.monotonic() + timeout
    while receiver.total() < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{receiver.total()} of {total} deliveries arrived in {timeout:.0f} s")
        time.sleep(0.02)
    return time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--backlog", type=int, default=3000)
    parser.add_argument("--grace", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # tests.* helpers
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (make bench-outbox installs it)")
    from cryptography.fernet import Fernet

    from skycart.config import Settings
    from skycart.platform.migrate import upgrade

    seed_args = argparse.Namespace(stock=50_000_000, lines=1)
    folder = Path(tempfile.mkdtemp(prefix="skycart-outbox-"))
    receiver = Receiver()
    failures: list[str] = []
    arms = {arm: Arm() for arm in ARMS}
    server = None
    try:
        with _database("mariadb", folder) as (url, mariadb):
            upgrade(Settings(database_url=url))
            env = {name: value for name, value in os.environ.items() if not name.startswith("SKYCART_")}
            env |= {
                "SKYCART_DATABASE_URL": url,
                "SKYCART_ACCESS_LOG": "false",
                "SKYCART_LOG_LEVEL": "WARNING",
                "SKYCART_WEBHOOK_SECRETS_KEYS": Fernet.generate_key().decode(),
                "SKYCART_WEBHOOKS_ALLOW_HTTP": "true",
                "SKYCART_WEBHOOKS_ALLOW_PRIVATE": "true",
            }
            server = _start_server("skycart", env, folder)
            db = Database("mariadb", port=mariadb.port)
            keys, ids = {}, {}
            for arm in ARMS:
                keys[arm], ids[arm] = _seed(server.base, url, db, seed_args)
            # The seeded plans (the load tests' own, unthrottled) with the webhooks feature added.
            features = json.dumps(["offline_sync", "reports", "webhooks"])
            db.rows("UPDATE plans SET features = %s WHERE code LIKE %s", (features, "p-%"))
            time.sleep(1.5)  # past the plan cache
            with httpx.Client(base_url=server.base, headers={"X-Api-Key": keys["one-endpoint"]}) as client:
                made = client.post("/v1/webhooks", json={"url": receiver.url, "events": ["order.created"]})
                assert made.status_code == 201, made.text
            scripts = {}
            for arm in ARMS:
                scripts[arm] = folder / f"{arm}.lua"
                scripts[arm].write_text(LUA.replace("@BODY@", json.dumps(_body(ids[arm], "tok_ok"))))

            def measure(arm: str, seconds: int) -> None:
                before = _snapshot(db, ids[arm])
                delivered = receiver.total()
                cpu = _tree_cpu_seconds(server.proc.pid)
                seen = _wrk(server.base, keys[arm], scripts[arm], seconds, args.grace, args.connections)
                placed = seen["created"]
                if arm == "one-endpoint":  # the round's deliveries are part of its cost
                    _wait_for(receiver, delivered + placed)
                cpu = _tree_cpu_seconds(server.proc.pid) - cpu
                unanswered = seen["sent"] - placed - sum(seen["other"].values())
                problems = _check(before, _snapshot(db, ids[arm]), ids[arm], placed, unanswered)
                if arm == "one-endpoint":
                    doubled = [key for key, count in receiver.seen.items() if count > 1]
                    if receiver.total() - delivered != placed or doubled:
                        problems.append(f"{receiver.total() - delivered} deliveries for {placed} orders")
                result = arms[arm]
                result.orders_per_s.append(placed / seconds)
                result.p50.append(seen["p50_us"] / 1000)
                result.p99.append(seen["p99_us"] / 1000)
                result.cpu_ms.append(cpu * 1000 / max(placed, 1))
                verdict = "[green]ok[/]" if not problems else "[bold red]FAIL[/]"
                console.print(
                    f"{arm:<13} {placed / seconds:7.0f} orders/s  p50 {seen['p50_us'] / 1000:6.1f} ms  "
                    f"p99 {seen['p99_us'] / 1000:6.1f} ms  CPU {result.cpu_ms[-1]:5.2f} ms/order  {verdict}",
                    highlight=False,
                )
                failures.extend(f"{arm}: {problem}" for problem in problems)

            for arm in ARMS:
                measure(arm, 2)  # warm-up
            for round_no in range(args.rounds):
                for arm in ARMS if round_no % 2 == 0 else ARMS[::-1]:
                    measure(arm, args.seconds)

            # Delivery throughput: a backlog recorded at once, drained by the one process.
            airline = ids["one-endpoint"].airline_id
            start = receiver.total()
            rows = [
                (f"BK{n:024d}", "order.created", json.dumps({"id": f"backlog-{n}"}), airline)
                for n in range(args.backlog)
            ]
            with db.conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO events (id, type, data, created_at, dispatched, airline_id) "
                    "VALUES (%s, %s, %s, UTC_TIMESTAMP(6), 0, %s)",
                    rows,
                )
            first_deadline = time.monotonic() + 60
            while receiver.total() == start and time.monotonic() < first_deadline:
                time.sleep(0.005)
            with receiver.lock:
                began = receiver.arrived[start] if len(receiver.arrived) > start else time.monotonic()
            ended = _wait_for(receiver, start + args.backlog, timeout=600)
            throughput = args.backlog / max(ended - began, 1e-9)
    finally:
        if server is not None:
            _kill(server.proc)
        receiver.httpd.shutdown()
        shutil.rmtree(folder, ignore_errors=True)

    table = Table(
        title=f"POST /v1/orders with and without a subscribed webhook endpoint, medians of {args.rounds} "
        f"interleaved rounds of {args.seconds} s, -c{args.connections}; server on CPU 0",
        title_justify="left",
    )
    for column in ("arm", "orders/s (min–max)", "p50 ms", "p99 ms", "CPU ms/order"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for arm, result in arms.items():
        rates = result.orders_per_s[1:]  # without the warm-up
        table.add_row(
            arm,
            f"{statistics.median(rates):.0f} ({min(rates):.0f}–{max(rates):.0f})",
            f"{statistics.median(result.p50[1:]):.1f}",
            f"{statistics.median(result.p99[1:]):.1f}",
            f"{statistics.median(result.cpu_ms[1:]):.2f}",
        )
    console.print(table)
    plain, hooked = (statistics.median(arms[arm].cpu_ms[1:]) for arm in ARMS)
    slower = 1 - statistics.median(arms["one-endpoint"].orders_per_s[1:]) / statistics.median(
        arms["no-endpoint"].orders_per_s[1:]
    )
    console.print(
        f"one subscribed endpoint: CPU per order {hooked / plain - 1:+.1%} (deliveries included), "
        f"orders/s {-slower:+.1%}; one process delivers {throughput:.0f} webhooks/s ({args.backlog} backlog)",
        highlight=False,
    )
    if failures:
        for failure in failures:
            console.print(f"[bold red]FAIL {failure}[/]")
        sys.exit(1)


if __name__ == "__main__":
    main()
