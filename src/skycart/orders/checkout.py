"""Placing an order exactly once per Idempotency-Key.

The key is claimed in its own short transaction; the order and the stored answer are then
written in one transaction, so a repeat gets the first answer and never a second order.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import timedelta

import orjson
from sqlalchemy.exc import IntegrityError

from skycart.errors import DomainError, IdempotencyInProgress, IdempotencyKeyReused, problem_body
from skycart.orders import repository, service
from skycart.orders.models import IdempotencyRecord
from skycart.orders.schemas import OrderCreate
from skycart.platform.db import is_retryable, transaction, utcnow
from skycart.platform.runtime import Runtime
from skycart.platform.tenancy import Tenant

_ATTEMPTS = 4


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


async def place_order_once(runtime: Runtime, *, tenant: Tenant, key: str, data: OrderCreate) -> StoredAnswer:
    """Place the order for this key, or replay the answer the key already has."""
    stored = await _claim(runtime, tenant, key, request_hash(data))
    if stored is not None:
        return stored
    try:
        for attempt in range(_ATTEMPTS):
            authorized: list[str] = []
            try:
                async with transaction(runtime.sessions) as session:
                    order = await service.place_order(
                        session, tenant=tenant, data=data, payments=runtime.payments, authorized=authorized
                    )
                    body = orjson.dumps(order.model_dump(mode="json"))
                    await repository.finish_idempotency(session, tenant, key, status=201, body=body.decode())
                return StoredAnswer(201, body, replayed=False)
            except BaseException as exc:
                for reference in authorized:  # charged, but the order did not commit
                    await runtime.payments.void(payment_reference=reference)
                if not is_retryable(exc) or attempt == _ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.01 * 2**attempt)
    except DomainError as exc:
        # A final business answer (declined, out of stock, ...) is the key's answer from now on.
        body = orjson.dumps(problem_body(exc.status, exc.code, exc.title, exc.detail, **exc.extra))
        await _finish(runtime, tenant, key, exc.status, body)
        raise
    except BaseException:
        await asyncio.shield(_release(runtime, tenant, key))
        raise
    raise AssertionError("unreachable")
