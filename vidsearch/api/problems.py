"""Every error answer is RFC 9457 problem JSON (``application/problem+json``).

``type`` is ``urn:vidsearch:problem:{slug}`` (``about:blank`` for plain HTTP errors such as an
unknown path), ``title`` is fixed per type, ``detail`` says what to change, ``instance`` is the
request path; extensions carry numbers a client acts on (``limit``, ``retry_after_s``, ``errors``).
No answer ever echoes a credential: details are built from names and limits, never from headers,
and validation errors drop the offending input.

``ProblemError`` subclasses Starlette's ``HTTPException`` on purpose: FastAPI re-raises an
``HTTPException`` met while reading a body (a too large body is detected there) instead of turning
it into a generic 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

from pipeline.logs import get_logger

log = get_logger("vidsearch.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:vidsearch:problem:"


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


class ProblemError(HTTPException):
    """Raise anywhere in a request to answer with a problem."""

    def __init__(
        self, status: int, slug: str, title: str, detail: str,
        headers: Mapping[str, str] | None = None, **extensions: Any,
    ) -> None:
        super().__init__(status_code=status, detail=detail, headers=dict(headers or {}))
        self.slug = slug
        self.title = title
        self.extensions = extensions


def problem_response(
    request: Request | None, status: int, slug: str | None, title: str, detail: str, *,
    headers: Mapping[str, str] | None = None, **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"{TYPE_PREFIX}{slug}" if slug else "about:blank",
        "title": title, "status": status, "detail": detail,
        "instance": request.url.path if request is not None else None,
        **extensions,
    }
    return JSONResponse(body, status_code=status, headers=dict(headers or {}),
                        media_type=PROBLEM_MEDIA_TYPE)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if isinstance(exc, ProblemError):
        return problem_response(request, exc.status_code, exc.slug, exc.title, str(exc.detail),
                                headers=exc.headers, **exc.extensions)
    title = _PLAIN_TITLES.get(exc.status_code, "Error")
    return problem_response(request, exc.status_code, None, title, str(exc.detail), headers=exc.headers)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    where = ", ".join(".".join(e["loc"]) for e in errors[:5])
    return problem_response(request, 422, "invalid-request", "Invalid request",
                            f"the request does not match the API: {where}", errors=errors)


async def _on_redis(request: Request, exc: Exception) -> JSONResponse:
    log.warning("api_redis_unavailable", path=request.url.path, error_type=type(exc).__name__)
    return problem_response(request, 503, "unavailable", "Service unavailable",
                            "Redis cannot be reached; retry later", headers={"Retry-After": "5"},
                            retry_after_s=5)


async def _on_crash(request: Request, exc: Exception) -> JSONResponse:
    log.error("api_unhandled_error", path=request.url.path, error_type=type(exc).__name__)
    return problem_response(request, 500, "internal", "Internal error",
                            "the server failed; the error is in its log")


_PLAIN_TITLES = {404: "Not Found", 405: "Method Not Allowed", 400: "Bad Request"}


def install(app: FastAPI) -> None:
    """Route every error of ``app`` through problem JSON."""
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(redis.RedisError, _on_redis)
    app.add_exception_handler(Exception, _on_crash)
