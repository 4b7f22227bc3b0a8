"""Scaling (section 6): end-to-end throughput with 1, 2 and 4 worker processes.

Same stack as ``bench.e2e``; the sandbox is switched to fast tasks and no creation limit, and
vidsearch to no rate limit and a cap far above the job, so the worker processes (one Celery node,
``--concurrency`` 1, 2, 4, all queues, beat in the node) are the only limit. Each count gets a
fresh job of new URLs under its own Redis prefix.
"""

from __future__ import annotations

from typing import Any

from bench.common import Row, log, section
from bench.e2e import QuotaConfig, phase_env, run_job, start_workers
from tests.stack import Stack


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
                run = run_job(stack, env, prefix, cfg.scaling_videos, timeout_s=600)
        finally:
            stack.stop_workers()
        rates[procs] = run.rate
        infos[procs] = {"seconds": run.seconds, "stats": run.stats_delta, "counters": run.counters}
        log(f"scaling {procs}: {run.rate:.1f} videos/s")
    base = rates[cfg.scaling_procs[0]]
    return [
        Row("6", f"e2e videos/s, {procs} worker process{'es' if procs > 1 else ''} "
                 f"({cfg.scaling_videos} videos, {cfg.scaling_task_s:g} s tasks, no quota)",
            f"{rate:.1f}", f"{base:.1f} (1 process)", f"{rate / base:.2f}", "reported", None,
            infos[procs])
        for procs, rate in rates.items()
    ]


