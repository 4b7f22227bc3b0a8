"""The app factory: routes, middlewares, problem handlers, the page and the OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry

from pipeline.metrics.exporter import RedisCollector
from pipeline.settings import Settings
from vidsearch.api import (
    openapi,
    problems,
    routes_analytics,
    routes_jobs,
    routes_ops,
    routes_posters,
    routes_search,
)
from vidsearch.api.context import ApiContext
from vidsearch.api.limits import BodyLimit
from vidsearch.api.observe import Observe, RequestMetrics

STATIC = Path(__file__).resolve().parent / "static"
THREADS = 64
"""Thread-pool size for the blocking handlers (more than the 32 concurrent clients benchmarked)."""
DESCRIPTION = """Search ingested videos by meaning and manage ingest jobs.

Authenticate with `Authorization: Bearer KEY` or `X-API-Key: KEY` (read keys: search and
analytics; admin keys: everything). Every error is RFC 9457 problem JSON (`application/problem+json`)."""


def create_app(settings: Settings, ctx: ApiContext | None = None) -> FastAPI:
    context = ctx or ApiContext.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        await anyio.to_thread.run_sync(context.warm)
        try:
            yield
        finally:
            context.close()

    app = FastAPI(title="vidsearch", version="1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.ctx = context
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(context.clients.redis, settings))
    app.state.registry = registry
    problems.install(app)
    for router in (routes_search.router, routes_posters.router, routes_jobs.router, routes_analytics.router,
                   routes_ops.router):
        app.include_router(router)
    _page(app)
    app.add_middleware(BodyLimit, body_bytes=settings.api_max_body_bytes,
                       manifest_bytes=settings.api_max_manifest_bytes)
    app.add_middleware(Observe, metrics=RequestMetrics(registry))
    openapi.install(app)
    return app


def _page(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})
