"""Per-request metrics and one log line per request (ASGI middleware).

Counted per route template, method and status (``vidsearch_api_requests_total``) with a latency
histogram (``vidsearch_api_request_seconds``). The log line carries method, route, status, the
key's *name* and the duration: never a header, so never a credential. Every answer carries
``Server-Timing: app;dur=MS``, the time from the request's arrival to its answer's headers; the
arrival itself is kept in the request's state (``arrived_s``) for the search's admission deadline.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.logs import get_logger

log = get_logger("vidsearch.api")
ARRIVED = "arrived_s"
"""``request.state.arrived_s``: the request's arrival, ``time.monotonic()`` (admission's deadline)."""
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RequestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("vidsearch_api_requests", "HTTP requests answered",
                                ["route", "method", "status"], registry=registry)
        self.seconds = Histogram("vidsearch_api_request_seconds", "HTTP request latency",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=registry)


class Observe:
    """ASGI middleware recording every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope.setdefault("state", {})[ARRIVED] = time.monotonic()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                took_ms = (time.perf_counter() - started) * 1000
                headers = [*message.get("headers", []), (b"server-timing", b"app;dur=%.2f" % took_ms)]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "(unmatched)"
        self.metrics.requests.labels(route, scope["method"], str(status)).inc()
        self.metrics.seconds.labels(route).observe(seconds)
        state = scope.get("state") or {}
        log.info("api_request", method=scope["method"], route=route, status=status,
                 key=state.get("key_name"), ms=round(seconds * 1000, 2))
