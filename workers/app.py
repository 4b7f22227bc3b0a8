"""The Celery app: three named queues, JSON only, late acks, one message at a time per process.

Queues: ``embedding`` (task creation, paid), ``polling`` (status checks), ``writing`` (draining the
segment stream into Milvus). The scheduler tick is no task: every worker runs it in a thread
(``workers/ticker.py``), so beat has nothing to send unless a schedule file adds a rare entry
(``config/beat_schedule.py``) and Flower's history holds the pipeline's own tasks. The broker's
visibility timeout is above every lease and delay vidsearch uses (checked at start,
``pipeline/state/redis_checks.py``); no message is ever scheduled with an ETA.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from celery import Celery
from kombu.entity import Queue

from pipeline.errors import ConfigError
from pipeline.settings import Settings, get_settings

QUEUES = ("embedding", "polling", "writing")
ROUTES = {
    "vidsearch.create_embedding": {"queue": "embedding"},
    "vidsearch.poll_embedding": {"queue": "polling"},
    "vidsearch.write_segments": {"queue": "writing"},
}


def create_app(settings: Settings) -> Celery:
    url, transport_options = broker(settings)
    app = Celery("vidsearch", broker=url, include=["workers.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue="polling",
        task_routes=ROUTES,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_soft_shutdown_timeout=settings.worker_soft_shutdown_s,
        timezone="UTC",
        beat_schedule={},
    )
    return app


def broker(settings: Settings) -> tuple[str, dict[str, Any]]:
    """Celery's broker URL and transport options for ``redis_url``: the URL itself, or for a
    ``redis+sentinel://`` one kombu's Sentinel transport (``sentinel://h1:p1;sentinel://h2:p2/db``,
    the service as ``master_name``, the Sentinels' password in ``sentinel_kwargs``), which asks the
    Sentinels for the primary at each (re)connection. Flower reads the same two values."""
    options: dict[str, Any] = {"visibility_timeout": settings.visibility_timeout_s}
    target = settings.redis_target
    if not target.is_sentinel:
        return settings.redis_url, options
    auth = f":{quote(target.password, safe='')}@" if target.password else ""
    url = ";".join(
        f"sentinel://{auth}{_host(host)}:{port}/{target.db}" for host, port in target.sentinels
    )
    options["master_name"] = target.service_name
    if settings.redis_sentinel_password is not None:
        options["sentinel_kwargs"] = {"password": settings.redis_sentinel_password.get_secret_value()}
    return url, options


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def load_schedule(celery_app: Celery, path: Path | None) -> None:
    """Load a beat schedule file (``config/beat_schedule.py``): its tasks register on
    ``celery_app`` and its ``BEAT_SCHEDULE`` entries become the app's schedule. Beat and the workers
    that run those tasks load the same file."""
    if path is None:
        return
    spec = importlib.util.spec_from_file_location("vidsearch_beat_schedule", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise ConfigError(f"cannot load beat schedule file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    extra = getattr(module, "BEAT_SCHEDULE", {})
    celery_app.conf.beat_schedule = {**celery_app.conf.beat_schedule, **extra}


app = create_app(get_settings())
