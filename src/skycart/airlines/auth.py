"""Authentication and authorization: the dependencies `AirlineTenant` and `OperatorKey`, and `KeyBeforeBody`,
which authenticates a request that carries a body before a byte of that body is read."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from skycart.airlines import service
from skycart.airlines.service import ROLE_AIRLINE, ROLE_OPERATOR, AirlineFacts, Principal, hash_key
from skycart.errors import Forbidden, Unauthenticated, database_unavailable, problem_response
from skycart.platform.db import transaction
from skycart.platform.runtime import Runtime, get_runtime
from skycart.platform.scope import AIRLINE, PRINCIPAL
from skycart.platform.tenancy import Tenant

api_key_header = APIKeyHeader(name="X-Api-Key", auto_error=False, description="Airline or operator API key")


async def resolve_principal(runtime: Runtime, plain: str | None, scope: MutableMapping[str, Any]) -> Principal:
    """The key's principal, from this process's key cache or one shared lookup; Unauthenticated otherwise.

    When the lookup fails because the database is away, a key seen before is still metered to its
    owner (the failure itself is answered 503 by the error handling).
    """
    if not plain:
        raise Unauthenticated("send your API key in the X-Api-Key header")
    cache_key = hash_key(plain)
    principal = cached_principal(runtime, cache_key)
    if principal is None:

        async def lookup() -> Principal | None:
            async with transaction(runtime.sessions, write=False) as session:
                return await service.authenticate(session, plain=plain)

        try:
            principal = await runtime.single_flight.do(("key", cache_key), lookup)
        except Exception as exc:
            owner = runtime.key_owners.get(cache_key)
            if owner is not None and database_unavailable(exc):
                scope[AIRLINE] = owner
            raise
        if principal is None:
            runtime.key_owners.pop(cache_key, None)
            raise Unauthenticated("unknown or revoked API key")
        runtime.key_cache[cache_key] = principal
        runtime.key_owners[cache_key] = _label(principal)
    return principal


def cached_principal(runtime: Runtime, cache_key: str) -> Principal | None:
    """The principal of a key (by its hash) if this process knows it, without waiting for anything.

    The warm-menu fast path and `resolve_principal` both look keys up here, and only here."""
    found: Principal | None = runtime.key_cache.get(cache_key)
    return found


def airline_of(principal: Principal) -> Tenant | None:
    """The airline an airline key acts for; None for any other key (the route answers 403)."""
    if principal.role != ROLE_AIRLINE or principal.tenant is None:
        return None
    return principal.tenant


def _label(principal: Principal) -> str:
    return principal.tenant.code if principal.tenant else principal.role


async def current_principal(request: Request, plain: str | None = Security(api_key_header)) -> Principal:
    principal = request.scope.get(PRINCIPAL)  # resolved by KeyBeforeBody from the same header
    if principal is None:
        principal = await resolve_principal(get_runtime(request), plain, request.scope)
    request.scope[AIRLINE] = _label(principal)
    return principal


# Every route under these prefixes needs a key; a body sent to one is read only once the key is known.
KEYED_PREFIXES = ("/v1/", "/admin/")
_BODILESS = frozenset((b"GET", b"HEAD", b"OPTIONS"))


class KeyBeforeBody:
    """Pure ASGI: a request with a body to a keyed route is authenticated before the app reads the body.

    FastAPI parses a JSON body before it runs any dependency, so without this an anonymous caller
    could make a worker parse whatever the body limit admits. A missing or unknown key is answered 401
    here; a known one is left in the scope for `current_principal`, which then looks nothing up again.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope["method"].encode() not in _BODILESS
            and scope["path"].startswith(KEYED_PREFIXES)
        ):
            raw = next((value for name, value in scope["headers"] if name == b"x-api-key"), None)
            plain = raw.decode("latin-1") if raw else None
            try:
                principal = await resolve_principal(scope["app"].state.runtime, plain, scope)
            except Unauthenticated as refused:
                # And the connection closes: the server does not read (and throw away) the body first.
                headers = {"connection": "close"}
                answer = problem_response(refused.status, refused.code, refused.title, refused.detail, headers)
                await answer(scope, receive, send)
                return
            scope[PRINCIPAL] = principal
            scope[AIRLINE] = _label(principal)
        await self.app(scope, receive, send)


def forget_key(request: Request, key_id: str) -> None:
    """Drop a revoked key from this process's cache at once (others follow within the TTL)."""
    cache = get_runtime(request).key_cache
    for cache_key, principal in list(cache.items()):
        if principal.key_id == key_id:
            cache.pop(cache_key, None)


async def _airline(request: Request, principal: Principal = Depends(current_principal)) -> Tenant:
    tenant = airline_of(principal)
    if tenant is None:
        raise Forbidden("this endpoint needs an airline key")
    guard = get_runtime(request).airline_guard
    if guard is not None:  # the service package: features, rate limit, quota
        await guard(request, tenant)
    return tenant


async def _operator(principal: Principal = Depends(current_principal)) -> Principal:
    if principal.role != ROLE_OPERATOR:
        raise Forbidden("this endpoint needs an operator key")
    return principal


async def _airline_facts(principal: Principal = Depends(current_principal)) -> AirlineFacts:
    if principal.airline is None:
        raise Forbidden("this endpoint needs an airline key")
    return principal.airline


AirlineTenant = Annotated[Tenant, Depends(_airline)]
# The calling airline's currencies and per-seat limits, as its key's cache entry holds them (no SQL).
AirlineOfKey = Annotated[AirlineFacts, Depends(_airline_facts)]
OperatorKey = Annotated[Principal, Depends(_operator)]
