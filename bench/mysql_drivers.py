"""asyncmy vs aiomysql: the two async MySQL drivers, timed through SQLAlchemy's async engine on MariaDB.

What it measures
    Operations per second for four workloads shaped like SkyCart's hot paths, run through an
    ``AsyncEngine`` configured exactly like the app's (pool_size=10, max_overflow=10,
    pool_pre_ping=True, isolation_level="READ COMMITTED"). Every operation checks a connection out
    of the pool and returns it, as one request does, so the pre-ping round trip is included.

    point     one product row (JSON columns, DATETIME(6)) selected by primary key
    menu      a flight menu: 40 loaded_stock rows joined to their products
    write     a short transaction: conditional ``UPDATE loaded_stock SET quantity_sold = quantity_sold + 1
              WHERE id = :id AND quantity_loaded - quantity_sold >= 1``, one INSERT into orders, COMMIT
    point20   the point select from 20 asyncio tasks sharing the engine (the whole pool busy)

How it runs
    A scratch database ``skycart_bench_<random>`` is created and seeded through PyMySQL (so set-up
    favours neither driver) and is dropped at the end, whatever happens. Each driver is first checked
    for correctness on MariaDB (values read back equal what was written, JSON and DATETIME(6)
    microseconds included; rowcount of the conditional UPDATE; rollback; isolation level), then
    warmed up. A short timed warm-up sets, per workload, the fixed number of operations of every
    timed run (about --seconds long for the slower driver; the same count for both drivers and all
    rounds). Then, for each round, every workload runs that many operations on one driver and then
    the other; which driver goes first alternates from round to round.

How to read it
    The table shows, per workload, the MEDIAN ops/s of each driver over the rounds (min-max below it),
    the ratio asyncmy/aiomysql (above 1.00 means asyncmy is faster) and in how many rounds asyncmy beat
    aiomysql head to head. A ratio within a few percent of 1.00, or a split round count, is noise.
    The write workload is bounded by the server's COMMIT (redo-log flush), so drivers differ least
    there. "! machine busy" means other processes were using the CPUs when the run started: the
    interleaving keeps the comparison fair, but rerun when the machine is quiet (or with more
    --rounds) before trusting small differences.
    Only the driver and its SQLAlchemy adapter differ between the columns; the server, SQL, pool and
    event loop are the same. The ORM is not used, so a full request will show a smaller relative
    difference than this table does.

Usage
    .venv/bin/python bench/mysql_drivers.py [--rounds N] [--seconds S] [--loop auto|asyncio|uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import math
import os
import platform
import secrets
import signal
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from ulid import ULID

DRIVERS: tuple[str, ...] = ("asyncmy", "aiomysql")
DEFAULT_SERVER = "root@127.0.0.1:3306"
MENU_SIZE = 40
FLIGHTS = 5
PRODUCTS = FLIGHTS * MENU_SIZE
CONCURRENCY = 20
LOADED_FOR_WRITES = 2_000_000_000  # never runs out, so every write-workload UPDATE matches

console = Console(highlight=False, width=None if sys.stdout.isatty() else 110)

# --------------------------------------------------------------------------------------------------
# Schema: the columns SkyCart reads and writes on these paths (no foreign keys, same indexes).
# --------------------------------------------------------------------------------------------------

metadata = sa.MetaData()
ID = mysql.CHAR(26)
DATETIME6 = mysql.DATETIME(fsp=6)
JSON = mysql.JSON()

products = sa.Table(
    "products",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("airline_id", ID, nullable=False),
    sa.Column("sku", sa.String(64), nullable=False),
    sa.Column("name", JSON, nullable=False),
    sa.Column("description", JSON, nullable=False),
    sa.Column("category", sa.String(100), nullable=False),
    sa.Column("prices", JSON, nullable=False),
    sa.Column("min_age", sa.Integer, nullable=True),
    sa.Column("restrictions", JSON, nullable=False),
    sa.Column("attributes", JSON, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", DATETIME6, nullable=False),
    sa.Column("updated_at", DATETIME6, nullable=False),
    sa.UniqueConstraint("airline_id", "sku", name="uq_products_airline_sku"),
    sa.Index("ix_products_airline_category", "airline_id", "category"),
)

loaded_stock = sa.Table(
    "loaded_stock",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("airline_id", ID, nullable=False),
    sa.Column("flight_id", ID, nullable=False),
    sa.Column("product_id", ID, nullable=False),
    sa.Column("quantity_loaded", sa.Integer, nullable=False),
    sa.Column("quantity_sold", sa.Integer, nullable=False),
    sa.CheckConstraint("quantity_sold >= 0", name="ck_loaded_stock_sold"),
    sa.UniqueConstraint("airline_id", "flight_id", "product_id", name="uq_loaded_stock_item"),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("airline_id", ID, nullable=False),
    sa.Column("flight_id", ID, nullable=False),
    sa.Column("seat", sa.String(4), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("total_minor", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("payment_provider", sa.String(32), nullable=False),
    sa.Column("passenger", JSON, nullable=False),
    sa.Column("created_at", DATETIME6, nullable=False),
    sa.Column("updated_at", DATETIME6, nullable=False),
    sa.Index("ix_orders_airline_created", "airline_id", "created_at"),
)

POINT_SELECT = sa.select(products).where(
    products.c.airline_id == sa.bindparam("airline_id"), products.c.id == sa.bindparam("id")
)
MENU_SELECT = (
    sa.select(loaded_stock, products)
    .join(products, products.c.id == loaded_stock.c.product_id)
    .where(loaded_stock.c.airline_id == sa.bindparam("airline_id"), loaded_stock.c.flight_id == sa.bindparam("fid"))
    .order_by(products.c.category, products.c.sku)
)
TAKE_STOCK = (
    sa.update(loaded_stock)
    .where(
        loaded_stock.c.airline_id == sa.bindparam("tenant"),
        loaded_stock.c.id == sa.bindparam("stock_id"),
        loaded_stock.c.quantity_loaded - loaded_stock.c.quantity_sold >= 1,
    )
    .values(quantity_sold=loaded_stock.c.quantity_sold + 1)
)
INSERT_ORDER = sa.insert(orders)


def new_id() -> str:
    return str(ULID())


def utcnow() -> datetime:
    """Naive UTC with microseconds: what SkyCart's UTCDateTime stores."""
    return datetime.now(UTC).replace(tzinfo=None)


