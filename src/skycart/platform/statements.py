"""A hot path's statements, sent to the driver's own connection on MySQL.

`AsyncConnection.execute` costs about 65 µs of CPU per statement on top of the driver's own 57 µs
(a cached Core UPDATE on MariaDB: 122 µs against 57 µs from asyncmy's cursor), and an order sends six.
On MySQL these statements skip that layer: each Core statement is compiled once per dialect and shape,
its values go through its column types' own bind and result processors (the ones SQLAlchemy applies),
and the SQL is sent with the driver's cursor. What SQLAlchemy's layer guaranteed is kept:

- a driver error is raised wrapped as SQLAlchemy wraps it (`IntegrityError`, `OperationalError`, with
  `connection_invalidated` when the connection broke), so every caller's error handling stays the same;
- a connection that broke, or whose statement was cut off (a timeout, a cancellation), is invalidated:
  the pool never hands it out again;
- the transaction is the driver's: it opens with the first statement and ends with `commit()`, and a
  connection returned with one open is rolled back by the pool's reset (platform.db).

On SQLite the same statements run through `AsyncConnection.execute` in SQLAlchemy's own transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler

from skycart.platform.db import SERVER_LOST

Params = Mapping[str, Any]
Processor = Callable[[Any], Any]


@asynccontextmanager
async def statements(conn: AsyncConnection) -> AsyncIterator[Statements]:
    """The connection's prepared statements, for the block.

    On MySQL the driver's read timeout (which asyncmy enforces with a task per packet read: 6 % of an
    order's CPU) is switched off meanwhile and enforced per statement instead, with the same bound and the
    same error (2013, lost connection, the connection invalidated); it is back on when the block ends.
    """
    if conn.dialect.name != "mysql":
        yield Statements(conn, None, None)
        return
    driver: Any = (await conn.get_raw_connection()).driver_connection
    timeout = getattr(driver, "_read_timeout", None)
    if timeout is not None:
        driver._read_timeout = None
    try:
        yield Statements(conn, driver, timeout)
    finally:
        if timeout is not None:
            driver._read_timeout = timeout


@dataclass(frozen=True, slots=True)
class _Compiled:
    compiled: SQLCompiler
    # Each bound value's processor (its column type's, for this dialect), by parameter name.
    binds: dict[str, Processor]
    # Each selected column's result processor, in order.
    results: tuple[Processor | None, ...]
    # Without IN lists: each positional value's (parameter name, processor, value when not given).
    positions: tuple[tuple[str, Processor | None, Any], ...] | None


class _Missing:
    """A required value the caller did not give."""


class Prepared:
    """One Core statement, compiled once per dialect (an INSERT for the given columns)."""

    __slots__ = ("_compiled", "columns", "statement")

    def __init__(self, statement: Executable, *, columns: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.columns = tuple(columns) if columns is not None else None
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            kw: dict[str, Any] = {} if self.columns is None else {"column_keys": list(self.columns)}
            compiled = cast(SQLCompiler, self.statement.compile(dialect=dialect, **kw))  # type: ignore[attr-defined]
            if compiled.insert_prefetch or compiled.update_prefetch:
                raise ValueError("a prepared statement is given every value; no column default is computed for it")
            selected = getattr(self.statement, "selected_columns", ())
            results = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in selected)
            binds: dict[str, Processor] = {
                name: proc
                for name, bind in compiled.binds.items()
                if (proc := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
            }
            positions = None
            if not compiled.post_compile_params:
                positions = tuple(
                    (name, binds.get(name), _Missing if compiled.binds[name].required else compiled.binds[name].value)
                    for name in compiled.positiontup or ()
                )
            found = self._compiled[dialect.name] = _Compiled(compiled, binds, results, positions)
        return found


class Statements:
    """One connection's prepared statements: to the driver on MySQL, through SQLAlchemy on SQLite.

    Made by `statements(conn)`, for as long as its block runs.
    """

    __slots__ = ("_conn", "_dbapi", "_driver", "_timeout", "dialect")

    def __init__(self, conn: AsyncConnection, driver: Any | None, timeout: float | None) -> None:
        self._conn = conn
        self._driver: Any = driver
        self._timeout = timeout
        self.dialect = conn.dialect
        self._dbapi: Any = conn.dialect.loaded_dbapi if driver is not None else None

    async def rows(self, prepared: Prepared, params: Params) -> list[tuple[Any, ...]]:
        if self._driver is None:
            return [tuple(row) for row in await self._conn.execute(prepared.statement, params)]
        compiled = prepared.compiled(self.dialect)
        sql, args = _bound(compiled, params)
        found = await self._run(sql, args, lambda cur: cur.execute(sql, args), fetch=True)
        results = compiled.results
        if not any(results):
            return list(found)
        return [
            tuple(value if proc is None else proc(value) for proc, value in zip(results, row, strict=True))
            for row in found
        ]

    async def execute(self, prepared: Prepared, params: Params | Sequence[Params]) -> int:
        """Run the statement (once per parameter set, one multi-row INSERT for several): the rows it matched."""
        if self._driver is None:
            result = cast(CursorResult[Any], await self._conn.execute(prepared.statement, params))
            return result.rowcount
        compiled = prepared.compiled(self.dialect)
        if isinstance(params, Mapping):
            sql, args = _bound(compiled, params)
            return int(await self._run(sql, args, lambda cur: cur.execute(sql, args)))
        bound = [_bound(compiled, one) for one in params]
        sql, many = bound[0][0], [args for _sql, args in bound]
        return int(await self._run(sql, many, lambda cur: cur.executemany(sql, many)))

    async def commit(self) -> None:
        if self._driver is None:
            await self._conn.commit()
            return
        await self._run("COMMIT", (), lambda _cur: self._driver.commit(), cursor=False)

    async def _run(
        self, sql: str, args: Any, send: Callable[[Any], Any], *, fetch: bool = False, cursor: bool = True
    ) -> Any:
        try:
            async with asyncio.timeout(self._timeout):
                if not cursor:
                    return await send(None)
                async with self._driver.cursor() as cur:
                    count = await send(cur)
                    return await cur.fetchall() if fetch else count
        except self._dbapi.Error as exc:
            broken = self.dialect.is_disconnect(exc, None, None)
            if broken:
                await self._invalidate(exc)
            raise DBAPIError.instance(
                sql, None, exc, self._dbapi.Error, hide_parameters=True, connection_invalidated=broken
            ) from exc
        except TimeoutError as exc:  # the statement's own bound: as the driver's read timeout would answer
            await self._invalidate(exc)
            orig = self._dbapi.OperationalError(SERVER_LOST, "Lost connection to MySQL server during query (timeout)")
            raise DBAPIError.instance(
                sql, None, orig, self._dbapi.Error, hide_parameters=True, connection_invalidated=True
            ) from exc
        except BaseException as exc:
            # Cut off mid-statement (a timeout, a cancellation) or failed inside the driver: what the
            # connection would read next is unknown, so it is not used again.
            await self._invalidate(exc)
            if isinstance(exc, AttributeError | RuntimeError | OSError):  # the driver's transport went away
                orig = self._dbapi.InternalError(f"network operation failed: {type(exc).__name__}")
                raise DBAPIError.instance(
                    sql, None, orig, self._dbapi.Error, hide_parameters=True, connection_invalidated=True
                ) from exc
            raise

    async def _invalidate(self, exc: BaseException) -> None:
        self._driver.close()  # drops the transport now; the pool then discards the connection
        with contextlib.suppress(Exception):  # already closed: the pool's own invalidation is what mattered
            await self._conn.invalidate(exc if isinstance(exc, Exception) else None)


def _bound(prepared: _Compiled, params: Params) -> tuple[str, tuple[Any, ...]]:
    """The statement's SQL for these values (IN lists expanded) and its positional values, processed."""
    if prepared.positions is not None:  # no IN list: the SQL and the order of its values are fixed
        values = []
        for name, proc, fixed in prepared.positions:
            value = params.get(name, fixed)
            if value is _Missing:
                raise InvalidRequestError(f"A value is required for bind parameter {name!r}")
            values.append(value if proc is None else proc(value))
        return prepared.compiled.string, tuple(values)
    state = prepared.compiled.construct_expanded_state(dict(params))
    procs = prepared.binds
    for name, expanded in state.parameter_expansion.items():
        if (proc := procs.get(name)) is not None:
            procs = {**procs, **dict.fromkeys(expanded, proc)}
    given = state.parameters
    return state.statement, tuple(
        given[name] if (proc := procs.get(name)) is None else proc(given[name]) for name in state.positiontup or ()
    )
