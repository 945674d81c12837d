"""Moves aggregated usage to the sink every few seconds and at shutdown, never on the request path.

A batch keeps its flush id until the sink has it, so a retry after a lost acknowledgement is a
no-op. While the sink is down, batches wait in memory up to a bound; past it the oldest are
dropped, counted and logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from skycart.metering.aggregate import REQUESTS, Batch, UsageAggregator
from skycart.metering.sink import UsageSink

log = logging.getLogger("skycart.metering")


def process_name() -> str:
    return f"{socket.gethostname()[:30]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class Flusher:
    aggregator: UsageAggregator
    sink: UsageSink
    interval: float
    max_pending_rows: int
    process: str = field(default_factory=process_name)
    on_batch: Callable[[Batch], None] | None = None
    pending: list[tuple[str, Batch]] = field(default_factory=list)
    failed_attempts: int = 0
    dropped_requests: int = 0
    _sequence: int = 0
    _task: asyncio.Task | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def _next_id(self) -> str:
        self._sequence += 1
        return f"{self.process}-{self._sequence}"

    async def flush(self) -> None:
        """Take what was counted and write every waiting batch, oldest first."""
        async with self._lock:
            batch = self.aggregator.take()
            if batch:
                self.pending.append((self._next_id(), batch))
                if self.on_batch:
                    self.on_batch(batch)
            while self.pending:
                flush_id, waiting = self.pending[0]
                try:
                    await self.sink.write(flush_id, waiting)
                except Exception as exc:  # the sink is down: keep the batch and retry next time
                    self.failed_attempts += 1
                    log.warning("metering_flush_failed", extra={"flush_id": flush_id, "error": repr(exc)[:300]})
                    break
                self.pending.pop(0)
            self._bound_pending()

    def _bound_pending(self) -> None:
        rows = sum(len(b) for _, b in self.pending)
        while rows > self.max_pending_rows and len(self.pending) > 1:
            flush_id, dropped = self.pending.pop(0)
            rows -= len(dropped)
            lost = sum(row[REQUESTS] for row in dropped.values())
            self.dropped_requests += lost
            log.error("metering_batch_dropped", extra={"flush_id": flush_id, "requests": lost, "rows": len(dropped)})

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception:  # never let the loop die
                log.exception("metering_flush_loop_error")

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="metering-flusher")

    async def stop(self, *, attempts: int = 3) -> None:
        """Final flush at graceful shutdown; a few retries if the sink hiccups."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for attempt in range(attempts):
            await self.flush()
            if not self.pending:
                return
            await asyncio.sleep(0.2 * (attempt + 1))
        lost = sum(row[REQUESTS] for _, batch in self.pending for row in batch.values())
        log.error("metering_unflushed_at_shutdown", extra={"requests": lost})