def product_row(airline_id: str, n: int) -> dict[str, Any]:
    names = {"en": f"Sparkling water 33cl #{n}", "de": f"Mineralwasser 33cl #{n}", "fr": f"Eau pétillante #{n}"}
    blurb = "Chilled on board; served with a cup and ice on request. " * 3
    return {
        "id": new_id(),
        "airline_id": airline_id,
        "sku": f"SKU-{n:05d}",
        "name": names,
        "description": {"en": blurb, "de": blurb, "fr": blurb},
        "category": ("drinks", "snacks", "meals", "duty-free")[n % 4],
        "prices": {"EUR": 350 + n, "GBP": 300 + n, "USD": 400 + n},
        "min_age": 18 if n % 7 == 0 else None,
        "restrictions": ["alcohol"] if n % 7 == 0 else [],
        "attributes": {"vegan": n % 2 == 0, "kcal": 120 + n, "allergens": ["nuts", "milk"][: n % 3]},
        "active": True,
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }


@dataclass(frozen=True)
class Fixture:
    """Ids of the seeded rows the workloads address."""

    airline_id: str
    product_ids: tuple[str, ...]
    flight_ids: tuple[str, ...]
    write_stock_ids: tuple[str, ...]  # loaded_stock rows of flight_ids[0], loaded with LOADED_FOR_WRITES


