"""Drill 4: kill the writer once the archive has a batch and Milvus does not, then once Milvus has
the replayed batch and the archive append of it is held back, then after the ledger and before the
acknowledgement; the replays (another writer reclaims the entries with XAUTOCLAIM) leave no
duplicate row, no missing one and no double count.
Drill 4b: kill it between the upsert and the deletion of the entries; no entry stays in Redis.
Both end with the archive's scan holding exactly the job's Milvus rows (count and pk set)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.drills.harness import (
    archived_pks,
    assert_archive_matches_milvus,
    assert_same_counts,
    finish_time,
    job,
    jobs_of,
    milvus_rows,
    start_worker,
    submit,
    write_manifest,
)
from tests.stack import Stack, wait_for

pytestmark = [pytest.mark.drill, pytest.mark.integration, pytest.mark.slow]

ITEMS = 20
STREAM = "vs:segments"


def crash(stack: Stack, mode: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "tests.drills.crashing_writer", mode], env=stack.env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == -9, f"the writer did not crash ({proc.returncode}): {proc.stderr[-2000:]}"


def length(stack: Stack) -> int:
    return int(stack.client().xlen(STREAM))


def pending(stack: Stack) -> int:
    return int(stack.client().xpending(STREAM, "writers")["pending"])


def fill_stream(stack: Stack, tmp_path: Path, name: str) -> tuple[str, list[str], int]:
    """A job with no writer running: every item's segments wait in the stream.
    Returns the job id, its URLs and the stream's length."""
    start_worker(stack, "nowriter", queues="embedding,polling")
    urls = write_manifest(tmp_path / "m.csv", name, ITEMS)
    job_id = submit(stack, tmp_path / "m.csv")
    jobs = jobs_of(stack)
    wait_for(lambda: jobs.waiting_count() == 0 and jobs.in_flight_count() == 0, 120,
             "every item to reach the segment stream")
    return job_id, urls, length(stack)


def test_a_writer_killed_between_write_and_ack_replays_without_duplicates(
    stack: Stack, tmp_path: Path
) -> None:
    job_id, urls, segments = fill_stream(stack, tmp_path, "writer-crash")

    crash(stack, "after-archive")  # a batch in the archive, not in Milvus; nothing acknowledged
    archived = len(archived_pks(stack, job_id))
    assert archived > 0 and milvus_rows(stack, job_id) == [] and pending(stack) >= archived

    time.sleep(5)  # past writer_claim_idle_s: the next writer reclaims the dead one's entries
    crash(stack, "after-upsert")  # the replay reaches Milvus, its archive append held back; no ack
    written = len(milvus_rows(stack, job_id))
    assert written > 0 and pending(stack) >= written and job(stack, job_id).counters["segments"] == 0

    time.sleep(5)  # past writer_claim_idle_s: the next writer reclaims the dead one's entries
    crash(stack, "after-ledger")  # replayed upsert and ledger; ack not done
    assert len(milvus_rows(stack, job_id)) == written
    assert pending(stack) >= written
    counted = job(stack, job_id).counters["segments"]
    assert counted == written

    crashed = time.monotonic()
    start_worker(stack, "writer", queues="writing")
    recover_s = finish_time(stack, job_id, crashed)
    wait_for(lambda: pending(stack) == 0, 120,
             "every segment acknowledged")
    figures = assert_same_counts(stack, job_id, urls, "writer killed after archive, after upsert, "
                                 "then after ledger", recover_s=recover_s)
    assert figures.rows == segments == job(stack, job_id).counters["segments"]
    assert length(stack) == 0  # acknowledged entries left Redis
    assert assert_archive_matches_milvus(stack, job_id) == segments


def test_a_writer_killed_before_deleting_acknowledged_entries_leaves_none_behind(
    stack: Stack, tmp_path: Path
) -> None:
    job_id, urls, segments = fill_stream(stack, tmp_path, "writer-delete")

    crash(stack, "after-ack")  # rows in Milvus, ledger done, acknowledged; not deleted
    written = job(stack, job_id).counters["segments"]
    assert 0 < written == len(milvus_rows(stack, job_id)) and length(stack) == segments
    assert pending(stack) == segments - written

    crashed = time.monotonic()
    start_worker(stack, "writer", queues="writing")
    recover_s = finish_time(stack, job_id, crashed)
    wait_for(lambda: length(stack) == 0, 120, "the acknowledged entries to leave the stream")
    figures = assert_same_counts(stack, job_id, urls, "writer killed between ack and delete",
                                 recover_s=recover_s)
    assert figures.rows == segments == job(stack, job_id).counters["segments"]
    assert pending(stack) == 0 and int(stack.client().xlen(f"{STREAM}:dead")) == 0
    assert assert_archive_matches_milvus(stack, job_id) == segments

