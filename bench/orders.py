"""Placing an order (`POST /v1/orders`) against its floor: the same SQL, in the same transactions, from a raw driver.

Three arms, interleaved round by round (the order rotates each round), on each backend:

  skycart           `skycart serve --workers 1` pinned to CPU 0, loaded by wrk pinned to CPU 1: every
                    request has its own Idempotency-Key; sandbox token tok_ok
  skycart-slow-pay  the same with the sandbox taking --slow-pay-seconds to authorize (tok_slow,
                    SKYCART_SANDBOX_SLOW_SECONDS), with --slow-connections connections
  floor             one Python process pinned to CPU 0: --connections asyncio tasks, each with its own
                    connection (asyncmy on MariaDB, aiosqlite on SQLite), placing orders in a loop with
                    the statements of FLOOR STATEMENTS below, which reproduce what SkyCart sends per order

Backends: a private MariaDB (its own data folder and port, pinned to CPU 1 with wrk, so that its general
log can be switched on) and a temporary SQLite file. Per arm and round: orders/s, p50 and p99 latency, and
the CPU time per order of the server (master and worker) or the floor process, from /proc; on MariaDB also
the database server's CPU per order. With the general log on, 20 orders placed one at a time through each
arm give the statements, COMMITs, ROLLBACKs and pings of one order, and the statement list with literals
replaced by `?`. After every run: the orders stored equal the 201 answers (or the orders the floor
completed) and the stock sold equals the ordered quantities; otherwise it says FAIL and exits 1.

    .venv/bin/python bench/orders.py [--backend mariadb|sqlite|both] [--rounds 6] [--seconds 8]
                                     [--connections 16] [--slow-connections 64] [--lines 1|2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import difflib
import functools
import hashlib
import json
import logging
import os
import re
import secrets
import select
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.table import Table
from ulid import ULID

from metering import _free_port, _pinned, _tree_cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
console = Console(width=None if sys.stdout.isatty() else 160)


# ═══════════════════════════════ FLOOR STATEMENTS ═══════════════════════════════════════════════
# What SkyCart sends the database for one order, as MariaDB's general log shows it (this script prints
# both lists, and a diff when they part): edit this block when SkyCart's statements change. The SQL is
# written for asyncmy (%s, backticks); on SQLite `?` and double quotes replace them.

SELECT_RECORD = (  # SQLite only: the key's stored answer, read before the payment
    "SELECT idempotency_records.request_hash, idempotency_records.state, idempotency_records.response_status, "
    "idempotency_records.response_body \nFROM idempotency_records \n"
    "WHERE idempotency_records.airline_id = %s AND idempotency_records.`key` = %s"
)
SELECT_SHOP = (  # {skus}: one %s per SKU of the order
    "SELECT flights.id, flights.international, products.id AS product_id, products.sku, products.prices, "
    "products.min_age, products.restrictions, products.active, loaded_stock.quantity_loaded - "
    "loaded_stock.quantity_sold AS remaining \nFROM flights LEFT OUTER JOIN products ON products.airline_id = "
    "flights.airline_id AND products.sku IN ({skus}) LEFT OUTER JOIN loaded_stock ON loaded_stock.airline_id = "
    "flights.airline_id AND loaded_stock.flight_id = flights.id AND loaded_stock.product_id = products.id \n"
    "WHERE flights.airline_id = %s AND flights.id = %s"
)
INSERT_IDEMPOTENCY = (
    "INSERT INTO idempotency_records (`key`, request_hash, state, response_status, response_body, locked_at, "
    "created_at, id, airline_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
UPDATE_STOCK = (
    "UPDATE loaded_stock SET quantity_sold=(loaded_stock.quantity_sold + %s) WHERE loaded_stock.airline_id = %s "
    "AND loaded_stock.flight_id = %s AND loaded_stock.product_id = %s "
    "AND loaded_stock.quantity_loaded - loaded_stock.quantity_sold >= %s"
)
INSERT_ORDER = (
    "INSERT INTO orders (flight_id, seat, currency, total_minor, status, payment_provider, payment_reference, "
    "passenger, delivered_at, cancelled_at, id, airline_id, created_at, updated_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
INSERT_LINE = (  # one row per line; several lines go in one multi-row INSERT, as SkyCart sends them
    "INSERT INTO order_lines (order_id, product_id, `position`, sku, quantity, unit_price_minor, line_total_minor, "
    "restrictions, id, airline_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
FINISH_IDEMPOTENCY = (
    "UPDATE idempotency_records SET state=%s, response_status=%s, response_body=%s "
    "WHERE idempotency_records.airline_id = %s AND idempotency_records.`key` = %s"
)
INSERT_EVENT = (  # the outbox: order.created, carrying the answer
    "INSERT INTO events (id, type, data, created_at, dispatched, airline_id) VALUES (%s, %s, %s, %s, %s, %s)"
)
PASSENGER = '{"age_confirmed": false}'


async def floor_order(db: FloorConnection, ids: FloorIds) -> None:
    """One order as SkyCart places it (orders.checkout.place_order_once).

    MariaDB: one transaction: claim the key, read the flight with the products and their stock, (the
    payment), take the stock, insert the order and its lines and its event, store the answer, COMMIT; no ping, no
    ROLLBACK. SQLite: the key's record and the read in a read transaction, then the writes (the answer
    inserted with them) under BEGIN IMMEDIATE.
    """
    airline, flight = ids.airline_id, ids.flight_id
    skus = tuple(sku for sku, _product, _quantity, _price in ids.lines)
    key, claimed = uuid.uuid4().hex, _stamp()
    request_hash = hashlib.sha256(key.encode()).hexdigest()
    if db.one_transaction:
        await db.begin(write=True)
        await db.execute(
            INSERT_IDEMPOTENCY, (key, request_hash, "in_progress", None, None, claimed, claimed, _new_id(), airline)
        )
        await db.fetch(_shop_sql(len(skus)), (*skus, airline, flight))
    else:
        await db.begin(write=False)
        await db.fetch(SELECT_RECORD, (airline, key))
        await db.fetch(_shop_sql(len(skus)), (*skus, airline, flight))
        await db.commit()
    # (SkyCart authorizes the payment here; the floor has no provider.)
    reference = f"sbx_{secrets.token_hex(8)}"
    if not db.one_transaction:
        await db.begin(write=True)
    for sku, product, quantity, _price in sorted(ids.lines, key=lambda line: line[1]):
        if await db.execute(UPDATE_STOCK, (quantity, airline, flight, product, quantity)) != 1:
            raise FloorFailure(f"not enough {sku} left")
    order_id, now = _new_id(), _stamp()
    total = sum(quantity * price for _sku, _product, quantity, price in ids.lines)
    await db.execute(
        INSERT_ORDER,
        (flight, ids.seat, ids.currency, total, "paid", "sandbox", reference, PASSENGER, None, None)
        + (order_id, airline, now, now),
    )
    lines = [
        (order_id, product, position, sku, quantity, price, price * quantity, "[]", _new_id(), airline)
        for position, (sku, product, quantity, price) in enumerate(ids.lines)
    ]
    await db.insert_rows(INSERT_LINE, lines)
    body = _answer(order_id, flight, ids, total, now)
    await db.execute(INSERT_EVENT, (_new_id(), "order.created", body, now, False, airline))
    if db.one_transaction:
        await db.execute(FINISH_IDEMPOTENCY, ("done", 201, body, airline, key))
    else:
        await db.execute(INSERT_IDEMPOTENCY, (key, request_hash, "done", 201, body, now, now, _new_id(), airline))
    await db.commit()


# ═══════════════════════════════ end of FLOOR STATEMENTS ════════════════════════════════════════


class FloorFailure(Exception):
    """An order the floor could not place."""


@dataclass(frozen=True)
class FloorIds:
    airline_id: str
    flight_id: str
    currency: str
    seat: str
    # (sku, product id, quantity, unit price in minor units), in the order's own order.
    lines: tuple[tuple[str, str, int, int], ...]


def _new_id() -> str:
    return str(ULID())


def _stamp() -> str:
    """Now in UTC as the app stores it: DATETIME(6) on MariaDB, SQLAlchemy's text format on SQLite."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


