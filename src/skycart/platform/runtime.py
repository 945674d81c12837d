"""What a running app holds for its lifetime: settings, engine, sessions, providers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cachetools import TTLCache
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from skycart.config import Settings

if TYPE_CHECKING:
    from skycart.orders.payments import PaymentProvider


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    payments: PaymentProvider
    key_cache: TTLCache[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.key_cache = TTLCache(maxsize=10_000, ttl=self.settings.key_cache_seconds or 0.001)


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime
