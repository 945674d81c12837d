"""The flusher and the database sink: exactly once per flush id, kept while the database is away."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from skycart.config import Settings
from skycart.metering.aggregate import (
    BILLABLE,
    BYTES_OUT,
    ERRORS,
    FIRST_BUCKET,
    LATENCY_US,
    REQUESTS,
    ROW_WIDTH,
    UsageAggregator,
    merge_into,
    status_class,
)
from skycart.metering.flusher import Flusher
from skycart.metering.models import LATENCY_BUCKETS_MS, MeteringFlush, UsageHour, UsageMinute
from skycart.metering.sink import DatabaseSink
from skycart.platform.db import create_engine, create_sessionmaker
from skycart.platform.migrate import upgrade
from tests.conftest import scratch_database


def _record(aggregator: UsageAggregator, airline: str, count: int, status: int = 200) -> None:
    for _ in range(count):
        aggregator.record(airline, "/v1/products", "GET", status, 0.004, 10, 100, True)


async def _totals(sessions, model=UsageMinute) -> tuple[int, int]:
    async with sessions() as session:
        row = (await session.execute(select(func.sum(model.requests), func.sum(model.billable)))).one()
        return int(row[0] or 0), int(row[1] or 0)


def test_a_retried_flush_with_the_same_id_counts_once(backend: str, tmp_path: Path) -> None:
    kind = "sqlite" if backend.startswith("sqlite") else "mariadb"
    with scratch_database(kind, tmp_path) as url:
        upgrade(Settings(database_url=url))

        async def _run() -> None:
            engine = create_engine(Settings(database_url=url))
            sessions = create_sessionmaker(engine)
            aggregator = UsageAggregator()
            _record(aggregator, "AAA", 7)
            _record(aggregator, "AAA", 2, status=404)
            batch = aggregator.take()
            sink = DatabaseSink(sessions, "test")
            assert await sink.write("flush-1", batch) is True
            # The commit happened but the acknowledgement was lost: the same flush comes again.
            assert await sink.write("flush-1", batch) is False
            assert await _totals(sessions) == (9, 9)
            assert await _totals(sessions, UsageHour) == (9, 9), "the hourly rollup is written in the same flush"
            assert await sink.write("flush-2", batch) is True, "another flush id adds"
            assert await _totals(sessions) == (18, 18)
            async with sessions() as session:
                assert (await session.execute(select(func.count()).select_from(MeteringFlush))).scalar_one() == 2
            await engine.dispose()

        asyncio.run(_run())


def test_usage_waits_while_the_database_is_unreachable_and_lands_when_it_is_back(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'late.db'}"

    async def _run() -> None:
        engine = create_engine(Settings(database_url=url))
        sessions = create_sessionmaker(engine)
        aggregator = UsageAggregator()
        flusher = Flusher(aggregator, DatabaseSink(sessions, "test"), interval=60, max_pending_rows=1000)
        _record(aggregator, "AAA", 5)
        await flusher.flush()  # no tables yet: the write fails
        _record(aggregator, "AAA", 3)
        await flusher.flush()
        assert flusher.failed_attempts == 2 and len(flusher.pending) == 2
        await asyncio.to_thread(upgrade, Settings(database_url=url))
        await flusher.flush()
        assert flusher.pending == [] and flusher.dropped_requests == 0
        assert await _totals(sessions) == (8, 8)
        await engine.dispose()

    asyncio.run(_run())


def test_past_the_memory_bound_the_oldest_usage_is_dropped_and_counted(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'never.db'}"

    async def _run() -> None:
        engine = create_engine(Settings(database_url=url))
        aggregator = UsageAggregator()
        flusher = Flusher(aggregator, DatabaseSink(create_sessionmaker(engine), "t"), interval=60, max_pending_rows=2)
        for index, airline in enumerate(("AAA", "BBB", "CCC", "DDD")):
            _record(aggregator, airline, index + 1)
            await flusher.flush()
        assert len(flusher.pending) == 2, "only the newest batches are kept"
        assert flusher.dropped_requests == 1 + 2
        await engine.dispose()

    asyncio.run(_run())


def test_the_aggregator_keys_by_minute_route_and_status_class() -> None:
    aggregator = UsageAggregator()
    aggregator.record("AAA", "/v1/orders/{order_id}", "GET", 200, 0.0005, 0, 50, True)
    aggregator.record("AAA", "/v1/orders/{order_id}", "GET", 404, 0.03, 0, 120, True)
    aggregator.record("AAA", "/v1/orders/{order_id}", "GET", 429, 0.001, 0, 120, False)
    batch = aggregator.take()
    assert {minute for minute, *_ in batch} <= {int(time.time() // 60) - 1, int(time.time() // 60)}
    by_class = {sc: row for (_minute, _a, _r, _m, sc), row in batch.items()}
    ok, client_errors = by_class["2xx"], by_class["4xx"]
    assert (ok[REQUESTS], ok[BILLABLE]) == (1, 1)
    assert (client_errors[REQUESTS], client_errors[BILLABLE]) == (2, 1), "a refused request is not billable"
    assert aggregator.take() == {}, "taking empties the table"
    assert aggregator.live_totals()[("AAA", "/v1/orders/{order_id}", "GET", "4xx")][REQUESTS] == 2


# One step: (seconds the clock moves on, airline, status, latency ms, whether the flusher takes first).
STEP = st.tuples(
    st.sampled_from([0.0, 0.4, 7.0, 59.9, 60.0, 61.5]),
    st.sampled_from(["AAA", "BBB"]),
    st.sampled_from([200, 201, 304, 404, 429, 503]),
    st.sampled_from([0.2, 1.0, 1.001, 40.0, 9000.0]),
    st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(STEP, max_size=40), start=st.floats(1.7e9, 1.8e9))
def test_every_request_lands_once_in_the_row_of_its_own_minute(steps, start: float) -> None:
    """Rows are found through a per-minute cache: across minute ends and takes, counts match a plain tally."""
    now = [start]
    aggregator = UsageAggregator(clock=lambda: now[0])
    expected: dict[tuple, list[int]] = {}
    taken: dict[tuple, list[int]] = {}
    for advance, airline, status, latency_ms, take_first in steps:
        if take_first:
            merge_into(taken, aggregator.take().items())
        now[0] += advance
        aggregator.record(
            airline, "/v1/flights/{flight_id}/menu", "GET", status, latency_ms / 1000, 0, 10, status < 400
        )
        row = expected.setdefault(
            (int(now[0]) // 60, airline, "/v1/flights/{flight_id}/menu", "GET", status_class(status)), [0] * ROW_WIDTH
        )
        row[REQUESTS] += 1
        row[ERRORS] += status >= 400
        row[BILLABLE] += status < 400
        row[BYTES_OUT] += 10
        row[LATENCY_US] += int(latency_ms / 1000 * 1_000_000)
        bucket = next(
            (i for i, bound in enumerate(LATENCY_BUCKETS_MS) if int(latency_ms * 1000) <= bound * 1000),
            len(LATENCY_BUCKETS_MS),
        )
        row[FIRST_BUCKET + bucket] += 1
    merge_into(taken, aggregator.take().items())
    assert taken == expected
