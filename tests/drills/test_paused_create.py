"""Drill: a worker stopped (SIGSTOP) while it holds an item's create lock, until well past the
lock's lease. Another worker takes the item over and creates its task; when the stopped worker
resumes, it must not pay for a second task.

The item carries a create mark (``ca``: an earlier attempt whose outcome is unknown), so a create
first looks the task up through the list endpoint; the sandbox answers every call 5 s late, so
the first worker is stopped in the middle of that lookup, holding the lock."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from pipeline.state.keys import Keys
from tests.drills.harness import start_worker, submit, wait_job, write_manifest
from tests.stack import Stack, wait_for

pytestmark = [pytest.mark.drill, pytest.mark.integration, pytest.mark.slow]

KEYS = Keys("vs")


def _events(stack: Stack, worker: str) -> list[dict[str, object]]:
    found = []
    for line in (stack.root / f"worker-{worker}.log").read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and str(event.get("event", "")).startswith("create_"):
            found.append(event)
    return found


def _resumed_create_ended(stack: Stack) -> bool:
    return bool(_events(stack, "paused"))  # a create logs one event, when it ends


def test_a_worker_stopped_past_its_create_lease_pays_for_no_second_task(
    stack: Stack, tmp_path: Path,
) -> None:
    [url] = write_manifest(tmp_path / "m.csv", "paused", 1)
    job_id = submit(stack, tmp_path / "m.csv")
    client = stack.client()
    [item] = [k.decode() for k in client.scan_iter(match=KEYS.item("*")) if k.count(b":") == 2]
    key = item.removeprefix(KEYS.item(""))
    client.hset(item, "ca", time.time())  # an earlier attempt's outcome is unknown
    stack.sandbox_config(slow_rate=1.0, slow_s=5.0)

    paused = start_worker(stack, "paused", concurrency=1)
    lock = KEYS.lock(f"create:{key}")
    wait_for(lambda: bool(client.exists(lock)), 90, "the first worker to hold the create lock", 0.05)
    os.killpg(paused, signal.SIGSTOP)
    try:
        wait_for(lambda: not client.exists(lock), 30, "its create lease to run out", 0.1)
        start_worker(stack, "other")
        wait_for(lambda: client.hget(item, "tl") is not None, 120, "the other worker's task")
    finally:
        os.killpg(paused, signal.SIGCONT)
    wait_for(lambda: _resumed_create_ended(stack), 120, "the resumed worker's create to end")
    stack.sandbox_config(slow_rate=0.0)

    finished = wait_job(stack, job_id)
    assert finished.counters["done"] == 1
    assert stack.sandbox_stats()["tasks_by_url"] == {url: 1}
    assert {e["event"] for e in _events(stack, "paused")} == {"create_skipped"}
