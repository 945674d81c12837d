"""Placing an order exactly once per Idempotency-Key, in one transaction.

On MariaDB/MySQL the order's transaction, on one connection, is: the key's claim (its row, invisible and
its unique key locked until the commit), one read of the flight with the ordered products and their stock,
the payment's authorization (no row of any table locked meanwhile: plain reads under READ COMMITTED take
no locks), the conditional stock UPDATEs, the order with its lines, its `order.created` event (the
outbox row), the stored answer, COMMIT. A concurrent try with the same key waits on the claim and then
replays the stored answer, or after SKYCART_DATABASE_LOCK_WAIT_SECONDS is answered 409
`idempotency_in_progress`. Because the claim commits
only with the order, a key is never left claimed by a request that failed, timed out or died: its
transaction is rolled back, and the next try owns the key.

The connection (not a lock) is held while the provider answers: a worker serves as many payments at once
as its pool has connections (SKYCART_DATABASE_POOL_SIZE, twice over with overflow).

On SQLite a writer holds the whole database, so the reads and the payment come first, in a read
transaction of their own, and the order is written in a second one (BEGIN IMMEDIATE) that stores the
answer with it: a concurrent duplicate then finds the key taken when it writes, voids its payment and
replays the first answer.

When the connection breaks during COMMIT the outcome is unknown: the request asks the database whether its
order row exists and answers 201 or 503 by it; if the database cannot answer, the next try settles it (a
committed order is replayed, an uncommitted one placed again) and a background task voids the payment of
an order that did not commit. A payment is voided only once its order is known not to have committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import orjson

from skycart import events
from skycart.airlines.service import AirlineFacts
from skycart.errors import (
    DomainError,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    OutOfStock,
    PaymentDeclined,
    ServiceUnavailable,
    database_unavailable,
    problem_body,
)
from skycart.orders import placing, service
from skycart.orders.schemas import OrderCreate
from skycart.platform.db import WRITE_INTENT, is_lock_wait, utcnow
from skycart.platform.payments import Authorization
from skycart.platform.runtime import Runtime
from skycart.platform.statements import Statements, statements
from skycart.platform.tenancy import Tenant

log = logging.getLogger("skycart.orders")
# How long a background task keeps asking an unreachable database whether an order committed, so that an
# uncommitted order's payment is voided; past it the payment is left to the provider's authorization expiry.
SETTLE_GIVE_UP_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status: int
    body: bytes
    replayed: bool


def request_hash(data: OrderCreate) -> str:
    return hashlib.sha256(orjson.dumps(data.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)).hexdigest()


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _replay(record: placing.StoredRecord | None, digest: str) -> StoredAnswer:
    """The answer a key already has (or, with none visible, the in-progress refusal)."""
    if record is None or record.state != "done":
        raise IdempotencyInProgress(
            "a request with this Idempotency-Key is still being processed", headers={"Retry-After": "1"}
        )
    if record.request_hash != digest:
        raise IdempotencyKeyReused("this Idempotency-Key was used with a different request body")
    return StoredAnswer(record.status or 200, (record.body or "").encode(), replayed=True)


@dataclass
class _Attempt:
    """One try's state, for what its failure has to undo."""

    tenant: Tenant
    key: str
    digest: str
    order_id: str = ""
    payment: Authorization | None = None
    body: bytes = b""
    # Set once the transaction's first statement ran: a connection lost before that is tried again.
    started: bool = False
    committing: bool = False


class _StaleConnection(Exception):
    """The pooled connection was dead before the order's first statement ran: safe to try once more."""


# Background settlements in flight: referenced here so none is collected before it lands.
_settling: set[asyncio.Task[None]] = set()


