"""Drill 3: stop Milvus for 20 s mid-job, then start it again on the same data: the writer holds the
segments in the stream and resumes; nothing is dropped, nothing doubled. Run on Milvus Lite (the
drills' shared stack) and on a real Milvus server (a stack of its own)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.ingest.stream import stream_backlog
from pipeline.settings import load_settings
from tests.drills.harness import (
    DRILL_SETTINGS,
    SANDBOX_ARGS,
    assert_same_counts,
    finish_time,
    job,
    start_worker,
    submit,
    wait_progress,
    write_manifest,
)
from tests.stack import Stack, start_stack

pytestmark = [pytest.mark.drill, pytest.mark.integration, pytest.mark.slow]

ITEMS = 40
OUTAGE_S = 20


@pytest.fixture(params=["lite", "server"])
def engine_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if request.param == "lite":
        yield request.getfixturevalue("stack")
        return
    own = start_stack(tmp_path_factory.mktemp("drill-server"), sandbox_args=SANDBOX_ARGS, engine="server",
                      **DRILL_SETTINGS)
    yield own
    own.stop()


def test_a_20_s_milvus_outage_mid_job_loses_nothing(engine_stack: Stack, tmp_path: Path) -> None:
    stack = engine_stack
    start_worker(stack, "m1")
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
    stack.restart_milvus(port)
    restarted = time.monotonic()
    recover_s = finish_time(stack, job_id, restarted)
    assert_same_counts(stack, job_id, urls, f"milvus down {OUTAGE_S} s", recover_s=recover_s)