@dataclass
class WriteCounter:
    """Write-workload transactions committed, to cross-check the database at the end."""

    done: int = 0


# --------------------------------------------------------------------------------------------------
# Scratch database: created, seeded and dropped through PyMySQL so neither driver under test pays.
# --------------------------------------------------------------------------------------------------


def create_database(server: str) -> tuple[str, str]:
    """Create the scratch database; return its name and the server version."""
    name = f"skycart_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(f"mysql+pymysql://{server}", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            version = str(conn.execute(sa.text("SELECT VERSION()")).scalar_one())
            conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    finally:
        admin.dispose()
    return name, version


def drop_database(server: str, name: str) -> None:
    admin = sa.create_engine(f"mysql+pymysql://{server}", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        admin.dispose()


def seed(server: str, database: str) -> Fixture:
    engine = sa.create_engine(f"mysql+pymysql://{server}/{database}?charset=utf8mb4")
    try:
        metadata.create_all(engine)
        airline_id = new_id()
        rows = [product_row(airline_id, n) for n in range(PRODUCTS)]
        flight_ids = tuple(new_id() for _ in range(FLIGHTS))
        stock = [
            {
                "id": new_id(),
                "airline_id": airline_id,
                "flight_id": flight_id,
                "product_id": rows[f * MENU_SIZE + i]["id"],
                "quantity_loaded": LOADED_FOR_WRITES if f == 0 else 24,
                "quantity_sold": 0,
            }
            for f, flight_id in enumerate(flight_ids)
            for i in range(MENU_SIZE)
        ]
        with engine.begin() as conn:
            conn.execute(sa.insert(products), rows)
            conn.execute(sa.insert(loaded_stock), stock)
    finally:
        engine.dispose()
    return Fixture(
        airline_id=airline_id,
        product_ids=tuple(r["id"] for r in rows),
        flight_ids=flight_ids,
        write_stock_ids=tuple(s["id"] for s in stock if s["flight_id"] == flight_ids[0]),
    )


def make_engine(driver: str, server: str, database: str) -> AsyncEngine:
    """An engine configured like SkyCart's (platform/db.py) for the given driver."""
    return create_async_engine(
        f"mysql+{driver}://{server}/{database}",
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        pool_recycle=1800,
        isolation_level="READ COMMITTED",
    )


# --------------------------------------------------------------------------------------------------
# Workloads. Each runs `n` operations and returns how many it ran.
# --------------------------------------------------------------------------------------------------


class BenchError(RuntimeError):
    """A workload got an answer it should not have: the figures would be meaningless."""


async def _point_selects(engine: AsyncEngine, fx: Fixture, start: int, n: int) -> None:
    ids = fx.product_ids
    for i in range(start, start + n):
        async with engine.connect() as conn:
            row = (await conn.execute(POINT_SELECT, {"airline_id": fx.airline_id, "id": ids[i % len(ids)]})).one()
        if row.prices is None:
            raise BenchError("point select returned a row without prices")


async def point_select(engine: AsyncEngine, fx: Fixture, n: int, _writes: WriteCounter) -> int:
    await _point_selects(engine, fx, 0, n)
    return n


async def menu_select(engine: AsyncEngine, fx: Fixture, n: int, _writes: WriteCounter) -> int:
    flights = fx.flight_ids
    for i in range(n):
        async with engine.connect() as conn:
            params = {"airline_id": fx.airline_id, "fid": flights[i % len(flights)]}
            rows = (await conn.execute(MENU_SELECT, params)).all()
        if len(rows) != MENU_SIZE:
            raise BenchError(f"menu returned {len(rows)} rows, expected {MENU_SIZE}")
    return n


async def write_transaction(engine: AsyncEngine, fx: Fixture, n: int, writes: WriteCounter) -> int:
    stock_ids = fx.write_stock_ids
    flight_id = fx.flight_ids[0]
    for i in range(n):
        now = utcnow()
        async with engine.begin() as conn:
            params = {"tenant": fx.airline_id, "stock_id": stock_ids[i % len(stock_ids)]}
            taken = await conn.execute(TAKE_STOCK, params)
            if taken.rowcount != 1:
                raise BenchError(f"conditional UPDATE matched {taken.rowcount} rows, expected 1")
            await conn.execute(
                INSERT_ORDER,
                {
                    "id": new_id(),
                    "airline_id": fx.airline_id,
                    "flight_id": flight_id,
                    "seat": f"{i % 40 + 1}A",
                    "currency": "EUR",
                    "total_minor": 450,
                    "status": "paid",
                    "payment_provider": "onboard-card",
                    "passenger": {"seat": f"{i % 40 + 1}A", "locale": "en", "age_confirmed": True},
                    "created_at": now,
                    "updated_at": now,
                },
            )
        writes.done += 1
    return n


async def concurrent_point_select(engine: AsyncEngine, fx: Fixture, n: int, _writes: WriteCounter) -> int:
    per_task = max(1, n // CONCURRENCY)
    await asyncio.gather(*(_point_selects(engine, fx, t * per_task, per_task) for t in range(CONCURRENCY)))
    return per_task * CONCURRENCY


WorkloadFn = Callable[[AsyncEngine, Fixture, int, WriteCounter], Awaitable[int]]


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    warmup: int  # operations of each warm-up and calibration run
    run: WorkloadFn


WORKLOADS: tuple[Workload, ...] = (
    Workload("point", "point select (PK, JSON row)", 300, point_select),
    Workload("menu", f"menu ({MENU_SIZE}-row join)", 100, menu_select),
    Workload("write", "write tx (UPDATE+INSERT+COMMIT)", 100, write_transaction),
    Workload("point20", f"point select, {CONCURRENCY} tasks", 400, concurrent_point_select),
)


# --------------------------------------------------------------------------------------------------
# Correctness on MariaDB.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


class _Rollback(Exception):
    pass


async def verify(engine: AsyncEngine, fx: Fixture) -> list[Check]:
    """Round-trip values through the driver and check the SQL semantics the app relies on."""
    checks: list[Check] = []
    try:
        async with engine.connect() as conn:
            level = await conn.get_isolation_level()
        checks.append(Check("isolation level", level == "READ COMMITTED", f"got {level!r}"))

        written = product_row(fx.airline_id, PRODUCTS + secrets.randbelow(90_000))
        written |= {
            "name": {"en": "Crémant 🥂", "ja": "スパークリングワイン", "quote": 'say "hi"\\n\ttab', "empty": ""},
            "prices": {"EUR": 1250, "JPY": 2_000_000_000_000},
            "attributes": {"abv": 12.5, "vegan": True, "allergens": None, "nested": {"deep": [1, 2.25, -3, "x"]}},
            "restrictions": ["alcohol", "age:18"],
            "min_age": 18,
            "created_at": datetime(2026, 11, 26, 13, 45, 7, 123456),
            "updated_at": datetime(2026, 11, 26, 13, 45, 7, 1),
        }
        async with engine.begin() as conn:
            await conn.execute(sa.insert(products), written)
        async with engine.connect() as conn:
            row = (await conn.execute(POINT_SELECT, {"airline_id": fx.airline_id, "id": written["id"]})).one()
            stored = (
                await conn.execute(
                    sa.select(
                        sa.func.date_format(products.c.created_at, "%f"),
                        sa.func.date_format(products.c.updated_at, "%f"),
                        sa.func.json_value(products.c.name, "$.en"),
                        sa.func.json_value(products.c.prices, "$.JPY"),
                    ).where(products.c.id == written["id"])
                )
            ).one()
        read = dict(row._mapping)
        bad = [f"{k}: wrote {v!r}, read {read.get(k)!r}" for k, v in written.items() if read.get(k) != v]
        checks.append(Check("row round trip (JSON, DATETIME(6), bool, NULL)", not bad, "; ".join(bad)))
        for name, want, got in (
            ("DATETIME(6) stored with microseconds .123456", "123456", stored[0]),
            ("DATETIME(6) stored with microseconds .000001", "000001", stored[1]),
            ("JSON stored as UTF-8 text (server-side JSON_VALUE)", "Crémant 🥂", stored[2]),
            ("JSON big integer stored exactly", "2000000000000", stored[3]),
        ):
            checks.append(Check(name, got == want, f"server has {got!r}, expected {want!r}"))

        stock_id = new_id()
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(loaded_stock),
                {
                    "id": stock_id,
                    "airline_id": fx.airline_id,
                    "flight_id": new_id(),
                    "product_id": written["id"],
                    "quantity_loaded": 1,
                    "quantity_sold": 0,
                },
            )
        take = {"tenant": fx.airline_id, "stock_id": stock_id}
        counts = []
        for _ in range(2):
            async with engine.begin() as conn:
                counts.append((await conn.execute(TAKE_STOCK, take)).rowcount)
        checks.append(Check("conditional UPDATE rowcount (1 then 0 when sold out)", counts == [1, 0], f"got {counts}"))

        try:
            async with engine.begin() as conn:
                await conn.execute(sa.update(loaded_stock).where(loaded_stock.c.id == stock_id).values(quantity_sold=0))
                raise _Rollback
        except _Rollback:
            pass
        async with engine.connect() as conn:
            sold_stmt = sa.select(loaded_stock.c.quantity_sold).where(loaded_stock.c.id == stock_id)
            sold = (await conn.execute(sold_stmt)).scalar_one()
        checks.append(Check("rollback discards the UPDATE", sold == 1, f"quantity_sold is {sold}, expected 1"))

        async with engine.connect() as conn:
            menu = (await conn.execute(MENU_SELECT, {"airline_id": fx.airline_id, "fid": fx.flight_ids[1]})).all()
        keys = [(r.category, r.sku) for r in menu]
        menu_ok = len(menu) == MENU_SIZE and keys == sorted(keys) and all(isinstance(r.name, dict) for r in menu)
        checks.append(Check(f"menu: {MENU_SIZE} ordered rows, JSON decoded", menu_ok, f"{len(menu)} rows"))
    except (sa.exc.CompileError, sa.exc.ArgumentError):
        raise  # a bug in this script, not in the driver
    except Exception as exc:  # a driver that cannot even run the checks has failed them
        checks.append(Check("driver raised", False, f"{type(exc).__name__}: {exc}"))
    return checks


def report_checks(driver: str, checks: Sequence[Check]) -> bool:
    failed = [c for c in checks if not c.ok]
    if not failed:
        console.print(f"[green]✓ {driver}: works on MariaDB[/] ({len(checks)} checks passed)")
        return True
    console.print(f"[bold red]✗ FAIL: {driver} does not work correctly on MariaDB[/]")
    for c in failed:
        console.print(f"  [red]- {c.name}: {c.detail}[/]")
    return False


# --------------------------------------------------------------------------------------------------
# Measurement.
# --------------------------------------------------------------------------------------------------


@dataclass
class Results:
    """ops/s of every timed run, by workload key then driver, in round order."""

    ops: dict[str, int] = field(default_factory=dict)  # operations per timed run, by workload key
    runs: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, workload: str, driver: str, ops_per_s: float) -> None:
        self.runs.setdefault(workload, {}).setdefault(driver, []).append(ops_per_s)

    def of(self, workload: str, driver: str) -> list[float]:
        return self.runs.get(workload, {}).get(driver, [])


