"""The checks a Celery process (worker, writer, beat) runs before it starts: Redis must not evict
(``pipeline/state/redis_checks.py``), and the app's own soft shutdown and visibility timeout must
cover every delay vidsearch uses. Any failure raises ``UnsafeSettingsError`` (exit 2)."""

from __future__ import annotations

from celery import Celery

from pipeline.clients import Clients
from pipeline.settings import Settings
from pipeline.state.redis_checks import check_redis, check_timing

KOMBU_VISIBILITY_DEFAULT_S = 3600.0
"""kombu's Redis transport default, when the app sets no ``visibility_timeout``."""


def check_start(celery_app: Celery, settings: Settings) -> None:
    """Refuse to start a Celery process whose Redis or Celery settings can lose work."""
    options = celery_app.conf.broker_transport_options or {}
    visibility = float(options.get("visibility_timeout", KOMBU_VISIBILITY_DEFAULT_S))
    soft = float(celery_app.conf.worker_soft_shutdown_timeout or 0.0)
    check_timing(settings, visibility, soft)
    with Clients.from_settings(settings) as clients:
        check_redis(clients.redis)
