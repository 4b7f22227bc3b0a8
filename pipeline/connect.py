"""Open a Redis client on ``settings.redis_url``, a plain one or a Sentinel set's primary.

A plain URL goes through redis-py's ``from_url``; a ``redis+sentinel://`` one through redis-py's
Sentinel client, whose connections ask the Sentinels for the current primary each time they
(re)connect, so a promoted replica is found without a restart. ``pipeline/clients.py`` and the
metrics modules' own short-timeout clients call this; nothing else opens Redis.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.sentinel import Sentinel

from pipeline.settings import Settings

SENTINEL_TIMEOUT_S = 2.0
"""Socket timeouts of one question to one Sentinel (a dead Sentinel is skipped after it)."""


def connect_redis(settings: Settings, **options: Any) -> redis.Redis[bytes]:
    """A client of the primary; ``options`` are redis-py connection options (timeouts, health checks)."""
    target = settings.redis_target
    if not target.is_sentinel:
        return redis.Redis.from_url(settings.redis_url, **options)
    secret = settings.redis_sentinel_password
    sentinel_kwargs = {
        "password": secret.get_secret_value() if secret else None,
        "socket_timeout": SENTINEL_TIMEOUT_S,
        "socket_connect_timeout": SENTINEL_TIMEOUT_S,
    }
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_kwargs)
    client: redis.Redis[bytes] = sentinel.master_for(
        target.service_name, db=target.db, password=target.password, **options
    )
    return client
