"""Our workers down longer than Twelve Labs keeps results (seven days): the tasks finished while
nobody polled, and a retrieve now answers "no longer available". On the real stack (workers,
sandbox with its clock moved eight days, SDK, Milvus): every such item fails with a reason that
says its results expired, none is lost or re-paid silently (one task per item), and ``vidsearch
retry`` embeds them again as the second paid task the docs promise."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.drills.harness import (
    SANDBOX_ARGS,
    assert_same_counts,
    jobs_of,
    sandbox_clock,
    start_worker,
    submit,
    wait_job,
    write_manifest,
)
from tests.stack import Stack, wait_for

pytestmark = [pytest.mark.drill, pytest.mark.integration, pytest.mark.slow]

ITEMS = 6
EIGHT_DAYS_S = 8 * 86400.0


@pytest.fixture
def slow_tasks(stack: Stack) -> Iterator[Stack]:
    """Tasks that take tens of minutes of sandbox time: they finish only when the clock moves."""
    stack.sandbox_config(speed=0.01)
    yield stack
    stack.sandbox_config(speed=float(SANDBOX_ARGS[1]))


def test_results_that_expired_during_an_outage_fail_clearly_and_retry_pays_once_more(
    slow_tasks: Stack, tmp_path: Path,
) -> None:
    stack = slow_tasks
    urls = write_manifest(tmp_path / "m.csv", "outage", ITEMS)
    start_worker(stack, "o1")
    job_id = submit(stack, tmp_path / "m.csv")
    jobs = jobs_of(stack)
    wait_for(lambda: jobs.in_flight_count() == ITEMS and stack.sandbox_stats()["tasks_created"] == ITEMS,
             120, "every item's task created")
    stack.stop_workers()  # the outage: tasks run on at Twelve Labs, nobody polls
    assert jobs.in_flight_count() == ITEMS
    sandbox_clock(stack, EIGHT_DAYS_S)  # they finished, and their results were dropped a day ago

    start_worker(stack, "o2")
    first = wait_job(stack, job_id, 120)
    assert (first.counters["done"], first.counters["failed"]) == (0, ITEMS)
    failures = json.loads(stack.vidsearch("failures", job_id, "--json").stdout)
    assert {f["url"] for f in failures} == set(urls)
    for failure in failures:
        assert failure["task_id"] in failure["reason"]
        assert "expired before they were read" in failure["reason"]
        assert "vidsearch retry JOB" in failure["reason"]
    stats = stack.sandbox_stats()
    assert stats["tasks_created"] == ITEMS and set(stats["tasks_by_url"].values()) == {1}

    stack.sandbox_config(speed=float(SANDBOX_ARGS[1]))
    retried = stack.vidsearch("retry", job_id)
    assert f"re-queued {ITEMS} failed item(s)" in retried.stdout
    assert_same_counts(stack, job_id, urls, "results expired in an outage + retry",
                       tasks_per_url=dict.fromkeys(urls, 2))
