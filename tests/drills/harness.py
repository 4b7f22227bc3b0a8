"""Shared pieces of the fault drills: one stack, small jobs, and the "same counts as a clean run" check.

A clean run of a job is fully determined by its URLs: the sandbox gives each URL a duration (hashed
from the URL) and so a fixed number of segments. "Same counts" therefore means: every accepted item
done, the Milvus rows of the job equal the segments the sandbox produced for its URLs, with no
duplicate primary key, one Twelve Labs task per URL, and ``vidsearch verify JOB`` exiting 0.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymilvus import MilvusClient, MilvusException
from twelvelabs import TwelveLabs

from pipeline.archive.store import EmbeddingArchive
from pipeline.ledger.records import Job
from pipeline.ledger.store import JobStore
from pipeline.settings import load_settings
from pipeline.state.keys import Keys
from tests.stack import Stack, wait_for

CATEGORIES = ("animals", "sports", "cooking", "travel")
NO_FAULTS = {"rate_429": 0.0, "rate_5xx": 0.0, "drop_after_create_rate": 0.0, "fail_rate": 0.0,
             "stuck_rate": 0.0, "slow_rate": 0.0, "retry_after_s": 0.0, "create_rpm": 0,
             "requests_per_minute": 0, "requests_per_day": 0, "media_minutes_per_hour": 0.0,
             "media_minutes_per_day": 0.0, "media_window_s": 3600.0, "no_retry_after": False,
             "min_duration_s": 20.0, "max_duration_s": 180.0}
DRILL_SETTINGS = {
    "VIDSEARCH_CREATE_LEASE_S": "8",
    "VIDSEARCH_POLL_LEASE_S": "5",
    "VIDSEARCH_WRITER_CLAIM_IDLE_S": "4",
    "VIDSEARCH_WRITER_DRAIN_S": "5",
    "VIDSEARCH_TASK_DEADLINE_S": "120",
}
REPO = Path(__file__).resolve().parents[2]
SANDBOX_ARGS = ("--speed", "10")
"""Tasks take about 0.7-2.3 s: long enough to kill things mid-job, short enough for CI."""


def write_manifest(path: Path, tag: str, n: int) -> list[str]:
    """``n`` distinct good lines over four categories; returns their URLs."""
    urls = [f"https://cdn.example.com/{tag}/{CATEGORIES[i % 4]}/clip-{i}.mp4" for i in range(n)]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["url", "category", "title"])
        for i, url in enumerate(urls):
            writer.writerow([url, CATEGORIES[i % 4], f"{tag} clip {i}"])
    return urls


def sandbox_reset(stack: Stack) -> None:
    """Forget the sandbox's tasks and counters and re-seed its dice (``POST /_sandbox/reset``)."""
    request = urllib.request.Request(f"{stack.sandbox.url}/_sandbox/reset", data=b"{}", method="POST",
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10):
        pass


def jobs_of(stack: Stack) -> JobStore:
    return JobStore(stack.client(), Keys("vs"))


