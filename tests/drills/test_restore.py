"""Drill 10: Milvus loses everything; ``vidsearch restore`` brings it back from the embedding archive
with no Twelve Labs task. On Milvus Lite the data directory is deleted (stop, rm, start) and a first
restore is SIGKILLed half-way (the second resumes: no duplicate, no missing row); on a real Milvus
server (2.3.5) the collection is dropped while it runs and restored by bulk import. Before the
restore, search answers from Milvus (nothing), not from the result cache; after it, ``verify``
exits 0 and the same queries give the same top hits."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pymilvus import MilvusClient

from pipeline.archive.store import EmbeddingArchive
from pipeline.settings import load_settings
from pipeline.state.keys import Keys
from tests.drills.harness import (
    DRILL_SETTINGS,
    SANDBOX_ARGS,
    milvus_rows,
    start_worker,
    submit,
    verify,
    wait_job,
    write_manifest,
)
from tests.stack import Stack, start_stack, wait_for

pytestmark = [pytest.mark.drill, pytest.mark.integration]

ITEMS = 8
QUERIES = ("animals", "cooking", "a dog on a beach")
COLLECTION = "vidsearch_marengo3_0_d512"
KILL_AFTER = 5
"""Batches (of one row) the killed restore has upserted when it is killed."""


def top_hits(stack: Stack) -> dict[str, list[str]]:
    """The URLs each query finds, best first (every hit: the floor lowered)."""
    found = {}
    for text in QUERIES:
        proc = stack.vidsearch("search", text, "--json", "--min-score", "-1", "--top-k", "5")
        assert proc.returncode == 0, proc.stderr
        found[text] = [hit["url"] for hit in json.loads(proc.stdout)]
    return found


def tasks_created(stack: Stack) -> int:
    return int(stack.sandbox_stats()["tasks_created"])


def ingest(stack: Stack, tmp_path: Path, tag: str) -> str:
    start_worker(stack, f"{tag}1")
    write_manifest(tmp_path / "m.csv", tag, ITEMS)
    job_id = submit(stack, tmp_path / "m.csv")
    assert wait_job(stack, job_id).counters["done"] == ITEMS
    stack.stop_workers()
    return job_id


def archived_rows(stack: Stack) -> int:
    archive = EmbeddingArchive.from_settings(load_settings(data_dir=Path(stack.env["VIDSEARCH_DATA_DIR"])))
    assert archive is not None
    return int(archive.describe(COLLECTION).rows)


def restore_and_check(stack: Stack, job_id: str, before: dict[str, list[str]], tasks: int, *,
                      kill_half_way: bool = False) -> None:
    """Search finds nothing (not the cache), verify names what a restore brings back, restore
    (first SIGKILLed half-way, if asked), then verify exits 0 (no missing row), no duplicate pk,
    the same top hits, no new Twelve Labs task."""
    assert all(not urls for urls in top_hits(stack).values())
    code, report = verify(stack, job_id)
    assert code == 1 and report["restorable_items"] == ITEMS
    assert report["restorable_rows"] == report["expected_rows"] > 0
    if kill_half_way:
        killed_restore(stack)
    proc = stack.vidsearch("restore", "--json", timeout=600)
    assert proc.returncode == 0, proc.stderr
    restored = json.loads(proc.stdout)
    assert restored["rows"] == restored["milvus_rows"] == archived_rows(stack)
    assert restored["resumed_at"] >= (KILL_AFTER if kill_half_way else 0)
    rows = milvus_rows(stack, job_id)
    assert len(rows) == len({row["pk"] for row in rows})  # no duplicate
    code, report = verify(stack, job_id)
    assert code == 0, report["discrepancies"]
    assert top_hits(stack) == before
    assert tasks_created(stack) == tasks
    print(f"\nDRILL restore ({stack.engine}): {restored['rows']} rows by {restored['method']} in "
          f"{restored['seconds']} s; top hits of {len(QUERIES)} queries as before; "
          f"Twelve Labs tasks created by the restore: {tasks_created(stack) - tasks}")


def killed_restore(stack: Stack) -> None:
    """A restore upserting one row per batch, SIGKILLed once its checkpoint counts
    ``KILL_AFTER`` batches."""
    env = {**stack.env, "VIDSEARCH_RESTORE_BATCH_ROWS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vidsearch", "restore"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r: redis.Redis = stack.client()
    key = Keys("vs").restore(COLLECTION)

    def some_done() -> bool:
        raw = r.get(key)
        return raw is not None and json.loads(raw)["done"] >= KILL_AFTER

    try:
        wait_for(some_done, 120, f"the restore to upsert {KILL_AFTER} batches", 0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    left = json.loads(r.get(key) or b"{}")
    assert KILL_AFTER <= left["rows"] < archived_rows(stack), left


def test_milvus_lite_data_directory_deleted_then_restored_from_the_archive_after_a_killed_restore(
    stack: Stack, tmp_path: Path,
) -> None:
    job_id = ingest(stack, tmp_path, "restore-lite")
    before = top_hits(stack)
    assert any(before.values())
    assert list(stack.client().scan_iter("vs:rcache:*:*")), "the searches were not cached"
    tasks = tasks_created(stack)
    port = stack.milvus.port
    stack.milvus.stop()
    shutil.rmtree(stack.root / "milvus" / "data")
    stack.restart_milvus(port)
    restore_and_check(stack, job_id, before, tasks, kill_half_way=True)


@pytest.fixture
def server_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    own = start_stack(tmp_path_factory.mktemp("drill-restore-server"), sandbox_args=SANDBOX_ARGS,
                      engine="server", **DRILL_SETTINGS)
    yield own
    own.stop()


def test_a_collection_dropped_on_a_running_milvus_server_is_restored_by_bulk_import(
    server_stack: Stack, tmp_path: Path,
) -> None:
    stack = server_stack
    job_id = ingest(stack, tmp_path, "restore-server")
    before = top_hits(stack)
    assert any(before.values())
    tasks = tasks_created(stack)
    client = MilvusClient(uri=stack.milvus.url)
    client.drop_collection(COLLECTION)
    client.close()
    restore_and_check(stack, job_id, before, tasks)