def _in_background(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(work)
    _settling.add(task)
    task.add_done_callback(_settling.discard)


async def place_order_once(
    runtime: Runtime, *, tenant: Tenant, airline: AirlineFacts, key: str, data: OrderCreate
) -> StoredAnswer:
    """Place the order for this key, or replay the answer the key already has.

    No ping precedes the order (the pool recycles connections, and pings those idle for long): a
    connection found dead by the order's first statement is replaced and the order tried once more.
    """
    digest = request_hash(data)
    try:
        return await _place_once(runtime, _Attempt(tenant, key, digest), airline, data)
    except _StaleConnection:
        return await _place_once(runtime, _Attempt(tenant, key, digest), airline, data, last=True)


async def _place_once(
    runtime: Runtime, attempt: _Attempt, airline: AirlineFacts, data: OrderCreate, *, last: bool = False
) -> StoredAnswer:
    try:
        # The order's deadline: past it the transaction is rolled back and the key is free again.
        async with asyncio.timeout(runtime.settings.idempotency_lock_seconds):
            return await _checkout(runtime, attempt, airline, data)
    except DomainError as exc:
        if not isinstance(exc, IdempotencyInProgress | IdempotencyKeyReused):
            await _answer_for_good(runtime, attempt, exc)
        raise
    except TimeoutError as exc:
        raise ServiceUnavailable(
            "the order could not be placed in time; retry with the same Idempotency-Key",
            headers={"Retry-After": "1"},
        ) from exc
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        if not attempt.started and not last and getattr(exc, "connection_invalidated", False):
            raise _StaleConnection from exc
        if not attempt.committing:
            raise
        return await _unknown_outcome(runtime, attempt, exc)


async def _checkout(runtime: Runtime, attempt: _Attempt, airline: AirlineFacts, data: OrderCreate) -> StoredAnswer:
    one_transaction = not runtime.settings.is_sqlite
    tenant, now = attempt.tenant, utcnow()
    async with runtime.engine.connect() as conn, statements(conn) as db:
        try:
            if one_transaction:
                try:
                    claimed = await placing.claim(db, tenant, attempt.key, attempt.digest, now)
                except Exception as exc:
                    if is_lock_wait(exc):  # the key's first try is still running
                        return _replay(None, attempt.digest)
                    raise
                attempt.started = True
                if not claimed:
                    return _replay(await placing.stored_record(db, tenant, attempt.key), attempt.digest)
            else:
                found = await placing.stored_record(db, tenant, attempt.key)
                attempt.started = True
                if found is not None:
                    return _replay(found, attempt.digest)
            order = await _priced(db, tenant, airline, data, lock=False)
            if not one_transaction:
                await db.commit()  # the reads' snapshot ends; no lock is held while the provider answers
            attempt.order_id = order.order_id
            attempt.payment = await _authorize(runtime, order, data)
            # SQLite: this process's orders queue for the database's write lock here, in turn, instead of
            # retrying BEGIN IMMEDIATE in the driver's busy handler (whose sleeps made a 2 s p99).
            async with contextlib.nullcontext() if one_transaction else runtime.sqlite_writes:
                if not one_transaction:
                    await conn.execution_options(**{WRITE_INTENT: True})  # BEGIN IMMEDIATE
                if order.seat_limited:  # counted again under the flight's lock, now that it is held
                    order = await _priced(db, tenant, airline, data, lock=True, order_id=order.order_id)
                body = await _write(db, runtime, attempt, airline, order, data, claimed_here=one_transaction)
                if body is None:  # SQLite: a concurrent duplicate stored its answer first
                    await conn.rollback()
                    await _void(runtime, attempt)
                    return _replay(await placing.stored_record(db, tenant, attempt.key), attempt.digest)
                attempt.body, attempt.committing = body, True
                await db.commit()
            return StoredAnswer(201, body, replayed=False)
        except BaseException as exc:
            if attempt.committing:
                if isinstance(exc, asyncio.CancelledError):  # cut off with the commit perhaps sent
                    _in_background(_settle_later(runtime, attempt))
                raise
            await asyncio.shield(_void(runtime, attempt))  # the order did not commit
            raise


async def _priced(
    db: Statements,
    tenant: Tenant,
    airline: AirlineFacts,
    data: OrderCreate,
    *,
    lock: bool,
    order_id: str | None = None,
) -> service.CheckedOrder:
    quantities = service.quantities_of(data)
    flight, products = await placing.shop(db, tenant, data.flight_id, quantities)
    bought: list[tuple[list[str], int]] = []
    if flight is not None and service.limited_tags(quantities, products, airline):
        if lock:
            await placing.lock_flight(db, tenant, flight.id)
        bought = await placing.seat_lines(db, tenant, flight.id, data.seat, service.COUNTED_STATUSES)
    return service.check_order(data, airline, flight, products, quantities, bought, order_id=order_id)


async def _authorize(runtime: Runtime, order: service.CheckedOrder, data: OrderCreate) -> Authorization:
    auth = await runtime.payments.authorize(
        amount_minor=order.total_minor, currency=data.currency, token=data.payment.token, reference=order.order_id
    )
    if auth.status == "declined":
        raise PaymentDeclined(f"payment declined: {auth.reason}")
    return auth


async def _write(
    db: Statements,
    runtime: Runtime,
    attempt: _Attempt,
    airline: AirlineFacts,
    order: service.CheckedOrder,
    data: OrderCreate,
    *,
    claimed_here: bool,
) -> bytes | None:
    """Take the stock, record the order and its answer; the answer's bytes, or None when the key was taken."""
    assert attempt.payment is not None
    tenant = attempt.tenant
    # A fixed order of row locks keeps concurrent multi-item orders from deadlocking.
    for line in sorted(order.lines, key=lambda line: line.product_id):
        if not await placing.take_stock(db, tenant, data.flight_id, line.product_id, line.quantity):
            raise OutOfStock(f"not enough {line.sku} left on this flight", sku=line.sku)
    row, lines, out = service.order_rows(order, data, attempt.payment, runtime.payments.name, utcnow())
    await placing.insert_order(db, tenant, row, lines)
    answer = out.model_dump(mode="json")
    await events.record(db, tenant, "order.created", answer)
    if airline.stock_low_threshold is not None:
        await _record_low_stock(db, tenant, data.flight_id, order, airline.stock_low_threshold)
    body = orjson.dumps(answer)  # built once: the answer, and the key's stored answer
    if claimed_here:
        await placing.finish(db, tenant, attempt.key, 201, body.decode())
        return body
    if await placing.record_answer(db, tenant, attempt.key, attempt.digest, 201, body.decode(), utcnow()):
        return body
    return None


async def _record_low_stock(
    db: Statements, tenant: Tenant, flight_id: str, order: service.CheckedOrder, threshold: int
) -> None:
    """`stock.low` for each SKU this order took below the threshold. Read after the stock UPDATEs, under
    their row locks: exactly the order that crosses the threshold records it."""
    left = await placing.remaining(db, tenant, flight_id, [line.product_id for line in order.lines])
    for line in order.lines:
        after = left.get(line.product_id)
        if after is not None and after < threshold <= after + line.quantity:
            data = {"flight_id": flight_id, "sku": line.sku, "remaining": after, "threshold": threshold}
            await events.record(db, tenant, "stock.low", data)


async def _answer_for_good(runtime: Runtime, attempt: _Attempt, refusal: DomainError) -> None:
    """A business refusal (declined, out of stock, invalid) is the key's answer from now on."""
    body = orjson.dumps(problem_body(refusal.status, refusal.code, refusal.title, refusal.detail, **refusal.extra))
    try:
        async with runtime.engine.connect() as conn:
            await conn.execution_options(**{WRITE_INTENT: True})
            async with statements(conn) as db:
                await placing.record_answer(
                    db, attempt.tenant, attempt.key, attempt.digest, refusal.status, body.decode(), utcnow()
                )
                await db.commit()
    except Exception as exc:  # the refusal is answered all the same; a retry decides again
        extra = {"key_hash": _digest(attempt.key), "error": type(exc).__name__}
        log.warning("idempotency_answer_not_stored", extra=extra)


async def _unknown_outcome(runtime: Runtime, attempt: _Attempt, cause: BaseException) -> StoredAnswer:
    """The connection broke during COMMIT: ask the database whether the order row exists."""
    try:
        committed = await asyncio.shield(_settle(runtime, attempt))
    except Exception as unreachable:
        if not database_unavailable(unreachable):
            raise
        _in_background(_settle_later(runtime, attempt))
        raise ServiceUnavailable(
            "the database did not confirm the order; retry with the same Idempotency-Key: "
            "a placed order is replayed, one that was not is placed",
            headers={"Retry-After": "2"},
        ) from cause
    if committed:
        return StoredAnswer(201, attempt.body, replayed=False)
    raise ServiceUnavailable(
        "the order was not placed: the database was interrupted; retry with the same Idempotency-Key",
        headers={"Retry-After": "2"},
    ) from cause


async def _settle(runtime: Runtime, attempt: _Attempt) -> bool:
    """Whether the order committed; if it did not, void its payment. The order row is the fact."""
    async with runtime.engine.connect() as conn, statements(conn) as db:
        committed = await placing.order_exists(db, attempt.tenant, attempt.order_id)
    log.info("order_outcome_settled", extra={"order_id": attempt.order_id, "committed": committed})
    if not committed:
        await _void(runtime, attempt)
    return committed


async def _settle_later(runtime: Runtime, attempt: _Attempt) -> None:
    await _until_reachable(attempt, lambda: _settle(runtime, attempt), SETTLE_GIVE_UP_SECONDS)


async def _until_reachable(attempt: _Attempt, step: Callable[[], Awaitable[object]], give_up: float) -> None:
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
                log.warning("order_settle_abandoned", extra={"order_id": attempt.order_id})
                return
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


async def _void(runtime: Runtime, attempt: _Attempt) -> None:
    if attempt.payment is None:
        return
    payment, attempt.payment = attempt.payment, None
    await runtime.payments.void(payment_reference=payment.reference)
    log.info("payment_voided", extra={"order_id": attempt.order_id, "payment_reference": payment.reference})
