"""Polling cost (section 2), measured on the quota phase of ``bench.e2e``.

* Status calls per finished task: the sandbox's ``status_polls`` counter (``GET
  embed-v2/tasks/{id}``) over the job, divided by the tasks that finished.
* Lag: per task, the worker's ``poll_ready`` log line (written right after the retrieve that
  returned the segments and put them on the writer's stream) minus the sandbox's ready time
  (``updated_at`` of a ready task = created + processing time), read through the list endpoint so
  reading it costs no status poll.
* Headroom: what one sandbox serves (``bench/sandbox_polls.py``, the SDK from one thread) against
  the status calls per second the quota phase needed.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

from bench.common import ROOT, Row, log, pct, python
from bench.e2e import JobRun, QuotaConfig, epoch


def ready_lags(run: JobRun) -> tuple[list[float], list[float]]:
    """Per task: seconds from the sandbox's ready time to the worker's ``poll_ready`` line.

    Returns (all tasks, tasks created after the first ``poll_ready``: the poll schedule had
    learned the task time by then).
    """
    ready_at = {t["_id"]: epoch(t["updated_at"]) for t in run.tasks if t["status"] == "ready"}
    created = {t["_id"]: epoch(t["created_at"]) for t in run.tasks}
    read_at: dict[str, float] = {}
    for path in sorted(run.log_file.parent.glob(run.log_file.name + "*")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if '"poll_ready"' not in line:
                continue
            event = json.loads(line)
            task = event.get("tl_task")
            if task in ready_at:
                read_at[task] = min(read_at.get(task, 1e18), epoch(event["timestamp"]))
    if not read_at:
        return [], []
    first_read = min(read_at.values())
    lags = [read_at[t] - ready_at[t] for t in read_at]
    warm = [read_at[t] - ready_at[t] for t in read_at if created[t] > first_read]
    return lags, warm


def polling_rows(cfg: QuotaConfig, run: JobRun) -> list[Row]:
    finished = run.counters["done"] + run.counters["failed"]
    per_task = run.stats_delta["status_polls"] / max(finished, 1)
    lags, warm = ready_lags(run)
    limit = 0.1 * cfg.task_s
    p50, p95 = pct(lags, 50), pct(lags, 95)
    return [
        Row("2", "status calls per finished task", f"{per_task:.2f}",
            f"{run.stats_delta['status_polls']} polls / {finished} tasks", "", "<= 4", per_task <= 4),
        Row("2", f"ready -> segments read lag p50 / p95 s ({len(lags)} tasks)", f"{p50:.2f} / {p95:.2f}",
            f"task time {cfg.task_s:g} s", f"{p95 / cfg.task_s:.1%} (p95)", "< 10 % of task time",
            p95 < limit, {"lags": lags}),
        Row("2", f"  same after the task time was learned ({len(warm)} tasks)",
            f"{pct(warm, 50):.2f} / {pct(warm, 95):.2f}", f"task time {cfg.task_s:g} s",
            f"{pct(warm, 95) / cfg.task_s:.1%} (p95)", "< 10 % of task time", pct(warm, 95) < limit),
    ]


def capacity_rows(run: JobRun) -> list[Row]:
    """Sandbox status polls/s (bench/sandbox_polls.py, SDK from 1 thread) vs what the job needed."""
    proc = subprocess.run([python(), "bench/sandbox_polls.py", "--seconds", "2", "--tasks", "100",
                           "--no-readme"], capture_output=True, text=True, timeout=300, check=False,
                          cwd=ROOT)
    rows = [line for line in proc.stdout.splitlines() if re.match(r"^\| (SDK|sdk)", line)]
    if proc.returncode != 0 or not rows:
        log(f"sandbox_polls.py gave nothing usable (exit {proc.returncode})")
        return []
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    capacity = float(cells[2].replace(",", ""))
    demand = run.stats_delta["status_polls"] / run.seconds
    info: dict[str, Any] = {"sandbox_polls_table": proc.stdout, "demand_per_s": demand}
    return [Row("2", f"status polls/s needed at the bound vs one SDK client ({cells[0]}, {cells[1]})",
                f"{demand:.1f}", f"{capacity:,.0f}/s", f"{capacity / max(demand, 1e-9):.0f}x headroom",
                "reported", None, json.loads(json.dumps(info)))]