@functools.lru_cache
def _shop_sql(count: int) -> str:
    return SELECT_SHOP.format(skus=", ".join(["%s"] * count))


def _answer(order_id: str, flight: str, ids: FloorIds, total: int, now: str) -> str:
    """The stored answer, shaped and sized as SkyCart's order body."""
    stamp = now.replace(" ", "T") + "Z"
    items = [
        {"sku": sku, "quantity": qty, "unit_price": f"{price / 100:.2f}", "line_total": f"{price * qty / 100:.2f}"}
        for sku, _product, qty, price in ids.lines
    ]
    body = {
        "id": order_id,
        "flight_id": flight,
        "seat": ids.seat,
        "currency": ids.currency,
        "items": items,
        "total": f"{total / 100:.2f}",
        "status": "paid",
        "created_at": stamp,
        "updated_at": stamp,
        "delivered_at": None,
        "cancelled_at": None,
    }
    return orjson.dumps(body).decode()


class FloorConnection:
    """One driver connection, used as one pooled connection of SkyCart's engine is."""

    # MariaDB places an order in one transaction; SQLite reads first, then writes (see floor_order).
    one_transaction = True

    async def ping(self) -> None: ...
    async def begin(self, *, write: bool) -> None: ...
    async def execute(self, sql: str, params: Sequence[Any]) -> int: ...
    async def insert_rows(self, sql: str, rows: list[tuple[Any, ...]]) -> None: ...
    async def fetch(self, sql: str, params: Sequence[Any]) -> Sequence[Any]: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...
    async def close(self) -> None: ...


