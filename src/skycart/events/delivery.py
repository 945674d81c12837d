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
from skycart.errors import WebhookUrlRefused
from skycart.events import repository, signing, targets
from skycart.events.models import Event, WebhookAttempt, WebhookDelivery
from skycart.events.service import event_out, record
from skycart.events.webhooks import DELIVERED, FAILED, PENDING, signing_secrets
from skycart.platform.db import new_id, transaction, utcnow
from skycart.platform.sealing import Sealer
from skycart.platform.tenancy import Tenant

log = logging.getLogger("skycart.events")

JITTER = 0.2
CLAIM_SECONDS = 60
EXCERPT_BYTES = 1024
CONNECT_SECONDS, READ_SECONDS = 5.0, 10.0
BATCH = 50


def retry_delay(schedule: list[float], attempts: int, rng: random.Random | None = None) -> float:
    """Seconds from a failed attempt (the `attempts`-th) to the next, with jitter (SKYCART_WEBHOOK_RETRY_SECONDS)."""
    base = schedule[min(attempts, len(schedule)) - 1]
    return base * (1 + JITTER * (2 * (rng or random).random() - 1))


def ordering_key(event: Event) -> str:
    """What an event's deliveries queue behind: an order's events by the order, any other on its own."""
    order_id = event.data.get("id") if event.type.startswith(("order.", "preorder.")) else None
    return str(order_id) if order_id else event.id


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
    """Turn recorded events into deliveries; how many events were dispatched."""
    async with transaction(sessions) as session:
        found = await repository.undispatched_of_all_airlines(session, 200)
        if not found:
            return 0
        endpoints = await repository.enabled_endpoints_of_all_airlines(
            session, sorted({event.airline_id for event in found})
        )
        made = now or utcnow()
        for event in found:
            for endpoint in endpoints:
                if endpoint.airline_id == event.airline_id and event.type in endpoint.event_types:
                    session.add(
                        WebhookDelivery(
                            airline_id=event.airline_id,
                            endpoint_id=endpoint.id,
                            event_id=event.id,
                            event_type=event.type,
                            ordering_key=ordering_key(event),
                            status=PENDING,
                            attempts=0,
                            next_attempt_at=made,
                            created_at=made,
                        )
                    )
        await repository.mark_dispatched_of_all_airlines(session, [event.id for event in found])
    return len(found)


async def claim(
    sessions: async_sessionmaker[AsyncSession], sealer: Sealer, now: datetime | None = None, limit: int = BATCH
) -> list[Claimed]:
    """The due deliveries this process now holds, ready to post."""
    now = now or utcnow()
    async with transaction(sessions) as session:
        rows = await repository.due_of_all_airlines(session, now, limit)
        if not rows:
            return []
        endpoints = await repository.endpoints_by_id_of_all_airlines(session, sorted({r.endpoint_id for r in rows}))
        found = await repository.events_by_id_of_all_airlines(session, sorted({r.event_id for r in rows}))
        claimed = []
        for row in rows:
            row.claimed_until = now + timedelta(seconds=CLAIM_SECONDS)
            endpoint = endpoints[row.endpoint_id]
            event, airline_code = found[row.event_id]
            claimed.append(
                Claimed(
                    row.id,
                    event.id,
                    endpoint.url,
                    signing_secrets(endpoint, sealer, now),
                    envelope(event, airline_code),
                )
            )
    return claimed


def _pinned(url: str, address: str) -> str:
    """The URL with its host replaced by the address the guard checked (the Host header keeps the name)."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


async def post(client: httpx.AsyncClient, claimed: Claimed, settings: Settings) -> Outcome:
    """One attempt: the guard again (a name may resolve elsewhere now), then the signed POST."""
    started = time.perf_counter()
    try:
        target = await targets.resolve(claimed.url, settings)
    except WebhookUrlRefused as refused:
        return Outcome(None, 0, "", f"refused: {refused.detail}"[:200])
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
    claimed: Claimed,
    outcome: Outcome,
    now: datetime | None = None,
) -> str:
    """Record the attempt and what follows from it; the delivery's status now."""
    now = now or utcnow()
    async with transaction(sessions) as session:
        row = await repository.delivery_of_all_airlines(session, claimed.delivery_id)
        if row is None:  # its endpoint was deleted meanwhile
            return "gone"
        session.add(
            WebhookAttempt(
                id=new_id(),
                airline_id=row.airline_id,
                delivery_id=row.id,
                attempted_at=now,
                status_code=outcome.status_code,
                latency_ms=outcome.latency_ms,
                response_excerpt=outcome.excerpt,
                error=outcome.error,
            )
        )
        row.attempts += 1
        row.last_status_code, row.last_error, row.claimed_until = outcome.status_code, outcome.error, None
        endpoints = await repository.endpoints_by_id_of_all_airlines(session, [row.endpoint_id])
        endpoint = endpoints.get(row.endpoint_id)
        if outcome.delivered:
            row.status, row.delivered_at = DELIVERED, now
            if endpoint is not None:
                endpoint.failing_since = None
        else:
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
        *,
        transport: httpx.AsyncBaseTransport | None = None,
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
            transport=transport,
            headers={"user-agent": "SkyCart-Webhooks/1"},
        )
        self._stopping = asyncio.Event()
        self._holding: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stopping.is_set():
            busy = False
            try:
                busy = await self.run_once() > 0
            except Exception:  # the database is away, say: the next pass tries again
                log.exception("webhook_delivery_pass_failed")
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.poll_seconds)

    async def run_once(self) -> int:
        """One pass: dispatch, claim, post, settle. How many events and attempts it handled."""
        dispatched = await dispatch(self.sessions)
        if self._stopping.is_set():
            return dispatched
        claimed = await claim(self.sessions, self.sealer)
        self._holding.update(c.delivery_id for c in claimed)
        for failed in await asyncio.gather(*(self._attempt(c) for c in claimed), return_exceptions=True):
            if isinstance(failed, BaseException):  # its claim runs out, and the attempt is made again
                log.warning("webhook_attempt_not_settled", extra={"error": type(failed).__name__})
        await self._measure_lag()
        return dispatched + len(claimed)

    async def _attempt(self, claimed: Claimed) -> None:
        outcome = await post(self._client, claimed, self.settings)
        status = await settle(self.sessions, self.settings, claimed, outcome)
        self._holding.discard(claimed.delivery_id)
        self.outcomes[status if status != PENDING else "retried"] += 1

    async def _measure_lag(self) -> None:
        now = utcnow()
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
