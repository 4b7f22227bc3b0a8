"""Drill 1: SIGKILL a worker's main process, and separately a pool child, several times mid-job."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.drills.harness import (
    assert_same_counts,
    celery_main,
    children,
    finish_time,
    kill_group,
    sigkill,
    start_worker,
    submit,
    wait_progress,
    write_manifest,
)
from tests.stack import Stack

pytestmark = [pytest.mark.drill, pytest.mark.integration, pytest.mark.slow]

ITEMS = 40
SLOW_ADMISSION = {"VIDSEARCH_MAX_IN_FLIGHT": "10"}
"""Ten tasks in flight at a time, so the job lasts long enough for three kills."""


def test_sigkill_of_a_workers_main_process_loses_nothing(stack: Stack, tmp_path: Path) -> None:
    start_worker(stack, "steady", env=SLOW_ADMISSION)
    supervisor = start_worker(stack, "victim", env=SLOW_ADMISSION)
    urls = write_manifest(tmp_path / "m.csv", "kill-main", ITEMS)
    job_id = submit(stack, tmp_path / "m.csv")
    victim = celery_main(supervisor)
    for threshold in (6, 16, 26):
        wait_progress(stack, job_id, "done", threshold)
        sigkill(victim)  # the Celery main process only: its pool children are orphaned
        killed_at = time.monotonic()
        victim = celery_main(supervisor, other_than=victim)  # vidsearch worker restarts it
    recover_s = finish_time(stack, job_id, killed_at)
    kill_group(supervisor)
    assert_same_counts(stack, job_id, urls, "worker main SIGKILL x3", recover_s=recover_s)


def test_sigkill_of_a_pool_child_loses_nothing(stack: Stack, tmp_path: Path) -> None:
    start_worker(stack, "steady", env=SLOW_ADMISSION)
    victim = start_worker(stack, "victim", env=SLOW_ADMISSION)
    urls = write_manifest(tmp_path / "m.csv", "kill-child", ITEMS)
    job_id = submit(stack, tmp_path / "m.csv")
    killed = 0
    for threshold in (6, 16, 26):
        wait_progress(stack, job_id, "done", threshold)
        pool = children(celery_main(victim))
        assert pool, "the victim worker has no pool child"
        sigkill(pool[0])
        killed += 1
    recover_s = finish_time(stack, job_id, time.monotonic())
    assert_same_counts(stack, job_id, urls, f"pool child SIGKILL x{killed}", recover_s=recover_s)
