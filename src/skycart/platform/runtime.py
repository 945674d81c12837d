"""What a running app holds for its lifetime: settings, engine, sessions, providers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache, TTLCache
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from skycart.config import Settings
from skycart.platform.assets import AssetStore
from skycart.platform.cache import SharedCache, redis_client
from skycart.platform.payments import PaymentProvider
from skycart.platform.sealing import Sealer, sealer_for
from skycart.platform.singleflight import SingleFlight
from skycart.platform.tenancy import Tenant


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    payments: PaymentProvider
    # Called for every airline request after authentication (set at start-up: plans and limits).
    airline_guard: Callable[[Request, Tenant], Awaitable[None]] | None = None
    # Each airline's plan terms, cached (billing.service.PlanBook; set at start-up).
    plan_book: Any = None
    # What skycart.lifecycle started with the app (flusher, limiter, plan book, housekeeping).
    lifecycle: Any = None
    # Where product images are stored (S3 or a folder), made once at start-up.
    assets: AssetStore | None = None
    # Image uploads decoded at once in this process (each may take hundreds of MB while decoding).
    image_workers: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))
    # On SQLite one writer holds the database at a time: this process's order writes take turns here.
    sqlite_writes: asyncio.Lock = field(default_factory=asyncio.Lock)
    key_cache: TTLCache[str, Any] = field(init=False)
    # Whose each key was when last looked up (never trusted to authenticate): while the database is
    # away, a refused request is still metered to its airline instead of to `anonymous`.
    key_owners: LRUCache[str, str] = field(default_factory=lambda: LRUCache(maxsize=100_000))
    # The process's Redis client (None without SKYCART_REDIS_URL): limits lease through it, menus share through it.
    redis: Any = field(init=False)
    # Pre-serialized flight menus, in this process and (with Redis) shared, fresh for `menu_cache_seconds`.
    menus: SharedCache = field(init=False)
    single_flight: SingleFlight[Any] = field(default_factory=SingleFlight)
    # Seals webhook signing secrets (None when no key is configured: webhooks answer 503 then).
    sealer: Sealer | None = field(init=False)

    def __post_init__(self) -> None:
        self.key_cache = TTLCache(maxsize=10_000, ttl=self.settings.key_cache_seconds or 0.001)
        self.redis = redis_client(self.settings)
        self.menus = SharedCache("menu", seconds=self.settings.menu_cache_seconds, redis=self.redis)
        self.sealer = sealer_for(self.settings)

    def asset_store(self) -> AssetStore:
        """`assets`, which the app's start-up always sets."""
        if self.assets is None:
            raise RuntimeError("this runtime has no asset store: the app's start-up makes it")
        return self.assets


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime
