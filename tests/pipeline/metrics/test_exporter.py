"""The Prometheus exporter on a real redis-server: state put in Redis through the real APIs and
hooks (the recorder's own fields: test_recorder.py), scraped over HTTP from ``/metrics``."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from twelvelabs.core.api_error import ApiError

from pipeline.errors import ApiRejectedError, RateLimitedError
from pipeline.ingest.scheduler import Scheduler
from pipeline.ledger.records import JOB_STATUSES
from pipeline.ledger.store import Admission, JobStore, SubmitMode
from pipeline.metrics.exporter import Exporter
from pipeline.metrics.recorder import MetricsRecorder, metrics_key
from pipeline.settings import Settings, load_settings
from pipeline.spec import EmbeddingSpec, item_key
from pipeline.state.keys import Keys
from pipeline.state.presence import WorkerPresence
from pipeline.state.quota import Quota
from pipeline.twelvelabs import TwelveLabsGateway
from tests.stack import wait_for
from vidsearch.stack.services import free_port

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return load_settings(redis_url=redis_url, redis_prefix="m")


@pytest.fixture
def exporter(settings: Settings, redis_client: redis.Redis[bytes]) -> Iterator[Exporter]:
    served = Exporter(settings, port=0)
    yield served
    served.close()


def _submit(jobs: JobStore, spec: EmbeddingSpec, urls: list[str]) -> str:
    job_id = jobs.create_job(["m.csv"], spec)
    batch = [Admission(item_key(u, spec), "cat", u) for u in urls]
    jobs.submit_batch(job_id, batch, SubmitMode())
    jobs.seal(job_id)
    return job_id


def test_items_jobs_and_queue_depths_come_from_the_pipeline_state_in_redis(
    settings: Settings, redis_client: redis.Redis[bytes], exporter: Exporter,
) -> None:
    keys = Keys("m")
    jobs = JobStore(redis_client, keys)
    spec = EmbeddingSpec.from_settings(settings)
    urls = [f"https://cdn.example.com/v{i}.mp4" for i in range(5)]
    _submit(jobs, spec, urls)
    first, second, third = jobs.admit(3, lease_until=9e9)
    jobs.record_created(first, "tl-1", now=1.0, next_poll=2.0)
    jobs.fail(third, "boom")
    redis_client.rpush("embedding", "m1", "m2")
    redis_client.rpush("polling\x06\x163", "m3")
    redis_client.hset("unacked", mapping={"t1": "x", "t2": "y"})
    redis_client.xgroup_create(keys.segments, "writers", id="0", mkstream=True)
    for n in range(4):
        redis_client.xadd(keys.segments, {"n": n})
    redis_client.xadd(keys.dead, {"reason": "bad"})
    redis_client.hset("m:metrics", "dl:dropped", 3)
    Quota(redis_client, keys.quota, 60, 5).pause(30)

    samples = scrape(exporter.port)

    assert value(samples, "vidsearch_redis_up") == 1
    assert value(samples, "vidsearch_items", state="waiting") == 2
    assert value(samples, "vidsearch_items", state="creating") == 1
    assert value(samples, "vidsearch_items", state="processing") == 1
    assert value(samples, "vidsearch_items", state="writing") == 0
    assert value(samples, "vidsearch_job_items", counter="queued") == 5
    assert value(samples, "vidsearch_job_items", counter="failed") == 1
    assert value(samples, "vidsearch_jobs", status="running") == 1
    assert value(samples, "vidsearch_celery_queue_messages", queue="embedding") == 2
    assert value(samples, "vidsearch_celery_queue_messages", queue="polling") == 1
    assert value(samples, "vidsearch_celery_queue_messages", queue="writing") == 0
    assert value(samples, "vidsearch_celery_tasks_in_flight") == 2
    assert value(samples, "vidsearch_segment_backlog") == 4
    assert value(samples, "vidsearch_segments_dead_lettered") == 1
    assert value(samples, "vidsearch_dead_letters_dropped_total") == 3
    assert 25 < value(samples, "vidsearch_quota_pause_seconds") <= 30
    assert second


def test_an_item_that_finished_writing_leaves_the_active_states(
    settings: Settings, redis_client: redis.Redis[bytes], exporter: Exporter,
) -> None:
    jobs = JobStore(redis_client, Keys("m"))
    spec = EmbeddingSpec.from_settings(settings)
    _submit(jobs, spec, ["https://cdn.example.com/a.mp4", "https://cdn.example.com/b.mp4"])
    a, b = jobs.admit(2, lease_until=9e9)
    for key in (a, b):
        jobs.record_created(key, f"tl-{key}", now=1.0, next_poll=2.0)
        jobs.record_ready(key, f"tl-{key}", [{b"x": b"1"}], Keys("m").segments)
    jobs.record_written([(a, "pk-a")])

    samples = scrape(exporter.port)

    assert value(samples, "vidsearch_items", state="writing") == 1
    assert value(samples, "vidsearch_items", state="processing") == 0
    assert value(samples, "vidsearch_job_items", counter="done") == 1
    assert value(samples, "vidsearch_job_items", counter="segments") == 1


def test_twelve_labs_calls_are_counted_by_operation_and_outcome_through_the_gateway_hook(
    settings: Settings, redis_client: redis.Redis[bytes], exporter: Exporter,
) -> None:
    gateway = TwelveLabsGateway(settings)

    def ok() -> str:
        return "ok"

    def answer(status: int) -> Callable[[], str]:
        def call() -> str:
            raise ApiError(status_code=status, headers={"retry-after": "1"}, body={"code": "c"})
        return call

    gateway._call("retrieve", ok)
    gateway._call("retrieve", ok)
    gateway.retrying("create", lambda: gateway._call("create", ok), paid=False)  # one request
    for status, error in ((429, RateLimitedError), (429, RateLimitedError), (400, ApiRejectedError)):
        with pytest.raises(error):
            gateway._call("create", answer(status))

    samples = scrape(exporter.port)

    assert value(samples, "vidsearch_twelvelabs_calls_total", operation="retrieve", outcome="ok") == 2
    assert value(samples, "vidsearch_twelvelabs_calls_total", operation="create",
                 outcome="rate_limited") == 2
    assert value(samples, "vidsearch_twelvelabs_calls_total", operation="create", outcome="rejected") == 1
    assert value(samples, "vidsearch_twelvelabs_calls_total", operation="create", outcome="ok") == 1
    assert value(samples, "vidsearch_twelvelabs_rate_limited_total", operation="create") == 2


def test_writer_batches_from_several_processes_add_up_in_one_histogram(
    settings: Settings, redis_url: str, redis_client: redis.Redis[bytes], exporter: Exporter,
) -> None:
    host_a = MetricsRecorder(redis.Redis.from_url(redis_url), "m")
    host_b = MetricsRecorder.from_settings(settings)
    host_a.writer_batch(rows=40, seconds=0.2)
    host_b.writer_batch(rows=2000, seconds=3.0)

    samples = scrape(exporter.port)

    assert value(samples, "vidsearch_writer_batch_rows_count") == 2
    assert value(samples, "vidsearch_writer_batch_rows_sum") == 2040
    assert value(samples, "vidsearch_writer_batch_rows_bucket", le="50.0") == 1
    assert value(samples, "vidsearch_writer_batch_rows_bucket", le="2000.0") == 2
    assert value(samples, "vidsearch_writer_batch_seconds_bucket", le="0.25") == 1
    assert value(samples, "vidsearch_writer_batch_seconds_bucket", le="2.5") == 1
    assert value(samples, "vidsearch_writer_batch_seconds_bucket", le="+Inf") == 2
    assert value(samples, "vidsearch_writer_batch_seconds_sum") == pytest.approx(3.2)


def test_the_exporter_reports_redis_down_when_it_cannot_read_redis() -> None:
    dead = load_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    exporter = Exporter(dead, port=0)
    try:
        samples = scrape(exporter.port)
    finally:
        exporter.close()
    assert value(samples, "vidsearch_redis_up") == 0
    assert not any(name == "vidsearch_items" for name, _ in samples)


def test_the_metrics_command_serves_the_fleet_counters_on_its_port(
    redis_url: str, redis_client: redis.Redis[bytes], tmp_path: object,
) -> None:
    redis_client.hset(metrics_key("cli"), "tl:embed:ok", 7)
    port = free_port()
    env = {"VIDSEARCH_REDIS_URL": redis_url, "VIDSEARCH_REDIS_PREFIX": "cli", "PATH": "/usr/bin:/bin"}
    samples, _ = run_metrics_command(port, env)
    assert value(samples, "vidsearch_twelvelabs_calls_total", operation="embed", outcome="ok") == 7


def run_metrics_command(port: int, env: dict[str, str]) -> tuple[Samples, bytes]:
    """Start ``vidsearch metrics`` on ``port``, scrape it once it serves, stop it; the samples and
    what it wrote on stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidsearch", "metrics", "--port", str(port)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    samples: Samples = {}
    try:
        def served() -> bool:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                samples.update(scrape(port))
            except OSError:
                return False
            return True

        wait_for(served, 60, "the metrics command to serve")
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.stderr is not None
    return samples, proc.stderr.read()


