"""Request-scoped sessions: the transaction ends (commit or rollback) when the route returns,
before the response is sent, so a failed commit is never reported as a success."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.platform.db import transaction
from skycart.platform.runtime import get_runtime


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with transaction(get_runtime(request).sessions, write=False) as session:
        yield session


async def _write_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with transaction(get_runtime(request).sessions, write=True) as session:
        yield session


ReadSession = Annotated[AsyncSession, Depends(_read_session, scope="function")]
WriteSession = Annotated[AsyncSession, Depends(_write_session, scope="function")]
