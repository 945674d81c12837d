"""Prepared statements (platform.statements) give what SQLAlchemy's own execute gives, on both backends:
the same values both ways, the same errors, and on MySQL a broken or stalled connection is never reused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, bindparam, func, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from skycart.config import Settings
from skycart.errors import database_unavailable
from skycart.platform.db import JSONType, UTCDateTime, create_engine
from skycart.platform.statements import Prepared, statements
from tests.conftest import _mariadb_admin, scratch_database

metadata = MetaData()
things = Table(
    "statement_things",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("data", JSONType),
    Column("seen_at", UTCDateTime()),
    Column("active", Boolean),
    Column("count", Integer),
)
INSERT = Prepared(insert(things), columns=[column.key for column in things.columns])
BY_IDS = Prepared(
    select(things.c.id, things.c.data, things.c.seen_at, things.c.active, things.c.count)
    .where(things.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(things.c.id)
)
ADD = Prepared(things.update().where(things.c.id == bindparam("thing")).values(count=things.c.count + bindparam("by")))
SLEEP = Prepared(select(func.sleep(bindparam("seconds"))))
SEEN = datetime(2026, 12, 4, 10, 30, 15, 123456, tzinfo=UTC)


def _with_engine(kind: str, tmp_path: Path, scenario: Callable[[AsyncEngine], Awaitable[None]]) -> None:
    with scratch_database(kind, tmp_path) as url:

        async def run() -> None:
            engine = create_engine(Settings(database_url=url, database_statement_timeout_seconds=0.5))
            try:
                async with engine.begin() as conn:
                    await conn.run_sync(metadata.create_all)
                await scenario(engine)
            finally:
                await engine.dispose()

        asyncio.run(run())


def _row(thing: str, count: int = 1) -> dict[str, Any]:
    return {"id": thing, "data": {"tags": ["hot", "é"], "n": 2}, "seen_at": SEEN, "active": True, "count": count}


@pytest.mark.parametrize("kind", ["sqlite", "mariadb"])
def test_values_go_in_and_come_back_as_sqlalchemy_would_give_them(kind: str, tmp_path: Path) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        async with engine.connect() as conn, statements(conn) as db:
            await db.execute(INSERT, _row("a"))
            await db.execute(INSERT, [_row("b", 5), _row("c", 7)])  # one multi-row INSERT
            assert await db.execute(ADD, {"thing": "b", "by": 2}) == 1
            assert await db.execute(ADD, {"thing": "nobody", "by": 2}) == 0
            prepared = await db.rows(BY_IDS, {"ids": ["a", "b", "zz"]})
            await db.commit()
        async with engine.connect() as conn:
            through_sqlalchemy = [tuple(row) for row in await conn.execute(BY_IDS.statement, {"ids": ["a", "b", "zz"]})]
        assert prepared == through_sqlalchemy
        assert prepared == [
            ("a", {"tags": ["hot", "é"], "n": 2}, SEEN, True, 1),
            ("b", {"tags": ["hot", "é"], "n": 2}, SEEN, True, 7),
        ]

    _with_engine(kind, tmp_path, scenario)


@pytest.mark.parametrize("kind", ["sqlite", "mariadb"])
def test_errors_are_sqlalchemys_and_nothing_uncommitted_stays(kind: str, tmp_path: Path) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        async with engine.connect() as conn, statements(conn) as db:
            await db.execute(INSERT, _row("a"))
            await db.commit()
        async with engine.connect() as conn, statements(conn) as db:
            await db.execute(INSERT, _row("b"))
            with pytest.raises(IntegrityError):
                await db.execute(INSERT, _row("a"))
            with pytest.raises(SQLAlchemyError, match="'by'"):
                await db.execute(ADD, {"thing": "a"})
        # Returned without a commit: "b" was rolled back with the connection's reset.
        async with engine.connect() as conn, statements(conn) as db:
            assert [row[0] for row in await db.rows(BY_IDS, {"ids": ["a", "b"]})] == ["a"]

    _with_engine(kind, tmp_path, scenario)


def test_a_stalled_statement_is_cut_off_at_the_statement_timeout_and_its_connection_dropped(tmp_path: Path) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            async with statements(conn) as db:
                driver = (await conn.get_raw_connection()).driver_connection
                assert driver._read_timeout is None, "the driver's own timeout is off while the block runs"
                started = time.monotonic()
                with pytest.raises(OperationalError) as caught:
                    await db.rows(SLEEP, {"seconds": 5})
                took = time.monotonic() - started
            assert caught.value.connection_invalidated and database_unavailable(caught.value)
            assert caught.value.orig is not None and caught.value.orig.args[0] == 2013
            assert 0.4 < took < 2.0, took
            assert conn.invalidated
        async with engine.connect() as conn:  # a new connection, with the driver's timeout as configured
            async with statements(conn) as db:
                assert await db.rows(SLEEP, {"seconds": 0}) == [(0,)]
            assert (await conn.get_raw_connection()).driver_connection._read_timeout == 0.5

    _with_engine("mariadb", tmp_path, scenario)


def test_a_connection_the_server_killed_is_reported_invalidated_and_never_reused(tmp_path: Path) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            async with statements(conn) as db:
                (connection_id,) = (await db.rows(Prepared(select(func.connection_id())), {}))[0]
                await asyncio.to_thread(_mariadb_admin, f"KILL CONNECTION {int(connection_id)}")
                with pytest.raises(DBAPIError) as caught:
                    await db.rows(BY_IDS, {"ids": ["a"]})
            assert caught.value.connection_invalidated and database_unavailable(caught.value)
        async with engine.connect() as conn, statements(conn) as db:
            (again,) = (await db.rows(Prepared(select(func.connection_id())), {}))[0]
            assert again != connection_id
            assert await db.rows(BY_IDS, {"ids": ["a"]}) == []

    _with_engine("mariadb", tmp_path, scenario)


def test_a_cancelled_statement_leaves_no_connection_behind_in_the_pool(tmp_path: Path) -> None:
    async def scenario(engine: AsyncEngine) -> None:
        async def slow() -> None:
            async with engine.connect() as conn, statements(conn) as db:
                await db.rows(SLEEP, {"seconds": 0.3})

        task = asyncio.create_task(slow())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Reused, the cancelled connection would answer the next statement with the SLEEP's late result.
        async with engine.connect() as conn, statements(conn) as db:
            assert await db.rows(Prepared(select(func.sleep(0) + 41)), {}) == [(41,)]

    _with_engine("mariadb", tmp_path, scenario)