def submit(stack: Stack, manifest: Path, env: dict[str, str] | None = None) -> str:
    """Submit without waiting (with extra settings ``env``); returns the job id."""
    proc = stack.vidsearch("submit", str(manifest), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    return str(json.loads(proc.stdout)["job_id"])


def job(stack: Stack, job_id: str) -> Job:
    found = jobs_of(stack).get_job(job_id)
    assert found is not None
    return found


def wait_job(stack: Stack, job_id: str, timeout_s: float = 240) -> Job:
    wait_for(lambda: job(stack, job_id).finished, timeout_s, f"job {job_id} to finish", 0.3)
    return job(stack, job_id)


def wait_progress(stack: Stack, job_id: str, counter: str, at_least: int, timeout_s: float = 120) -> None:
    wait_for(lambda: job(stack, job_id).counters[counter] >= at_least, timeout_s,
             f"{counter} >= {at_least} in job {job_id}", 0.1)


def milvus_rows(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    """The job's rows, read by an independent client (retried: this test process's gRPC channel
    may still be the one a restarted Milvus closed)."""
    for _ in range(5):
        try:
            return _milvus_rows(stack, job_id)
        except MilvusException:
            time.sleep(2)
    return _milvus_rows(stack, job_id)


def _milvus_rows(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    return milvus_rows_at(stack.milvus.url, job_id)


def milvus_rows_in_subprocess(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    """``milvus_rows`` read by a subprocess: for a test thread in a network namespace of its own
    (``tests/hosts.py``), where pymilvus's gRPC threads would not be."""
    code = ("import json, sys\nfrom tests.drills.harness import milvus_rows_at\n"
            "print(json.dumps(milvus_rows_at(sys.argv[1], sys.argv[2])))")
    proc = subprocess.run([sys.executable, "-c", code, stack.milvus.url, job_id], cwd=REPO,
                          env=stack.env, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return list(json.loads(proc.stdout))


def milvus_rows_at(uri: str, job_id: str) -> list[dict[str, Any]]:
    """The job's rows in the Milvus at ``uri``."""
    client = MilvusClient(uri=uri)
    try:
        names = [n for n in client.list_collections() if n.startswith("vidsearch_marengo3_0")]
        rows: list[dict[str, Any]] = []
        for name in names:
            iterator = client.query_iterator(name, batch_size=1000, filter=f'job_id == "{job_id}"',
                                              output_fields=["pk", "item_key", "category"])
            while batch := iterator.next():
                rows.extend(batch)
            iterator.close()
        return rows
    finally:
        client.close()


def stack_archive(stack: Stack) -> EmbeddingArchive:
    """The embedding archive the stack's writers append to (``data_dir/archive``)."""
    archive = EmbeddingArchive.from_settings(load_settings(data_dir=Path(stack.env["VIDSEARCH_DATA_DIR"])))
    assert archive is not None
    return archive


def archived_pks(stack: Stack, job_id: str) -> list[str]:
    """The job's rows in the archive, as a scan returns them (one per pk, the latest copy)."""
    archive = stack_archive(stack)
    return [pk for name in archive.collections() for batch in archive.scan(name)
            for pk, job in zip(batch.pks, batch.scalars["job_id"], strict=True) if job == job_id]


def assert_archive_matches_milvus(stack: Stack, job_id: str) -> int:
    """The archive's scan holds exactly the job's Milvus rows (count and pk set); returns the count."""
    in_archive = archived_pks(stack, job_id)
    in_milvus = [str(r["pk"]) for r in milvus_rows(stack, job_id)]
    assert len(in_archive) == len(set(in_archive)) == len(in_milvus)
    assert set(in_archive) == set(in_milvus)
    return len(in_archive)


def sandbox_segments(stack: Stack, urls: Iterable[str]) -> int:
    """Segments the sandbox's ready tasks produced for ``urls`` (what a clean run writes)."""
    wanted = set(urls)
    client = TwelveLabs(api_key="drill", base_url=f"{stack.sandbox.url}/v1.3")
    total = 0
    for task in client.embed.v_2.tasks.list(page_limit=50):
        meta = task.video_embedding.metadata if task.video_embedding else None
        if task.status == "ready" and meta is not None and getattr(meta, "input_url", None) in wanted:
            total += len(client.embed.v_2.tasks.retrieve(str(task.id)).data or [])
    return total


def verify(stack: Stack, job_id: str) -> tuple[int, dict[str, Any]]:
    proc = stack.vidsearch("verify", job_id, "--json", timeout=300)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@dataclass
class Figures:
    """What a drill measured (printed for docs/reliability.md)."""

    drill: str
    items: int
    done: int
    failed: int
    rows: int
    tasks_created: int
    recover_s: float | None

    def show(self) -> None:
        recover = "-" if self.recover_s is None else f"{self.recover_s:.1f}"
        print(f"\nDRILL {self.drill}: items {self.items}, done {self.done}, failed {self.failed}, "
              f"rows {self.rows}, Twelve Labs tasks created {self.tasks_created}, "
              f"recovered in {recover} s")


def assert_same_counts(
    stack: Stack, job_id: str, urls: Sequence[str], drill: str, *, recover_s: float | None = None,
    tasks_per_url: dict[str, int] | None = None,
    rows_of: Callable[[Stack, str], list[dict[str, Any]]] = milvus_rows,
) -> Figures:
    """Every item done, rows == the sandbox's segments, unique pks, one task per URL, verify 0
    (``rows_of`` reads the job's Milvus rows)."""
    stack.sandbox_config(**NO_FAULTS)
    finished = wait_job(stack, job_id)
    c = finished.counters
    assert (c["accepted"], c["done"], c["failed"]) == (len(urls), len(urls), 0), c
    by_url = stack.sandbox_stats()["tasks_by_url"]
    expected_tasks = {u: (tasks_per_url or {}).get(u, 1) for u in urls}
    assert {u: by_url.get(u, 0) for u in urls} == expected_tasks
    rows = rows_of(stack, job_id)
    produced = sandbox_segments(stack, urls)
    assert produced > 0
    assert len(rows) == produced == c["segments"], (len(rows), produced, c["segments"])
    assert len({r["pk"] for r in rows}) == len(rows)
    code, report = verify(stack, job_id)
    assert code == 0 and report["ok"], report["discrepancies"]
    assert report["rows"] == produced
    figures = Figures(drill, len(urls), c["done"], c["failed"], len(rows),
                      sum(expected_tasks.values()), recover_s)
    figures.show()
    return figures


# --- processes -------------------------------------------------------------------------------------
def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def celery_main(supervisor: int, timeout_s: float = 60, other_than: int | None = None) -> int:
    """The Celery worker process that ``vidsearch worker`` (a supervisor) runs as its child."""
    found: list[int] = []

    def running() -> bool:
        found[:] = [pid for pid in children(supervisor) if pid != other_than]
        return bool(found)

    wait_for(running, timeout_s, f"a Celery worker under supervisor {supervisor}", 0.1)
    return found[0]


def sigkill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def kill_group(pgid: int) -> None:
    """SIGKILL what is left of a process group this test started (orphaned pool children)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def finish_time(stack: Stack, job_id: str, since: float, timeout_s: float = 240) -> float:
    """Wait for the job to finish; seconds from ``since`` (a ``time.monotonic()``) until it did."""
    wait_job(stack, job_id, timeout_s)
    return time.monotonic() - since


def start_worker(
    stack: Stack, name: str, *, queues: str = "embedding,polling,writing", concurrency: int = 2,
    env: dict[str, str] | None = None, wrap: Sequence[str] = (),
) -> int:
    """Start a worker (optionally with other settings, or on a host: ``wrap``) and wait until it
    consumes; returns its pid."""
    log = stack.root / f"worker-{name}.log"
    offset = log.stat().st_size if log.exists() else 0
    proc = stack.start_worker(name, queues, concurrency=concurrency, env=env, wrap=wrap)

    def ready() -> bool:
        assert proc.poll() is None, f"worker {name} exited: see {log}"
        with log.open("rb") as handle:
            handle.seek(offset)
            return b"ready." in handle.read()

    wait_for(ready, 90, f"worker {name} to be ready", 0.2)
    return proc.pid


def sandbox_clock(stack: Stack, advance_s: float) -> float:
    """Move the sandbox's clock ``advance_s`` forward (``POST /_sandbox/clock``); its new now."""
    request = urllib.request.Request(f"{stack.sandbox.url}/_sandbox/clock",
                                     data=json.dumps({"advance_s": advance_s}).encode(), method="POST",
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return float(json.loads(resp.read())["now"])
