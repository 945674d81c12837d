"""Rendering: the Jinja2 templates, security headers, and the route class that turns errors into pages."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.errors import DomainError
from skycart.platform.db import transaction
from skycart.platform.runtime import get_runtime
from skycart.web.csrf import CsrfRejected

log = logging.getLogger("skycart.web")

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/static/web"
PLOTLY_PATH = "/static/vendor/plotly.min.js"

# Scripts and styles come from this origin only; Plotly sets inline styles on the elements it draws.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # Pages show keys, orders and baskets: never kept by a browser or a shared cache.
    "Cache-Control": "no-store",
}


class SignInRequired(Exception):
    """The console page needs a signed-in user; the browser is sent to the sign-in form."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def plotly_bundle() -> Path:
    """The Plotly.js bundle the installed `plotly` package ships (found without importing the package)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


@lru_cache
def _static_versions() -> dict[str, str]:
    # A content hash in each static URL lets browsers cache the files for good.
    files = STATIC_DIR.iterdir() if STATIC_DIR.is_dir() else ()
    found = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12] for p in files if p.is_file()}
    found["plotly"] = version("plotly")
    return found


def static_url(name: str) -> str:
    return f"{STATIC_PREFIX}/{name}?v={_static_versions().get(name, '0')}"


def plotly_url() -> str:
    return f"{PLOTLY_PATH}?v={_static_versions()['plotly']}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(static_url=static_url, plotly_url=plotly_url)
    return env


templates = _environment()


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    html = templates.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status, headers=headers)


def secure_cookies(request: Request) -> bool:
    """Cookies get `Secure` when the browser reached us over HTTPS (directly or through the load balancer)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@asynccontextmanager
async def unit_of_work(request: Request, *, write: bool) -> AsyncIterator[AsyncSession]:
    """One transaction, committed or rolled back before the page is rendered (errors become pages)."""
    async with transaction(get_runtime(request).sessions, write=write) as session:
        yield session


def error_page(request: Request, *, status: int, title: str, detail: str) -> HTMLResponse:
    return render(request, "error.html", {"status": status, "title": title, "detail": detail}, status=status)


class HtmlRoute(APIRoute):
    """Answers with HTML pages: errors become error pages, a missing session a redirect to sign-in."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired as exc:
                response = see_other(f"/console/sign-in?next={quote(exc.next_path, safe='/')}")
            except CsrfRejected:
                response = error_page(
                    request,
                    status=403,
                    title="Form expired",
                    detail="The form's security token was missing or stale. Go back, reload the page and try again.",
                )
            except DomainError as exc:
                response = error_page(request, status=exc.status, title=exc.title, detail=exc.detail)
                response.headers.update(exc.headers)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
                where = ".".join(str(part) for part in first.get("loc", ()))
                response = error_page(request, status=422, title="Invalid input", detail=f"{where}: {first['msg']}")
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return page
