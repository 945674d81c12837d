"""A warm flight menu answered from process memory before FastAPI routes anything.

`GET /v1/flights/{flight_id}/menu` is the hottest read (every seat-back screen polls it). When
everything it needs is already in this process — the caller's key, the airline's plan terms and
the pre-serialized menu — this answers with the same bytes and headers the FastAPI route would,
after the same package check (rate limit, quota), in a few microseconds. Anything else (a cold
menu, an unknown key, unusual query parameters, a refusal) goes on to FastAPI unchanged, which
then answers exactly as if this layer did not exist.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from skycart.airlines.service import ROLE_AIRLINE, hash_key
from skycart.errors import DomainError
from skycart.platform.scope import AIRLINE, REQUEST_ID

log = logging.getLogger("skycart.menu_fast_path")

PREFIX = "/v1/flights/"
SUFFIX = "/menu"
TEMPLATE = "/v1/flights/{flight_id}/menu"
_QUERY = frozenset(("locale", "currency"))
_CONTENT_TYPE = (b"content-type", b"application/json")


@dataclass(frozen=True)
class RouteLabel:
    """What metering and logs read of `scope["route"]`: the template, as FastAPI's route would give it."""

    path: str


ROUTE = RouteLabel(TEMPLATE)


def json_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [_CONTENT_TYPE, (b"content-length", b"%d" % len(body))]


async def answer(scope: dict[str, Any], api_key: bytes | None) -> bytes | None:
    """The warm menu's bytes, when this request asks for one and this process holds all it needs; else None.

    `api_key` is the request's X-Api-Key header (the outermost middleware has read the headers already).
    """
    if scope["method"] != "GET":
        return None
    path = scope["path"]
    if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
        return None
    try:
        return await _warm_menu(scope, path, api_key)
    except Exception:  # the route answers instead, with its own error handling
        log.exception("menu_fast_path_failed", extra={"request_id": scope.get(REQUEST_ID)})
        return None


async def _warm_menu(scope: dict[str, Any], path: str, api_key: bytes | None) -> bytes | None:
    flight_id = path[len(PREFIX) : -len(SUFFIX)]
    if not 0 < len(flight_id) <= 26 or "/" in flight_id:
        return None
    query = _menu_query(scope["query_string"])
    if query is None:
        return None
    if api_key is None:
        return None
    runtime = scope["app"].state.runtime
    principal = runtime.key_cache.get(hash_key(api_key.decode("latin-1")))
    if principal is None or principal.role != ROLE_AIRLINE or principal.tenant is None:
        return None
    tenant = principal.tenant
    body = runtime.menus.get((tenant.id, flight_id, query.get("locale"), query.get("currency")))
    if body is None:
        return None
    guard = runtime.airline_guard
    if guard is not None:
        plan = guard.plans.cached(tenant)
        if plan is None:
            return None
        if not guard.admit_now(scope, tenant, plan, method="GET", template=TEMPLATE):
            try:
                await guard.admit(scope, tenant, plan, method="GET", template=TEMPLATE)
            except DomainError:  # the route checks again and answers the refusal in full
                return None
    scope[AIRLINE] = tenant.code
    scope["route"] = ROUTE
    return body


def _menu_query(raw: bytes) -> dict[str, str] | None:
    """`locale` and `currency` at most once each and nothing else; None sends the request on to FastAPI."""
    if not raw:
        return {}
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        pairs = parse_qsl(text, keep_blank_values=True)
    else:  # the usual `currency=EUR&locale=en`, without parse_qsl's generality
        pairs = [tuple(part.split("=", 1)) if "=" in part else (part, "") for part in text.split("&") if part]
    query = dict(pairs)
    if len(query) != len(pairs) or not query.keys() <= _QUERY:
        return None
    return query
