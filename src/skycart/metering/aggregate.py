"""In-process usage aggregation: the only metering work on the request path.

Each request adds to one counter row keyed by (minute, airline, route template, method,
status class). The flusher takes the whole table at once (a dict swap) and writes it.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from skycart.metering.models import BUCKET_COLUMNS, LATENCY_BUCKETS_MS

# Counter positions in a row.
REQUESTS, ERRORS, BILLABLE, BYTES_IN, BYTES_OUT, LATENCY_US = range(6)
FIRST_BUCKET = 6
ROW_WIDTH = FIRST_BUCKET + len(BUCKET_COLUMNS)
STATUS_CLASSES = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")

UsageKey = tuple[int, str, str, str, str]  # (epoch minute, airline, route, method, status class)
Batch = dict[UsageKey, list[int]]


def status_class(status: int) -> str:
    return STATUS_CLASSES[min(max(status // 100, 1), 5)]


# Looked up per request, so computed once: the class of every valid status, and bucket bounds in µs.
_CLASS_OF = {status: status_class(status) for status in range(100, 600)}
_BOUNDS_US = [ms * 1000 for ms in LATENCY_BUCKETS_MS]
_FIRST_BOUND_US = _BOUNDS_US[0]


def merge_into(target: dict, source: Iterable[tuple[object, list[int]]]) -> None:
    for key, row in source:
        existing = target.get(key)
        if existing is None:
            target[key] = list(row)
        else:
            for i, value in enumerate(row):
                existing[i] += value


@dataclass
class UsageAggregator:
    """Per-process usage counters for the current flush interval."""

    current: Batch = field(default_factory=dict)
    # Since start-up, per (airline, route, method, status class): what /metrics exports.
    totals: dict[tuple[str, str, str, str], list[int]] = field(default_factory=dict)
    # The rows of `current` for this minute by (airline, route, method, status): found with one
    # lookup and no clock arithmetic; forgotten when the minute ends or the flusher takes `current`.
    _rows: dict[tuple[str, str, str, int], list[int]] = field(default_factory=dict)
    _rows_until: float = 0.0
    clock: Callable[[], float] = time.time

    def _row(self, airline: str, route: str, method: str, status: int, now: float) -> list[int]:
        if now >= self._rows_until:
            self._rows = {}
            self._rows_until = (now // 60 + 1) * 60
        key = (int(now) // 60, airline, route, method, _CLASS_OF.get(status) or status_class(status))
        row = self.current.get(key)
        if row is None:
            row = self.current[key] = [0] * ROW_WIDTH
        self._rows[(airline, route, method, status)] = row
        return row

    def record(
        self,
        airline: str,
        route: str,
        method: str,
        status: int,
        seconds: float,
        bytes_in: int,
        bytes_out: int,
        billable: bool,
    ) -> None:
        now = self.clock()
        row = self._rows.get((airline, route, method, status)) if now < self._rows_until else None
        if row is None:
            row = self._row(airline, route, method, status, now)
        row[REQUESTS] += 1
        if status >= 400:
            row[ERRORS] += 1
        if billable:
            row[BILLABLE] += 1
        if bytes_in:
            row[BYTES_IN] += bytes_in
        row[BYTES_OUT] += bytes_out
        micros = int(seconds * 1_000_000)
        row[LATENCY_US] += micros
        row[FIRST_BUCKET if micros <= _FIRST_BOUND_US else FIRST_BUCKET + bisect_left(_BOUNDS_US, micros)] += 1

    def take(self) -> Batch:
        """Hand over everything counted so far and start afresh (atomic within the event loop)."""
        batch, self.current = self.current, {}
        self._rows, self._rows_until = {}, 0.0
        merge_into(self.totals, (((a, r, m, s), row) for (_w, a, r, m, s), row in batch.items()))
        return batch

    def live_totals(self) -> dict[tuple[str, str, str, str], list[int]]:
        """Totals since start-up including the interval not flushed yet."""
        totals = {key: list(row) for key, row in self.totals.items()}
        merge_into(totals, (((a, r, m, s), row) for (_w, a, r, m, s), row in list(self.current.items())))
        return totals
