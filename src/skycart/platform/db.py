"""Engine, sessions and column types shared by every domain.

The request-scoped session owns the transaction: it commits when the route returns and
rolls back when anything raises. Services never commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String, event
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import PoolResetState
from sqlalchemy.types import TypeDecorator
from ulid import ULID

from skycart.config import Settings, parse_db_secret
from skycart.platform import aws

log = logging.getLogger("skycart.db")

# Tells the SQLite "begin" hook to take the write lock up front (BEGIN IMMEDIATE), so two
# writers never deadlock on a lock upgrade and "database is locked" is never surfaced.
WRITE_INTENT = "skycart_write"


def new_id() -> str:
    """A sortable, unguessable public id (ULID)."""
    return str(ULID())


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC with microseconds on every backend; always returned aware."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not accepted; use UTC-aware values")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


JSONType = JSON().with_variant(mysql.JSON(), "mysql")


def exact_string(length: int) -> String:
    """A string compared byte for byte: MySQL's default collations fold case ("abc" = "ABC")."""
    return String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[str]: JSONType}


class IdMixin:
    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


_RETRYABLE_MYSQL = {1205, 1213}  # lock wait timeout, deadlock


LOCK_WAIT_TIMEOUT = 1205


def is_lock_wait(exc: BaseException) -> bool:
    """A statement gave up waiting for a row another transaction holds (SKYCART_DATABASE_LOCK_WAIT_SECONDS)."""
    orig = getattr(exc, "orig", None)
    return (
        isinstance(exc, OperationalError) and orig is not None and bool(orig.args) and orig.args[0] == LOCK_WAIT_TIMEOUT
    )


def is_retryable(exc: BaseException) -> bool:
    """A transient conflict between transactions, safe to retry from the start."""
    if not isinstance(exc, OperationalError):
        return False
    orig = exc.orig
    code = orig.args[0] if orig is not None and orig.args else None
    return code in _RETRYABLE_MYSQL or "database is locked" in str(orig)


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url,
            connect_args={"timeout": settings.sqlite_busy_timeout_ms / 1000},
            hide_parameters=True,
        )
        _configure_sqlite(engine, settings.sqlite_busy_timeout_ms)
        return engine
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        # No ping per checkout: connections are recycled before any server timeout; one the server closed
        # is seen closed when taken, and one idle for IDLE_PING_SECONDS is pinged (`_check_on_checkout`).
        pool_pre_ping=False,
        pool_recycle=1800,
        pool_timeout=settings.database_pool_timeout_seconds,
        # A connection whose transaction was committed or rolled back is returned as it is (no ROLLBACK);
        # `_reset` rolls back only one returned with a transaction open on the server.
        pool_reset_on_return=None,
        isolation_level="READ COMMITTED",
        # The driver's read timeout bounds every answer the server owes, a stalled server's included.
        connect_args={
            "connect_timeout": settings.database_connect_timeout_seconds,
            "read_timeout": settings.database_statement_timeout_seconds,
            "init_command": f"SET SESSION innodb_lock_wait_timeout = {int(settings.database_lock_wait_seconds)}",
        },
        # Errors (and the log lines made of them) never carry the statement's values.
        hide_parameters=True,
    )
    _reset_and_ping(engine)
    if settings.db_secret_arn:
        _follow_rotation(engine, settings)
    else:

        @event.listens_for(engine.sync_engine, "do_connect")
        def _connect(dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
            return _driver_connect(dialect, cargs, cparams)

    return engine


# A pooled connection unused this long is pinged when it is taken; one in steady use never is.
IDLE_PING_SECONDS = 10.0


def _closed_by_server(dbapi_connection: Any) -> bool:
    """Whether the server already closed the connection (a KILL, a restart, a failover), seen without a
    round trip: the event loop has delivered its end of stream, or bytes nobody asked for, to the driver."""
    driver = getattr(dbapi_connection, "_connection", None)
    if driver is None or not hasattr(driver, "_proto"):  # a driver without this state: the first statement finds out
        return False
    proto: Any = driver._proto
    if proto is None:
        return True
    try:
        return bool(proto.eof) or proto.transport is None or proto.length > proto.pos
    except AttributeError:
        return False


def _reset_and_ping(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "reset")
    def _reset(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
        if state.terminate_only or state.transaction_was_reset:
            return
        # The server says in every answer whether a transaction is open (SERVER_STATUS_IN_TRANS): after a
        # COMMIT or ROLLBACK it is not, and there is nothing to roll back.
        in_transaction = getattr(getattr(dbapi_connection, "_connection", None), "get_transaction_status", None)
        if in_transaction is not None and not in_transaction():
            return
        dbapi_connection.rollback()

    @event.listens_for(engine.sync_engine, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _check_on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if _closed_by_server(dbapi_connection):  # the pool opens a new connection instead
            raise DisconnectionError("the server closed this pooled connection")
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool opens a new connection instead
            raise DisconnectionError("an idle pooled connection did not answer its ping") from exc


ACCESS_DENIED = 1045
SERVER_LOST = 2013


def _driver_connect(dialect: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
    """Open a driver connection. One dropped while it opens (a proxy or load balancer in front of a database
    that is away accepts, then closes) makes asyncmy raise a bare RuntimeError: it is the driver's "lost
    connection" here, so that callers see the database as unavailable, as for any other refused connect."""
    try:
        return dialect.connect(*cargs, **cparams)
    except RuntimeError as exc:
        raise dialect.loaded_dbapi.OperationalError(SERVER_LOST, f"connection lost while opening: {exc}") from exc


def _follow_rotation(engine: AsyncEngine, settings: Settings) -> None:
    """When a new connection is refused (the password rotated), read the secret again and retry once."""
    client = aws.client("secretsmanager", settings)
    current: dict[str, Any] = {}

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        cparams.update(current)
        try:
            return _driver_connect(dialect, cargs, cparams)
        except dialect.loaded_dbapi.OperationalError as exc:
            if not exc.args or exc.args[0] != ACCESS_DENIED:
                raise
        # Named explicitly: the version rotation just promoted, whatever a stage-less read would pick.
        answer = client.get_secret_value(SecretId=settings.db_secret_arn, VersionStage="AWSCURRENT")
        secret = parse_db_secret(answer["SecretString"])
        current.update(user=secret["username"], password=secret["password"])
        log.warning("database_credentials_reloaded", extra={"user": secret["username"]})
        cparams.update(current)
        return _driver_connect(dialect, cargs, cparams)


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(WRITE_INTENT):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession], *, write: bool = True) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error."""
    async with sessions() as session:
        if write:
            await session.connection(execution_options={WRITE_INTENT: True})
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
