"""Placing an order exactly once per Idempotency-Key.

The key is claimed in its own short transaction; the order and the stored answer are then
written in one transaction, so a repeat gets the first answer and never a second order.

After an infrastructure failure a key settles by itself:
- the request owning a key gives up after `SKYCART_IDEMPOTENCY_LOCK_SECONDS`, so a key is never held
  longer than that, and any later try may take it over;
- a request that failed before its order committed releases the key; when the database is away, the
  release is retried in the background until it lands, so the key is free as soon as the database is back;
- when the commit's outcome is unknown (the connection broke during COMMIT), the request asks the database
  whether its order row exists, and answers 201 or 503 by it; when the database cannot answer, the next
  try settles it (a committed order is replayed, since the stored answer is written in the order's own
  transaction; an uncommitted one is placed again), and a background task voids the payment of an order
  that did not commit. A payment is voided only once its order is known not to have committed;
- every claim carries its `locked_at` as a token: a late release or answer of a request whose key was taken
  over never touches the later try's claim.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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
# How long a background task keeps asking an unreachable database whether an order committed, so that an
# uncommitted order's payment is voided; past it the payment is left to the provider's authorization expiry.
SETTLE_GIVE_UP_SECONDS = 600.0
log = logging.getLogger("skycart.orders")


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status: int
    body: bytes
    replayed: bool


def request_hash(data: OrderCreate) -> str:
    return hashlib.sha256(orjson.dumps(data.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class Claim:
    """This request's hold on a key; `locked_at` tells it apart from a later try that took the key over."""

    tenant: Tenant
    key: str
    locked_at: datetime


async def _claim(runtime: Runtime, tenant: Tenant, key: str, digest: str) -> Claim | StoredAnswer:
    """The key's claim when this request now owns it; else the answer to give instead."""
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
        return Claim(tenant, key, now)
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
            return Claim(tenant, key, now)
    raise IdempotencyInProgress(
        "a request with this Idempotency-Key is still being processed", headers={"Retry-After": "1"}
    )


class KeyTakenOver(IdempotencyInProgress):
    """Another try took the key over while this one was still placing its order; this one is undone."""


async def _finish(runtime: Runtime, claim: Claim, status: int, body: bytes) -> None:
    async with transaction(runtime.sessions) as session:
        await repository.finish_idempotency(
            session, claim.tenant, claim.key, locked_at=claim.locked_at, status=status, body=body.decode()
        )


async def _release(runtime: Runtime, claim: Claim) -> None:
    async with transaction(runtime.sessions) as session:
        await repository.release_idempotency(session, claim.tenant, claim.key, locked_at=claim.locked_at)


async def _until_reachable(runtime: Runtime, claim: Claim, step: Callable[[], Awaitable[None]], give_up: float) -> None:
    """Run `step` until the database answers it, for at most `give_up` seconds."""
    loop = asyncio.get_running_loop()
    until = loop.time() + give_up
    delay = 0.1
    while True:
        try:
            await step()
            return
        except Exception as exc:
            if not database_unavailable(exc) or loop.time() + delay > until:
                log.warning("idempotency_settle_abandoned", extra={"key_hash": _digest(claim.key)})
                return
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


# Background settlements in flight: referenced here so none is collected before it lands.
_settling: set[asyncio.Task[None]] = set()


