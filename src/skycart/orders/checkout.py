"""Placing an order exactly once per Idempotency-Key.

The key is claimed in its own short transaction; the order and the stored answer are then
written in one transaction, so a repeat gets the first answer and never a second order.

After an infrastructure failure a key settles by itself:
- the request owning a key gives up after `SKYCART_IDEMPOTENCY_LOCK_SECONDS`, so a key is never held
  longer than that, and any later try may take it over;
- a request that failed before its order committed releases the key; when the database is away, the
  release is retried in the background until it lands, so the key is free as soon as the database is back;
- when the commit's outcome is unknown (the connection broke during COMMIT), the next try settles it:
  the stored answer is written in the same transaction as the order, so a committed order is replayed
  and an uncommitted one is placed again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta

import orjson
from sqlalchemy.exc import IntegrityError

from skycart.errors import (
    DomainError,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    PaymentDeclined,
    ServiceUnavailable,
    database_unavailable,
    problem_body,
)
from skycart.orders import repository, service
from skycart.orders.models import IdempotencyRecord
from skycart.orders.schemas import OrderCreate
from skycart.platform.db import is_retryable, transaction, utcnow
from skycart.platform.runtime import Runtime
from skycart.platform.tenancy import Tenant

_ATTEMPTS = 4
log = logging.getLogger("skycart.orders")


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status: int
    body: bytes
    replayed: bool


def request_hash(data: OrderCreate) -> str:
    return hashlib.sha256(orjson.dumps(data.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)).hexdigest()


async def _claim(runtime: Runtime, tenant: Tenant, key: str, digest: str) -> StoredAnswer | None:
    """None when this request now owns the key; else the answer to give instead."""
    now = utcnow()
    try:
        async with transaction(runtime.sessions) as session:
            await repository.add_all(
                session,
                [
                    IdempotencyRecord(
                        airline_id=tenant.id,
                        key=key,
                        request_hash=digest,
                        state="in_progress",
                        locked_at=now,
                        created_at=now,
                    )
                ],
            )
        return None
    except IntegrityError:
        pass
    async with transaction(runtime.sessions) as session:
        record = await repository.idempotency_record(session, tenant, key)
        if record is None:  # released between our insert and this read: try once more
            raise IdempotencyInProgress("a request with this Idempotency-Key just finished; retry")
        if record.request_hash != digest:
            raise IdempotencyKeyReused("this Idempotency-Key was used with a different request body")
        if record.state == "done":
            return StoredAnswer(record.response_status or 200, (record.response_body or "").encode(), replayed=True)
        stale_before = now - timedelta(seconds=runtime.settings.idempotency_lock_seconds)
        if await repository.take_over_stale(session, tenant, key, stale_before=stale_before, now=now):
            return None
    raise IdempotencyInProgress(
        "a request with this Idempotency-Key is still being processed", headers={"Retry-After": "1"}
    )


async def _finish(runtime: Runtime, tenant: Tenant, key: str, status: int, body: bytes) -> None:
    async with transaction(runtime.sessions) as session:
        await repository.finish_idempotency(session, tenant, key, status=status, body=body.decode())


async def _release(runtime: Runtime, tenant: Tenant, key: str) -> None:
    async with transaction(runtime.sessions) as session:
        await repository.release_idempotency(session, tenant, key)


async def _release_until_done(runtime: Runtime, tenant: Tenant, key: str) -> None:
    """Release the key, retrying while the database is away; the key is also takeable after the lock time."""
    give_up = asyncio.get_running_loop().time() + runtime.settings.idempotency_lock_seconds
    delay = 0.1
    while True:
        try:
            await _release(runtime, tenant, key)
            return
        except Exception as exc:
            if not database_unavailable(exc) or asyncio.get_running_loop().time() + delay > give_up:
                log.warning("idempotency_release_abandoned", extra={"key_hash": _digest(key)})
                return
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


# Background releases in flight: referenced here so none is collected before it lands.
_releasing: set[asyncio.Task[None]] = set()


async def _free(runtime: Runtime, tenant: Tenant, key: str) -> None:
    try:
        await _release(runtime, tenant, key)
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        task = asyncio.ensure_future(_release_until_done(runtime, tenant, key))
        _releasing.add(task)
        task.add_done_callback(_releasing.discard)


async def place_order_once(runtime: Runtime, *, tenant: Tenant, key: str, data: OrderCreate) -> StoredAnswer:
    """Place the order for this key, or replay the answer the key already has."""
    stored = await _claim(runtime, tenant, key, request_hash(data))
    if stored is not None:
        return stored
    try:
        # The key is ours for at most the lock time: past it another try may take it over.
        async with asyncio.timeout(runtime.settings.idempotency_lock_seconds):
            return await _place(runtime, tenant=tenant, key=key, data=data)
    except DomainError as exc:
        # A final business answer (declined, out of stock, ...) is the key's answer from now on.
        body = orjson.dumps(problem_body(exc.status, exc.code, exc.title, exc.detail, **exc.extra))
        await _finish(runtime, tenant, key, exc.status, body)
        raise
    except TimeoutError as exc:
        await asyncio.shield(_free(runtime, tenant, key))
        raise ServiceUnavailable(
            "the order could not be placed in time; retry with the same Idempotency-Key",
            headers={"Retry-After": "1"},
        ) from exc
    except BaseException:
        await asyncio.shield(_free(runtime, tenant, key))
        raise


async def _place(runtime: Runtime, *, tenant: Tenant, key: str, data: OrderCreate) -> StoredAnswer:
    """Check and price (reading), authorize the payment (no transaction open), then take the stock and
    record the order with its stored answer in one transaction, retried after a deadlock or lock timeout.

    No stock row is locked while the provider answers: other buyers of the same items are never kept
    waiting for someone else's payment. Whatever keeps the order from committing voids the payment.
    """
    async with transaction(runtime.sessions, write=False) as session:
        priced = await service.price_order(session, tenant=tenant, data=data)
    auth = await runtime.payments.authorize(
        amount_minor=priced.total_minor, currency=data.currency, token=data.payment.token, reference=priced.order_id
    )
    if auth.status == "declined":
        raise PaymentDeclined(f"payment declined: {auth.reason}")
    try:
        for attempt in range(_ATTEMPTS):
            try:
                async with transaction(runtime.sessions) as session:
                    order = await service.place_order(
                        session, tenant=tenant, data=data, priced=priced, auth=auth, provider=runtime.payments.name
                    )
                    body = orjson.dumps(order.model_dump(mode="json"))
                    await repository.finish_idempotency(session, tenant, key, status=201, body=body.decode())
                return StoredAnswer(201, body, replayed=False)
            except BaseException as exc:
                if not is_retryable(exc) or attempt == _ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.01 * 2**attempt)
    except BaseException:
        # Charged, but the order did not commit (out of stock meanwhile, a failure, a timeout).
        await asyncio.shield(runtime.payments.void(payment_reference=auth.reference))
        raise
    raise AssertionError("unreachable")