class MariaDBFloor(FloorConnection):
    """asyncmy with autocommit off (the first statement begins a transaction), READ COMMITTED, FOUND_ROWS:
    as SkyCart's engine connects."""

    conn: Any
    cursor: Any
    thread_id: int

    @classmethod
    async def connect(cls, port: int) -> MariaDBFloor:
        import asyncmy
        from asyncmy.constants import CLIENT

        conn = await asyncmy.connect(
            host="127.0.0.1",
            port=port,
            user="root",
            database="skycart",
            autocommit=False,
            client_flag=CLIENT.FOUND_ROWS,
        )
        self = cls()
        self.conn, self.cursor = conn, conn.cursor()
        await self.cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        await self.cursor.execute("SELECT CONNECTION_ID()")
        self.thread_id = (await self.cursor.fetchall())[0][0]
        await conn.rollback()
        return self

    async def ping(self) -> None:
        await self.conn.ping(reconnect=False)

    async def begin(self, *, write: bool) -> None:
        return None

    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        await self.cursor.execute(sql, params)
        return self.cursor.rowcount

    async def insert_rows(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if len(rows) == 1:
            await self.cursor.execute(sql, rows[0])
        else:
            await self.cursor.executemany(sql, rows)

    async def fetch(self, sql: str, params: Sequence[Any]) -> Sequence[Any]:
        await self.cursor.execute(sql, params)
        return await self.cursor.fetchall()

    async def commit(self) -> None:
        await self.conn.commit()

    async def rollback(self) -> None:
        await self.conn.rollback()

    async def close(self) -> None:
        await self.conn.ensure_closed()


@functools.lru_cache
def _sqlite_sql(sql: str) -> str:
    return sql.replace("%s", "?").replace("`", '"')


class SQLiteFloor(FloorConnection):
    """aiosqlite as SkyCart's engine sets it up: BEGIN is ours (BEGIN IMMEDIATE to write), WAL, synchronous
    NORMAL, foreign keys on; no pre-ping."""

    one_transaction = False

    conn: Any
    thread_id = 0

    @classmethod
    async def connect(cls, path: str) -> SQLiteFloor:
        import aiosqlite

        conn = await aiosqlite.connect(path, timeout=30, isolation_level=None)
        for pragma in ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON", "synchronous=NORMAL"):
            await conn.execute(f"PRAGMA {pragma}")
        self = cls()
        self.conn = conn
        return self

    async def ping(self) -> None:
        return None

    async def begin(self, *, write: bool) -> None:
        async with self.conn.execute("BEGIN IMMEDIATE" if write else "BEGIN"):
            pass

    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        async with self.conn.execute(_sqlite_sql(sql), params) as cursor:
            return cursor.rowcount

    async def insert_rows(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if len(rows) == 1:
            await self.execute(sql, rows[0])
        else:
            async with self.conn.executemany(_sqlite_sql(sql), rows):
                pass

    async def fetch(self, sql: str, params: Sequence[Any]) -> Sequence[Any]:
        return await self.conn.execute_fetchall(_sqlite_sql(sql), params)

    async def commit(self) -> None:
        await self.conn.commit()

    async def rollback(self) -> None:
        await self.conn.rollback()

    async def close(self) -> None:
        await self.conn.close()


def _percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))]


async def _floor_run(dbs: list[FloorConnection], ids: FloorIds, seconds: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    latencies: list[float] = []
    errors: Counter[str] = Counter()

    async def client(db: FloorConnection) -> None:
        while loop.time() < deadline:
            started = time.perf_counter()
            try:
                await floor_order(db, ids)
            except Exception as exc:
                errors[f"{type(exc).__name__}: {str(exc)[:100]}"] += 1
                with contextlib.suppress(Exception):
                    await db.rollback()
                continue
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(client(db) for db in dbs))
    latencies.sort()
    return {
        "orders": len(latencies),
        "p50_ms": _percentile(latencies, 50) * 1000,
        "p99_ms": _percentile(latencies, 99) * 1000,
        "errors": dict(errors),
    }


async def _floor_one_at_a_time(db: FloorConnection, ids: FloorIds, count: int, gap: float) -> dict[str, Any]:
    windows = []
    for _ in range(count):
        started = time.time()
        await floor_order(db, ids)
        windows.append((started, time.time()))
        await asyncio.sleep(gap)
    return {"windows": windows, "threads": [db.thread_id]}


async def _floor_worker(config: dict[str, Any]) -> None:
    """The floor process: connects, then runs what the parent asks on stdin, one JSON line in, one out."""
    ids = FloorIds(**{**config["ids"], "lines": tuple(tuple(line) for line in config["ids"]["lines"])})
    if config["backend"] == "mariadb":
        dbs: list[FloorConnection] = [await MariaDBFloor.connect(config["port"]) for _ in range(config["connections"])]
    else:
        dbs = [await SQLiteFloor.connect(config["path"]) for _ in range(config["connections"])]

    def emit(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    emit({"ready": True, "threads": [getattr(db, "thread_id", 0) for db in dbs]})
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command = json.loads(line)
            if command["cmd"] == "run":
                emit(await _floor_run(dbs[: command["connections"]], ids, command["seconds"]))
            elif command["cmd"] == "one_at_a_time":
                emit(await _floor_one_at_a_time(dbs[0], ids, command["count"], command["gap"]))
    finally:
        for db in dbs:
            with contextlib.suppress(Exception):
                await db.close()


def _floor_main(raw: str) -> None:
    try:
        import uvloop  # the event loop SkyCart's workers run on
    except ImportError:
        asyncio.run(_floor_worker(json.loads(raw)))
    else:
        uvloop.run(_floor_worker(json.loads(raw)))


# ── The load: wrk with a unique Idempotency-Key per request ───────────────────────────────────────

LUA = r"""
-- POST /v1/orders with a unique Idempotency-Key per request; statuses counted per thread. After `seconds`
-- delay() holds every connection, so each order sent is answered before wrk stops (-d adds a grace).
local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } orders_timespec;
int clock_gettime(int clock_id, orders_timespec *tp);
]])
local ts = ffi.new("orders_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  deadline = now() + tonumber(args[1])
  prefix = args[2] .. "-" .. id .. "-"
  sent, keys, created, statuses = 0, 0, 0, {}
  wrk.method = "POST"
  wrk.body = [==[@BODY@]==]
  wrk.headers["Content-Type"] = "application/json"
end

function delay()
  if now() < deadline then
    sent = sent + 1
    return 0
  end
  return 3600000
end

function request()
  keys = keys + 1
  wrk.headers["Idempotency-Key"] = prefix .. keys
  return wrk.format()
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  else
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local all_sent, all_created, others = 0, 0, {}
  for _, thread in ipairs(threads) do
    all_sent = all_sent + thread:get("sent")
    all_created = all_created + thread:get("created")
    for status, count in pairs(thread:get("statuses")) do
      others[status] = (others[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(others) do
    table.insert(parts, string.format('"%d":%d', status, count))
  end
  local e = summary.errors
  io.write(string.format(
    'ORDERS {"sent":%d,"created":%d,"other":{%s},"p50_us":%d,"p99_us":%d,"socket_errors":%d,"requests":%d}\n',
    all_sent, all_created, table.concat(parts, ","), latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, summary.requests))
end
"""


def _wrk(base: str, key: str, script: Path, seconds: int, grace: int, connections: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:12]
    argv = [*_pinned(1), "wrk", "-t1", f"-c{connections}", f"-d{seconds + grace}s", "--timeout", "30s"]
    argv += ["-s", str(script), "-H", f"X-Api-Key: {key}", f"{base}/v1/orders", "--", str(seconds), tag]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + grace + 120)
    found = re.search(r"^ORDERS (\{.*\})$", done.stdout, re.M)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-1000:]} {done.stderr[-1000:]}")
    return json.loads(found.group(1))


