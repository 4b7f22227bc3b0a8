"""Who may call what: API keys (read or admin), the loopback-only mode, the per-key request rate.

A key comes in ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``. With no key configured the
server answers loopback clients only (``vidsearch serve`` also binds to loopback then), as the
built-in admin ``local``. Every ``/v1`` request then takes one token from its key's bucket in Redis
(``api_rate_per_min``, ``api_rate_burst``); an empty bucket answers 429 with ``Retry-After``.
Answers name the key (its ``name``), never the key itself.
Identification is CPU only and runs on the loop; the rate's Redis call runs in the thread pool
(search routes make it in the same thread-pool call as the search).
"""

from __future__ import annotations

import ipaddress
import math

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from vidsearch.api.context import ApiContext
from vidsearch.api.keys import ApiKey, Role
from vidsearch.api.problems import ProblemError

LOCAL = ApiKey("local", "admin", "")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="vidsearch"'}


def is_loopback(host: str | None) -> bool:
    if host in ("localhost", "testclient"):
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or None


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, "unauthorized", "Unauthorized", detail, headers=CHALLENGE)


def identify(ctx: ApiContext, request: Request) -> ApiKey:
    """The caller's key, or 401."""
    if not ctx.keyring:
        if is_loopback(request.client.host if request.client else None):
            return LOCAL
        raise _unauthorized("no API key is configured: this server answers loopback clients only")
    presented = presented_key(request)
    if presented is None:
        raise _unauthorized("send an API key: 'Authorization: Bearer KEY' or 'X-API-Key: KEY'")
    key = ctx.keyring.authenticate(presented)
    if key is None:
        raise _unauthorized("the API key is not valid")
    return key


def charge(ctx: ApiContext, key: ApiKey) -> None:
    """Take one request token of ``key``'s bucket, or 429 with Retry-After."""
    grant = ctx.bucket(key.name).take(1)
    if grant.granted:
        return
    retry_after = max(1, math.ceil(grant.wait_s))
    raise ProblemError(
        429, "rate-limited", "Too many requests",
        f"the key {key.name!r} is over {ctx.settings.api_rate_per_min:g} requests per minute; "
        f"retry after {retry_after} s",
        headers={"Retry-After": str(retry_after)}, retry_after_s=retry_after,
        limit_per_min=ctx.settings.api_rate_per_min,
    )


def permit(request: Request, needed: Role) -> ApiKey:
    """The caller's key if it may call a ``needed`` route (CPU only: a hash and compares)."""
    ctx: ApiContext = request.app.state.ctx
    key = identify(ctx, request)
    if not key.allows(needed):
        raise ProblemError(403, "forbidden", "Forbidden",
                           f"the key {key.name!r} is read-only; this route needs an admin key")
    request.state.key_name = key.name
    return key


async def read_identity(request: Request) -> ApiKey:
    """Dependency of routes that charge the rate themselves, in their own thread-pool call
    (search: one thread hop per request instead of two)."""
    return permit(request, "read")


async def read_access(request: Request) -> ApiKey:
    """Dependency: any valid key, charged (metrics)."""
    key = permit(request, "read")
    await run_in_threadpool(charge, request.app.state.ctx, key)
    return key


async def admin_access(request: Request) -> ApiKey:
    """Dependency: an admin key, charged (jobs)."""
    key = permit(request, "admin")
    await run_in_threadpool(charge, request.app.state.ctx, key)
    return key
