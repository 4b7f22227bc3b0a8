"""Request body size limits, enforced before and while a body is read.

``POST /v1/jobs`` may carry a manifest of up to ``api_max_manifest_bytes``; every other body is
capped at ``api_max_body_bytes``. A declared ``Content-Length`` over the cap is refused at once
(413, nothing read); a chunked body is counted as it arrives and refused the moment it passes the
cap (the receive wrapper raises ``ProblemError``, which the problem handlers answer).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidsearch.api.problems import ProblemError, problem_response

MANIFEST_PATH = "/v1/jobs"


def too_large(limit: int, what: str) -> ProblemError:
    return ProblemError(413, "body-too-large", "Request body too large",
                        f"the {what} is larger than {limit} bytes", limit=limit)


class BodyLimit:
    """ASGI middleware: 413 problem for a body over its route's cap."""

    def __init__(self, app: ASGIApp, body_bytes: int, manifest_bytes: int) -> None:
        self.app = app
        self.body_bytes = body_bytes
        self.manifest_bytes = manifest_bytes

    def _limit(self, scope: Scope) -> tuple[int, str]:
        if scope["method"] == "POST" and scope["path"].rstrip("/") == MANIFEST_PATH:
            return self.manifest_bytes, "manifest"
        return self.body_bytes, "request body"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, what = self._limit(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            exc = too_large(limit, what)
            response = problem_response(Request(scope), 413, exc.slug, exc.title, str(exc.detail),
                                        limit=limit)
            response.headers["connection"] = "close"
            await response(scope, receive, send)
            return
        await self.app(scope, _counting(receive, limit, what), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _counting(receive: Receive, limit: int, what: str) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_large(limit, what)
        return message

    return wrapped