def _in_background(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(work)
    _settling.add(task)
    task.add_done_callback(_settling.discard)


async def _free(runtime: Runtime, claim: Claim) -> None:
    """Release the key; while the database is away, keep trying in the background (the key is also
    takeable once the lock time has passed)."""
    try:
        await _release(runtime, claim)
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        _in_background(
            _until_reachable(
                runtime, claim, lambda: _release(runtime, claim), runtime.settings.idempotency_lock_seconds
            )
        )


@dataclass(frozen=True, slots=True)
class _Placing:
    """An order whose transaction was sent to the database: its id and the payment it holds."""

    order_id: str
    payment_reference: str
    body: bytes


class _OutcomeUnknown(Exception):
    def __init__(self, placing: _Placing) -> None:
        super().__init__("the database did not confirm the order's commit")
        self.placing = placing


async def _settle(runtime: Runtime, claim: Claim, placing: _Placing) -> bool:
    """Whether the order committed; if it did not, free the key and void its payment.

    The order row is the fact: it exists exactly when the order's transaction committed. The release comes
    first: if that transaction is still committing, its update of the key's row makes the release wait for
    it, so the read after sees its outcome (a committed key is `done` and not released).
    """
    async with transaction(runtime.sessions) as session:
        await repository.release_idempotency(session, claim.tenant, claim.key, locked_at=claim.locked_at)
        committed = await repository.get(session, claim.tenant, placing.order_id) is not None
    log.info("order_outcome_settled", extra={"order_id": placing.order_id, "committed": committed})
    if not committed:
        await _void(runtime, placing.payment_reference, placing.order_id)
    return committed


async def _settle_later(runtime: Runtime, claim: Claim, placing: _Placing) -> None:
    async def step() -> None:
        await _settle(runtime, claim, placing)

    await _until_reachable(runtime, claim, step, SETTLE_GIVE_UP_SECONDS)


async def _void(runtime: Runtime, payment_reference: str, order_id: str) -> None:
    await runtime.payments.void(payment_reference=payment_reference)
    log.info("payment_voided", extra={"order_id": order_id, "payment_reference": payment_reference})


async def place_order_once(runtime: Runtime, *, tenant: Tenant, key: str, data: OrderCreate) -> StoredAnswer:
    """Place the order for this key, or replay the answer the key already has."""
    claim = await _claim(runtime, tenant, key, request_hash(data))
    if isinstance(claim, StoredAnswer):
        return claim
    try:
        # The key is ours for at most the lock time: past it another try may take it over.
        async with asyncio.timeout(runtime.settings.idempotency_lock_seconds):
            return await _place(runtime, claim, data)
    except DomainError as exc:
        # A final business answer (declined, out of stock, ...) is the key's answer from now on.
        body = orjson.dumps(problem_body(exc.status, exc.code, exc.title, exc.detail, **exc.extra))
        await _finish(runtime, claim, exc.status, body)
        raise
    except _OutcomeUnknown as exc:
        # The commit may or may not have landed. Ask the database now; if it cannot answer, the next try
        # asks it again (a committed order is replayed, an uncommitted one placed again) and a background
        # task voids the payment once it knows the order did not commit.
        try:
            committed = await asyncio.shield(_settle(runtime, claim, exc.placing))
        except Exception as unreachable:
            if not database_unavailable(unreachable):
                raise
            _in_background(_settle_later(runtime, claim, exc.placing))
            raise ServiceUnavailable(
                "the database did not confirm the order; retry with the same Idempotency-Key: "
                "a placed order is replayed, one that was not is placed",
                headers={"Retry-After": "2"},
            ) from exc
        if committed:
            return StoredAnswer(201, exc.placing.body, replayed=False)
        raise ServiceUnavailable(
            "the order was not placed: the database was interrupted; retry with the same Idempotency-Key",
            headers={"Retry-After": "2"},
        ) from exc
    except TimeoutError as exc:
        await asyncio.shield(_free(runtime, claim))
        raise ServiceUnavailable(
            "the order could not be placed in time; retry with the same Idempotency-Key",
            headers={"Retry-After": "1"},
        ) from exc
    except BaseException:
        await asyncio.shield(_free(runtime, claim))
        raise


async def _place(runtime: Runtime, claim: Claim, data: OrderCreate) -> StoredAnswer:
    """Check and price (reading), authorize the payment (no transaction open), then take the stock and
    record the order with its stored answer in one transaction, retried after a deadlock or lock timeout.

    No stock row is locked while the provider answers: other buyers of the same items are never kept
    waiting for someone else's payment. Whatever keeps the order from committing voids the payment; when
    the database goes away mid-transaction, whether it committed is settled first (`_OutcomeUnknown`).
    """
    tenant = claim.tenant
    async with transaction(runtime.sessions, write=False) as session:
        priced = await service.price_order(session, tenant=tenant, data=data)
    auth = await runtime.payments.authorize(
        amount_minor=priced.total_minor, currency=data.currency, token=data.payment.token, reference=priced.order_id
    )
    if auth.status == "declined":
        raise PaymentDeclined(f"payment declined: {auth.reason}")
    placing = _Placing(priced.order_id, auth.reference, b"")
    try:
        for attempt in range(_ATTEMPTS):
            try:
                async with transaction(runtime.sessions) as session:
                    order = await service.place_order(
                        session, tenant=tenant, data=data, priced=priced, auth=auth, provider=runtime.payments.name
                    )
                    body = orjson.dumps(order.model_dump(mode="json"))
                    placing = _Placing(priced.order_id, auth.reference, body)
                    if not await repository.finish_idempotency(
                        session, tenant, claim.key, locked_at=claim.locked_at, status=201, body=body.decode()
                    ):
                        raise KeyTakenOver("a later try with this Idempotency-Key took it over; it answers for it")
                return StoredAnswer(201, body, replayed=False)
            except BaseException as exc:
                if not is_retryable(exc) or attempt == _ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.01 * 2**attempt)
    except BaseException as exc:
        if placing.body and isinstance(exc, asyncio.CancelledError):
            # Cut off (the deadline, a shutdown) with the commit perhaps sent: settle it in the background.
            _in_background(_settle_later(runtime, claim, placing))
            raise
        if placing.body and database_unavailable(exc):
            raise _OutcomeUnknown(placing) from exc
        # Charged, but the order did not commit (out of stock meanwhile, a failure, a timeout).
        await asyncio.shield(_void(runtime, auth.reference, priced.order_id))
        raise
    raise AssertionError("unreachable")
