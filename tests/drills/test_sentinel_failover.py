"""Drill: the Redis primary SIGKILLed mid-job; Sentinel promotes a replica. Workers, writer
and CLI all run on ``redis+sentinel://`` (a primary, two replicas, three Sentinels, the data and the
Sentinels' passwords set) and nobody restarts Redis or reconfigures anything.

Promise: 0 items lost, 0 duplicate rows, 1 paid Twelve Labs task per item (the create mark is
WAITed for on a replica before a create is sent: docs/reliability.md). Measured: the Sentinels'
promotion time, the time from the kill to the next item done, to the job's end, and how many Celery
workers their supervisor (``vidsearch worker``) restarted after the broker connection broke.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.drills.harness import (
    assert_same_counts,
    finish_time,
    job,
    start_worker,
    submit,
    wait_progress,
    write_manifest,
)
from tests.sentinel import env_of, kill_primary, revive, sentinel_set
from tests.stack import Stack, wait_for
from vidsearch.stack.services import SentinelSet

pytestmark = [pytest.mark.drill, pytest.mark.integration, pytest.mark.slow]

ITEMS = 40
SLOW_ADMISSION = {"VIDSEARCH_MAX_IN_FLIGHT": "10"}
WORKERS = ("f1", "f2")


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """Two replicas: with one, the promoted primary would have none left to acknowledge the create
    marks, and creates would wait (deferred, nothing sent) until the old primary came back."""
    yield from sentinel_set(tmp_path_factory.mktemp("sentinel"), replicas=2)


@pytest.fixture
def on_sentinels(stack: Stack, sentinels: SentinelSet, tmp_path: Path) -> Iterator[Stack]:
    """The drill stack's Milvus and sandbox, with Redis replaced by the Sentinel set."""
    found = Stack(root=tmp_path, redis=sentinels.primary(), milvus=stack.milvus, sandbox=stack.sandbox,
                  env={**stack.env, **env_of(sentinels)}, engine=stack.engine)
    found.client().flushdb()
    yield found
    found.stop_workers()


def test_sigkill_of_the_redis_primary_mid_job_fails_over_and_loses_nothing(
    on_sentinels: Stack, sentinels: SentinelSet, tmp_path: Path
) -> None:
    stack = on_sentinels
    start_worker(stack, "f1", env=SLOW_ADMISSION)
    start_worker(stack, "f2", env=SLOW_ADMISSION)
    workers = dict(zip(WORKERS, stack.workers, strict=True))
    urls = write_manifest(tmp_path / "m.csv", "sentinel-failover", ITEMS)
    job_id = submit(stack, tmp_path / "m.csv")
    wait_progress(stack, job_id, "done", 12)
    done_before = job(stack, job_id).counters["done"]
    killed = time.monotonic()
    failover = kill_primary(sentinels)
    try:
        wait_for(lambda: _done(stack, job_id) > done_before, 120, "an item done after the failover", 0.1)
        progress_s = time.monotonic() - killed
        recover_s = finish_time(stack, job_id, killed)
        assert all(p.poll() is None for p in workers.values()), "a vidsearch worker process died"
        restarts = sum(
            (stack.root / f"worker-{name}.log").read_text(errors="replace").count('"worker_exited"')
            for name in workers
        )
        print(f"\nSentinel promoted a replica in {failover.promoted_s:.1f} s; the next item was done "
              f"{progress_s:.1f} s after the kill; Celery workers restarted by their supervisor: "
              f"{restarts}")
        assert_same_counts(stack, job_id, urls, "redis primary SIGKILL, Sentinel failover",
                           recover_s=recover_s)
    finally:
        stack.stop_workers()
        revive(sentinels, failover.old)


def _done(stack: Stack, job_id: str) -> int:
    """The job's done counter; 0 while the new primary is not reachable yet."""
    try:
        return job(stack, job_id).counters["done"]
    except redis.RedisError:  # mid-failover: not yet
        return 0
