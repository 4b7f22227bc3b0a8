"""The clients every process needs, built in one place: ``Clients.from_settings(settings)``.

Each client is built on first use (so ``--help`` stays fast and a forked worker never inherits a
live connection) and ``close()`` closes every one that was built. The CLI, the demo, the backfill,
the workers and the HTTP server all take their Redis, job store, quota, Twelve Labs gateway,
Milvus store and embedding archive from here::

    with Clients.from_settings(settings) as clients:
        job = clients.jobs.get_job(job_id)
"""

from __future__ import annotations

import contextlib
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING

import redis

from pipeline.connect import connect_redis
from pipeline.ledger.store import JobStore
from pipeline.settings import Settings
from pipeline.state.keys import Keys
from pipeline.state.limits import Limits
from pipeline.state.quota import Quota
from pipeline.versions import Versions

if TYPE_CHECKING:
    from pipeline.archive.store import EmbeddingArchive
    from pipeline.milvus.store import MilvusStore
    from pipeline.twelvelabs import TwelveLabsGateway

REDIS_HEALTH_CHECK_S = 30


class Clients:
    """Redis, the job store, the quota, the Twelve Labs gateway and the Milvus store of one process."""

    def __init__(self, settings: Settings, store_timeout_s: float | None = None) -> None:
        self.settings = settings
        self.store_timeout_s = store_timeout_s

    @classmethod
    def from_settings(cls, settings: Settings, *, store_timeout_s: float | None = None) -> Clients:
        """``store_timeout_s`` bounds one Milvus call (default ``store.CALL_TIMEOUT_S``)."""
        return cls(settings, store_timeout_s)

    @cached_property
    def redis(self) -> redis.Redis[bytes]:
        return connect_redis(self.settings, health_check_interval=REDIS_HEALTH_CHECK_S)

    @cached_property
    def keys(self) -> Keys:
        return Keys(self.settings.redis_prefix)

    @cached_property
    def jobs(self) -> JobStore:
        s = self.settings
        if not s.redis_target.is_sentinel:
            return JobStore(self.redis, self.keys)
        return JobStore(self.redis, self.keys, wait_replicas=s.redis_wait_replicas,
                        wait_timeout_ms=s.redis_wait_timeout_ms)

    @cached_property
    def versions(self) -> Versions:
        """Model version records and pointers (``pipeline/versions.py``)."""
        return Versions(self.redis, self.keys, self.settings)

    @cached_property
    def quota(self) -> Quota:
        s = self.settings
        return Quota(self.redis, self.keys.quota, s.rate_limit_per_min, s.rate_burst)

    @cached_property
    def gateway(self) -> TwelveLabsGateway:
        from pipeline.twelvelabs import TwelveLabsGateway  # noqa: PLC0415  (the SDK loads slowly)

        return TwelveLabsGateway(self.settings, self.quota, limits=self.limits)

    @cached_property
    def limits(self) -> Limits:
        """The quota's window dimensions (``pipeline/state/limits.py``)."""
        return Limits(self.redis, self.keys.limits, self.settings)

    @cached_property
    def store(self) -> MilvusStore:
        from pipeline.milvus.store import MilvusStore  # noqa: PLC0415  (pymilvus loads slowly)

        if self.store_timeout_s is None:
            return MilvusStore(self.settings)
        return MilvusStore(self.settings, timeout_s=self.store_timeout_s)

    @cached_property
    def archive(self) -> EmbeddingArchive | None:
        """The embedding archive (``pipeline/archive``); ``None`` when ``archive_url`` is empty."""
        from pipeline.archive.store import EmbeddingArchive  # noqa: PLC0415  (pyarrow loads slowly)

        return EmbeddingArchive.from_settings(self.settings)

    def close(self) -> None:
        """Close every client that was built; the next use builds it again."""
        built = self.__dict__
        if "store" in built:
            built.pop("store").close()
        if "redis" in built:
            with contextlib.suppress(redis.RedisError):
                built.pop("redis").close()
        for name in ("keys", "jobs", "versions", "quota", "gateway", "archive"):
            built.pop(name, None)

    def __enter__(self) -> Clients:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
