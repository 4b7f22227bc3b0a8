"""Drill 3: stop the Milvus Lite server for 20 s mid-job, then start it again on the same data: the
writer holds the segments in the stream and resumes; nothing is dropped, nothing doubled."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline.settings import load_settings
from pipeline.stream import stream_backlog
from tests.drills.harness import (
    assert_same_counts,
    finish_time,
    job,
    start_worker,
    submit,
    wait_progress,
    write_manifest,
)
from tests.stack import Stack
from vidsearch.services import start_milvus

pytestmark = [pytest.mark.drill, pytest.mark.integration, pytest.mark.slow]

ITEMS = 40
OUTAGE_S = 20


def test_a_20_s_milvus_outage_mid_job_loses_nothing(stack: Stack, tmp_path: Path) -> None:
    start_worker(stack, "m1", beat=True)
    start_worker(stack, "m2")
    urls = write_manifest(tmp_path / "m.csv", "milvus-outage", ITEMS)
    job_id = submit(stack, tmp_path / "m.csv")
    wait_progress(stack, job_id, "done", 5)
    port = stack.milvus.port
    stack.milvus.stop()
    time.sleep(OUTAGE_S)
    held = stream_backlog(stack.client(), load_settings(redis_url=stack.redis_url))
    during = job(stack, job_id).counters
    print(f"\nafter {OUTAGE_S} s without Milvus: {held} segments held in the stream, counters {during}")
    assert held > 0 and during["failed"] == 0 and during["done"] < ITEMS
    stack.milvus = start_milvus(stack.root / "milvus", port=port)
    restarted = time.monotonic()
    recover_s = finish_time(stack, job_id, restarted)
    assert_same_counts(stack, job_id, urls, f"milvus down {OUTAGE_S} s", recover_s=recover_s)