def test_finished_jobs_are_labelled_as_vidsearch_status_names_them(
    settings: Settings, redis_client: redis.Redis[bytes], exporter: Exporter,
) -> None:
    keys = Keys("m")
    jobs = JobStore(redis_client, keys)
    spec = EmbeddingSpec.from_settings(settings)
    settled = {"all in": (2, 0, 0), "some failed": (1, 1, 0), "all failed": (0, 2, 0), "budget": (1, 0, 1)}
    for name, (done, failed, held) in settled.items():
        job_id = _submit(jobs, spec, [f"https://cdn.example.com/{name}/{i}.mp4" for i in range(2)])
        redis_client.hset(keys.job(job_id), mapping={"done": done, "failed": failed, "held": held})
        assert jobs.get_job(job_id) is not None

    samples = scrape(exporter.port)

    statuses = {s: value(samples, "vidsearch_jobs", status=s) for s in JOB_STATUSES}
    assert statuses == {"running": 0, "done": 1, "done with failures": 1, "failed": 1,
                        "stopped at budget": 1}
    assert sorted(job.status for job in jobs.list_jobs()) == [
        "done", "done with failures", "failed", "stopped at budget"]


def test_the_limit_holding_admission_is_a_gauge_of_seconds_until_it_frees(
    settings: Settings, redis_client: redis.Redis[bytes], exporter: Exporter,
) -> None:
    assert not [k for k in scrape(exporter.port) if k[0] == "vidsearch_admission_hold_seconds"]
    jobs = JobStore(redis_client, Keys("m"))
    spec = EmbeddingSpec.from_settings(settings)
    _submit(jobs, spec, [f"https://cdn.example.com/h{i}.mp4" for i in range(3)])
    held = load_settings(redis_url=settings.redis_url, redis_prefix="m", rate_limit_per_day=1)
    scheduler = Scheduler(redis_client, jobs, Quota(redis_client, "m:quota", 6000, 50), held)
    scheduler.limits.learn({})
    assert len(scheduler._admit(time.time())) == 1
    seconds = value(scrape(exporter.port), "vidsearch_admission_hold_seconds", dimension="requests-day")
    assert 0 < seconds <= 86400


