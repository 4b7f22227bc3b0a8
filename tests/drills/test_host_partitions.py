"""Drills across hosts (``tests/hosts.py``): every service and worker on a network namespace of its
own, so a fault is a partition (a link down, or a cut between two hosts), healed later, or a whole
host lost, not a process kill.

Hosts: ``ctl`` (this test process and the CLI), ``redis``, ``milvus`` (Milvus Lite), ``tl`` (the
Twelve Labs sandbox), ``w1``-``w3`` (workers). One set of hosts and one stack for the module.

Each drill's promise: 0 items lost, 0 duplicate rows, 1 paid Twelve Labs task per item
(``assert_same_counts``), and the time from the heal (or the kill) until the job finished.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.drills.harness import (
    DRILL_SETTINGS,
    NO_FAULTS,
    SANDBOX_ARGS,
    assert_same_counts,
    finish_time,
    job,
    jobs_of,
    milvus_rows_in_subprocess,
    sandbox_reset,
    start_worker,
    submit,
    wait_progress,
    write_manifest,
)
from tests.hosts import Hosts, open_hosts, skip_reason
from tests.stack import Stack, start_stack_on_hosts, wait_for

pytestmark = [
    pytest.mark.drill,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason())),
]

ITEMS = 20
SLOW_ADMISSION = {"VIDSEARCH_MAX_IN_FLIGHT": "10"}
LEASE_S = float(DRILL_SETTINGS["VIDSEARCH_CREATE_LEASE_S"])
CLAIM_IDLE_S = float(DRILL_SETTINGS["VIDSEARCH_WRITER_CLAIM_IDLE_S"])
WORKER_HOSTS = ("w1", "w2", "w3")


@pytest.fixture(scope="module")
def on_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hosts, Stack]]:
    root = tmp_path_factory.mktemp("hosts")
    with open_hosts("ctl", "redis", "milvus", "tl", *WORKER_HOSTS) as hosts, hosts.enter("ctl"):
        stack = start_stack_on_hosts(root, hosts, sandbox_args=SANDBOX_ARGS, **DRILL_SETTINGS)
        try:
            yield hosts, stack
        finally:
            stack.stop()


@pytest.fixture
def hs(on_hosts: tuple[Hosts, Stack]) -> Iterator[tuple[Hosts, Stack]]:
    hosts, stack = on_hosts
    _reset(hosts, stack)
    yield hosts, stack
    _reset(hosts, stack)


def _reset(hosts: Hosts, stack: Stack) -> None:
    hosts.heal()
    stack.stop_workers()
    for name in WORKER_HOSTS:
        hosts[name].kill()
    stack.client().flushdb()
    stack.sandbox_config(**NO_FAULTS)
    sandbox_reset(stack)


def create_leases(stack: Stack) -> int:
    return len(stack.client().keys("vs:lock:create:*"))


def pending_writes(stack: Stack) -> int:
    try:
        return int(stack.client().xpending("vs:segments", "writers")["pending"])
    except redis.ResponseError:  # no stream or group yet
        return 0


def wait_since(start: float, seconds: float) -> None:
    time.sleep(max(0.0, start + seconds - time.monotonic()))


def test_a_worker_host_cut_from_redis_past_its_create_leases_pays_once(
    hs: tuple[Hosts, Stack], tmp_path: Path,
) -> None:
    """Drill: worker host w1 holds create leases (the sandbox answers every request 2 s late, so
    each lease spans a request) when it is cut from Redis, for 1.5 leases at least; it still reaches the
    sandbox. w2 starts and takes over what the leases re-drive; then the cut heals.
    Promise: 0 items lost, 0 duplicate rows, 1 paid task per item."""
    hosts, stack = hs
    start_worker(stack, "w1", env=SLOW_ADMISSION, wrap=hosts["w1"].argv())
    urls = write_manifest(tmp_path / "m.csv", "cut-worker", ITEMS)
    stack.sandbox_config(slow_rate=1.0, slow_s=2.0)
    job_id = submit(stack, tmp_path / "m.csv")
    wait_for(lambda: create_leases(stack) > 0, 60, "w1 to hold create leases", 0.02)
    hosts.cut("w1", "redis")
    cut_at = time.monotonic()
    held = create_leases(stack)
    stack.sandbox_config(slow_rate=0.0)
    start_worker(stack, "w2", env=SLOW_ADMISSION, wrap=hosts["w2"].argv())
    done_at_cut = job(stack, job_id).counters["done"]
    wait_progress(stack, job_id, "done", done_at_cut + 1)  # w2 took over while w1 is cut
    wait_since(cut_at, 1.5 * LEASE_S)
    hosts.mend("w1", "redis")
    healed = time.monotonic()
    print(f"\ncreate leases held by w1 when cut: {held}; cut for {healed - cut_at:.1f} s")
    recover_s = finish_time(stack, job_id, healed)
    assert_same_counts(stack, job_id, urls, "worker host cut from Redis past its leases",
                       recover_s=recover_s, rows_of=milvus_rows_in_subprocess)


def test_the_writers_host_partitioned_mid_batch_writes_every_row_once(
    hs: tuple[Hosts, Stack], tmp_path: Path,
) -> None:
    """Drill: the only writer (host w2) has read segments it has not acknowledged when its host's
    link goes down (cut from Redis and Milvus); a writer on w3 starts and reclaims them; the link
    comes back and the old writer finishes whatever it was doing.
    Promise: 0 items lost, 0 duplicate rows, 1 paid task per item."""
    hosts, stack = hs
    start_worker(stack, "w1", queues="embedding,polling", env=SLOW_ADMISSION,
                 wrap=hosts["w1"].argv())
    start_worker(stack, "writer-a", queues="writing", wrap=hosts["w2"].argv())
    urls = write_manifest(tmp_path / "m.csv", "cut-writer", ITEMS)
    job_id = submit(stack, tmp_path / "m.csv")
    wait_for(lambda: pending_writes(stack) > 0, 60, "the writer to hold a batch", 0.01)
    hosts["w2"].down()
    cut_at = time.monotonic()
    pending = pending_writes(stack)
    start_worker(stack, "writer-b", queues="writing", wrap=hosts["w3"].argv())
    done_at_cut = job(stack, job_id).counters["done"]
    wait_progress(stack, job_id, "done", done_at_cut + 1)  # writer-b took over
    wait_since(cut_at, 2 * CLAIM_IDLE_S)
    hosts["w2"].up()
    healed = time.monotonic()
    print(f"\nsegments pending (read, not acknowledged) when the writer's host went down: {pending}")
    recover_s = finish_time(stack, job_id, healed)
    assert_same_counts(stack, job_id, urls, "writer's host partitioned mid-batch",
                       recover_s=recover_s, rows_of=milvus_rows_in_subprocess)
    wait_for(lambda: stack.client().xlen("vs:segments") == 0, 30, "the segment stream to empty")


def test_a_worker_host_killed_outright_during_a_backfill_loses_nothing(
    hs: tuple[Hosts, Stack], tmp_path: Path,
) -> None:
    """Drill: three worker hosts; while ``vidsearch backfill`` runs, every process of w3 is
    SIGKILLed and nothing restarts there. Then the same backfill runs again and pays nothing.
    Promise: 0 items lost, 0 duplicate rows, 1 paid task per item; backfill exits 0."""
    hosts, stack = hs
    for name in WORKER_HOSTS:
        start_worker(stack, name, env=SLOW_ADMISSION, wrap=hosts[name].argv())
    urls = write_manifest(tmp_path / "m.csv", "kill-host", ITEMS)
    backfill = subprocess.Popen(
        [sys.executable, "-m", "vidsearch", "backfill", str(tmp_path / "m.csv"), "--name", "nightly"],
        env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    wait_for(lambda: jobs_of(stack).latest_job_id() is not None, 60, "the backfill's job")
    job_id = str(jobs_of(stack).latest_job_id())
    wait_progress(stack, job_id, "done", 4)
    killed = hosts["w3"].kill()
    killed_at = time.monotonic()
    out, _ = backfill.communicate(timeout=300)
    recover_s = time.monotonic() - killed_at
    assert backfill.returncode == 0, out
    assert json.loads(out.splitlines()[-1])["id"] == job_id
    print(f"\nprocesses killed on w3: {killed}")
    assert_same_counts(stack, job_id, urls, "worker host killed during a backfill",
                       recover_s=recover_s, rows_of=milvus_rows_in_subprocess)
    again = stack.vidsearch("backfill", str(tmp_path / "m.csv"), "--name", "nightly")
    assert again.returncode == 0, again.stderr[-2000:]
    by_url = stack.sandbox_stats()["tasks_by_url"]
    assert all(by_url[u] == 1 for u in urls), "the second backfill paid again"

