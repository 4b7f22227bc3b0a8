"""Fleet counters: any process on any host records Twelve Labs calls and writer batches in Redis.

Small hooks call ``MetricsRecorder`` on every Twelve Labs call (``TwelveLabsGateway._call``) and on
every batch the writer upserts. Each event is one pipelined HINCRBY / HINCRBYFLOAT on the hash
``{prefix}:metrics``, so counters from every host add up and survive worker restarts. Recording
never breaks the pipeline: a Redis error is swallowed, logged once, and recording pauses for
``PAUSE_AFTER_ERROR_S``. ``from_settings`` gives the recorder its own client with 1 s timeouts,
apart from the pipeline's clients (``pipeline/clients.py``).

This module sits low (settings, errors and logs only): the Twelve Labs boundary and the writer
use it. The exporter that reads the hash back (``exporter.py``) sits above the whole pipeline.

Fields of ``{prefix}:metrics``:
    tl:{operation}:{outcome}      Twelve Labs calls (outcome: ok, rate_limited, transient,
                                  rejected, error)
    wb:count / wb:rows / wb:seconds            writer batches, their rows and seconds (sums)
    wb:rows_le:{bound} / wb:seconds_le:{bound} batches per histogram bucket (not cumulative;
                                  ``bucket_label`` of a bound in ROWS_BUCKETS / SECONDS_BUCKETS,
                                  or ``+Inf``)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import redis

from pipeline.connect import connect_redis
from pipeline.errors import ApiRejectedError, RateLimitedError, TransientError
from pipeline.logs import get_logger
from pipeline.settings import Settings

log = get_logger("vidsearch.metrics")

PAUSE_AFTER_ERROR_S = 30.0
ROWS_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000)
SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def metrics_key(prefix: str) -> str:
    """The hash every process records its counters in."""
    return f"{prefix}:metrics"


def call_outcome(exc: BaseException | None) -> str:
    """The ``outcome`` label of a Twelve Labs call that raised ``exc`` (already translated)."""
    if exc is None:
        return "ok"
    if isinstance(exc, RateLimitedError):
        return "rate_limited"
    if isinstance(exc, TransientError):
        return "transient"
    if isinstance(exc, ApiRejectedError):
        return "rejected"
    return "error"


def bucket_label(bound: float) -> str:
    """A histogram bound as the hash's field names and Prometheus's ``le`` label spell it."""
    return str(float(bound))


def _bucket(value: float, bounds: Sequence[float]) -> str:
    for bound in bounds:
        if value <= bound:
            return bucket_label(bound)
    return "+Inf"


class MetricsRecorder:
    """Counts events in ``{prefix}:metrics``; never raises."""

    def __init__(self, client: redis.Redis[bytes], prefix: str) -> None:
        self.r = client
        self.key = metrics_key(prefix)
        self._paused_until = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> MetricsRecorder:
        """A recorder with its own client (short timeouts; connects on first use, after fork)."""
        client = connect_redis(settings, socket_connect_timeout=1.0, socket_timeout=1.0)
        return cls(client, settings.redis_prefix)

    def twelve_labs_call(self, operation: str, exc: BaseException | None = None) -> None:
        self._send([("hincrby", f"tl:{operation}:{call_outcome(exc)}", 1)])

    def writer_batch(self, rows: int, seconds: float) -> None:
        self._send([
            ("hincrby", "wb:count", 1),
            ("hincrby", "wb:rows", rows),
            ("hincrbyfloat", "wb:seconds", seconds),
            ("hincrby", f"wb:rows_le:{_bucket(rows, ROWS_BUCKETS)}", 1),
            ("hincrby", f"wb:seconds_le:{_bucket(seconds, SECONDS_BUCKETS)}", 1),
        ])

    def _send(self, ops: Iterable[tuple[str, str, float]]) -> None:
        if time.monotonic() < self._paused_until:
            return
        try:
            pipe = self.r.pipeline(transaction=False)
            for op, name, amount in ops:
                getattr(pipe, op)(self.key, name, amount)
            pipe.execute()
        except redis.RedisError as exc:
            self._paused_until = time.monotonic() + PAUSE_AFTER_ERROR_S
            log.warning("metrics_record_failed", error=str(exc), paused_s=PAUSE_AFTER_ERROR_S)