async def timed(workload: Workload, engine: AsyncEngine, fx: Fixture, n: int, writes: WriteCounter) -> float:
    gc.collect()
    start = time.perf_counter()
    done = await workload.run(engine, fx, n, writes)
    return done / (time.perf_counter() - start)


async def calibrate(
    engines: dict[str, AsyncEngine],
    drivers: Sequence[str],
    fx: Fixture,
    writes: dict[str, WriteCounter],
    seconds: float,
) -> dict[str, int]:
    """Warm every driver up (pool filled, statement caches primed), then size the timed runs.

    Each workload gets one operation count, used for both drivers in every round, so that a timed
    run of the slower driver lasts about `seconds`.
    """
    ops: dict[str, int] = {}
    for w in WORKLOADS:
        rates = []
        for driver in drivers:
            await w.run(engines[driver], fx, w.warmup, writes[driver])
            rates.append(await timed(w, engines[driver], fx, w.warmup, writes[driver]))
        ops[w.key] = max(CONCURRENCY, round(min(rates) * seconds / CONCURRENCY) * CONCURRENCY)
    return ops


async def run_bench(server: str, database: str, fx: Fixture, rounds: int, seconds: float) -> tuple[Results, list[str]]:
    """Verify, warm up and measure; returns the results and the drivers that failed verification."""
    engines = {driver: make_engine(driver, server, database) for driver in DRIVERS}
    writes = {driver: WriteCounter() for driver in DRIVERS}
    results = Results()
    try:
        failed = [d for d in DRIVERS if not report_checks(d, await verify(engines[d], fx))]
        drivers = [d for d in DRIVERS if d not in failed]
        if not drivers:
            return results, failed

        with console.status("warming up and sizing the timed runs"):
            results.ops = await calibrate(engines, drivers, fx, writes, seconds)
        console.print("operations per timed run: " + ", ".join(f"{k} {n:,}" for k, n in results.ops.items()))

        for r in range(rounds):
            order = drivers if r % 2 == 0 else drivers[::-1]
            line: list[str] = []
            with console.status(f"round {r + 1}/{rounds} ({' then '.join(order)})"):
                for w in WORKLOADS:
                    for driver in order:
                        rate = await timed(w, engines[driver], fx, results.ops[w.key], writes[driver])
                        results.add(w.key, driver, rate)
                        line.append(f"{w.key}/{driver} {rate:,.0f}")
            console.print(f"[dim]round {r + 1}/{rounds}, {order[0]} first: {'  '.join(line)}[/]")

        await check_writes(engines[drivers[0]], fx, sum(c.done for c in writes.values()))
        return results, failed
    finally:
        for engine in engines.values():
            await engine.dispose()