def test_workers_alive_counts_recent_heartbeats_per_queue_and_forgets_a_worker_that_left(
    settings: Settings, redis_client: redis.Redis[bytes], exporter: Exporter,
) -> None:
    presence = WorkerPresence(redis_client, Keys("m"))
    now = time.time()
    presence.beat("w1@a", ("embedding", "polling"), now)
    presence.beat("w2@b", ("writing",), now)
    presence.beat("w3@c", ("embedding",), now - 3600)  # an hour silent: dead

    before = scrape(exporter.port)
    presence.leave("w2@b", ("writing",))
    after = scrape(exporter.port)

    queues = ("embedding", "polling", "writing")
    alive = {q: value(before, "vidsearch_workers_alive", queue=q) for q in queues}
    assert alive == {"embedding": 1, "polling": 1, "writing": 1}
    assert value(after, "vidsearch_workers_alive", queue="writing") == 0


def test_tick_alive_is_0_until_a_tick_leaves_its_heartbeat(
    settings: Settings, redis_client: redis.Redis[bytes], exporter: Exporter,
) -> None:
    assert value(scrape(exporter.port), "vidsearch_tick_alive") == 0
    jobs = JobStore(redis_client, Keys("m"))
    Scheduler(redis_client, jobs, Quota(redis_client, "m:quota", 6000, 50), settings).tick()
    assert value(scrape(exporter.port), "vidsearch_tick_alive") == 1


def test_redis_memory_used_and_its_limit_are_redis_own_figures(
    settings: Settings, redis_client: redis.Redis[bytes], exporter: Exporter,
) -> None:
    redis_client.config_set("maxmemory", 2**30)
    try:
        samples = scrape(exporter.port)
    finally:
        redis_client.config_set("maxmemory", 0)
    assert value(samples, "vidsearch_redis_memory_max_bytes") == 2**30
    assert 0 < value(samples, "vidsearch_redis_memory_used_bytes") < 2**30
    assert value(scrape(exporter.port), "vidsearch_redis_memory_max_bytes") == 0


def test_the_metrics_command_starts_without_redis_and_reports_it_down(tmp_path: object) -> None:
    port, dead = free_port(), free_port()
    env = {"VIDSEARCH_REDIS_URL": f"redis://127.0.0.1:{dead}/0", "PATH": "/usr/bin:/bin"}
    samples, stderr = run_metrics_command(port, env)
    assert value(samples, "vidsearch_redis_up") == 0
    assert b"redis_unreachable_at_start" in stderr
