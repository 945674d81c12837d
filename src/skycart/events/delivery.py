"""Delivering events to webhook endpoints, from every server process (no extra service).

Each pass of a process's worker:

1. dispatch: claims recorded events not yet dispatched (`SELECT … FOR UPDATE SKIP LOCKED`; on SQLite
   the write transaction is the claim) and makes one pending delivery per enabled endpoint of the
   event's airline subscribed to its type;
2. claims due deliveries the same way and holds each for `CLAIM_SECONDS` (a process that dies lets go
   of them when that runs out), at most one per endpoint and ordering key (an order's id): one order's
   events reach an endpoint one at a time, in the order they were recorded;
3. posts each, signed (events.signing), to the address the SSRF guard checked just before, with connect
   and read timeouts and no redirects, and records the attempt: 2xx is delivered; anything else, or no
   answer, is tried again after 5 s, 30 s, 2 min, 10 min, 1 h, then every 3 h (SKYCART_WEBHOOK_RETRY_SECONDS),
   each with up to 20 % of jitter, until 24 h after the delivery was made (SKYCART_WEBHOOK_GIVE_UP_SECONDS),
   when it is `failed`.

An endpoint whose deliveries have all failed for 24 h (SKYCART_WEBHOOK_DISABLE_AFTER_SECONDS) is disabled,
and its airline gets a `webhook.disabled` event on its other endpoints. At shutdown the worker stops
claiming, lets attempts in flight finish for a few seconds, and gives back what it still holds, so
nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from skycart.config import Settings
from skycart.errors import WebhookUrlRefused, database_unavailable
from skycart.events import repository, signing, targets
from skycart.events.models import Event, WebhookDelivery, WebhookEndpoint
from skycart.events.service import event_out, record
from skycart.events.webhooks import DELIVERED, FAILED, PENDING, signing_secrets
from skycart.platform.db import new_id, transaction, utcnow
from skycart.platform.sealing import Sealer
from skycart.platform.tenancy import Tenant

log = logging.getLogger("skycart.events")

JITTER = 0.2
CLAIM_SECONDS = 60
LOG_EVERY_SECONDS = 10.0
EXCERPT_BYTES = 1024
CONNECT_SECONDS, READ_SECONDS = 5.0, 10.0
# Per pass at most this many events dispatched and deliveries attempted; a pass that found fewer waits
# SKYCART_WEBHOOK_POLL_SECONDS for the next, so a steady trickle of events is handled in batches.
DISPATCH_BATCH = 500
BATCH = 100


def retry_delay(schedule: list[float], attempts: int, rng: random.Random | None = None) -> float:
    """Seconds from a failed attempt (the `attempts`-th) to the next, with jitter (SKYCART_WEBHOOK_RETRY_SECONDS)."""
    base = schedule[min(attempts, len(schedule)) - 1]
    return base * (1 + JITTER * (2 * (rng or random).random() - 1))


def ordering_key(event_id: str, event_type: str, data: dict[str, Any]) -> str:
    """What an event's deliveries queue behind: an order's events by the order, any other on its own."""
    order_id = data.get("id") if event_type.startswith(("order.", "preorder.")) else None
    return str(order_id) if order_id else event_id


def envelope(event: Event, airline_code: str) -> bytes:
    """The delivery's body, the same bytes on every attempt: the event as GET /v1/events shows it."""
    return orjson.dumps(event_out(event, airline_code).model_dump(mode="json"))


@dataclass(slots=True)
class Claimed:
    delivery_id: str
    event_id: str
    url: str
    secrets: list[str]
    body: bytes


@dataclass(slots=True)
class Outcome:
    status_code: int | None
    latency_ms: int
    excerpt: str
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def dispatch(sessions: async_sessionmaker[AsyncSession], now: datetime | None = None) -> int:
    """Turn recorded events into deliveries; how many events were dispatched. An event of an airline
    without a subscribed endpoint costs its share of one UPDATE."""
    async with transaction(sessions) as session:
        found = await repository.undispatched_of_all_airlines(session, DISPATCH_BATCH)
        if not found:
            return 0
        endpoints = await repository.enabled_endpoints_of_all_airlines(session, sorted({a for _i, a, _t in found}))
        owed = [
            (event_id, airline_id, event_type, endpoint_id)
            for event_id, airline_id, event_type in found
            for endpoint_id, owner, types in endpoints
            if owner == airline_id and event_type in types
        ]
        if owed:
            data = await repository.event_data_of_all_airlines(session, sorted({o[0] for o in owed}))
            made = now or utcnow()
            await repository.add_deliveries_of_all_airlines(
                session,
                [
                    {
                        "id": new_id(),
                        "airline_id": airline_id,
                        "endpoint_id": endpoint_id,
                        "event_id": event_id,
                        "event_type": event_type,
                        "ordering_key": ordering_key(event_id, event_type, data[event_id]),
                        "status": PENDING,
                        "attempts": 0,
                        "next_attempt_at": made,
                        "claimed_until": None,
                        "last_status_code": None,
                        "last_error": None,
                        "created_at": made,
                        "delivered_at": None,
                    }
                    for event_id, airline_id, event_type, endpoint_id in owed
                ],
            )
        await repository.mark_dispatched_of_all_airlines(session, [event_id for event_id, _a, _t in found])
    return len(found)