# ── Servers, the floor process, the database as the benchmark reads it ───────────────────────────


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    base: str
    log: Path


def _start_server(name: str, env: dict[str, str], folder: Path) -> Server:
    port = _free_port()
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*_pinned(0), sys.executable, "-m", "skycart.cli", "serve", "--port", str(port), "--workers", "1"],
            env=env,
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{server.base}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.05)
    _kill(proc)
    raise RuntimeError(f"{name} did not start: {log.read_text(errors='replace')[-2000:]}")


def _kill(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


class FloorProcess:
    """The floor's own process, pinned to CPU 0, kept for the whole backend (its connections stay open)."""

    def __init__(self, config: dict[str, Any], folder: Path) -> None:
        self.log = folder / "floor.log"
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                [*_pinned(0), sys.executable, str(Path(__file__).resolve()), "--floor-worker", json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,
            )
        self.threads: list[int] = self._read(60)["threads"]

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"the floor process did not answer: {self.log.read_text(errors='replace')[-2000:]}")
        return json.loads(line)

    def call(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self._read(timeout)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _kill(self.proc)


class Database:
    """The benchmark's own synchronous connection, for counts, the stock and the general log."""

    def __init__(self, backend: str, *, port: int = 0, path: Path | None = None) -> None:
        self.backend = backend
        if backend == "mariadb":
            import pymysql

            self.conn: Any = pymysql.connect(host="127.0.0.1", port=port, user="root", database="skycart")
            self.conn.autocommit(True)
        else:
            self.conn = sqlite3.connect(path, timeout=30, isolation_level=None)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.backend == "mariadb":
            with self.conn.cursor() as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall())
        return self.conn.execute(sql.replace("%s", "?"), params).fetchall()

    def close(self) -> None:
        self.conn.close()


@dataclass(frozen=True)
class Snapshot:
    orders: int
    lines: int
    answered: int  # idempotency records done with 201
    stock: dict[str, tuple[int, int]]  # product id -> (loaded, sold)


def _snapshot(db: Database, ids: FloorIds) -> Snapshot:
    airline = ids.airline_id
    ((orders, lines, answered),) = db.rows(
        "SELECT (SELECT COUNT(*) FROM orders WHERE airline_id = %s), "
        "(SELECT COUNT(*) FROM order_lines WHERE airline_id = %s), "
        "(SELECT COUNT(*) FROM idempotency_records WHERE airline_id = %s AND state = 'done' "
        "AND response_status = 201)",
        (airline, airline, airline),
    )
    stock = db.rows(
        "SELECT product_id, quantity_loaded, quantity_sold FROM loaded_stock WHERE airline_id = %s AND flight_id = %s",
        (airline, ids.flight_id),
    )
    return Snapshot(int(orders), int(lines), int(answered), {row[0]: (int(row[1]), int(row[2])) for row in stock})


def _check(before: Snapshot, after: Snapshot, ids: FloorIds, expected: int, unanswered: int) -> list[str]:
    """What does not hold after a run: orders stored against answers, stock sold against ordered quantities."""
    problems = []
    created = after.orders - before.orders
    if not expected <= created <= expected + unanswered:
        problems.append(f"{created} orders stored, {expected} placed (201 answers or floor orders)")
    elif created != expected:
        console.print(f"  [yellow]! {created - expected} orders stored whose answers wrk did not wait for[/]")
    if after.lines - before.lines != created * len(ids.lines):
        problems.append(f"{after.lines - before.lines} order lines stored for {created} orders of {len(ids.lines)}")
    if after.answered - before.answered != created:
        problems.append(f"{after.answered - before.answered} keys answered 201 for {created} orders")
    for sku, product, quantity, _price in ids.lines:
        (loaded0, sold0), (loaded1, sold1) = before.stock[product], after.stock[product]
        if loaded1 != loaded0:
            problems.append(f"{sku}: loaded changed from {loaded0} to {loaded1}")
        if sold1 - sold0 != created * quantity:
            problems.append(f"{sku}: {sold1 - sold0} sold, {created} orders of {quantity} stored")
        if (loaded0 - sold0) - (loaded1 - sold1) != created * quantity:
            problems.append(f"{sku}: remaining fell by {(loaded0 - sold0) - (loaded1 - sold1)}")
    return problems


