"""Pure ASGI middleware: meters every HTTP request and adds the RateLimit and request-id headers.

Route templates (never raw paths) label usage, so cardinality stays bounded. The airline comes
from the key the auth dependency resolved (`scope["skycart.airline"]`); `anonymous` otherwise.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from skycart.flights.fastpath import json_headers
from skycart.metering.aggregate import UsageAggregator
from skycart.platform.logging import request_scope
from skycart.platform.scope import AIRLINE, BILLABLE, RATELIMIT, REQUEST_ID

Scope = dict[str, Any]
UNMATCHED = "unmatched"
_BODILESS = frozenset(("GET", "HEAD", "DELETE", "OPTIONS"))
_BODY_HEADERS = frozenset((b"content-length", b"transfer-encoding"))

access_log = logging.getLogger("skycart.access")


class MeteringMiddleware:
    """Meters every request; `answer`, when given, may answer one itself first (the warm menu's fast path)."""

    def __init__(
        self,
        app: Any,
        aggregator: UsageAggregator,
        *,
        access_log_enabled: bool = True,
        answer: Callable[[Scope], Awaitable[bytes | None]] | None = None,
    ) -> None:
        self.app = app
        self.aggregator = aggregator
        self.access_log_enabled = access_log_enabled
        self.answer = answer
        # Request ids: a random per-process prefix and a counter (cheaper than a UUID per request).
        self._id_prefix = uuid.uuid4().hex[:12]
        self._ids = itertools.count(1)

    def _scan(self, scope: Scope) -> tuple[str, bool]:
        """The request id (the caller's, or a new one) and whether a body may follow, in one pass."""
        request_id = None
        has_body = scope["method"] not in _BODILESS
        for name, value in scope["headers"]:
            if name in _BODY_HEADERS:
                has_body = True
            elif name == b"x-request-id" and 0 < len(value) <= 64 and value.isascii():
                request_id = value.decode()
        return request_id or f"{self._id_prefix}{next(self._ids):x}", has_body

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id, has_body = self._scan(scope)
        scope[REQUEST_ID] = request_id
        context = request_scope.set(scope)
        if self.answer is not None and not has_body:
            body = await self.answer(scope)
            if body is not None:
                # Answered here whole: no wrappers around the app's send, one record, one log line.
                try:
                    headers = [*json_headers(body), (b"x-request-id", request_id.encode()), *scope.get(RATELIMIT, ())]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                finally:
                    request_scope.reset(context)
                    self._account(scope, request_id, 200, 0, len(body), started)
                return
        counts = [0, 0, 500]  # bytes in, bytes out, status

        async def send_counting(message: Any) -> None:
            kind = message["type"]
            if kind == "http.response.body":
                counts[1] += len(message.get("body", b""))
            elif kind == "http.response.start":
                counts[2] = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
                headers.extend(scope.get(RATELIMIT, ()))
                message["headers"] = headers
            await send(message)

        if has_body:

            async def receive_counting() -> Any:
                message = await receive()
                if message["type"] == "http.request":
                    counts[0] += len(message.get("body", b""))
                return message

        try:
            # A request without a body (most GETs) needs no counting wrapper around `receive`.
            await self.app(scope, receive_counting if has_body else receive, send_counting)
        finally:
            request_scope.reset(context)
            self._account(scope, request_id, counts[2], counts[0], counts[1], started)

    def _account(
        self, scope: Scope, request_id: str, status: int, bytes_in: int, bytes_out: int, started: float
    ) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED
        airline = scope.get(AIRLINE, "anonymous")
        seconds = time.perf_counter() - started
        self.aggregator.record(
            airline, template, scope["method"], status, seconds, bytes_in, bytes_out, scope.get(BILLABLE, False)
        )
        if self.access_log_enabled:
            access_log.info(
                "request",
                extra={
                    "airline": airline,
                    "request_id": request_id,
                    "method": scope["method"],
                    "route": template,
                    "status": status,
                    "ms": round(seconds * 1000, 2),
                    "bytes_in": bytes_in,
                    "bytes_out": bytes_out,
                },
            )
