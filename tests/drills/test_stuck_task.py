"""Drill 6: a task that stays processing forever fails at its deadline with a clear reason, and
polling it stops (the sandbox's poll count does not move afterwards)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.drills.harness import start_worker, submit, wait_job, write_manifest
from tests.stack import Stack

pytestmark = [pytest.mark.drill, pytest.mark.integration, pytest.mark.slow]

DEADLINE_S = 6


def test_a_stuck_task_fails_at_its_deadline_and_is_no_longer_polled(stack: Stack, tmp_path: Path) -> None:
    stack.sandbox_config(stuck_rate=1.0)
    start_worker(stack, "s1", env={"VIDSEARCH_TASK_DEADLINE_S": str(DEADLINE_S)})
    write_manifest(tmp_path / "m.csv", "stuck", 3)
    started = time.monotonic()
    job_id = submit(stack, tmp_path / "m.csv")
    finished = wait_job(stack, job_id, 120)
    took = time.monotonic() - started
    assert finished.counters["failed"] == 3 and finished.counters["done"] == 0
    failures = json.loads(stack.vidsearch("failures", job_id, "--json").stdout)
    for failure in failures:
        assert f"Twelve Labs task {failure['task_id']} still processing after" in failure["reason"]
        assert f"(deadline {DEADLINE_S} s)" in failure["reason"]
    polls = stack.sandbox_stats()["status_polls"]
    time.sleep(8)
    after = stack.sandbox_stats()["status_polls"]
    print(f"\nDRILL stuck task: 3 items failed after {took:.1f} s (deadline {DEADLINE_S} s), "
          f"{polls} polls in all, {after - polls} after the failure; reason: {failures[0]['reason']}")
    assert after == polls
    assert polls < 3 * 20  # adaptive polling: a handful per item, not one per tick
    assert stack.client().zcard("vs:inflight") == 0
