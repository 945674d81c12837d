"""Where flushed usage goes. The database sink is the default; a stream sink (Firehose, Kafka)
implements the same `UsageSink` protocol when usage outgrows the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Insert, select
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from skycart.metering.aggregate import Batch, merge_into
from skycart.metering.models import COUNTER_COLUMNS, MeteringFlush, UsageHour, UsageMinute
from skycart.platform.db import transaction, utcnow

KEY_COLUMNS = ("window_start", "airline", "route", "method", "status_class")


class UsageSink(Protocol):
    async def write(self, flush_id: str, batch: Batch) -> bool:
        """Store a batch exactly once per flush id; False when that id was already stored."""
        ...


def _rows(batch: Batch, seconds: int) -> list[dict]:
    """Rows of one granularity (60 = minute, 3600 = hour) in a fixed key order (no deadlocks)."""
    grouped: dict[tuple, list[int]] = {}
    merge_into(
        grouped,
        (
            ((minute * 60 // seconds * seconds, airline, route, method, sc), row)
            for (minute, airline, route, method, sc), row in batch.items()
        ),
    )
    rows = []
    for (start, *labels), counters in sorted(grouped.items()):
        row = dict(zip(KEY_COLUMNS, (datetime.fromtimestamp(start, UTC), *labels), strict=True))
        row.update(zip(COUNTER_COLUMNS, counters, strict=True))
        rows.append(row)
    return rows


def _upsert(session: AsyncSession, model: type, rows: list[dict]) -> Insert:
    if session.bind is None:
        raise RuntimeError("the metering session is bound to no database engine")
    dialect = session.bind.dialect.name
    if dialect == "mysql":
        mysql_stmt = mysql.insert(model).values(rows)
        return mysql_stmt.on_duplicate_key_update(
            {c: getattr(model, c) + mysql_stmt.inserted[c] for c in COUNTER_COLUMNS}
        )
    sqlite_stmt = sqlite.insert(model).values(rows)
    return sqlite_stmt.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS), set_={c: getattr(model, c) + sqlite_stmt.excluded[c] for c in COUNTER_COLUMNS}
    )


class DatabaseSink:
    """Upserts per-minute and per-hour rows and the flush id in one transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], process: str) -> None:
        self.sessions = sessions
        self.process = process

    async def write(self, flush_id: str, batch: Batch) -> bool:
        try:
            async with transaction(self.sessions) as session:
                session.add(
                    MeteringFlush(flush_id=flush_id, process=self.process, rows=len(batch), created_at=utcnow())
                )
                await session.flush()
                for model, seconds in ((UsageMinute, 60), (UsageHour, 3600)):
                    rows = _rows(batch, seconds)
                    for start in range(0, len(rows), 500):
                        await session.execute(_upsert(session, model, rows[start : start + 500]))
            return True
        except IntegrityError:
            async with transaction(self.sessions, write=False) as session:
                found = await session.execute(select(MeteringFlush.flush_id).where(MeteringFlush.flush_id == flush_id))
                if found.first() is not None:
                    return False  # committed before; the acknowledgement was lost
            raise
