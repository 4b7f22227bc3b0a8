"""The checks a Celery process (worker, writer, beat) runs before it starts: Redis must not evict
(``pipeline/state/redis_checks.py``), and the app's own soft shutdown and visibility timeout must
cover every delay vidsearch uses. Any failure raises ``UnsafeSettingsError`` (exit 2). A Redis
that cannot be reached yet is waited for (as Celery waits for its broker), then checked."""

from __future__ import annotations

import time

import redis
from celery import Celery

from pipeline.clients import Clients
from pipeline.logs import get_logger
from pipeline.settings import Settings
from pipeline.state.redis_checks import check_redis, check_timing

log = get_logger("vidsearch.checks")

KOMBU_VISIBILITY_DEFAULT_S = 3600.0
"""kombu's Redis transport default, when the app sets no ``visibility_timeout``."""
REDIS_WAIT_MAX_BACKOFF_S = 30.0


def check_start(celery_app: Celery, settings: Settings) -> None:
    """Refuse to start a Celery process whose Redis or Celery settings can lose work."""
    options = celery_app.conf.broker_transport_options or {}
    visibility = float(options.get("visibility_timeout", KOMBU_VISIBILITY_DEFAULT_S))
    soft = float(celery_app.conf.worker_soft_shutdown_timeout or 0.0)
    check_timing(settings, visibility, soft)
    _check_redis_once_reachable(settings)


def _check_redis_once_reachable(settings: Settings) -> None:
    backoff_s = 1.0
    while True:
        try:
            with Clients.from_settings(settings) as clients:
                check_redis(clients.redis)
            return
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("redis_unreachable_at_start", error=str(exc), retry_in_s=backoff_s)
        time.sleep(backoff_s)
        backoff_s = min(2 * backoff_s, REDIS_WAIT_MAX_BACKOFF_S)
