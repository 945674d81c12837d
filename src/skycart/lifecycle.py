"""Starting and stopping metering with the app: the flusher, the limiter and its store, housekeeping."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete

from skycart.billing import repository
from skycart.billing.closing import close_due
from skycart.config import Settings
from skycart.limits.guard import AirlineGuard, PlanBook
from skycart.limits.leases import LeaseStore, MemoryLeaseStore, RedisLeaseStore
from skycart.limits.limiter import Limiter
from skycart.limits.quotas import QuotaBook
from skycart.metering.aggregate import UsageAggregator
from skycart.metering.exporters import log_emf
from skycart.metering.flusher import Flusher, process_name
from skycart.metering.models import MeteringFlush, UsageHour, UsageMinute
from skycart.metering.sink import DatabaseSink
from skycart.platform.db import transaction, utcnow
from skycart.platform.runtime import Runtime

log = logging.getLogger("skycart.metering")
HOUSEKEEPING_SECONDS = 600


@dataclass
class Metering:
    aggregator: UsageAggregator
    flusher: Flusher
    limiter: Limiter
    plans: PlanBook
    redis: Any = None
    _tasks: list[asyncio.Task] = field(default_factory=list)


def _store(settings: Settings) -> tuple[LeaseStore, Any]:
    if not settings.redis_url:
        return MemoryLeaseStore(), None
    import redis.asyncio as aioredis

    client = aioredis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    return RedisLeaseStore(client), client


async def start(runtime: Runtime, aggregator: UsageAggregator) -> Metering:
    settings = runtime.settings

    async def quota_start(airline: str, start: datetime, end: datetime) -> int:
        async with transaction(runtime.sessions, write=False) as session:
            return await repository.billable_requests(session, airline, start, end)

    store, client = _store(settings)
    process = process_name()
    flusher = Flusher(
        aggregator,
        DatabaseSink(runtime.sessions, process),
        interval=settings.metering_flush_seconds,
        max_pending_rows=settings.metering_max_pending_rows,
        process=process,
        on_batch=log_emf if settings.emf_metrics else None,
    )
    limiter = Limiter(
        store, quota_start, lease_seconds=settings.limiter_lease_seconds, quotas=QuotaBook(runtime.sessions)
    )
    plans = PlanBook(runtime.sessions, settings.default_plan, settings.plan_cache_seconds)
    metering = Metering(aggregator, flusher, limiter, plans, client)
    runtime.airline_guard = AirlineGuard(plans, limiter if settings.limits_enabled else None)
    runtime.metering = metering
    flusher.start()
    metering._tasks.append(asyncio.create_task(_settle_loop(limiter, settings.metering_flush_seconds)))
    metering._tasks.append(asyncio.create_task(_housekeeping_loop(runtime)))
    return metering


async def stop(metering: Metering) -> None:
    for task in metering._tasks:
        task.cancel()
    await asyncio.gather(*metering._tasks, return_exceptions=True)
    await metering.limiter.settle(force=True)
    await metering.flusher.stop()
    if metering.redis is not None:
        await metering.redis.aclose()


async def _settle_loop(limiter: Limiter, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await limiter.settle()


async def prune(runtime: Runtime, now: datetime | None = None) -> None:
    """Drop usage older than the retention settings; flush ids are only needed for a few days."""
    now = now or utcnow()
    settings = runtime.settings
    async with transaction(runtime.sessions) as session:
        await session.execute(
            delete(UsageMinute).where(
                UsageMinute.window_start < now - timedelta(days=settings.usage_minute_retention_days)
            )
        )
        await session.execute(
            delete(UsageHour).where(UsageHour.window_start < now - timedelta(days=settings.usage_hour_retention_days))
        )
        await session.execute(delete(MeteringFlush).where(MeteringFlush.created_at < now - timedelta(days=7)))


async def _housekeeping_loop(runtime: Runtime) -> None:
    settings = runtime.settings
    while True:
        await asyncio.sleep(HOUSEKEEPING_SECONDS)
        try:
            closed = await close_due(
                runtime.sessions, default_plan=settings.default_plan, grace_hours=settings.billing_grace_hours
            )
            if closed.stored:
                log.info("billing_periods_closed", extra={"statements": closed.stored})
        except Exception:
            log.exception("billing_close_failed")
        try:
            await prune(runtime)
        except Exception:
            log.exception("usage_prune_failed")
