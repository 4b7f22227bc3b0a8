"""Prometheus metrics for a fleet: one exporter reads Redis and serves what the workers recorded.

Workers count Twelve Labs calls and writer batches in the hash ``{prefix}:metrics`` (``recorder.py``,
where its fields are listed). ``RedisCollector`` reads that hash and the pipeline's live state at
every scrape (job counters, the waiting list, the in-flight sorted sets, the segment stream, the
Celery queue lists and unacked hash in the broker DB, the tick's heartbeat, the workers' heartbeats
of ``pipeline/state/presence.py``, and Redis's own memory use and limit). The alert rules and the
Grafana dashboard in ``config/`` use these names (a test keeps them in step). The exporter keeps no
state, so it can be restarted, or run twice behind a load balancer, without losing or doubling
anything.

This module sits above the whole pipeline (it reads the ledger and the segment stream); only the
interfaces import it (``vidsearch metrics``, the API's ``/metrics``). It reads the Celery lists by
their kombu names and never imports Celery.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from wsgiref.simple_server import WSGIServer

import redis
from prometheus_client import start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from pipeline.connect import connect_redis
from pipeline.ingest.stream import DROPPED_FIELD, stream_backlog
from pipeline.ledger.records import ACTIVE_STATES, COUNTERS, JOB_STATUSES, job_status
from pipeline.logs import get_logger
from pipeline.metrics.recorder import ROWS_BUCKETS, SECONDS_BUCKETS, bucket_label, metrics_key
from pipeline.settings import Settings
from pipeline.state.keys import Keys
from pipeline.state.presence import WorkerPresence, alive_window_s

log = get_logger("vidsearch.metrics")

CELERY_QUEUES = ("embedding", "polling", "writing")
CELERY_PRIORITY_SEP = "\x06\x16"
"""kombu's Redis transport keeps priority 3, 6, 9 messages in ``{queue}\\x06\\x16{priority}``."""
CELERY_PRIORITIES = (3, 6, 9)
CELERY_UNACKED = "unacked"
"""kombu's Redis transport: delivered but not yet acked messages (with acks_late: running tasks)."""
MAX_JOBS_SCANNED = 10_000


class RedisCollector(Collector):
    """Reads the fleet's counters and live state from Redis at every scrape."""

    def __init__(self, client: redis.Redis[bytes], settings: Settings) -> None:
        self.r = client
        self.settings = settings
        self.keys = Keys(settings.redis_prefix)

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("vidsearch_redis_up", "1 when the exporter could read Redis")
        try:
            families = self._families()
        except redis.RedisError as exc:
            log.warning("metrics_scrape_failed", error=str(exc))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> list[Metric]:
        raw = self.r.hgetall(metrics_key(self.keys.prefix))
        recorded = {k.decode(): float(v) for k, v in raw.items()}
        return [
            *self._items(),
            *self._queues(),
            *self._fleet(),
            *_twelve_labs(recorded),
            *_writer(recorded),
        ]

    # --- items and jobs -------------------------------------------------------------------------
    def _items(self) -> list[Metric]:
        totals, statuses = self._job_totals()
        pipe = self.r.pipeline(transaction=False)
        pipe.llen(self.keys.wait)
        pipe.zcard(self.keys.creating)
        pipe.zcard(self.keys.inflight)
        waiting, creating, processing = (int(n) for n in pipe.execute())
        active = totals.pop("_active")
        writing = max(0, active - waiting - creating - processing)
        items = GaugeMetricFamily(
            "vidsearch_items", "Items in an active state (writing = active jobs' rest)", labels=["state"]
        )
        for state, value in zip(ACTIVE_STATES, (waiting, creating, processing, writing), strict=True):
            items.add_metric([state], value)
        counters = GaugeMetricFamily(
            "vidsearch_job_items", "Job counters summed over all jobs", labels=["counter"]
        )
        for name in COUNTERS:
            counters.add_metric([name], totals.get(name, 0))
        jobs = GaugeMetricFamily(
            "vidsearch_jobs", "Jobs by status, as `vidsearch status` names it (items a job waits for"
            " in another job are not looked at here)", labels=["status"],
        )
        for status in JOB_STATUSES:
            jobs.add_metric([status], statuses.get(status, 0))
        return [items, counters, jobs]

    def _job_totals(self) -> tuple[dict[str, int], dict[str, int]]:
        ids = self.r.zrevrange(self.keys.jobs, 0, MAX_JOBS_SCANNED - 1)
        pipe = self.r.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(self.keys.job(job_id.decode()), ["sealed", *COUNTERS])
        totals = dict.fromkeys(COUNTERS, 0) | {"_active": 0}
        statuses: dict[str, int] = {}
        for row in pipe.execute() if ids else []:
            counts = {name: int(v or 0) for name, v in zip(COUNTERS, row[1:], strict=True)}
            for name, value in counts.items():
                totals[name] += value
            settled = counts["done"] + counts["failed"] + counts["held"]
            totals["_active"] += max(0, counts["queued"] - settled)
            status = job_status(row[0] == b"1", counts)
            statuses[status] = statuses.get(status, 0) + 1
        return totals, statuses

    # --- queues -----------------------------------------------------------------------------------
    def _queues(self) -> list[Metric]:
        pipe = self.r.pipeline(transaction=False)
        for queue in CELERY_QUEUES:
            for name in _priority_lists(queue):
                pipe.llen(name)
        pipe.hlen(CELERY_UNACKED)
        pipe.xlen(self.keys.dead)
        pipe.hget(self.keys.quota, "pause_until")
        pipe.get(self.keys.hold)
        pipe.time()
        replies = pipe.execute()
        per_queue = len(CELERY_PRIORITIES) + 1
        queues = GaugeMetricFamily(
            "vidsearch_celery_queue_messages", "Messages waiting in a Celery queue", labels=["queue"]
        )
        for i, queue in enumerate(CELERY_QUEUES):
            queues.add_metric([queue], sum(replies[i * per_queue:(i + 1) * per_queue]))
        unacked, dead, pause_until, hold, now = replies[len(CELERY_QUEUES) * per_queue:]
        return [
            _hold(hold, now[0] + now[1] / 1e6),
            queues,
            _gauge("vidsearch_celery_tasks_in_flight", "Celery tasks delivered and not yet acked",
                   unacked),
            _gauge("vidsearch_segment_backlog", "Segments the writers still owe (lag + pending)",
                   stream_backlog(self.r, self.settings)),
            _gauge("vidsearch_segments_dead_lettered", "Entries in the dead-letter stream", dead),
            _gauge("vidsearch_quota_pause_seconds", "Seconds left of a 429 pause of the quota",
                   max(0.0, float(pause_until or 0) - (now[0] + now[1] / 1e6))),
        ]


    # --- fleet: the tick, the workers, Redis's memory ----------------------------------------------
    def _fleet(self) -> list[Metric]:
        seconds, micros = self.r.time()
        alive = WorkerPresence(self.r, self.keys).alive_per_queue(
            seconds + micros / 1e6, alive_window_s(self.settings)
        )
        workers = GaugeMetricFamily(
            "vidsearch_workers_alive", "Worker processes with a recent heartbeat, by queue they consume",
            labels=["queue"],
        )
        for queue in CELERY_QUEUES:
            workers.add_metric([queue], alive.get(queue, 0))
        memory = self.r.info("memory")
        return [
            workers,
            _gauge("vidsearch_tick_alive", "1 while the scheduler tick runs (its heartbeat is younger "
                   "than tick_stall_intervals tick intervals)", int(self.r.exists(self.keys.tick))),
            _gauge("vidsearch_redis_memory_used_bytes", "Redis used_memory", memory["used_memory"]),
            _gauge("vidsearch_redis_memory_max_bytes", "Redis maxmemory (0: no limit)",
                   memory.get("maxmemory", 0)),
        ]


