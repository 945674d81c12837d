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

from skycart.airlines.auth import airline_of, cached_principal
from skycart.airlines.service import hash_key
from skycart.errors import DomainError
from skycart.flights.schemas import FLIGHT_ID_MAX, FLIGHTS_PREFIX, MENU_PATH, MENU_TEMPLATE
from skycart.flights.service import menu_key
from skycart.platform.scope import AIRLINE, REFUSAL, REQUEST_ID

log = logging.getLogger("skycart.menu_fast_path")

PREFIX = FLIGHTS_PREFIX + "/"
SUFFIX = MENU_PATH.removeprefix("/{flight_id}")
_QUERY = frozenset(("locale", "currency"))


@dataclass(frozen=True)
class RouteLabel:
    """What metering and logs read of `scope["route"]`: the template, as FastAPI's route would give it."""

    path: str


ROUTE = RouteLabel(MENU_TEMPLATE)


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
    """Every decision here is the route's own function: the key cache lookup and the role check
    (`airlines.auth`), the plan terms and the admission (the package guard), the cache key
    (`flights.service.menu_key`), the id length and the route template (`flights.schemas`)."""
    flight_id = path[len(PREFIX) : -len(SUFFIX)]
    if not 0 < len(flight_id) <= FLIGHT_ID_MAX or "/" in flight_id:
        return None
    query = _menu_query(scope["query_string"])
    if query is None or api_key is None:
        return None
    runtime = scope["app"].state.runtime
    principal = cached_principal(runtime, hash_key(api_key.decode("latin-1")))
    tenant = None if principal is None else airline_of(principal)
    if tenant is None:
        return None
    body = runtime.menus.get(menu_key(tenant, flight_id, query.get("locale"), query.get("currency")))
    if body is None:
        return None
    guard = runtime.airline_guard
    if guard is not None:
        plan = guard.terms_now(tenant)
        if plan is None:
            return None
        if not guard.admit_now(scope, tenant, plan, method="GET", template=MENU_TEMPLATE):
            try:
                await guard.admit(scope, tenant, plan, method="GET", template=MENU_TEMPLATE)
            except DomainError as refused:
                # The route answers the refusal in full, from this decision: one lease per request.
                scope[REFUSAL] = refused
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
        pairs = []
        for part in text.split("&"):
            if part:
                name, _, value = part.partition("=")
                pairs.append((name, value))
    query = dict(pairs)
    if len(query) != len(pairs) or not query.keys() <= _QUERY:
        return None
    return query
