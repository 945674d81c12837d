"""JSON request bodies parsed strictly (orjson), for every API route.

The standard library's parser, which Starlette uses, accepts `NaN`, `Infinity`, `-Infinity`, turns
`1e999` into infinity and lets a lone surrogate (`"\\ud800"`) into a string; each of them later fails
where the value is stored or serialized, as a 500. orjson refuses all of them as invalid JSON, so they
are answered like any malformed body: 422 `validation_error` (FastAPI's `json_invalid`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())  # orjson.JSONDecodeError is a json.JSONDecodeError
        return self._json


class StrictJsonRoute(APIRoute):
    """An APIRoute whose handler sees a StrictJsonRequest (FastAPI's documented custom-request pattern)."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict
