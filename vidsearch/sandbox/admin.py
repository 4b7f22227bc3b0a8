"""The admin API under ``/_sandbox/`` (no key needed): counters, configuration, reset.

- ``GET /_sandbox/stats``: counters (see ``sandbox.stats``);
- ``GET /_sandbox/config``: the running configuration (keys masked);
- ``POST /_sandbox/config``: a JSON subset of the options, applied at once
  (``{"rate_429": 0.2, "create_rpm": 60}``); answers ``{"changed": [...], "config": {...}}``;
- ``POST /_sandbox/reset``: forget tasks and counters, re-seed the dice, refill the buckets;
- ``GET /_sandbox/clock``, ``POST /_sandbox/clock`` ``{"advance_s": N}``: the sandbox clock, moved
  forward by N seconds (tasks finish, windows roll over and results expire as if N seconds passed);
- ``GET /_sandbox/limits``: the organisation-limit windows (limit, used, reset);
- ``GET /_sandbox/health``: ``{"ok": true}``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vidsearch.sandbox.errors import invalid
from vidsearch.sandbox.routes_v2 import json_body
from vidsearch.sandbox.state import SANDBOX


async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[SANDBOX].stats.snapshot())


async def get_config(request: web.Request) -> web.Response:
    return web.json_response(request.app[SANDBOX].config.public())


async def post_config(request: web.Request) -> web.Response:
    box = request.app[SANDBOX]
    changes = await json_body(request)
    if not isinstance(changes, dict):
        raise invalid("POST /_sandbox/config takes a JSON object of option -> value.")
    try:
        changed = box.reconfigure(changes)
    except ValueError as exc:
        raise invalid(str(exc)) from exc
    return web.json_response({"changed": changed, "config": box.config.public()})


async def reset(request: web.Request) -> web.Response:
    request.app[SANDBOX].reset()
    return web.json_response({"reset": True})


async def get_clock(request: web.Request) -> web.Response:
    clock = request.app[SANDBOX].clock
    return web.json_response({"now": clock.now(), "offset_s": clock.offset_s})


async def post_clock(request: web.Request) -> web.Response:
    body = await json_body(request)
    advance = body.get("advance_s") if isinstance(body, dict) else None
    if isinstance(advance, bool) or not isinstance(advance, int | float) or advance < 0:
        raise invalid('POST /_sandbox/clock takes {"advance_s": seconds >= 0}.')
    request.app[SANDBOX].clock.advance(float(advance))
    return await get_clock(request)


async def limits(request: web.Request) -> web.Response:
    return web.json_response(request.app[SANDBOX].org.snapshot())


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def routes() -> list[tuple[str, str, Any]]:
    return [
        ("GET", "/_sandbox/stats", stats),
        ("GET", "/_sandbox/config", get_config),
        ("POST", "/_sandbox/config", post_config),
        ("POST", "/_sandbox/reset", reset),
        ("GET", "/_sandbox/health", health),
        ("GET", "/_sandbox/clock", get_clock),
        ("POST", "/_sandbox/clock", post_clock),
        ("GET", "/_sandbox/limits", limits),
    ]