async def check_writes(engine: AsyncEngine, fx: Fixture, expected: int) -> None:
    """Every committed write-workload transaction left exactly one sale and one order behind."""
    async with engine.connect() as conn:
        sold = (
            await conn.execute(
                sa.select(sa.func.sum(loaded_stock.c.quantity_sold)).where(loaded_stock.c.flight_id == fx.flight_ids[0])
            )
        ).scalar_one()
        placed = (await conn.execute(sa.select(sa.func.count()).select_from(orders))).scalar_one()
    if int(sold or 0) == placed == expected:
        console.print(f"[green]✓ writes consistent[/]: {expected:,} transactions = orders = units sold")
    else:
        raise BenchError(f"write workload left {sold} units sold and {placed} orders for {expected} transactions")


# --------------------------------------------------------------------------------------------------
# Report.
# --------------------------------------------------------------------------------------------------


def render(results: Results, rounds: int) -> None:
    a, b = DRIVERS
    table = Table(title=f"ops/s, median of {rounds} interleaved rounds (min-max below)", title_justify="left")
    table.add_column("workload")
    table.add_column("ops/run", justify="right")
    table.add_column(a, justify="right")
    table.add_column(b, justify="right")
    table.add_column(f"{a}/{b}", justify="right")
    table.add_column(f"{a} faster in", justify="right")
    ratios: list[float] = []
    for w in WORKLOADS:
        ra, rb = results.of(w.key, a), results.of(w.key, b)
        cells = [_cell(ra), _cell(rb)]
        ratio, wins = "n/a", "n/a"
        if ra and rb:
            value = statistics.median(ra) / statistics.median(rb)
            ratios.append(value)
            colour = "green" if value > 1.03 else "red" if value < 0.97 else "yellow"
            ratio = f"[{colour}]{value:.2f}×[/]"
            wins = f"{sum(x > y for x, y in zip(ra, rb, strict=True))}/{len(ra)} rounds"
        table.add_row(w.title, f"{results.ops.get(w.key, 0):,}", *cells, ratio, wins)
    console.print(table)
    if ratios:
        geo = math.exp(statistics.fmean(math.log(x) for x in ratios))
        winner = a if geo >= 1 else b
        console.print(
            f"geometric mean of {a}/{b}: [bold]{geo:.2f}×[/] → [bold]{winner}[/] is faster overall "
            f"by {abs(geo - 1) * 100 if geo >= 1 else (1 / geo - 1) * 100:.0f}%"
        )


