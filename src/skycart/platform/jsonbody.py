"""JSON request bodies parsed strictly (orjson), for every API route, and only from a JSON media type.

The standard library's parser, which Starlette uses, accepts `NaN`, `Infinity`, `-Infinity`, turns
`1e999` into infinity and lets a lone surrogate (`"\\ud800"`) into a string; each of them later fails
where the value is stored or serialized, as a 500. orjson refuses all of them as invalid JSON, so they
are answered like any malformed body: 422 `validation_error` (FastAPI's `json_invalid`).

A route that takes a JSON body answers a body of another media type (or of none named) with 415
`unsupported_media_type`, instead of FastAPI's 422 for "not a valid dictionary".
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute

from skycart.errors import UnsupportedMediaType


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())  # orjson.JSONDecodeError is a json.JSONDecodeError
        return self._json


class StrictJsonRoute(APIRoute):
    """An APIRoute whose handler sees a StrictJsonRequest (FastAPI's documented custom-request pattern)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_json = self.body_field is not None

        async def strict(request: Request) -> Response:
            if takes_json and _has_body(request) and not _is_json(request.headers.get("content-type", "")):
                raise UnsupportedMediaType("send the body as application/json")
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict


def _has_body(request: Request) -> bool:
    return request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))
