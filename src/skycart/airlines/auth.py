"""Authentication and authorization dependencies: `AirlineTenant`, `OperatorKey`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from skycart.airlines import service
from skycart.airlines.service import ROLE_AIRLINE, ROLE_OPERATOR, Principal, hash_key
from skycart.errors import Forbidden, Unauthenticated
from skycart.platform.db import transaction
from skycart.platform.runtime import get_runtime
from skycart.platform.scope import AIRLINE
from skycart.platform.tenancy import Tenant

api_key_header = APIKeyHeader(name="X-Api-Key", auto_error=False, description="Airline or operator API key")


async def current_principal(request: Request, plain: str | None = Security(api_key_header)) -> Principal:
    if not plain:
        raise Unauthenticated("send your API key in the X-Api-Key header")
    runtime = get_runtime(request)
    cache_key = hash_key(plain)
    principal = runtime.key_cache.get(cache_key)
    if principal is None:

        async def lookup() -> Principal | None:
            async with transaction(runtime.sessions, write=False) as session:
                return await service.authenticate(session, plain=plain)

        principal = await runtime.single_flight.do(("key", cache_key), lookup)
        if principal is None:
            raise Unauthenticated("unknown or revoked API key")
        runtime.key_cache[cache_key] = principal
    request.scope[AIRLINE] = principal.tenant.code if principal.tenant else principal.role
    return principal


def forget_key(request: Request, key_id: str) -> None:
    """Drop a revoked key from this process's cache at once (others follow within the TTL)."""
    cache = get_runtime(request).key_cache
    for cache_key, principal in list(cache.items()):
        if principal.key_id == key_id:
            cache.pop(cache_key, None)


async def _airline(request: Request, principal: Principal = Depends(current_principal)) -> Tenant:
    if principal.role != ROLE_AIRLINE or principal.tenant is None:
        raise Forbidden("this endpoint needs an airline key")
    guard = get_runtime(request).airline_guard
    if guard is not None:  # the service package: features, rate limit, quota
        await guard(request, principal.tenant)
    return principal.tenant


async def _operator(principal: Principal = Depends(current_principal)) -> Principal:
    if principal.role != ROLE_OPERATOR:
        raise Forbidden("this endpoint needs an operator key")
    return principal


AirlineTenant = Annotated[Tenant, Depends(_airline)]
OperatorKey = Annotated[Principal, Depends(_operator)]