async def claim(
    sessions: async_sessionmaker[AsyncSession], sealer: Sealer, now: datetime | None = None, limit: int = BATCH
) -> list[Claimed]:
    """The due deliveries this process now holds, ready to post."""
    now = now or utcnow()
    async with transaction(sessions) as session:
        due = await repository.due_of_all_airlines(session, now, limit)
        if not due:
            return []
        await repository.hold_of_all_airlines(session, [d[0] for d in due], now + timedelta(seconds=CLAIM_SECONDS))
        endpoints = await repository.endpoints_by_id_of_all_airlines(session, sorted({d[1] for d in due}))
        found = await repository.events_by_id_of_all_airlines(session, sorted({d[2] for d in due}))
        secrets = {endpoint_id: signing_secrets(row, sealer, now) for endpoint_id, row in endpoints.items()}
        bodies = {event_id: envelope(event, code) for event_id, (event, code) in found.items()}
        return [
            Claimed(delivery_id, event_id, endpoints[endpoint_id].url, secrets[endpoint_id], bodies[event_id])
            for delivery_id, endpoint_id, event_id in due
        ]


def _pinned(url: str, address: str) -> str:
    """The URL with its host replaced by the address the guard checked (the Host header keeps the name)."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


async def check(urls: set[str], settings: Settings) -> dict[str, targets.Target | WebhookUrlRefused]:
    """The guard again, once per URL of a pass, just before posting: a name may resolve elsewhere now."""
    checked: dict[str, targets.Target | WebhookUrlRefused] = {}
    for url in urls:
        try:
            checked[url] = await targets.resolve(url, settings)
        except WebhookUrlRefused as refused:
            checked[url] = refused
    return checked


async def post(client: httpx.AsyncClient, claimed: Claimed, target: targets.Target | WebhookUrlRefused) -> Outcome:
    """One attempt: the signed POST to the address the guard checked."""
    if isinstance(target, WebhookUrlRefused):
        return Outcome(None, 0, "", f"refused: {target.detail}"[:200])
    started = time.perf_counter()
    headers = signing.headers(claimed.secrets, claimed.event_id, int(time.time()), claimed.body)
    headers["content-type"] = "application/json"
    headers["host"] = urlsplit(claimed.url).netloc.rsplit("@", 1)[-1]
    extensions: dict[str, Any] = {"sni_hostname": target.host} if claimed.url.startswith("https") else {}
    try:
        async with client.stream(
            "POST", _pinned(claimed.url, target.address), content=claimed.body, headers=headers, extensions=extensions
        ) as answer:
            excerpt = b""
            async for chunk in answer.aiter_bytes():
                excerpt += chunk
                if len(excerpt) >= EXCERPT_BYTES:
                    break
        latency = int((time.perf_counter() - started) * 1000)
        text = excerpt[:EXCERPT_BYTES].decode("utf-8", errors="replace")
        return Outcome(answer.status_code, latency, text, None)
    except httpx.HTTPError as exc:
        latency = int((time.perf_counter() - started) * 1000)
        return Outcome(None, latency, "", f"{type(exc).__name__}: {exc}"[:200])


async def settle(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    attempts: list[tuple[Claimed, Outcome]],
    now: datetime | None = None,
) -> list[str]:
    """Record a pass's attempts and what follows from each, in one transaction; each delivery's status now
    ("gone" for one whose endpoint was deleted meanwhile)."""
    now = now or utcnow()
    async with transaction(sessions) as session:
        rows = await repository.deliveries_by_id_of_all_airlines(session, [c.delivery_id for c, _o in attempts])
        endpoints = await repository.endpoints_by_id_of_all_airlines(
            session, sorted({row.endpoint_id for row in rows.values()})
        )
        kept, statuses = [], []
        for claimed, outcome in attempts:
            row = rows.get(claimed.delivery_id)
            if row is None:
                statuses.append("gone")
                continue
            kept.append(
                {
                    "id": new_id(),
                    "airline_id": row.airline_id,
                    "delivery_id": row.id,
                    "attempted_at": now,
                    "status_code": outcome.status_code,
                    "latency_ms": outcome.latency_ms,
                    "response_excerpt": outcome.excerpt,
                    "error": outcome.error,
                }
            )
            statuses.append(await _follow(session, settings, row, endpoints.get(row.endpoint_id), outcome, now))
        await repository.add_attempts_of_all_airlines(session, kept)
        return statuses


async def _follow(
    session: AsyncSession,
    settings: Settings,
    row: WebhookDelivery,
    endpoint: WebhookEndpoint | None,
    outcome: Outcome,
    now: datetime,
) -> str:
    """What an attempt's outcome makes of its delivery, and of its endpoint's health."""
    row.attempts += 1
    row.last_status_code, row.last_error, row.claimed_until = outcome.status_code, outcome.error, None
    if outcome.delivered:
        row.status, row.delivered_at = DELIVERED, now
        if endpoint is not None:
            endpoint.failing_since = None
        return row.status
    wait = timedelta(seconds=retry_delay(settings.webhook_retry_seconds, row.attempts))
    if now + wait > row.created_at + timedelta(seconds=settings.webhook_give_up_seconds):
        row.status = FAILED
    else:
        row.next_attempt_at = now + wait
    if endpoint is not None:
        endpoint.failing_since = endpoint.failing_since or now
        failing = now - endpoint.failing_since
        if endpoint.enabled and failing >= timedelta(seconds=settings.webhook_disable_after_seconds):
            endpoint.enabled = False
            endpoint.disabled_reason = f"every delivery failed for {int(failing.total_seconds())} s"
            tenant = Tenant(endpoint.airline_id, "")  # recording needs only the id
            data = {"webhook_id": endpoint.id, "url": endpoint.url, "failing_since": now.isoformat()}
            await record(session, tenant, "webhook.disabled", data, now=now)
            log.warning("webhook_disabled", extra={"webhook_id": endpoint.id})
    return row.status


class DeliveryWorker:
    """This process's delivery loop (started and stopped by skycart.lifecycle)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        sealer: Sealer,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.sealer = sealer
        self.poll_seconds = settings.webhook_poll_seconds
        self.outcomes: Counter[str] = Counter()
        self.lag_seconds = 0.0
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(READ_SECONDS, connect=CONNECT_SECONDS),
            follow_redirects=False,
            headers={"user-agent": "SkyCart-Webhooks/1"},
        )
        self._stopping = asyncio.Event()
        self._holding: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._lag_measured: datetime | None = None
        self._quiet_until = 0.0  # while the database is away, one log line per LOG_EVERY_SECONDS

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stopping.is_set():
            more = False
            try:
                more = await self.run_once()
            except Exception as exc:  # the database is away, say: the next pass tries again
                if not database_unavailable(exc):
                    log.exception("webhook_delivery_pass_failed")
                elif time.monotonic() >= self._quiet_until:
                    self._quiet_until = time.monotonic() + LOG_EVERY_SECONDS
                    log.warning("webhook_delivery_waiting_for_database", extra={"error": type(exc).__name__})
            if not more:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.poll_seconds)

    async def run_once(self) -> bool:
        """One pass: dispatch, claim, post, settle. Whether it left work waiting (a full batch)."""
        dispatched = await dispatch(self.sessions)
        if self._stopping.is_set():
            return False
        claimed = await claim(self.sessions, self.sealer)
        if claimed:
            self._holding.update(c.delivery_id for c in claimed)
            checked = await check({c.url for c in claimed}, self.settings)
            outcomes = await asyncio.gather(*(post(self._client, c, checked[c.url]) for c in claimed))
            # If the database is away now, the claims run out and the attempts are made again.
            statuses = await settle(self.sessions, self.settings, list(zip(claimed, outcomes, strict=True)))
            self._holding.difference_update(c.delivery_id for c in claimed)
            self.outcomes.update(status if status != PENDING else "retried" for status in statuses)
        await self._measure_lag()
        return dispatched >= DISPATCH_BATCH or len(claimed) >= BATCH

    async def _measure_lag(self) -> None:
        now = utcnow()
        if self._lag_measured is not None and (now - self._lag_measured).total_seconds() < 1:
            return
        self._lag_measured = now
        async with transaction(self.sessions, write=False) as session:
            oldest = await repository.oldest_due_of_all_airlines(session, now)
        self.lag_seconds = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())

    async def stop(self, grace_seconds: float = 8.0) -> None:
        """Stop claiming; attempts in flight finish within the grace, or are given back for another process."""
        self._stopping.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=grace_seconds)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        if self._holding:
            held = sorted(self._holding)
            with contextlib.suppress(Exception):  # if the database is away, the claims simply run out
                async with transaction(self.sessions) as session:
                    await repository.release_of_all_airlines(session, held)
                log.info("webhook_deliveries_released", extra={"deliveries": len(held)})
        await self._client.aclose()


class DeliveryCollector(Collector):
    """Prometheus: this process's delivery attempts by outcome, and how late the most overdue delivery is."""

    def __init__(self, worker: DeliveryWorker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Any]:
        attempts = CounterMetricFamily(
            "skycart_webhook_attempts", "Webhook delivery attempts by what followed", labels=["outcome"]
        )
        for outcome in (DELIVERED, "retried", FAILED, "gone"):
            attempts.add_metric([outcome], self.worker.outcomes[outcome])
        yield attempts
        yield GaugeMetricFamily(
            "skycart_webhook_delivery_lag_seconds",
            "How long the longest-waiting due delivery has waited (at the worker's last pass)",
            value=self.worker.lag_seconds,
        )
