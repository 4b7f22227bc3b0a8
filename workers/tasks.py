"""Thin Celery tasks: parse the payload (ids only, never credentials), bind log context, call one
domain function. Durable state in Redis decides what happens on redelivery, so every task is safe
to run twice."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import structlog
from celery import signals

from pipeline.ingest.scheduler import TickPlan
from pipeline.logs import configure_logging, get_logger
from workers.app import app
from workers.context import Runtime, reset_runtime, runtime
from workers.ticker import TickLoop

log = get_logger("vidsearch.tasks")
_tick_loop: TickLoop | None = None


@signals.setup_logging.connect
def _setup_logging(**_: Any) -> None:
    configure_logging(runtime().settings)


@signals.worker_process_init.connect
def _after_fork(**_: Any) -> None:
    reset_runtime()


@signals.task_prerun.connect
def _bind_task(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(celery_task_id=task_id, task=getattr(task, "name", None))


@signals.task_postrun.connect
def _unbind_task(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()


def _bind_item(key: str) -> None:
    item = runtime().jobs.get_item(key)
    structlog.contextvars.bind_contextvars(
        item=key, job=item.job_id if item else None, tl_task=item.task_id if item else None
    )


@signals.worker_ready.connect
def _start_tick_loop(sender: Any = None, **_: Any) -> None:
    """``sender`` is the worker's consumer: its node name and the queues it consumes."""
    global _tick_loop  # noqa: PLW0603  (one per worker process by design)
    queues = tuple(sender.app.amqp.queues.consume_from)
    _tick_loop = TickLoop(Runtime(runtime().settings), dispatch, sender.hostname, queues)
    _tick_loop.start()


@signals.worker_shutdown.connect
def _stop_tick_loop(**_: Any) -> None:
    if _tick_loop is not None:
        _tick_loop.stop()


def dispatch(plan: TickPlan) -> None:
    """Send the tasks one tick planned."""
    for key in plan.admitted:
        create_embedding.delay(key, True)
    for key in plan.redriven:
        create_embedding.delay(key, False)
    for key in plan.polls:
        poll_embedding.delay(key)
    if plan.drain:
        write_segments.delay(plan.drain)
    if plan.admitted or plan.redriven or plan.polls:
        log.info("tick", admitted=len(plan.admitted), redriven=len(plan.redriven),
                 polls=len(plan.polls), drain=plan.drain is not None)


@app.task(name="vidsearch.create_embedding")
def create_embedding(item_key: str, charged: bool) -> str:
    """Create (or adopt) the Twelve Labs task of one item."""
    _bind_item(item_key)
    outcome = runtime().embedder.create(item_key, charged)
    structlog.contextvars.bind_contextvars(tl_task=outcome.task_id)
    log.info("create_" + outcome.kind, reason=outcome.reason)
    return outcome.kind


@app.task(name="vidsearch.poll_embedding")
def poll_embedding(item_key: str) -> str:
    """Check one in-flight task once."""
    _bind_item(item_key)
    outcome = runtime().poller.poll(item_key)
    log.info("poll_" + outcome)
    return outcome


@app.task(name="vidsearch.write_segments")
def write_segments(lock_token: str = "") -> dict[str, Any]:
    """Drain the segment stream into Milvus for at most ``writer_drain_s``; then release the
    drain lock the tick took (``lock_token``), unless it has passed to another holder."""
    rt = runtime()
    try:
        stats = rt.writer.drain(rt.settings.writer_drain_s)
    finally:
        if lock_token:
            rt.scheduler.drain_finished(lock_token)
    summary = asdict(stats)
    log.info("write_drained", **summary)
    return summary
