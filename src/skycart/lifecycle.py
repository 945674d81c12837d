"""What starts and stops with the app besides the engine, wired here and nowhere else:

- metering: the flusher that moves aggregated usage to the sink;
- limits: the limiter, its lease store (Redis or memory) and the exact quota book, and the package guard
  every airline request passes;
- billing: the plan book (each airline's terms, cached), and housekeeping that closes billing periods;
- retention of stored usage and events.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from skycart.airlines import repository as airlines
from skycart.billing import repository as billing
from skycart.billing.alerts import record_usage_thresholds
from skycart.billing.closing import close_due
from skycart.billing.service import PlanBook
from skycart.events.delivery import DeliveryWorker
from skycart.events.service import prune as prune_events
from skycart.limits.guard import AirlineGuard
from skycart.limits.leases import LeaseStore, MemoryLeaseStore, RedisLeaseStore
from skycart.limits.limiter import Limiter
from skycart.limits.quotas import QuotaBook
from skycart.metering.aggregate import UsageAggregator
from skycart.metering.exporters import log_emf
from skycart.metering.flusher import Flusher, process_name
from skycart.metering.retention import prune
from skycart.metering.sink import DatabaseSink
from skycart.platform.db import transaction
from skycart.platform.runtime import Runtime

log = logging.getLogger("skycart.lifecycle")
HOUSEKEEPING_SECONDS = 600


@dataclass
class Started:
    aggregator: UsageAggregator
    flusher: Flusher
    limiter: Limiter
    plans: PlanBook
    # Posts events to webhook endpoints (None when webhooks are not configured).
    deliveries: DeliveryWorker | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)


async def start(runtime: Runtime, aggregator: UsageAggregator) -> Started:
    settings = runtime.settings

    async def quota_start(airline_code: str, start: datetime, end: datetime) -> int:
        """The month's billable requests so far, when Redis has lost its count (rare: one read per loss)."""
        async with transaction(runtime.sessions, write=False) as session:
            airline = await airlines.get_by_code(session, airline_code)
            return 0 if airline is None else await billing.billable_requests(session, airline.tenant, start, end)

    store: LeaseStore = MemoryLeaseStore() if runtime.redis is None else RedisLeaseStore(runtime.redis)
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
    started = Started(aggregator, flusher, limiter, plans)
    runtime.plan_book = plans
    runtime.airline_guard = AirlineGuard(plans, limiter if settings.limits_enabled else None)
    runtime.lifecycle = started
    flusher.start()
    if runtime.sealer is not None:
        started.deliveries = DeliveryWorker(runtime.sessions, settings, runtime.sealer)
        started.deliveries.start()
    started._tasks.append(asyncio.create_task(_settle_loop(limiter, settings.metering_flush_seconds)))
    started._tasks.append(asyncio.create_task(_housekeeping_loop(runtime)))
    started._tasks.append(asyncio.create_task(_usage_alert_loop(runtime)))
    return started


async def stop(started: Started) -> None:
    if started.deliveries is not None:  # first: an attempt in flight is finished or given back
        await started.deliveries.stop()
    for task in started._tasks:
        task.cancel()
    await asyncio.gather(*started._tasks, return_exceptions=True)
    await started.limiter.settle(force=True)
    await started.flusher.stop()


async def _settle_loop(limiter: Limiter, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await limiter.settle()


async def _usage_alert_loop(runtime: Runtime) -> None:
    settings = runtime.settings
    while True:
        await asyncio.sleep(settings.usage_alert_seconds)
        try:
            await record_usage_thresholds(runtime.sessions, default_plan=settings.default_plan)
        except Exception:
            log.exception("usage_thresholds_failed")


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
            await prune(runtime.sessions, settings)
        except Exception:
            log.exception("usage_prune_failed")
        try:
            await prune_events(runtime.sessions, settings)
        except Exception:
            log.exception("events_prune_failed")