# ── Statements per order, from MariaDB's general log ─────────────────────────────────────────────

_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'")
_NUMBER = re.compile(r"(?<![\w.`])-?\d+(?:\.\d+)?(?![\w`])")


def normalize(sql: str) -> str:
    return re.sub(r"\s+", " ", _NUMBER.sub("?", _QUOTED.sub("?", sql))).strip()


@dataclass
class Statements:
    orders: int
    statements: list[int]  # per order: Query and Execute lines, COMMIT and ROLLBACK included
    commits: list[int]
    rollbacks: list[int]
    pings: float  # per order
    pings_logged: bool
    typical: list[str]  # the normalized statements of one order with the median count
    background: list[str]  # from the same connections, between the orders

    def per_order(self, values: list[int]) -> str:
        median, mean = statistics.median(values), statistics.fmean(values)
        return f"{median:g}" if median == mean else f"{median:g} ({mean:.2f})"


def _admin_commands(db: Database) -> int:
    return int(db.rows("SHOW GLOBAL STATUS LIKE 'Com_admin_commands'")[0][1])


def _capture(db: Database, place: Callable[[], tuple[list[tuple[float, float]], Callable[[int], bool]]]) -> Statements:
    """Orders placed one at a time with the general log on; each log line goes to the order in whose
    window (request sent to answer received) it was logged."""
    db.rows("SET GLOBAL general_log = 0")
    db.rows("SET GLOBAL log_output = 'TABLE'")
    db.rows("TRUNCATE TABLE mysql.general_log")
    admin_before = _admin_commands(db)
    db.rows("SET GLOBAL general_log = 1")
    try:
        windows, keep = place()
    finally:
        db.rows("SET GLOBAL general_log = 0")
    pings = (_admin_commands(db) - admin_before) / len(windows)  # COM_PING counts as an admin command
    (own,) = db.rows("SELECT CONNECTION_ID()")[0]
    rows = db.rows(
        "SELECT UNIX_TIMESTAMP(event_time), thread_id, command_type, argument FROM mysql.general_log "
        "WHERE thread_id <> %s ORDER BY event_time",
        (own,),
    )
    db.rows("TRUNCATE TABLE mysql.general_log")
    per_order: list[list[tuple[str, str]]] = [[] for _ in windows]
    background = []
    for stamp, thread, kind, argument in rows:
        if not keep(int(thread)):
            continue
        text = argument.decode(errors="replace") if isinstance(argument, bytes) else str(argument)
        at = float(stamp)
        slot = next((i for i, (start, end) in enumerate(windows) if start <= at <= end), None)
        if slot is None:
            if kind in ("Query", "Execute"):
                background.append(normalize(text))
        else:
            per_order[slot].append((kind, normalize(text)))
    statements = [sum(kind in ("Query", "Execute") for kind, _ in order) for order in per_order]
    logged_pings = sum(kind == "Ping" for order in per_order for kind, _ in order)
    median = statistics.median_low(statements)
    typical = next(order for order, count in zip(per_order, statements, strict=True) if count == median)
    return Statements(
        orders=len(windows),
        statements=statements,
        commits=[sum(text.upper() == "COMMIT" for _, text in order) for order in per_order],
        rollbacks=[sum(text.upper() == "ROLLBACK" for _, text in order) for order in per_order],
        pings=logged_pings / len(windows) if logged_pings else pings,
        pings_logged=bool(logged_pings),
        typical=[text for kind, text in typical if kind in ("Query", "Execute")],
        background=background,
    )


# ── One backend: setup, warm-up, statements, interleaved rounds ──────────────────────────────────

ARMS = ("skycart", "skycart-slow-pay", "floor")
SKUS = {"TEA": "2.00", "COF": "3.00"}


@dataclass
class Run:
    orders_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # per order, the server's processes or the floor process
    db_cpu_ms: float | None  # per order, mariadbd
    non_201: int
    problems: list[str]


