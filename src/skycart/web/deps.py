"""Console dependencies: who is signed in, which role a page needs, and forms that carry their CSRF token."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from starlette.datastructures import FormData

from skycart.errors import Forbidden
from skycart.platform.db import utcnow
from skycart.platform.scope import AIRLINE
from skycart.platform.tenancy import Tenant
from skycart.web import csrf, sessions
from skycart.web.pages import SignInRequired, unit_of_work
from skycart.web.sessions import ConsoleUser

# Notices a redirect may ask a page to show; only these fixed texts, never text from the URL.
NOTICES = {
    "plan": "The plan was changed.",
    "revoked": "The key was revoked. It stops working everywhere within seconds.",
    "saved": "The product was saved.",
    "image": "The image was added.",
    "signed-out": "You are signed out.",
}


async def _console_user(request: Request) -> ConsoleUser:
    token = request.cookies.get(sessions.COOKIE)
    user = None
    if token:
        async with unit_of_work(request, write=False) as session:
            user = await sessions.signed_in(session, token=token, now=utcnow())
    if user is None:
        query = request.url.query
        raise SignInRequired(request.url.path + (f"?{query}" if query else ""))
    # Console traffic is metered under the airline (or the operator) it acts for, and never billed.
    request.scope[AIRLINE] = user.tenant.code if user.tenant else user.role
    return user


async def _operator(user: Annotated[ConsoleUser, Depends(_console_user)]) -> ConsoleUser:
    if not user.is_operator:
        raise Forbidden("this page is for the platform operator")
    return user


async def _airline(user: Annotated[ConsoleUser, Depends(_console_user)]) -> Tenant:
    if user.tenant is None:
        raise Forbidden("this page is for an airline; sign in with an airline key")
    return user.tenant


def check_origin(request: Request) -> None:
    """A browser's Origin on a form post must be this site's (defence in depth beside the token)."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise csrf.CsrfRejected("the form was posted from another site")


async def _posted_form(request: Request, user: Annotated[ConsoleUser, Depends(_console_user)]) -> FormData:
    check_origin(request)
    form = await request.form(max_files=0, max_fields=200)
    csrf.check(request.cookies.get(sessions.COOKIE), form.get(csrf.FIELD))
    return form


def check_query_token(request: Request, user: ConsoleUser) -> None:
    """Multipart uploads carry the token in the query string, so it is checked before the body is read."""
    check_origin(request)
    csrf.check(request.cookies.get(sessions.COOKIE), request.query_params.get(csrf.FIELD))


def console_context(request: Request, user: ConsoleUser, **extra: Any) -> dict[str, Any]:
    """What every console template gets: the user, its CSRF token, navigation and a notice."""
    if user.is_operator:
        nav = [("/console", "Overview")]
    else:
        nav = [("/console", "Overview"), ("/console/catalog", "Catalog"), ("/console/flights", "Flights")]
    notice = NOTICES.get(request.query_params.get("notice", ""))
    return {"user": user, "csrf_token": user.csrf_token, "nav": nav, "notice": notice, "path": request.url.path} | extra


ConsoleUserDep = Annotated[ConsoleUser, Depends(_console_user)]
OperatorUser = Annotated[ConsoleUser, Depends(_operator)]
AirlineUser = Annotated[Tenant, Depends(_airline)]
PostedForm = Annotated[FormData, Depends(_posted_form)]
