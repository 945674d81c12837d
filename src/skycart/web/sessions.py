"""Console sign-in: an API key is exchanged for a server-side session held in the database.

The cookie carries a random token; the database keeps its SHA-256 only, so sessions work across
processes and a copy of the table opens none. A session ends at sign-out, at expiry, or as soon as
its key is revoked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from skycart.airlines import service as airlines
from skycart.airlines.service import ROLE_OPERATOR
from skycart.platform.tenancy import Tenant
from skycart.web import csrf, repository
from skycart.web.models import WebSession

COOKIE = "skycart_session"


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """Who is signed in to the console: the operator, or one airline (then `tenant` is set)."""

    session_id: str
    key_id: str
    role: str
    tenant: Tenant | None
    csrf_token: str
    expires_at: datetime

    @property
    def is_operator(self) -> bool:
        return self.role == ROLE_OPERATOR


def session_id_of(token: str) -> str:
    # Tokens carry 256 bits of randomness, so a fast hash is as safe as a slow one here.
    return hashlib.sha256(token.encode()).hexdigest()


async def sign_in(session: AsyncSession, *, plain_key: str, now: datetime, lifetime: timedelta) -> str | None:
    """A new session's cookie token for a live key, or None for an unknown or revoked key."""
    principal = await airlines.authenticate(session, plain=plain_key)
    if principal is None:
        return None
    await repository.delete_expired_sessions(session, now)
    token = secrets.token_urlsafe(32)
    await repository.add_session(
        session, WebSession(id=session_id_of(token), key_id=principal.key_id, created_at=now, expires_at=now + lifetime)
    )
    return token


async def signed_in(session: AsyncSession, *, token: str, now: datetime) -> ConsoleUser | None:
    """The user behind a cookie token, while the session is unexpired and its key unrevoked."""
    found = await repository.live_session(session, session_id_of(token), now)
    if found is None:
        return None
    key, airline_code, expires_at = found
    tenant = Tenant(id=key.airline_id, code=airline_code) if key.airline_id and airline_code else None
    if tenant is None and key.role != ROLE_OPERATOR:
        return None
    return ConsoleUser(
        session_id=session_id_of(token),
        key_id=key.id,
        role=key.role,
        tenant=tenant,
        csrf_token=csrf.token_for(token),
        expires_at=expires_at,
    )


async def sign_out(session: AsyncSession, *, token: str) -> None:
    await repository.delete_session(session, session_id_of(token))
