"""The web package's routes (kept out of the OpenAPI document) and its static files."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

from skycart.web import console, merchandising, operator, storefront
from skycart.web.pages import PLOTLY_PATH, STATIC_DIR, STATIC_PREFIX, plotly_bundle

router = APIRouter(include_in_schema=False)
for part in (console.router, operator.router, merchandising.router, storefront.router):
    router.include_router(part)


@router.get(PLOTLY_PATH)
async def plotly_js() -> FileResponse:
    """The charting library, from the installed `plotly` package: served here, never from a CDN."""
    return FileResponse(
        plotly_bundle(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"},
    )


def static_files() -> StaticFiles:
    # Not checked at start-up: an install without the package data still serves the API.
    return StaticFiles(directory=STATIC_DIR, check_dir=False)


__all__ = ["STATIC_PREFIX", "router", "static_files"]
