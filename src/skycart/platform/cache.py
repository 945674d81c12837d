"""Redis, and a two-level cache of rendered bytes: process memory, shared through Redis.

`redis_client` makes the one Redis client a process has (limits lease through it, caches share
through it). `SharedCache` keeps pre-serialized answers (the flight menus): every copy carries the
time its rendering began, and no level serves a copy more than `seconds` after that, so what it shows
is at most that old anywhere, whichever process or level a copy came through. Redis failing only
costs a rendering.
"""

from __future__ import annotations

import logging
import math
import struct
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from cachetools import TLRUCache

from skycart.config import Settings
from skycart.platform.singleflight import SingleFlight

log = logging.getLogger("skycart.cache")
CacheKey = tuple[str | None, ...]
_STAMP = struct.Struct(">d")  # the rendering's wall-clock start, ahead of the body in Redis


def _expiry(_key: Hashable, entry: tuple[bytes, float], _now: float) -> float:
    return entry[1]


def redis_client(settings: Settings) -> Any:
    """The process's Redis client, or None without SKYCART_REDIS_URL. Short timeouts: every user
    of it has an answer for Redis being away (limits fail open, caches render)."""
    if not settings.redis_url:
        return None
    import redis.asyncio as aioredis

    return aioredis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)


class SharedCache:
    def __init__(self, namespace: str, *, seconds: float, redis: Any = None, maxsize: int = 20_000) -> None:
        self.namespace = namespace
        self.seconds = seconds
        self.redis = redis
        # (body, monotonic time it stops being served)
        self.local: TLRUCache[CacheKey, tuple[bytes, float]] = TLRUCache(maxsize, ttu=_expiry)
        self.renders = 0
        self.shared_hits = 0
        self.shared_errors = 0
        self._filling: SingleFlight[bytes] = SingleFlight()

    def get(self, key: CacheKey) -> bytes | None:
        """The body held in this process, if still fresh: no I/O, no await."""
        entry = self.local.get(key)
        return entry[0] if entry is not None else None

    async def get_or_render(self, key: CacheKey, render: Callable[[], Awaitable[bytes]]) -> bytes:
        body = self.get(key)
        if body is not None:
            return body
        # Concurrent misses of one menu share one Redis read and at most one rendering.
        return await self._filling.do(key, lambda: self._fill(key, render))

    async def _fill(self, key: CacheKey, render: Callable[[], Awaitable[bytes]]) -> bytes:
        caching = self.seconds > 0
        if caching:
            shared = await self._shared_get(key)
            if shared is not None:
                return shared
        self.renders += 1
        started = time.time()
        body = await render()
        if caching:
            self._keep(key, body, started)
            await self._shared_set(key, body, started)
        return body

    def _keep(self, key: CacheKey, body: bytes, rendered_at: float) -> None:
        left = rendered_at + self.seconds - time.time()
        if left > 0:
            self.local[key] = (body, time.monotonic() + left)

    def _redis_key(self, key: CacheKey) -> str:
        return ":".join(("skycart", self.namespace, *(part or "" for part in key)))

    async def _shared_get(self, key: CacheKey) -> bytes | None:
        if self.redis is None:
            return None
        try:
            stored = await self.redis.get(self._redis_key(key))
        except Exception as exc:  # the database answers instead
            self._failed("get", exc)
            return None
        if stored is None or len(stored) < _STAMP.size:
            return None
        (rendered_at,) = _STAMP.unpack_from(stored)
        if time.time() - rendered_at >= self.seconds:
            return None
        body = stored[_STAMP.size :]
        self.shared_hits += 1
        self._keep(key, body, rendered_at)
        return body

    async def _shared_set(self, key: CacheKey, body: bytes, rendered_at: float) -> None:
        if self.redis is None:
            return
        try:
            await self.redis.set(
                self._redis_key(key), _STAMP.pack(rendered_at) + body, px=max(1, math.ceil(self.seconds * 1000))
            )
        except Exception as exc:
            self._failed("set", exc)

    def _failed(self, operation: str, exc: Exception) -> None:
        self.shared_errors += 1
        log.warning(f"{self.namespace}_cache_redis_failed", extra={"operation": operation, "error": type(exc).__name__})
