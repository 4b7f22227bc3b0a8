"""Drill 7: a poison batch. Workers restarted with a changed model setting (marengo3.5 at 256
dimensions) meet segments of a job submitted at 512: those are dead-lettered with a message naming
both dimensions and their items fail with it; another job's batches (marengo3.0) are unaffected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.drills.harness import assert_same_counts, start_worker, submit, wait_job, write_manifest
from tests.stack import Stack

pytestmark = [pytest.mark.drill, pytest.mark.integration, pytest.mark.slow]

CHANGED = {"VIDSEARCH_MODEL": "marengo3.5", "VIDSEARCH_EMBEDDING_DIMENSION": "256"}


def test_wrong_dimension_segments_are_dead_lettered_and_other_batches_written(
    stack: Stack, tmp_path: Path
) -> None:
    start_worker(stack, "p1", env=CHANGED)
    start_worker(stack, "p2", env=CHANGED)
    poison_urls = write_manifest(tmp_path / "poison.csv", "poison", 6)
    good_urls = write_manifest(tmp_path / "good.csv", "unaffected", 20)
    poison = submit(stack, tmp_path / "poison.csv", env={"VIDSEARCH_MODEL": "marengo3.5"})
    good = submit(stack, tmp_path / "good.csv")

    poisoned = wait_job(stack, poison, 180)
    assert poisoned.counters["failed"] == len(poison_urls) and poisoned.counters["done"] == 0
    failures = json.loads(stack.vidsearch("failures", poison, "--json").stdout)
    for failure in failures:
        assert "segment dead-lettered" in failure["reason"]
        assert "vector dimension 512" in failure["reason"] and "vector dimension 256" in failure["reason"]
    dead = stack.client().xrange("vs:segments:dead")
    reasons = {fields[b"reason"].decode() for _, fields in dead}
    assert dead and all("512" in r and "256" in r for r in reasons)
    print(f"\nDRILL poison batch: {len(dead)} segments dead-lettered, e.g. {sorted(reasons)[0]}")

    figures = assert_same_counts(stack, good, good_urls, "poison batch (the unaffected job)")
    assert figures.rows > 0
    code, _ = stack.vidsearch("verify", poison, "--json").returncode, None
    assert code == 0  # failed items without rows are not a discrepancy
