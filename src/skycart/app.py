"""create_app(settings) -> FastAPI. The lifespan owns the engine and everything with a lifetime."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.staticfiles import StaticFiles

from skycart import lifecycle
from skycart.airlines.auth import KeyBeforeBody, OperatorKey
from skycart.airlines.endpoints import admin as airlines_admin
from skycart.airlines.endpoints import v1 as airlines_v1
from skycart.billing.endpoints import routers as billing_routers
from skycart.catalog.endpoints import router as catalog_router
from skycart.config import OFFLINE_BATCH_BYTES, Settings, get_settings
from skycart.errors import ServiceUnavailable, install_error_handlers, problem_responses
from skycart.events.delivery import DeliveryCollector
from skycart.events.endpoints import router as events_router
from skycart.flights.endpoints import router as flights_router
from skycart.flights.fastpath import answer as warm_menu
from skycart.metering.aggregate import UsageAggregator
from skycart.metering.exporters import UsageCollector
from skycart.metering.middleware import MeteringMiddleware
from skycart.orders.endpoints import router as orders_router
from skycart.orders.payments import provider_for
from skycart.platform.assets import LOCAL_PREFIX, assets_for
from skycart.platform.bodies import BodyLimit
from skycart.platform.db import create_engine, create_sessionmaker
from skycart.platform.logging import configure_logging, ship_to_cloudwatch, stop_shipping
from skycart.platform.runtime import Runtime
from skycart.platform.uploads import FRAMING_BYTES
from skycart.web import endpoints as web

DESCRIPTION = """Inflight e-commerce for many airlines.

Authenticate with the `X-Api-Key` header. Errors are `application/problem+json` (RFC 9457) with a
stable `code`. Money is a decimal string with an ISO-4217 `currency`. Lists take `limit` and an
opaque `cursor`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        shipping = ship_to_cloudwatch(settings)
        engine = create_engine(settings)
        assets = await asyncio.to_thread(assets_for, settings)  # boto3 builds its client slowly, and only once
        app.state.runtime = Runtime(
            settings=settings,
            engine=engine,
            sessions=create_sessionmaker(engine),
            payments=provider_for(settings.payment_provider, sandbox_slow_seconds=settings.sandbox_slow_seconds),
            assets=assets,
        )
        started = await lifecycle.start(app.state.runtime, aggregator)
        # Everything built at start-up lives as long as the process: keep it out of every future GC pass.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await lifecycle.stop(started)
            if app.state.runtime.redis is not None:
                await app.state.runtime.redis.aclose()
            await engine.dispose()
            await asyncio.to_thread(assets.close)
            await asyncio.to_thread(stop_shipping, shipping)

    app = FastAPI(
        title="SkyCart",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # No OpenTelemetry here: metering and EMF are the metrics; this also spares a check per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    # Inside the error handling, so a failure in either is answered like any other: bodies are bounded
    # (inner), and a request with a body is authenticated before a byte of it is read (outer).
    app.add_middleware(BodyLimit, default=settings.max_json_bytes, larger=larger_bodies(settings))
    app.add_middleware(KeyBeforeBody)
    install_error_handlers(app)
    aggregator = UsageAggregator()
    # Added last, so outermost: it also meters what the error handlers answer. A warm menu is answered
    # by its own hand (limited and counted like any request, without the app's wrappers). With metering
    # switched off it still gives every request its id and access-log line.
    app.add_middleware(
        MeteringMiddleware,
        aggregator=aggregator if settings.metering_enabled else None,
        access_log_enabled=settings.access_log,
        answer=warm_menu if settings.menu_cache_seconds > 0 else None,
    )
    for router in (
        airlines_admin,
        airlines_v1,
        catalog_router,
        flights_router,
        orders_router,
        events_router,
        *billing_routers,
    ):
        app.include_router(router)
    app.include_router(web.router, include_in_schema=False)
    app.mount(web.STATIC_PREFIX, web.static_files(), name="web-static")
    if not settings.assets_bucket:
        # Embedded mode serves its own image files; StaticFiles refuses paths outside the folder.
        app.mount(LOCAL_PREFIX, StaticFiles(directory=settings.assets_dir.resolve(), check_dir=False), name="assets")

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses=problem_responses(503))
    async def readyz() -> dict[str, str]:
        """Ready when the database and, if configured, Redis answer (each within 2 s)."""
        runtime: Runtime = app.state.runtime
        try:
            async with asyncio.timeout(2), runtime.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            raise ServiceUnavailable("database unreachable") from exc
        redis = runtime.redis
        if redis is None:
            return {"status": "ready", "database": "ok"}
        try:
            async with asyncio.timeout(2):
                await redis.ping()
        except Exception as exc:
            raise ServiceUnavailable("redis unreachable") from exc
        return {"status": "ready", "database": "ok", "redis": "ok"}

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={
            **problem_responses(401, 403),
            200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"},
        },
    )
    async def metrics(_op: OperatorKey) -> Response:
        """Usage, limiter and cache counters of this process, in Prometheus text (operator key)."""
        runtime: Runtime = app.state.runtime
        started: lifecycle.Started = runtime.lifecycle
        registry = CollectorRegistry(auto_describe=False)
        registry.register(UsageCollector(started.aggregator, started.flusher, started.limiter, runtime.menus))
        if started.deliveries is not None:
            registry.register(DeliveryCollector(started.deliveries))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def larger_bodies(settings: Settings) -> list[tuple[str, int]]:
    """The routes whose bodies may be larger than SKYCART_MAX_JSON_BYTES (path patterns, limits).

    Each of them also enforces its own setting while it reads (imports, images).
    """
    image = settings.max_image_bytes + FRAMING_BYTES
    return [
        (r"/v1/products:import", settings.max_request_bytes),
        (r"/v1/sync/sales", OFFLINE_BATCH_BYTES),
        (r"/v1/products/[^/]+/images", image),
        (r"/console/catalog/[^/]+/images", image),
    ]
