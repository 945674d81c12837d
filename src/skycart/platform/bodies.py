"""Request bodies are bounded before anything parses them: pure ASGI, inside the error handling.

A body whose Content-Length is past its route's limit is answered 413 at once, without a byte read,
and the connection is closed (so the server does not read and throw away the rest). A body without a
declared length is counted while the app reads it; past the limit the read raises `BodyTooLarge`,
which the error handlers answer as a 413 problem. Starlette's own body limit replaces any answer to
such a request with a plain-text one, so it is not used.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.exceptions import HTTPException

from skycart.errors import PayloadTooLarge, problem_response


class BodyTooLarge(HTTPException):
    """Raised from `receive`: an HTTPException, so the framework's body parsing passes it on as it is."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body is larger than the {limit} bytes this route takes")


class BodyLimit:
    """At most `default` bytes of body, or the limit of the first pattern in `larger` matching the path."""

    def __init__(self, app: Any, *, default: int, larger: list[tuple[str, int]]) -> None:
        self.app = app
        self.default = default
        self.larger = [(re.compile(pattern), limit) for pattern, limit in larger]

    def limit_for(self, path: str) -> int:
        return next((limit for pattern, limit in self.larger if pattern.fullmatch(path)), self.default)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is None and not chunked:
            await self.app(scope, receive, send)  # no body to bound (most GETs)
            return
        limit = self.limit_for(scope["path"])
        if declared is not None and declared.isdigit() and int(declared) > limit:
            refused = PayloadTooLarge(f"the body is larger than the {limit} bytes this route takes")
            answer = problem_response(
                refused.status, refused.code, refused.title, refused.detail, {"connection": "close"}
            )
            await answer(scope, receive, send)
            return
        received = 0

        async def counted() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)
