"""Redis, and a two-level cache of rendered bytes: process memory, shared through Redis.

`redis_client` makes the one Redis client a process has (limits lease through it, caches share
through it). `SharedCache` keeps pre-serialized answers (the flight menus): every copy carries the
time its rendering began, and no level serves a copy more than `seconds` after that, so what it shows
is at most that old anywhere, whichever process or level a copy came through. Redis failing only
costs a rendering.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from cachetools import TLRUCache

from skycart.config import Settings
from skycart.platform.singleflight import SingleFlight

log = logging.getLogger("skycart.cache")
CacheKey = tuple[str | None, ...]
_STAMP = struct.Struct(">d")  # the rendering's wall-clock start, ahead of the body in Redis


# A copy past this share of its life is rendered again in the background while it is still served, so a
# busy key never expires with requests waiting on its next rendering.
REFRESH_AT = 0.5
Render = Callable[[], Awaitable[bytes]]


@dataclass(slots=True)
class _Copy:
    body: bytes
    rendered_at: float  # wall clock, when its rendering began
    expires: float  # monotonic: not served from then on
    refresh_at: float  # monotonic: the first read from then on renders the next copy
    render: Render | None  # how to render the next one; None once that has started


def _expiry(_key: Hashable, entry: _Copy, _now: float) -> float:
    return entry.expires


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
        self.local: TLRUCache[CacheKey, _Copy] = TLRUCache(maxsize, ttu=_expiry)
        self.renders = 0
        self.refreshes = 0
        self.shared_hits = 0
        self.shared_errors = 0
        self._filling: SingleFlight[bytes] = SingleFlight()
        self._refreshing: set[asyncio.Task[None]] = set()

    def get(self, key: CacheKey) -> bytes | None:
        """The body held in this process, if still fresh: no I/O, no await. A copy past half its life
        starts the next rendering in the background and is served meanwhile."""
        entry = self.local.get(key)
        if entry is None:
            return None
        if entry.render is not None and time.monotonic() >= entry.refresh_at:
            self._refresh_soon(key, entry)
        return entry.body

    async def get_or_render(self, key: CacheKey, render: Render) -> bytes:
        body = self.get(key)
        if body is not None:
            return body
        # Concurrent misses of one menu share one Redis read and at most one rendering.
        return await self._filling.do(key, lambda: self._fill(key, render))

    def _refresh_soon(self, key: CacheKey, entry: _Copy) -> None:
        render, entry.render = entry.render, None  # one refresh per copy
        if render is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # read outside the event loop: the copy simply expires
            return
        task = loop.create_task(self._refresh(key, render, entry.rendered_at))
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)

    async def _refresh(self, key: CacheKey, render: Render, rendered_at: float) -> None:
        self.refreshes += 1
        try:
            await self._filling.do(key, lambda: self._fill(key, render, newer_than=rendered_at))
        except Exception as exc:  # the copy expires as it would have; the next miss renders
            log.warning(f"{self.namespace}_cache_refresh_failed", extra={"error": type(exc).__name__})

    async def _fill(self, key: CacheKey, render: Render, newer_than: float = 0.0) -> bytes:
        caching = self.seconds > 0
        if caching:
            shared = await self._shared_get(key, render, newer_than)
            if shared is not None:
                return shared
        self.renders += 1
        started = time.time()
        body = await render()
        if caching:
            self._keep(key, body, started, render)
            await self._shared_set(key, body, started)
        return body

    def _keep(self, key: CacheKey, body: bytes, rendered_at: float, render: Render) -> None:
        left = rendered_at + self.seconds - time.time()
        if left > 0:
            now = time.monotonic()
            self.local[key] = _Copy(body, rendered_at, now + left, now + left - self.seconds * (1 - REFRESH_AT), render)

    def _redis_key(self, key: CacheKey) -> str:
        return ":".join(("skycart", self.namespace, *(part or "" for part in key)))

    async def _shared_get(self, key: CacheKey, render: Render, newer_than: float) -> bytes | None:
        """A copy another process rendered, if fresh (and, for a refresh, newer than the one held)."""
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
        if time.time() - rendered_at >= self.seconds or rendered_at <= newer_than:
            return None
        body = stored[_STAMP.size :]
        self.shared_hits += 1
        self._keep(key, body, rendered_at, render)
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