@dataclass
class BackendResult:
    backend: str
    connections: dict[str, int]
    runs: dict[str, list[Run]] = field(default_factory=dict)
    statements: dict[str, Statements] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _database(backend: str, folder: Path) -> Iterator[tuple[str, Any]]:
    """(database URL, the private MariaDB or None)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / 'orders.db'}", None
        return
    from tests.metering.cluster import private_mariadb

    with private_mariadb(folder / "mariadb") as mariadb:
        pinned = _pinned(1)
        if pinned:  # all its threads, and the ones it starts later, on CPU 1 with wrk
            subprocess.run(["taskset", "-a", "-p", "-c", "1", str(mariadb.proc.pid)], stdout=subprocess.DEVNULL)
        yield mariadb.url, mariadb


def _seed(base: str, url: str, db: Database, args: argparse.Namespace) -> tuple[str, FloorIds]:
    """An airline on an unthrottled plan of its own, two products, a flight with `--stock` units of each."""
    from tests.conftest import flight_body, product_body
    from tests.metering.cluster import onboard, operator_key
    from tests.test_scaling import UNLIMITED

    with httpx.Client(base_url=base, headers={"X-Api-Key": operator_key(url)}, timeout=30) as admin:
        code, key = onboard(admin, {**UNLIMITED, "rate_limit_per_second": "100000", "burst": 100000})
    with httpx.Client(base_url=base, headers={"X-Api-Key": key}, timeout=30) as client:
        for sku, price in SKUS.items():
            created = client.post("/v1/products", json=product_body(sku, ["EUR"], prices={"EUR": price}))
            assert created.status_code == 201, created.text
        flight = client.post("/v1/flights", json=flight_body()).json()["id"]
        items = [{"sku": sku, "quantity": 100_000} for sku in SKUS]  # the most one load takes
        loaded = client.put(f"/v1/flights/{flight}/inventory", json={"items": items})
        assert loaded.status_code == 200, loaded.text
    db.rows("UPDATE loaded_stock SET quantity_loaded = %s WHERE flight_id = %s", (args.stock, flight))
    ((airline,),) = db.rows("SELECT id FROM airlines WHERE code = %s", (code,))
    products = dict(db.rows("SELECT sku, id FROM products WHERE airline_id = %s", (airline,)))
    chosen = list(SKUS)[: args.lines]
    lines = tuple((sku, products[sku], 1, round(float(SKUS[sku]) * 100)) for sku in chosen)
    return key, FloorIds(airline, flight, "EUR", "12C", lines)


def _body(ids: FloorIds, token: str) -> dict[str, Any]:
    from tests.conftest import order_body

    return order_body(
        ids.flight_id, {sku: qty for sku, _p, qty, _price in ids.lines}, currency="EUR", payment={"token": token}
    )


def _one_at_a_time(base: str, key: str, body: dict[str, Any], count: int, gap: float) -> list[tuple[float, float]]:
    windows = []
    with httpx.Client(base_url=base, headers={"X-Api-Key": key}, timeout=60) as client:
        for _ in range(count):
            started = time.time()
            answer = client.post("/v1/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
            windows.append((started, time.time()))
            if answer.status_code != 201:
                raise RuntimeError(f"order answered {answer.status_code}: {answer.text[:300]}")
            time.sleep(gap)
    return windows


def run_backend(backend: str, args: argparse.Namespace) -> BackendResult:
    from skycart.config import Settings
    from skycart.platform.migrate import upgrade

    connections = {"skycart": args.connections, "skycart-slow-pay": args.slow_connections, "floor": args.connections}
    result = BackendResult(backend, connections, {arm: [] for arm in ARMS})
    folder = Path(tempfile.mkdtemp(prefix=f"skycart-orders-{backend}-"))
    servers: dict[str, Server] = {}
    floor: FloorProcess | None = None
    db: Database | None = None
    try:
        with _database(backend, folder) as (url, mariadb):
            with console.status(f"{backend}: migrating, starting two servers and the floor"):
                driver_log = logging.getLogger("asyncmy")  # MariaDB's notes on the migration's constraint names
                level = driver_log.level
                driver_log.setLevel(logging.ERROR)
                try:
                    upgrade(Settings(database_url=url))
                finally:
                    driver_log.setLevel(level)
                env = {name: value for name, value in os.environ.items() if not name.startswith("SKYCART_")}
                env |= {
                    "SKYCART_DATABASE_URL": url,
                    "SKYCART_ACCESS_LOG": "false",
                    "SKYCART_LOG_LEVEL": "WARNING",
                    "SKYCART_EMF_METRICS": "false",
                }
                slow_env = {**env, "SKYCART_SANDBOX_SLOW_SECONDS": f"{args.slow_pay_seconds:g}"}
                servers["skycart"] = _start_server("skycart", env, folder)
                servers["skycart-slow-pay"] = _start_server("skycart-slow-pay", slow_env, folder)
                db = (
                    Database("mariadb", port=mariadb.port) if mariadb else Database("sqlite", path=folder / "orders.db")
                )
                key, ids = _seed(servers["skycart"].base, url, db, args)
                config = {"backend": backend, "connections": args.connections, "ids": dataclasses.asdict(ids)}
                config |= {"port": mariadb.port} if mariadb else {"path": str(folder / "orders.db")}
                floor = FloorProcess(config, folder)
            scripts = {}
            for arm, token in (("skycart", "tok_ok"), ("skycart-slow-pay", "tok_slow")):
                scripts[arm] = folder / f"{arm}.lua"
                scripts[arm].write_text(LUA.replace("@BODY@", json.dumps(_body(ids, token))))

            started = time.monotonic()
            _one_at_a_time(servers["skycart-slow-pay"].base, key, _body(ids, "tok_slow"), 1, 0)
            slow = time.monotonic() - started
            if not 0.9 * args.slow_pay_seconds <= slow < args.slow_pay_seconds + 1.0:
                note = (
                    f"SKYCART_SANDBOX_SLOW_SECONDS={args.slow_pay_seconds:g} seems not applied: "
                    f"one tok_slow order took {slow:.2f} s"
                )
                result.notes.append(note)
                console.print(f"[yellow]! {note}[/]")

            def measure(arm: str, seconds: int) -> Run:
                before = _snapshot(db, ids)
                db_cpu = _tree_cpu_seconds(mariadb.proc.pid) if mariadb else 0.0
                if arm == "floor":
                    assert floor is not None
                    cpu = _tree_cpu_seconds(floor.proc.pid)
                    seen = floor.call(
                        {"cmd": "run", "seconds": seconds, "connections": args.connections}, seconds + 120
                    )
                    cpu = _tree_cpu_seconds(floor.proc.pid) - cpu
                    placed, unanswered, p50, p99 = seen["orders"], 0, seen["p50_ms"], seen["p99_ms"]
                    non_201 = sum(seen["errors"].values())
                    others = seen["errors"]
                else:
                    server = servers[arm]
                    cpu = _tree_cpu_seconds(server.proc.pid)
                    seen = _wrk(server.base, key, scripts[arm], seconds, args.grace, connections[arm])
                    cpu = _tree_cpu_seconds(server.proc.pid) - cpu
                    others = seen["other"]
                    non_201 = sum(others.values())
                    placed = seen["created"]
                    unanswered = seen["sent"] - placed - non_201
                    p50, p99 = seen["p50_us"] / 1000, seen["p99_us"] / 1000
                    if seen["socket_errors"]:
                        others = {**others, "socket errors": seen["socket_errors"]}
                db_cpu = _tree_cpu_seconds(mariadb.proc.pid) - db_cpu if mariadb else 0.0
                problems = _check(before, _snapshot(db, ids), ids, placed, unanswered)
                if others:
                    console.print(f"  [yellow]! {arm}: not 201: {others}[/]")
                return Run(
                    orders_per_s=placed / seconds,
                    p50_ms=p50,
                    p99_ms=p99,
                    cpu_ms=cpu * 1000 / max(placed, 1),
                    db_cpu_ms=db_cpu * 1000 / max(placed, 1) if mariadb else None,
                    non_201=non_201,
                    problems=problems,
                )

            def report(label: str, arm: str, run: Run) -> None:
                db_part = f"  DB {run.db_cpu_ms:5.2f}" if run.db_cpu_ms is not None else ""
                verdict = "[green]ok[/]" if not run.problems else "[bold red]FAIL[/]"
                console.print(
                    f"{backend:<7} {label:<10} {arm:<16} -c{connections[arm]:<3} {run.orders_per_s:7.0f} orders/s  "
                    f"p50 {run.p50_ms:7.1f} ms  p99 {run.p99_ms:7.1f} ms  CPU {run.cpu_ms:5.2f} ms/order{db_part}  "
                    f"non-201 {run.non_201}  {verdict}",
                    highlight=False,
                )
                for problem in run.problems:
                    failure = f"{backend} {label} {arm}: {problem}"
                    result.failures.append(failure)
                    console.print(f"  [bold red]FAIL {failure}[/]")

            if args.warmup:
                for arm in ARMS:
                    with console.status(f"{backend}: warming up {arm} ({args.warmup} s)"):
                        report("warm-up", arm, measure(arm, args.warmup))

            if mariadb and args.capture:
                assert floor is not None
                foreign = set(floor.threads)
                for arm in ARMS:
                    with console.status(f"{backend}: {args.capture} {arm} orders one at a time, general log on"):
                        if arm == "floor":

                            def place_floor() -> tuple[list[tuple[float, float]], Callable[[int], bool]]:
                                assert floor is not None
                                seen = floor.call({"cmd": "one_at_a_time", "count": args.capture, "gap": 0.05}, 120)
                                return [tuple(w) for w in seen["windows"]], lambda thread: thread in seen["threads"]

                            result.statements[arm] = _capture(db, place_floor)
                        else:
                            token = "tok_slow" if arm == "skycart-slow-pay" else "tok_ok"

                            def place_server(
                                base: str = servers[arm].base, token: str = token
                            ) -> tuple[list[tuple[float, float]], Callable[[int], bool]]:
                                windows = _one_at_a_time(base, key, _body(ids, token), args.capture, 0.05)
                                return windows, lambda thread: thread not in foreign

                            result.statements[arm] = _capture(db, place_server)

            for round_no in range(args.rounds):
                shift = round_no % len(ARMS)
                for arm in ARMS[shift:] + ARMS[:shift]:
                    label = f"round {round_no + 1}"
                    with console.status(f"{backend} {label}/{args.rounds}: {arm} for {args.seconds} s"):
                        run = measure(arm, args.seconds)
                    result.runs[arm].append(run)
                    report(label, arm, run)
    finally:
        if floor is not None:
            floor.stop()
        for server in servers.values():
            _kill(server.proc)
        if db is not None:
            with contextlib.suppress(Exception):
                db.close()
        shutil.rmtree(folder, ignore_errors=True)
    return result


# ── Output ──────────────────────────────────────────────────────────────────────────────────────


def _ratios(result: BackendResult, arm: str) -> list[float]:
    floors = result.runs["floor"]
    return [run.orders_per_s / base.orders_per_s for run, base in zip(result.runs[arm], floors, strict=True)]


def _print_backend(result: BackendResult, args: argparse.Namespace) -> None:
    mariadb = result.backend == "mariadb"
    where = "wrk and mariadbd on CPU 1" if mariadb else "wrk on CPU 1"
    table = Table(
        title=(
            f"{result.backend}: POST /v1/orders against the floor, medians of {args.rounds} interleaved rounds of "
            f"{args.seconds} s; server (1 worker) or floor on CPU 0, {where}; {args.lines}-line orders"
        ),
        title_justify="left",
    )
    columns = ["arm", "conns", "orders/s (min–max)", "p50 ms", "p99 ms", "CPU ms/order"]
    columns += ["DB CPU ms/order"] if mariadb else []
    columns += ["vs floor", "stmts/order", "COMMIT", "ROLLBACK", "pings", "non-201"]
    for column in columns:
        table.add_column(column, justify="left" if column == "arm" else "right", no_wrap=column == "arm")
    for arm in ARMS:
        runs = result.runs[arm]
        if not runs:
            continue
        rates = [run.orders_per_s for run in runs]
        row = [
            arm,
            str(result.connections[arm]),
            f"{statistics.median(rates):.0f} ({min(rates):.0f}–{max(rates):.0f})",
            f"{statistics.median(run.p50_ms for run in runs):.1f}",
            f"{statistics.median(run.p99_ms for run in runs):.1f}",
            f"{statistics.median(run.cpu_ms for run in runs):.2f}",
        ]
        if mariadb:
            row.append(f"{statistics.median(run.db_cpu_ms or 0.0 for run in runs):.2f}")
        row.append(f"{statistics.median(_ratios(result, arm)):.3f}")
        found = result.statements.get(arm)
        if found:
            pings = f"{found.pings:.2f}" + ("" if found.pings_logged else "*")
            row += [found.per_order(found.statements), found.per_order(found.commits), found.per_order(found.rollbacks)]
            row.append(pings)
        else:
            row += ["-", "-", "-", "-"]
        row.append(str(sum(run.non_201 for run in runs)))
        table.add_row(*row)
    console.print(table)
    if mariadb and result.statements:
        first = next(iter(result.statements.values()))
        legend = (
            f"statements per order: median (mean) of {first.orders} orders placed one at a time with the general "
            "log on; COMMIT and ROLLBACK are among the statements."
        )
        if not first.pings_logged:
            legend += (
                " *pings: MariaDB's general log does not show COM_PING; these are Com_admin_commands over the "
                "same orders (an idle server's pings included)."
            )
        console.print(legend)
    for note in result.notes:
        console.print(f"[yellow]note: {note}[/]")
    if not result.statements:
        return
    for arm, found in result.statements.items():
        console.rule(f"{result.backend} {arm}: the statements of one order ({len(found.typical)}), literals as ?")
        if arm == "skycart-slow-pay" and found.typical == result.statements["skycart"].typical:
            print("the same as skycart's")
        else:
            for number, text in enumerate(found.typical, 1):
                print(f"{number:3}. {text}")
        if found.background:
            kinds = Counter(text[:90] for text in found.background)
            print(f"     between the orders, not counted: {len(found.background)} statements")
            for text, count in kinds.most_common(6):
                print(f"       {count} x {text}")
    if "floor" in result.statements and "skycart" in result.statements:
        app, base = result.statements["skycart"].typical, result.statements["floor"].typical
        if app == base:
            console.print("[green]floor and skycart send the same statements per order[/]")
        else:
            console.print("[yellow]floor and skycart differ (--- skycart, +++ floor):[/]")
            for line in difflib.unified_diff(app, base, "skycart", "floor", lineterm="", n=1):
                print(line)


def _note_line(result: BackendResult, arm: str, args: argparse.Namespace) -> str:
    runs = result.runs[arm]
    rates = [run.orders_per_s for run in runs]
    text = (
        f"orders {result.backend} {arm} (-c{result.connections[arm]}): {statistics.median(rates):.0f} orders/s "
        f"[{min(rates):.0f}-{max(rates):.0f}], p50 {statistics.median(r.p50_ms for r in runs):.1f} ms, "
        f"p99 {statistics.median(r.p99_ms for r in runs):.1f} ms, "
        f"CPU {statistics.median(r.cpu_ms for r in runs):.2f} ms/order"
    )
    if result.backend == "mariadb":
        text += f" (DB {statistics.median(r.db_cpu_ms or 0.0 for r in runs):.2f})"
    if arm != "floor":
        text += f", {statistics.median(_ratios(result, arm)):.3f} of floor"
    found = result.statements.get(arm)
    if found:
        text += (
            f"; per order {statistics.median(found.statements):g} statements, "
            f"{statistics.median(found.commits):g} COMMIT, {statistics.median(found.rollbacks):g} ROLLBACK, "
            f"{found.pings:.2f} pings"
        )
    return text + f"; {len(runs)} rounds x {args.seconds} s, {args.lines}-line orders"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("mariadb", "sqlite", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=8, help="of orders per arm and round")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections for skycart; floor tasks")
    parser.add_argument("--slow-connections", type=int, default=64, help="wrk connections for skycart-slow-pay")
    parser.add_argument("--slow-pay-seconds", type=float, default=0.3, help="the sandbox's authorization of tok_slow")
    parser.add_argument("--lines", type=int, choices=(1, 2), default=1, help="order lines (TEA, then COF), 1 each")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of load per arm before the rounds (0: none)")
    parser.add_argument("--grace", type=int, default=2, help="seconds wrk waits for the last answers")
    parser.add_argument("--capture", type=int, default=20, help="orders per arm with the general log on (0: none)")
    parser.add_argument("--stock", type=int, default=50_000_000, help="units loaded of each product")
    parser.add_argument("--floor-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_worker:
        _floor_main(args.floor_worker)
        return
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (make bench-orders installs it)")
    sys.path.insert(0, str(ROOT))  # tests.* helpers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that every `finally` stops what it started
    started = time.monotonic()
    results = []
    for backend in ("mariadb", "sqlite") if args.backend == "both" else (args.backend,):
        result = run_backend(backend, args)
        results.append(result)
        _print_backend(result, args)
    console.rule("for a note")
    for result in results:
        for arm in ARMS:
            if result.runs[arm]:
                print(_note_line(result, arm, args))
    failures = [failure for result in results for failure in result.failures]
    console.print(f"{time.monotonic() - started:.0f} s")
    if failures:
        console.print(f"[bold red]FAIL: {len(failures)} runs broke an invariant[/]")
        for failure in failures:
            console.print(f"[red]  {failure}[/]")
        sys.exit(1)
    console.print("[green]every run: orders stored = orders answered 201, stock sold = quantities ordered[/]")


if __name__ == "__main__":
    main()
