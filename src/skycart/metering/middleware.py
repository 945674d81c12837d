"""Pure ASGI middleware, outermost: every HTTP request's id, log context and access-log line, and its metering.

Every response carries X-Request-Id (the caller's, if it sent a usable one) and, when the limiter
decided, the RateLimit headers. With metering switched off requests keep their ids and access-log
lines; they are only not counted.

Route templates (never raw paths) label usage, so cardinality stays bounded. The airline comes
from the key the auth dependency resolved (`scope["skycart.airline"]`); `anonymous` otherwise.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from skycart.metering.aggregate import UsageAggregator
from skycart.platform.logging import request_scope
from skycart.platform.scope import AIRLINE, BILLABLE, RATELIMIT, REQUEST_ID

Scope = dict[str, Any]
Answer = Callable[[Scope, bytes | None], Awaitable[bytes | None]]
UNMATCHED = "unmatched"
_BODILESS = frozenset(("GET", "HEAD", "DELETE", "OPTIONS"))
# A caller's X-Request-Id is echoed when it is 1-64 visible ASCII characters; otherwise one is made.
_CALLER_ID = re.compile(rb"[!-~]{1,64}")

access_log = logging.getLogger("skycart.access")


_CONTENT_TYPE = (b"content-type", b"application/json")


def json_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [_CONTENT_TYPE, (b"content-length", b"%d" % len(body))]


class MeteringMiddleware:
    """Meters every request when given an aggregator; `answer`, when given, may answer one itself
    first (the warm menu's fast path), after the same package checks, without reaching the app."""

    def __init__(
        self,
        app: Any,
        aggregator: UsageAggregator | None,
        *,
        access_log_enabled: bool = True,
        answer: Answer | None = None,
    ) -> None:
        self.app = app
        self.aggregator = aggregator
        self.access_log_enabled = access_log_enabled
        self.answer = answer
        # Request ids: a random per-process prefix and a counter, formatted in C (no UUID per request).
        self._ids = map(f"{uuid.uuid4().hex[:12]}{{:x}}".format, itertools.count(1))

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        raw = scope["headers"]
        headers = dict(raw)
        if len(headers) != len(raw):  # a repeated name: the first one counts, as in Starlette's `Headers`
            headers = {}
            for name, value in raw:
                headers.setdefault(name, value)
        given = headers.get(b"x-request-id")
        request_id = given.decode() if given is not None and _CALLER_ID.fullmatch(given) else next(self._ids)
        scope[REQUEST_ID] = request_id
        has_body = b"content-length" in headers or b"transfer-encoding" in headers
        if self.answer is not None and not has_body:
            body = await self.answer(scope, headers.get(b"x-api-key"))
            if body is not None:
                # Answered here whole: no log context to set, no wrappers around the app's send.
                try:
                    out = json_headers(body)
                    out.append((b"x-request-id", request_id.encode()))
                    limits = scope.get(RATELIMIT)
                    if limits:
                        out += limits
                    await send({"type": "http.response.start", "status": 200, "headers": out})
                    await send({"type": "http.response.body", "body": body})
                finally:
                    self._account(scope, request_id, 200, 0, len(body), started)
                return
        await self._call_app(scope, receive, send, request_id, has_body or scope["method"] not in _BODILESS, started)

    async def _call_app(
        self, scope: Scope, receive: Any, send: Any, request_id: str, has_body: bool, started: float
    ) -> None:
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

        context = request_scope.set(scope)
        try:
            # A request without a body (most GETs) needs no counting wrapper around `receive`.
            await self.app(scope, receive_counting if has_body else receive, send_counting)
        finally:
            request_scope.reset(context)
            self._account(scope, request_id, counts[2], counts[0], counts[1], started)

    def _account(
        self, scope: Scope, request_id: str, status: int, bytes_in: int, bytes_out: int, started: float
    ) -> None:
        seconds = time.perf_counter() - started
        airline = scope.get(AIRLINE, "anonymous")
        template = getattr(scope.get("route"), "path", None) or UNMATCHED
        if self.aggregator is not None:
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
