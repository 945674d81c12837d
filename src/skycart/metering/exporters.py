"""What leaves the process about usage besides the database: Prometheus text and CloudWatch EMF lines."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from skycart.metering.aggregate import (
    BILLABLE,
    BYTES_IN,
    BYTES_OUT,
    ERRORS,
    FIRST_BUCKET,
    LATENCY_US,
    REQUESTS,
    Batch,
    UsageAggregator,
)
from skycart.metering.models import LATENCY_BUCKETS_MS

emf_log = logging.getLogger("skycart.emf")
_BOUNDS_S = [str(ms / 1000) for ms in LATENCY_BUCKETS_MS] + ["+Inf"]


class UsageCollector(Collector):
    """Prometheus metrics built at scrape time from the aggregator: nothing extra on the request path."""

    def __init__(self, aggregator: UsageAggregator, flusher: Any, limiter: Any, menus: Any = None) -> None:
        self.aggregator = aggregator
        self.flusher = flusher
        self.limiter = limiter
        self.menus = menus

    def collect(self) -> Iterator[Any]:
        labels = ["airline", "route", "method", "status_class"]
        requests = CounterMetricFamily("skycart_requests", "HTTP requests", labels=labels)
        errors = CounterMetricFamily("skycart_request_errors", "HTTP requests answered 4xx or 5xx", labels=labels)
        billable = CounterMetricFamily("skycart_billable_requests", "Requests that passed the limiter", labels=labels)
        bytes_in = CounterMetricFamily("skycart_request_bytes", "Request body bytes", labels=labels)
        bytes_out = CounterMetricFamily("skycart_response_bytes", "Response body bytes", labels=labels)
        latency = HistogramMetricFamily("skycart_request_duration_seconds", "Request latency", labels=labels)
        for key, row in sorted(self.aggregator.live_totals().items()):
            values = list(key)
            requests.add_metric(values, row[REQUESTS])
            errors.add_metric(values, row[ERRORS])
            billable.add_metric(values, row[BILLABLE])
            bytes_in.add_metric(values, row[BYTES_IN])
            bytes_out.add_metric(values, row[BYTES_OUT])
            cumulative, buckets = 0, []
            for bound, count in zip(_BOUNDS_S, row[FIRST_BUCKET:], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            latency.add_metric(values, buckets, row[LATENCY_US] / 1_000_000)
        yield from (requests, errors, billable, bytes_in, bytes_out, latency)
        yield CounterMetricFamily(
            "skycart_metering_dropped_requests",
            "Metered requests dropped while the database was unreachable",
            value=self.flusher.dropped_requests,
        )
        yield CounterMetricFamily(
            "skycart_metering_flush_failures", "Failed flush attempts", value=self.flusher.failed_attempts
        )
        yield GaugeMetricFamily(
            "skycart_metering_pending_batches", "Batches waiting to be flushed", value=len(self.flusher.pending)
        )
        yield CounterMetricFamily(
            "skycart_limiter_fail_open",
            "Requests let through because the limiter store failed",
            value=self.limiter.fail_open,
        )
        yield CounterMetricFamily(
            "skycart_limiter_store_calls", "Lease calls to the limiter store", value=self.limiter.store.calls
        )
        if self.menus is not None:
            yield CounterMetricFamily(
                "skycart_menu_renders", "Flight menus rendered from the database", value=self.menus.renders
            )
            yield CounterMetricFamily(
                "skycart_menu_shared_hits",
                "Flight menus taken from Redis, rendered by another process",
                value=self.menus.shared_hits,
            )
            yield CounterMetricFamily(
                "skycart_menu_shared_errors",
                "Failed Redis reads and writes of flight menus",
                value=self.menus.shared_errors,
            )


def _add_into(totals: list[int], row: list[int]) -> None:
    for i, value in enumerate(row):
        totals[i] += value


def emf_lines(batch: Batch) -> list[dict[str, Any]]:
    """CloudWatch Embedded Metric Format records: per airline, and per airline and route."""
    per_airline: dict[str, list[int]] = {}
    per_route: dict[tuple[str, str], list[int]] = {}
    for (_minute, airline, route, _method, _sc), row in batch.items():
        _add_into(per_airline.setdefault(airline, [0] * len(row)), row)
        _add_into(per_route.setdefault((airline, route), [0] * len(row)), row)
    stamp = int(time.time() * 1000)
    records = []
    for dimensions, table in ((["Airline"], per_airline), (["Airline", "Route"], per_route)):
        for key, row in table.items():
            names = dict(zip(dimensions, key if isinstance(key, tuple) else (key,), strict=True))
            records.append(
                {
                    "_aws": {
                        "Timestamp": stamp,
                        "CloudWatchMetrics": [
                            {
                                "Namespace": "SkyCart",
                                "Dimensions": [dimensions],
                                "Metrics": [
                                    {"Name": "Requests", "Unit": "Count"},
                                    {"Name": "Errors", "Unit": "Count"},
                                    {"Name": "Latency", "Unit": "Milliseconds"},
                                ],
                            }
                        ],
                    },
                    **names,
                    "Requests": row[REQUESTS],
                    "Errors": row[ERRORS],
                    "Latency": _distribution(row[FIRST_BUCKET:]),
                }
            )
    return records


def _distribution(counts: list[int]) -> dict[str, list[int]]:
    """Each non-empty bucket's upper bound (the open last one: twice the top bound) with its count."""
    bounds = [*LATENCY_BUCKETS_MS, LATENCY_BUCKETS_MS[-1] * 2]
    pairs = [(bound, count) for bound, count in zip(bounds, counts, strict=True) if count]
    return {"Values": [b for b, _ in pairs], "Counts": [c for _, c in pairs]}


def log_emf(batch: Batch) -> None:
    for record in emf_lines(batch):
        emf_log.info("metrics", extra=record)
