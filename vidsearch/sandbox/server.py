"""The sandbox's HTTP server: app factory, middlewares, ``run`` and ``main``.

Every API route is served both under ``/v1.3`` and bare (the SDK joins paths onto whatever base
URL it is given). Two middlewares wrap the handlers:

- ``observe`` (outer): turns ``ApiFailure`` into JSON error answers and counts every answer per
  route template and status;
- ``gate`` (API routes only): ``x-api-key`` check, then the injected faults (slow, 429, 5xx).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from vidsearch.sandbox import admin, routes_v1, routes_v2, video_files
from vidsearch.sandbox.catalog import CatalogError
from vidsearch.sandbox.config import SandboxConfig, build_parser, from_args
from vidsearch.sandbox.errors import ApiFailure, unauthorized
from vidsearch.sandbox.state import SANDBOX, Sandbox

log = logging.getLogger("sandbox")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API_PREFIXES = ("", "/v1.3")
# Routes whose OpenAPI error schema is the nested ErrorResponse (used with --error-style nested).
NESTED_ROUTES = frozenset({"POST /embed-v2", "POST /embed-v2/tasks", "GET /embed-v2/tasks/{task_id}"})
FIVE_XX = (500, 502, 503, 504)


def route_key(request: web.Request) -> str:
    """``"METHOD /template"`` without the version prefix (``unmatched`` for unknown paths)."""
    resource = request.match_info.route.resource
    if resource is None:
        return f"{request.method} (unmatched)"
    return f"{request.method} {resource.canonical.removeprefix('/v1.3')}"


def error_response(failure: ApiFailure, route: str, style: str) -> web.Response:
    nested = style == "nested" and route in NESTED_ROUTES and failure.status != 401
    body = failure.body("nested" if nested else "flat")
    return web.json_response(body, status=failure.status, headers=failure.headers)


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    box = request.app[SANDBOX]
    route = route_key(request)
    try:
        response = await handler(request)
    except ApiFailure as failure:
        response = error_response(failure, route, box.config.error_style)
    except web.HTTPException as exc:
        closed = request.transport is None or request.transport.is_closing()
        _count(box, request, route, "dropped" if closed else exc.status)
        raise
    _count(box, request, route, response.status)
    return response


def _count(box: Sandbox, request: web.Request, route: str, status: int | str) -> None:
    box.stats.record(route, status)
    if box.config.log_requests:
        log.info("%s %s -> %s", request.method, request.path_qs, status)


@web.middleware
async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/_sandbox/") or request.match_info.http_exception is not None:
        return await handler(request)
    box = request.app[SANDBOX]
    _check_key(request, box)
    await _inject(box)
    return await handler(request)


def _check_key(request: web.Request, box: Sandbox) -> None:
    key = request.headers.get("x-api-key", "")
    accepted = box.config.api_keys
    if not key or (accepted and key not in accepted):
        box.stats.unauthorized += 1
        raise unauthorized()


async def _inject(box: Sandbox) -> None:
    config, dice = box.config, box.dice
    if dice.roll("slow", config.slow_rate):
        box.stats.slowed += 1
        await asyncio.sleep(config.slow_s)
    if dice.roll("429", config.rate_429):
        box.stats.rate_limited += 1
        box.stats.rate_limited_injected += 1
        raise box.too_many(None)
    if dice.roll("5xx", config.rate_5xx):
        box.stats.injected_5xx += 1
        status = dice.stream("5xx-status").choice(FIVE_XX)
        raise ApiFailure(status, "internal_error",
                         "The embedding service is temporarily unstable. Please try again later.")


def make_app(config: SandboxConfig) -> web.Application:
    """The aiohttp application of one sandbox."""
    app = web.Application(middlewares=[observe, gate], client_max_size=64 * 1024**2)
    app[SANDBOX] = Sandbox(config)
    for prefix in API_PREFIXES:
        for method, path, handler in [*routes_v2.routes(), *routes_v1.routes()]:
            app.router.add_route(method, prefix + path, handler)
    for method, path, handler in [*admin.routes(), *video_files.routes()]:
        app.router.add_route(method, path, handler)
    app[video_files.LOCKS] = {}
    app.on_startup.append(_announce)
    return app


async def _announce(app: web.Application) -> None:
    config = app[SANDBOX].config
    log.info("sandbox serving on http://%s:%s (SDK base URL http://%s:%s/v1.3)",
             config.host, config.port, config.host, config.port)


def run(ns: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM with the options in ``ns`` (filled by ``build_parser``)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = from_args(ns)
        app = make_app(config)
    except (ValueError, OSError, CatalogError) as exc:
        log.error("sandbox cannot start: %s", exc)
        return 2
    web.run_app(app, host=config.host, port=config.port, access_log=None, print=None,
                shutdown_timeout=1.0)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m vidsearch.sandbox [options]``."""
    parser = argparse.ArgumentParser(
        prog="sandbox",
        description="A local stand-in for the Twelve Labs Embed API (v2 and v1) with "
        "deterministic embeddings, quotas and injected faults. Admin API under /_sandbox/.",
    )
    build_parser(parser)
    return run(parser.parse_args(argv))