def _cell(rates: Sequence[float]) -> str:
    if not rates:
        return "—"
    return f"{statistics.median(rates):,.0f}\n[dim]{min(rates):,.0f}-{max(rates):,.0f}[/]"


def warn_if_busy(when: str) -> None:
    """Other processes on the machine skew the figures; say so rather than hide it."""
    load = os.getloadavg()[0]
    if load > 0.5 * (os.cpu_count() or 1):
        console.print(f"[yellow]! machine busy {when}: 1-min load average {load:.2f} on {os.cpu_count()} CPUs[/]")


def environment(server_version: str, loop: str) -> str:
    versions = ", ".join(f"{p} {importlib.metadata.version(p)}" for p in ("sqlalchemy", *DRIVERS, "pymysql"))
    return (
        f"Python {platform.python_version()} ({loop} loop), {versions}; server {server_version}; {os.cpu_count()} CPUs"
    )


# --------------------------------------------------------------------------------------------------
# Entry point.
# --------------------------------------------------------------------------------------------------


def loop_factory(choice: str) -> tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]:
    """uvloop when available ("auto"), as uvicorn[standard] would run the app."""
    if choice in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise SystemExit("uvloop is not installed") from None
        else:
            return "uvloop", uvloop.new_event_loop
    return "asyncio", None


