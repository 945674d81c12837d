"""Rules for airlines and their keys. No HTTP, no commit."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.airlines import repository
from skycart.airlines.models import Airline, ApiKey
from skycart.airlines.schemas import AirlineCreate, AirlineSettings, AirlineUpdate
from skycart.errors import AlreadyExists, NotFound, ValidationFailed
from skycart.platform.db import utcnow
from skycart.platform.pagination import Slice, read_slice
from skycart.platform.tenancy import Tenant

ROLE_AIRLINE = "airline"
ROLE_OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class AirlineFacts:
    """What an order needs to know of its airline, kept with the airline's keys in each process's key cache
    (so a change reaches orders within SKYCART_KEY_CACHE_SECONDS): the currencies it sells in, its
    per-seat limits and its low-stock threshold."""

    currencies: tuple[str, ...]
    seat_limits: Mapping[str, int]
    # Below this many units left of a SKU on a flight, an order records `stock.low` (None: never).
    stock_low_threshold: int | None = None

    @classmethod
    def of(cls, airline: Airline) -> AirlineFacts:
        settings = airline.settings
        return cls(
            tuple(airline.currencies), dict(settings.get("seat_limits") or {}), settings.get("stock_low_threshold")
        )


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an operator, or an airline (then `tenant` and `airline` are set)."""

    key_id: str
    role: str
    tenant: Tenant | None
    airline: AirlineFacts | None = None


def hash_key(plain: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is as safe as a slow one here.
    return hashlib.sha256(plain.encode()).hexdigest()


def _locales(default_locale: str, locales: list[str] | None) -> list[str]:
    ordered = [default_locale, *(locales or [])]
    return list(dict.fromkeys(ordered))


async def create_airline(session: AsyncSession, *, data: AirlineCreate) -> Airline:
    """Onboard an airline; its code is unique platform-wide."""
    if await repository.get_by_code(session, data.code):
        raise AlreadyExists(f"airline {data.code} already exists")
    airline = Airline(
        code=data.code,
        name=data.name,
        currencies=list(dict.fromkeys(data.currencies)),
        default_locale=data.default_locale,
        locales=_locales(data.default_locale, data.locales),
        settings=data.settings.model_dump(),
    )
    try:
        await repository.add(session, airline)
    except IntegrityError as exc:  # a concurrent create of the same code
        raise AlreadyExists(f"airline {data.code} already exists") from exc
    return airline


async def list_airlines(session: AsyncSession, *, after: str | None, limit: int) -> Slice[Airline]:
    """Airlines in code order, a page at a time (operator views)."""
    return await read_slice(
        lambda n: repository.list_airlines(session, after=after, limit=n), limit=limit, key=lambda a: a.code
    )


async def airline_for(session: AsyncSession, tenant: Tenant) -> Airline:
    """The airline a tenant is, or 404 (it was deleted meanwhile)."""
    airline = await repository.get_by_id(session, tenant.id)
    if airline is None:
        raise NotFound("airline not found")
    return airline


async def get_airline(session: AsyncSession, *, code: str) -> Airline:
    airline = await repository.get_by_code(session, code)
    if airline is None:
        raise NotFound(f"airline {code} not found")
    return airline


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396 JSON merge patch."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = value
    return merged


async def update_airline(session: AsyncSession, *, code: str, patch: AirlineUpdate) -> Airline:
    """Change an airline's profile or settings."""
    airline = await get_airline(session, code=code)
    if patch.name is not None:
        airline.name = patch.name
    if patch.currencies is not None:
        airline.currencies = list(dict.fromkeys(patch.currencies))
    if patch.default_locale is not None or patch.locales is not None:
        default_locale = patch.default_locale or airline.default_locale
        airline.default_locale = default_locale
        airline.locales = _locales(default_locale, patch.locales if patch.locales is not None else airline.locales)
    if patch.settings is not None:
        try:
            merged = AirlineSettings.model_validate(merge_patch(airline.settings, patch.settings))
        except ValidationError as exc:
            raise ValidationFailed(f"settings: {exc.errors()[0]['msg']}") from exc
        airline.settings = merged.model_dump()
    airline.updated_at = utcnow()
    await session.flush()
    return airline


async def issue_key(session: AsyncSession, *, role: str, airline: Airline | None, name: str = "") -> tuple[ApiKey, str]:
    """Create a key; the plain key is returned once and only its hash is kept."""
    plain = f"sk_{'op' if role == ROLE_OPERATOR else 'al'}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        airline_id=airline.id if airline else None,
        role=role,
        name=name,
        prefix=plain[:12],
        key_hash=hash_key(plain),
        created_at=utcnow(),
    )
    await repository.add(session, key)
    return key, plain


async def airline_keys(session: AsyncSession, *, tenant: Tenant) -> list[ApiKey]:
    """The airline's keys, newest first, revoked ones included."""
    return await repository.airline_keys(session, tenant)


async def airline_of_key(session: AsyncSession, *, key_id: str) -> str:
    """The code of the airline whose key this is (operator views); 404 for no such airline key."""
    code = await repository.key_owner(session, key_id)
    if code is None:
        raise NotFound(f"key {key_id} not found")
    return code


async def revoke_key(session: AsyncSession, *, key_id: str) -> None:
    """Revoke a key; revoking twice is not an error."""
    if not await repository.revoke_key(session, key_id, utcnow()) and not await repository.key_exists(session, key_id):
        raise NotFound(f"key {key_id} not found")


async def authenticate(session: AsyncSession, *, plain: str) -> Principal | None:
    """The principal behind a plain key, or None for an unknown or revoked key."""
    found = await repository.key_by_hash(session, hash_key(plain))
    if found is None:
        return None
    key, airline = found
    if key.revoked_at is not None:
        return None
    if airline is None:
        return Principal(key_id=key.id, role=key.role, tenant=None)
    return Principal(key_id=key.id, role=key.role, tenant=airline.tenant, airline=AirlineFacts.of(airline))
