"""CSRF tokens for every form: an HMAC of a secret the browser holds only in an HttpOnly cookie.

Signed-in console pages derive the token from the session's own token, so it dies with the session;
the sign-in form and the storefront derive it from a random per-browser seed cookie. A cross-site page
can read neither cookie, so it cannot compute the token a form must carry.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

SEED_COOKIE = "skycart_csrf"
FIELD = "csrf_token"
_PURPOSE = b"skycart form"


class CsrfRejected(Exception):
    """A form arrived without the token its page was given."""


def token_for(secret: str) -> str:
    return hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).hexdigest()


def check(secret: str | None, sent: object) -> None:
    """Raise CsrfRejected unless `sent` is the token derived from `secret`."""
    if not secret or not isinstance(sent, str) or not hmac.compare_digest(token_for(secret), sent):
        raise CsrfRejected("the form's security token is missing or stale")


def seed(request: Request) -> tuple[str, bool]:
    """This browser's seed, and whether it is new (then the response must set it)."""
    current = request.cookies.get(SEED_COOKIE)
    if current and 20 <= len(current) <= 100:
        return current, False
    return secrets.token_urlsafe(32), True


def keep_seed(response: Response, value: str, *, secure: bool) -> None:
    response.set_cookie(SEED_COOKIE, value, httponly=True, secure=secure, samesite="lax", path="/")
