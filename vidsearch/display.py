"""What people read while a job runs: the progress of ``submit --wait`` and ``status --watch``, and
search hits. Shared by the commands and the demo (so neither imports the other)."""

from __future__ import annotations

import sys
import time
from typing import Any

from pipeline.jobs import Job, JobStore


def wait_for_job(jobs: JobStore, job_id: str, progress: bool, interval_s: float = 0.5) -> Job:
    """Block until the job has finished; draw a progress bar on stderr."""
    while True:
        job = jobs.get_job(job_id)
        if job is None:
            raise SystemExit(f"job {job_id} disappeared")
        if progress:
            print("\r" + _bar(job), end="", file=sys.stderr, flush=True)
        if job.finished:
            if progress:
                print(file=sys.stderr)
            return job
        time.sleep(interval_s)


def _bar(job: Job, width: int = 30) -> str:
    c = job.counters
    total = max(1, c["queued"])
    finished = c["done"] + c["failed"]
    filled = int(width * finished / total)
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {finished}/{c['queued']} items "
        f"(done {c['done']}, failed {c['failed']}), {c['segments']} segments"
    )


def print_hits(hits: Any) -> None:
    print(f"{'score':>6}  {'time':>13}  {'category':<12} video")
    for h in hits:
        span = f"{h.start_s:6.1f}-{h.end_s:6.1f}"
        title = f" ({h.title})" if h.title else ""
        print(f"{h.score:6.3f}  {span:>13}  {h.category:<12} {h.url}{title}")
        for m in getattr(h, "moments", [])[1:]:
            print(f"{m.score:6.3f}  {m.start_s:6.1f}-{m.end_s:6.1f}  {'':<12}   another moment")
