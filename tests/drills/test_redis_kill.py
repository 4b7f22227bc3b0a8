"""Drill 2: SIGKILL redis-server (append-only file, fsync every second) mid-job, start it again on
the same data directory and port: the job ends with a clean run's counts.

Finding (celery 5.7.0, kombu 5.7.0, redis-py 8.1): a worker that holds unacknowledged messages when
the broker connection drops does not reconnect. Celery's consumer collects the broken connection
(which detaches its transport) and then closes it; closing restores the unacked messages through
``Channel._connparams``, which reads ``connection.client`` (now None) and raises AttributeError,
an "Unrecoverable error": the worker exits. So workers must run under a supervisor that restarts
them (systemd ``Restart=always``, a Kubernetes Deployment, ...). The drill plays that supervisor:
it restarts every worker that exited, and says how many did.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from tests.drills.harness import (
    assert_same_counts,
    finish_time,
    start_worker,
    submit,
    wait_progress,
    write_manifest,
)
from tests.stack import Stack, wait_for
from vidsearch.stack.services import start_redis

pytestmark = [pytest.mark.drill, pytest.mark.integration, pytest.mark.slow]

ITEMS = 40
SLOW_ADMISSION = {"VIDSEARCH_MAX_IN_FLIGHT": "10"}


def test_sigkill_of_redis_mid_job_loses_nothing(stack: Stack, tmp_path: Path) -> None:
    start_worker(stack, "r1", env=SLOW_ADMISSION)
    start_worker(stack, "r2", env=SLOW_ADMISSION)
    workers = {"r1": stack.workers[-2], "r2": stack.workers[-1]}
    urls = write_manifest(tmp_path / "m.csv", "kill-redis", ITEMS)
    job_id = submit(stack, tmp_path / "m.csv")
    wait_progress(stack, job_id, "done", 12)
    port = stack.redis.port
    stack.redis.kill()
    time.sleep(2)
    stack.redis = start_redis(stack.root / "redis", port=port)
    wait_for(lambda: _loaded(stack), 60, "redis-server to load its append-only file")
    restarted = time.monotonic()
    recover_s = finish_time(stack, job_id, restarted)
    assert all(p.poll() is None for p in workers.values()), "a vidsearch worker process died"
    restarts = sum(
        (stack.root / f"worker-{name}.log").read_text(errors="replace").count('"worker_exited"')
        for name in workers
    )
    print(f"\nCelery workers restarted by their supervisor after the broker loss: {restarts}")
    assert_same_counts(stack, job_id, urls, "redis SIGKILL + restart", recover_s=recover_s)


def _loaded(stack: Stack) -> bool:
    """The port opens before the append-only file is loaded; until then every command fails."""
    try:
        return bool(stack.client().ping())
    except redis.BusyLoadingError:
        return False
