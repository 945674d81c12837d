"""One computation per key at a time: concurrent callers of a cold key share the first caller's result.

Without it, every request that finds a cache entry expired recomputes it at once (a thundering herd),
which on a busy process stalls the event loop for hundreds of milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """The computation runs in a task of its own, so no caller's cancellation reaches it or the others.

    Each caller awaits it through `asyncio.shield`: a caller that is cancelled (its request timed out,
    the server is stopping) stops waiting alone; the others still get the result, or the computation's
    own error.
    """

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Task[T]] = {}

    async def do(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(compute())
            self._running[key] = running
            running.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(running)

    def _finished(self, key: Hashable, done: asyncio.Task[T]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved: no "never retrieved" warning when every caller stopped waiting
