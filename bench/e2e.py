"""End to end against the quota (section 1), polling cost (section 2) and scaling (section 6).

One stack (``tests.stack.start_stack``: redis-server, Milvus (Lite, or a real server with
``bench/run --engine server``), the sandbox, Celery
workers started with ``vidsearch worker``) serves every phase; each phase has its own Redis prefix,
collection prefix and log file, and its own worker processes.

* Quota phase: the sandbox finishes every task in exactly ``task_s`` (``--factor 0``, fixed media
  duration), vidsearch creates at most ``rate_per_min`` tasks a minute (its own token bucket; the
  sandbox's ``--create-rpm`` is set 10 % above so it never answers 429) and keeps at most ``cap``
  tasks in flight. Bound = min(rate/60, cap/task_s) videos/s. Throughput is measured from the
  sandbox's first ``created_at`` of the job to the moment the job's counters show every item done.
* Tutorial phase, same sandbox: one video at a time, create -> retrieve every 2 s -> one
  pymilvus insert of its segments; per-video rate over a small sample.
* Polling: sandbox ``status_polls`` per finished task of the quota phase, and per task the lag
  between the sandbox's ready time (``updated_at`` = created + processing) and the worker's
  ``poll_ready`` log line (written right after the segments were read and queued for the writer).
* Scaling: fast tasks, no rate limit, a large cap; one worker node with 1, 2, 4 processes.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from pymilvus import MilvusClient
from twelvelabs import TwelveLabs

from bench.common import Row, http_json, median, section
from pipeline.state.keys import Keys
from tests.stack import Stack, start_stack
from vidsearch.stack.services import MilvusEngine

CATEGORIES = ("animals", "sports", "cooking", "travel")
MEDIA_S = 30.0  # every video lasts 30 s: 5 clips x 2 options + 2 asset vectors = 12 segments
TUTORIAL_POLL_S = 2.0


@dataclass
class QuotaConfig:
    videos: int
    task_s: float
    rate_per_min: float
    cap: int
    tutorial_videos: int
    scaling_videos: int
    scaling_task_s: float = 1.0
    scaling_procs: tuple[int, ...] = (1, 2, 4)
    poll_capacity: bool = False
    engine: MilvusEngine = "lite"

    @property
    def bound(self) -> float:
        return min(self.rate_per_min / 60.0, self.cap / self.task_s)


@dataclass
class JobRun:
    """What one submitted job did."""

    prefix: str
    videos: int
    submitted: float
    finished: float
    counters: dict[str, int]
    samples: list[tuple[float, int]]
    tasks: list[dict[str, Any]]
    stats_delta: dict[str, int]
    log_file: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def first_create(self) -> float:
        return min(epoch(t["created_at"]) for t in self.tasks)

    @property
    def seconds(self) -> float:
        return self.finished - self.first_create

    @property
    def rate(self) -> float:
        return self.videos / self.seconds

    def steady_rate(self, lo: float = 0.1, hi: float = 0.9) -> float:
        """Done items per second between lo and hi of the job (fill and drain left out)."""
        t_lo = next(t for t, d in self.samples if d >= lo * self.videos)
        t_hi = next(t for t, d in self.samples if d >= hi * self.videos)
        return (hi - lo) * self.videos / max(t_hi - t_lo, 1e-9)


def epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def sandbox_args(task_s: float, create_rpm: int) -> list[str]:
    return ["--speed", "1", "--base-s", str(task_s), "--factor", "0",
            "--min-duration-s", str(MEDIA_S), "--max-duration-s", str(MEDIA_S),
            "--create-rpm", str(create_rpm)]


def start(root: Path, cfg: QuotaConfig) -> Stack:
    stack = start_stack(root, sandbox_args(cfg.task_s, int(cfg.rate_per_min * 1.1) + 1), engine=cfg.engine)
    return stack


def write_manifest(path: Path, tag: str, n: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["URL", "Category", "Title"])
        for i in range(n):
            category = CATEGORIES[i % len(CATEGORIES)]
            out.writerow([f"https://cdn.example.com/{tag}/{category}/clip-{i}.mp4", category, f"{tag} {i}"])


def phase_env(stack: Stack, prefix: str, **settings: str) -> dict[str, str]:
    """The stack's environment with this phase's prefixes, log file and settings."""
    env = dict(stack.env)
    env.update({
        "VIDSEARCH_REDIS_PREFIX": prefix,
        "VIDSEARCH_COLLECTION_PREFIX": f"vs{prefix}",
        "VIDSEARCH_LOG_FILE": str(stack.root / "logs" / f"{prefix}.log"),
        "VIDSEARCH_LOG_LEVEL": "INFO",
    })
    env.update({f"VIDSEARCH_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def all_tasks(stack: Stack) -> list[dict[str, Any]]:
    """Every v2 task the sandbox knows (through the list endpoint: no status poll is counted)."""
    tasks: list[dict[str, Any]] = []
    page = 1
    while True:
        body = http_json(f"{stack.sandbox.url}/v1.3/embed-v2/tasks?page={page}&page_limit=50")
        tasks += body["data"]
        if page >= body["page_info"]["total_page"]:
            return tasks
        page += 1


def _stat_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    keys = ("tasks_created", "status_polls", "rate_limited")
    return {k: int(after[k]) - int(before[k]) for k in keys}


def run_job(stack: Stack, env: dict[str, str], tag: str, n: int, timeout_s: float) -> JobRun:
    """Submit n new videos through ``vidsearch submit`` and watch the job until it finishes."""
    manifest = stack.root / f"{tag}.csv"
    write_manifest(manifest, tag, n)
    before = stack.sandbox_stats()
    client = redis.Redis.from_url(env["VIDSEARCH_REDIS_URL"])
    prefix = env["VIDSEARCH_REDIS_PREFIX"]
    saved = stack.env
    stack.env = env
    try:
        submitted = time.time()
        summary = json.loads(stack.vidsearch("submit", str(manifest), "--json", "--name", tag).stdout)
    finally:
        stack.env = saved
    job_key = Keys(prefix).job(summary["job_id"])
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout_s
    while True:
        h = {k.decode(): v.decode() for k, v in client.hgetall(job_key).items()}
        done, failed = int(h.get("done", 0)), int(h.get("failed", 0))
        now = time.time()
        samples.append((now, done))
        if done + failed >= int(h.get("queued", n)) and h.get("sealed") == "1":
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {tag}: {done} done, {failed} failed of {n} after {timeout_s:.0f} s")
        time.sleep(0.05)
    counters = {k: int(h.get(k, 0)) for k in ("queued", "done", "failed", "segments")}
    after = stack.sandbox_stats()
    tasks = [t for t in all_tasks(stack)
             if f"/{tag}/" in (t["video_embedding"]["metadata"].get("input_url") or "")]
    client.close()
    return JobRun(prefix, n, submitted, now, counters, samples, tasks, _stat_delta(before, after),
                  Path(env["VIDSEARCH_LOG_FILE"]))


def start_workers(stack: Stack, env: dict[str, str], procs: int, name: str,
                  writer_node: bool = False) -> None:
    """One node with ``procs`` processes (each ticks by itself); with ``writer_node`` the writing queue
    gets its own one-process node (as ``vidsearch writer`` runs it) instead."""
    saved = stack.env
    stack.env = env
    try:
        queues = "embedding,polling" if writer_node else "embedding,polling,writing"
        stack.start_worker(name, queues, concurrency=procs)
        if writer_node:
            stack.start_worker(f"{name}-writer", "writing", concurrency=1)
    finally:
        stack.env = saved


# --- the tutorial's way ---------------------------------------------------------------------------
def tutorial(stack: Stack, tag: str, n: int) -> dict[str, float]:
    """Create -> retrieve every 2 s until ready -> insert the segments; one video at a time."""
    client = TwelveLabs(api_key="tutorial", base_url=f"{stack.sandbox.url}/v1.3")
    milvus = MilvusClient(uri=stack.milvus.url)
    collection = f"tutorial_{tag}"
    if not milvus.has_collection(collection):
        milvus.create_collection(collection, dimension=512, auto_id=True)
    per_video = []
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        url = f"https://cdn.example.com/{tag}/animals/tutorial-{i}.mp4"
        task = client.embed.v_2.tasks.create(
            input_type="video", model_name="marengo3.0",
            video={"media_source": {"url": url},
                   "segmentation": {"strategy": "fixed", "fixed": {"duration_sec": 6}},
                   "embedding_option": ["visual", "audio"], "embedding_scope": ["clip", "asset"]},
        )
        while True:
            time.sleep(TUTORIAL_POLL_S)
            result = client.embed.v_2.tasks.retrieve(str(task.id))
            if result.status in ("ready", "failed"):
                break
        rows = [{"vector": list(d.embedding), "url": url, "start": d.start_sec, "end": d.end_sec,
                 "option": d.embedding_option} for d in (result.data or [])]
        milvus.insert(collection, rows)
        per_video.append(time.perf_counter() - t0)
    total = time.perf_counter() - started
    milvus.close()
    return {"videos": n, "seconds": total, "rate": n / total, "per_video_s": median(per_video)}


# --- the phases ------------------------------------------------------------------------------------
def quota_phase(stack: Stack, cfg: QuotaConfig) -> tuple[JobRun, dict[str, float]]:
    env = phase_env(stack, "e2e", rate_limit_per_min=cfg.rate_per_min, rate_burst=10,
                    max_in_flight=cfg.cap, poll_initial_s=2.0, poll_max_s=30,
                    writer_max_wait_s=1.0, writer_flush_interval_s=2.0)
    start_workers(stack, env, 4, "e2e", writer_node=True)
    try:
        with section(f"e2e: {cfg.videos} videos, task {cfg.task_s:g} s, "
                     f"{cfg.rate_per_min:g}/min, cap {cfg.cap}"):
            run = run_job(stack, env, "e2e", cfg.videos, timeout_s=max(300, 5 * cfg.videos / cfg.bound))
    finally:
        stack.stop_workers()
    with section(f"tutorial loop: {cfg.tutorial_videos} videos"):
        tut = tutorial(stack, "tutorial", cfg.tutorial_videos)
    return run, tut


def quota_rows(cfg: QuotaConfig, run: JobRun, tut: dict[str, float]) -> list[Row]:
    ratio = run.rate / cfg.bound
    steady = run.steady_rate()
    bound_txt = (f"min({cfg.rate_per_min:g}/60, {cfg.cap}/{cfg.task_s:g} s) = {cfg.bound:.2f}/s")
    ideal_s = cfg.videos / cfg.bound + cfg.task_s
    rows = [
        Row("1", f"e2e videos/s, {cfg.videos} videos, Milvus {cfg.engine} (first create -> last done)",
            f"{run.rate:.2f}",
            bound_txt, f"{ratio:.2f}", ">= 0.90", ratio >= 0.9,
            {"seconds": run.seconds, "counters": run.counters, "stats": run.stats_delta}),
        Row("1", "  same, steady state (10 % -> 90 % done)", f"{steady:.2f}", f"{cfg.bound:.2f}/s",
            f"{steady / cfg.bound:.2f}", "reported", None),
        Row("1", "  same, vs ideal time N/bound + one task time", f"{run.seconds:.1f} s",
            f"{ideal_s:.1f} s", f"{ideal_s / run.seconds:.2f}", "reported", None),
        Row("1", "  items done / failed; sandbox 429s", f"{run.counters['done']} / {run.counters['failed']}; "
            f"{run.stats_delta['rate_limited']}", f"{cfg.videos}", "", "all done, 0 429",
            run.counters["done"] == cfg.videos and run.stats_delta["rate_limited"] == 0),
        Row("1", f"speedup over the tutorial loop ({tut['videos']:g} videos, poll 2 s)",
            f"{run.rate:.2f}/s", f"{tut['rate']:.3f}/s", f"{run.rate / tut['rate']:.0f}x",
            "reported", None, tut),
    ]
    return rows


def run(root: Path, cfg: QuotaConfig) -> list[Row]:
    """Sections 1, 2 and 6 on one stack."""
    from bench.polling import capacity_rows, polling_rows
    from bench.scaling import scaling_phase

    with section("e2e: starting the stack"):
        stack = start(root, cfg)
    try:
        job, tut = quota_phase(stack, cfg)
        rows = quota_rows(cfg, job, tut) + polling_rows(cfg, job)
        if cfg.poll_capacity:
            rows += capacity_rows(job)
        rows += scaling_phase(stack, cfg)
        return rows
    finally:
        stack.stop()