def run_async(
    coro: Coroutine[Any, Any, tuple[Results, list[str]]], factory: Callable[[], asyncio.AbstractEventLoop] | None
) -> tuple[Results, list[str]]:
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per driver and workload (min 5)")
    parser.add_argument("--seconds", type=float, default=1.5, help="target length of one timed run (default 1.5)")
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto", help="event loop")
    parser.add_argument("--server", default=DEFAULT_SERVER, help=f"user@host:port (default {DEFAULT_SERVER})")
    args = parser.parse_args(argv)
    if args.rounds < 5:
        parser.error("--rounds must be at least 5 for a meaningful median")
    if not 0.2 <= args.seconds <= 5:
        parser.error("--seconds must be between 0.2 and 5")

    loop_name, factory = loop_factory(args.loop)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # killed like Ctrl-C: still drops the database
    try:
        database, server_version = create_database(args.server)
    except sa.exc.OperationalError as exc:
        console.print(f"[bold red]cannot reach MariaDB at {args.server}[/]: {exc.orig}")
        return 2
    console.print(environment(server_version, loop_name))
    warn_if_busy("before the run")
    console.print(f"scratch database [bold]{database}[/]")
    started = time.perf_counter()
    try:
        fx = seed(args.server, database)
        results, failed = run_async(run_bench(args.server, database, fx, args.rounds, args.seconds), factory)
        if results.runs:
            render(results, args.rounds)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130
    finally:
        drop_database(args.server, database)
        console.print(f"dropped {database}; {time.perf_counter() - started:.0f} s")
    if failed:
        console.print(f"[bold red]FAILED on MariaDB: {', '.join(failed)}[/] (not measured)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
