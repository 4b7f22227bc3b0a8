"""Scaling (section 6): end-to-end throughput with 1, 2 and 4 worker processes.

Same stack as ``bench.e2e``; the sandbox is switched to fast tasks and no creation limit, and
vidsearch to no rate limit and a cap far above the job, so the worker processes (one Celery node,
``--concurrency`` 1, 2, 4, all queues, the tick in the node) are the only limit. Each count gets a
fresh job of new URLs under its own Redis prefix.

To show where the machine saturates, the CPU seconds of each part (the worker node's process
group, Milvus Lite, the sandbox, redis-server) and of the whole machine (``/proc/stat``) are taken
before and after each job; "rest of machine" is what other processes (other users) used meanwhile.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.common import Row, log, section
from bench.e2e import QuotaConfig, phase_env, run_job, start_workers
from tests.stack import Stack

TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu_s(pgids: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) of every live process, summed per process group."""
    wanted = {pgid: name for name, pgid in pgids.items()}
    out = dict.fromkeys(pgids, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2:].split()
        name = wanted.get(int(fields[2]))
        if name is not None:
            out[name] += (int(fields[11]) + int(fields[12])) / TICKS
    return out


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / TICKS


def cpu_snapshot(stack: Stack) -> dict[str, float]:
    groups = {"workers": [p.pid for p in stack.workers]}
    pgids = {"milvus": stack.milvus.proc.pid, "sandbox": stack.sandbox.proc.pid,
             "redis": stack.redis.proc.pid}
    pgids.update({f"worker{i}": pid for i, pid in enumerate(groups["workers"])})
    snap = group_cpu_s(pgids)
    workers = sum(v for k, v in snap.items() if k.startswith("worker"))
    return {"workers": workers, "milvus": snap["milvus"], "sandbox": snap["sandbox"],
            "redis": snap["redis"], "machine": machine_busy_s()}


def cores(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    used = {k: (after[k] - before[k]) / seconds for k in before}
    ours = sum(v for k, v in used.items() if k != "machine")
    used["rest"] = max(0.0, used["machine"] - ours)
    return used


def scaling_phase(stack: Stack, cfg: QuotaConfig) -> list[Row]:
    stack.sandbox_config(base_s=cfg.scaling_task_s, create_rpm=0)
    rates: dict[int, float] = {}
    infos: dict[int, dict[str, Any]] = {}
    for procs in cfg.scaling_procs:
        prefix = f"scale{procs}"
        env = phase_env(stack, prefix, rate_limit_per_min=600000, rate_burst=1000,
                        max_in_flight=2000, admit_batch=500, poll_initial_s=2.0, poll_max_s=30)
        start_workers(stack, env, procs, prefix)
        try:
            with section(f"scaling: {cfg.scaling_videos} videos, {procs} worker processes"):
                before = cpu_snapshot(stack)
                run = run_job(stack, env, prefix, cfg.scaling_videos, timeout_s=600)
                used = cores(before, cpu_snapshot(stack), run.finished - run.submitted)
        finally:
            stack.stop_workers()
        rates[procs] = run.rate
        infos[procs] = {"seconds": run.seconds, "stats": run.stats_delta, "counters": run.counters,
                        "cores": used}
        log(f"scaling {procs}: {run.rate:.1f} videos/s, cores {used}")
    base = rates[cfg.scaling_procs[0]]
    rows = []
    for procs, rate in rates.items():
        c = infos[procs]["cores"]
        rows.append(Row(
            "6", f"e2e videos/s, {procs} worker process{'es' if procs > 1 else ''} "
                 f"({cfg.scaling_videos} videos, {cfg.scaling_task_s:g} s tasks, no quota)",
            f"{rate:.1f}", f"{base:.1f} (1 process)", f"{rate / base:.2f}", "reported", None,
            infos[procs]))
        rows.append(Row(
            "6", "  cores busy: workers / Milvus / sandbox / Redis / rest of machine",
            f"{c['workers']:.2f} / {c['milvus']:.2f} / {c['sandbox']:.2f} / {c['redis']:.2f} / "
            f"{c['rest']:.2f}", f"{os.cpu_count()} cores", f"{c['machine'] / (os.cpu_count() or 1):.0%} busy",
            "reported", None))
    return rows