def _hold(raw: bytes | None, now: float) -> GaugeMetricFamily:
    """Seconds until admission resumes, labelled with the limit that holds it (none: no sample)."""
    gauge = GaugeMetricFamily(
        "vidsearch_admission_hold_seconds",
        "Seconds until admission resumes, by the quota dimension that holds it", labels=["dimension"],
    )
    if raw is not None:
        name, _, until = raw.decode().partition("|")
        gauge.add_metric([name], max(0.0, float(until) - now))
    return gauge


def _priority_lists(queue: str) -> list[str]:
    return [queue, *(f"{queue}{CELERY_PRIORITY_SEP}{p}" for p in CELERY_PRIORITIES)]


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _twelve_labs(recorded: dict[str, float]) -> list[Metric]:
    calls = CounterMetricFamily(
        "vidsearch_twelvelabs_calls", "Twelve Labs HTTP calls by operation and outcome",
        labels=["operation", "outcome"],
    )
    limited = CounterMetricFamily(
        "vidsearch_twelvelabs_rate_limited", "Twelve Labs 429 answers by operation",
        labels=["operation"],
    )
    for field, value in sorted(recorded.items()):
        if field.startswith("tl:"):
            _, operation, outcome = field.split(":", 2)
            calls.add_metric([operation, outcome], value)
            if outcome == "rate_limited":
                limited.add_metric([operation], value)
    return [calls, limited]


def _writer(recorded: dict[str, float]) -> list[Metric]:
    return [
        CounterMetricFamily(
            "vidsearch_dead_letters_dropped", "Dead letters dropped past dead_letter_max_entries",
            value=recorded.get(DROPPED_FIELD, 0.0),
        ),
        _histogram("vidsearch_writer_batch_rows", "Rows per Milvus upsert batch", recorded,
                   "rows", ROWS_BUCKETS),
        _histogram("vidsearch_writer_batch_seconds", "Seconds per Milvus upsert batch", recorded,
                   "seconds", SECONDS_BUCKETS),
    ]


def _histogram(
    name: str, documentation: str, recorded: dict[str, float], kind: str, bounds: Sequence[float]
) -> HistogramMetricFamily:
    buckets: list[tuple[str, float]] = []
    running = 0.0
    for le in [*(bucket_label(b) for b in bounds), "+Inf"]:
        running += recorded.get(f"wb:{kind}_le:{le}", 0.0)
        buckets.append((le, running))
    total = recorded.get(f"wb:{kind}", 0.0)
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=total)


class Exporter:
    """The HTTP endpoint serving ``RedisCollector`` on ``/metrics``."""

    def __init__(self, settings: Settings, port: int, host: str = "127.0.0.1") -> None:
        self.client: redis.Redis[bytes] = connect_redis(
            settings, socket_connect_timeout=2.0, socket_timeout=5.0
        )
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(RedisCollector(self.client, settings))
        self.server: WSGIServer
        self.server, self._thread = start_http_server(port, host, registry=self.registry)

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def serve_forever(self) -> None:
        """Block while the server (in its own thread) runs."""
        self._thread.join()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()


def run_exporter(settings: Settings, port: int, host: str) -> None:
    """``vidsearch metrics``: serve until interrupted."""
    exporter = Exporter(settings, port, host)
    log.info("metrics_serving", host=host, port=exporter.port)
    try:
        exporter.serve_forever()
    finally:
        exporter.close()
