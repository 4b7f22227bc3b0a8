"""Counters served at ``GET /_sandbox/stats``.

``tasks_by_url`` proves "one paid task per item"; ``requests`` counts answers per
``"METHOD /route-template"`` (version prefix removed) and status (``dropped`` for connections
closed without an answer).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    """Everything the sandbox counts since start or the last reset."""

    tasks_created: int = 0
    tasks_by_url: Counter[str] = field(default_factory=Counter)
    tasks_by_model: Counter[str] = field(default_factory=Counter)
    requests: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    rate_limited: int = 0
    rate_limited_bucket: int = 0
    rate_limited_injected: int = 0
    rate_limited_org: Counter[str] = field(default_factory=Counter)
    media_minutes: float = 0.0
    input_tokens: int = 0
    injected_5xx: int = 0
    slowed: int = 0
    dropped_after_create: int = 0
    status_polls: int = 0
    unauthorized: int = 0

    def record(self, route: str, status: int | str) -> None:
        self.requests[route][str(status)] += 1

    def created(self, source: str, model: str) -> None:
        self.tasks_created += 1
        self.tasks_by_url[source] += 1
        self.tasks_by_model[model] += 1

    def snapshot(self) -> dict[str, Any]:
        """The counters as JSON."""
        return {
            "tasks_created": self.tasks_created,
            "tasks_by_url": dict(self.tasks_by_url),
            "tasks_by_model": dict(self.tasks_by_model),
            "requests": {route: dict(codes) for route, codes in sorted(self.requests.items())},
            "rate_limited": self.rate_limited,
            "rate_limited_bucket": self.rate_limited_bucket,
            "rate_limited_injected": self.rate_limited_injected,
            "rate_limited_org": dict(self.rate_limited_org),
            "media_minutes": round(self.media_minutes, 3),
            "input_tokens": self.input_tokens,
            "injected_5xx": self.injected_5xx,
            "slowed": self.slowed,
            "dropped_after_create": self.dropped_after_create,
            "status_polls": self.status_polls,
            "unauthorized": self.unauthorized,
        }
