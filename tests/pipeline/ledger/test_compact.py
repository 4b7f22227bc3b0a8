"""Compaction of a ledger written by the code before compact done records (commit 0d91750), on a
real redis-server: the new code reads it as it is, ``vidsearch ledger compact`` frees it, and
the promises hold before and after (a done item is skipped, not paid again; a failed item stays
retryable; an item still writing finishes).

``tests/data/ledger-0d91750.json`` is a dump of the keys that code wrote for two jobs: 8 lines,
4 items done with 3 segments each, 1 done without segments, 1 failed, 1 writing (1 of 2 segments
written), 1 waiting; the second job skipped two done items.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis

from pipeline.ledger.compact import compact_ledger
from pipeline.ledger.store import Admission, JobStore, SubmitMode, job_item_keys, read_items
from pipeline.state.keys import Keys

FIXTURE = Path(__file__).parents[2] / "data" / "ledger-0d91750.json"


def _b(text: str) -> bytes:
    return base64.b64decode(text)


def load(client: redis.Redis) -> dict[str, Any]:
    """Write the dumped keys into Redis as the old code left them; returns the dump's ids."""
    dump = json.loads(FIXTURE.read_text(encoding="utf-8"))
    for name, entry in dump["keys"].items():
        kind, value = entry["type"], entry["value"]
        if kind == "hash":
            client.hset(name, mapping={_b(f): _b(v) for f, v in value.items()})
        elif kind == "list":
            client.rpush(name, *(_b(v) for v in value))
        elif kind == "set":
            client.sadd(name, *(_b(v) for v in value))
        elif kind == "zset":
            client.zadd(name, {_b(m): s for m, s in value})
        else:
            client.set(name, _b(value))
    return dump


def _keys(jobs: JobStore, job: str) -> list[str]:
    return [k for batch in job_item_keys(jobs.r, jobs.keys, job) for k in batch]


def _states(jobs: JobStore, keys: list[str]) -> list[tuple[str, str, int | None]]:
    items = read_items(jobs.r, jobs.keys, keys)
    return [(i.state, i.job_id, i.expected) if i else ("none", "", None) for i in items]


def test_the_new_code_reads_an_old_ledger_and_compaction_keeps_every_answer(
    redis_client: redis.Redis,
) -> None:
    dump = load(redis_client)
    jobs = JobStore(redis_client, Keys("vs"))
    job, admitted = dump["job"], dump["admitted"]
    before_keys, before_states = _keys(jobs, job), _states(jobs, admitted)
    assert before_keys == admitted
    assert [s for s, _, _ in before_states] == ["done"] * 5 + ["failed", "writing"]

    report = compact_ledger(jobs)

    assert (report.items, report.jobs) == (5, 1)
    assert _keys(jobs, job) == admitted and _states(jobs, admitted) == before_states
    assert not redis_client.exists(jobs.keys.items(job))
    assert redis_client.strlen(jobs.keys.item_index(job)) == 16 * len(admitted)
    assert [redis_client.exists(jobs.keys.item(k)) for k in admitted] == [0] * 5 + [1, 1]
    done = jobs.get_item(admitted[0])
    assert done is not None and (done.category, done.expected) == ("news", 3)
    assert compact_ledger(jobs).items == 0  # idempotent


def test_after_compaction_done_items_are_skipped_failed_ones_stay_and_writing_ones_finish(
    redis_client: redis.Redis,
) -> None:
    dump = load(redis_client)
    jobs = JobStore(redis_client, Keys("vs"))
    compact_ledger(jobs)
    admitted = dump["admitted"]
    jobs.record_written([(admitted[6], "06" + "1" * 30)])
    assert jobs.get_item(admitted[6]).state == "done"  # type: ignore[union-attr]
    assert jobs.get_job(dump["job"]).counters["done"] == 6  # type: ignore[union-attr]
    again = jobs.create_job(["again.csv"], jobs.spec(dump["job"]))  # type: ignore[arg-type]
    lines = [Admission(k, "news", f"https://cdn.example.com/{k}") for k in admitted]
    result = jobs.submit_batch(again, lines, SubmitMode())
    assert (result.skipped, result.previously_failed, result.queued) == (6, 1, 0)
    assert [i.url for i in jobs.failures(dump["job"])] == [
        "https://cdn.example.com/legacy/clip-5.mp4"]


def test_vidsearch_ledger_compact_reports_what_it_freed(redis_url: str, redis_client: redis.Redis) -> None:
    load(redis_client)
    env = {**os.environ, "VIDSEARCH_REDIS_URL": redis_url}
    proc = subprocess.run([sys.executable, "-m", "vidsearch", "ledger", "compact", "--json"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["done_items_compacted"], report["job_indexes_packed"]) == (5, 1)
