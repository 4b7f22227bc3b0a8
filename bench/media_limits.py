"""Section 11: a media-minutes limit as the binding dimension (``python -m bench.media_limits``).

A real stack (``tests.stack.start_stack``) whose sandbox makes every video 10 minutes long,
finishes each task in 1 s, and allows ``--media-minutes-per-hour LIMIT`` per ``--media-window-s
WINDOW`` (shortened from an hour so a run takes minutes), answering its 429s without
``Retry-After`` (only ``X-Ratelimit-Reset``), as the issue's probe server did. Requests, the
in-flight cap and task time are far from binding: the bound is LIMIT minutes per WINDOW.

Two phases on the same stack, each a job of VIDEOS new videos through ``vidsearch submit`` with
its own Redis prefix and worker node:

* ``known``: the settings carry the plan's figures (``media_minutes_per_hour``,
  ``media_window_s``) and the manifest a ``duration_s`` column;
* ``learned``: no figures and no durations; the governor learns the limit from the answers'
  ``X-Ratelimit-*`` headers and the durations from finished tasks.

Per phase: items failed (goal 0: no item fails for our pacing), 429 answers per create request
(goal <= 1 %), and throughput: media minutes created per full window between the job's first and
last create (windows are aligned on the clock, as the sandbox's are), against the window's limit
(goal >= 0.9: the ratio is measured against the bound the sandbox enforced in the same run).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis

from bench.common import Row, log, machine, section, table, write_results
from bench.e2e import all_tasks, epoch, phase_env, start_workers
from pipeline.state.keys import Keys
from tests.stack import Stack, start_stack

MEDIA_S = 600.0
TASK_S = 1.0


def sandbox_args(limit: float, window_s: float) -> list[str]:
    return ["--speed", "1", "--base-s", str(TASK_S), "--factor", "0",
            "--min-duration-s", str(MEDIA_S), "--max-duration-s", str(MEDIA_S),
            "--media-minutes-per-hour", str(limit), "--media-window-s", str(window_s),
            "--no-retry-after"]


def write_manifest(path: Path, tag: str, n: int, durations: bool) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["URL", "Category", "Title", *(["duration_s"] if durations else [])])
        for i in range(n):
            extra = [str(MEDIA_S)] if durations else []
            out.writerow([f"https://cdn.example.com/{tag}/clip-{i}.mp4", "news", f"{tag} {i}", *extra])


def creates(stack: Stack) -> Counter[str]:
    return Counter(stack.sandbox_stats()["requests"].get("POST /embed-v2/tasks", {}))


def run_phase(stack: Stack, tag: str, videos: int, settings: dict[str, str], *, durations: bool,
              timeout_s: float) -> dict[str, Any]:
    env = phase_env(stack, tag, max_in_flight="100", rate_limit_per_min="6000", rate_burst="200",
                    **settings)
    start_workers(stack, env, 2, f"ml-{tag}")
    manifest = stack.root / f"{tag}.csv"
    write_manifest(manifest, tag, videos, durations)
    before = creates(stack)
    saved, stack.env = stack.env, env
    try:
        job_id = json.loads(stack.vidsearch("submit", str(manifest), "--json").stdout)["job_id"]
    finally:
        stack.env = saved
    counters = wait_job(env, job_id, timeout_s)
    after = creates(stack)
    stack.stop_workers()
    tasks = [t for t in all_tasks(stack) if f"/{tag}/" in (t["video_embedding"]["metadata"]["input_url"])]
    return {"tag": tag, "videos": videos, "job": job_id, "counters": counters,
            "accepted": after["202"] - before["202"], "refused": after["429"] - before["429"],
            "created_at": sorted(epoch(t["created_at"]) for t in tasks)}


def wait_job(env: dict[str, str], job_id: str, timeout_s: float) -> dict[str, int]:
    client = redis.Redis.from_url(env["VIDSEARCH_REDIS_URL"])
    key = Keys(env["VIDSEARCH_REDIS_PREFIX"]).job(job_id)
    deadline = time.monotonic() + timeout_s
    while True:
        h = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
        counters = {k: int(h.get(k, 0)) for k in ("queued", "done", "failed")}
        if h.get("sealed") == "1" and counters["done"] + counters["failed"] >= counters["queued"]:
            client.close()
            return counters
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id}: {counters} after {timeout_s:.0f} s")
        time.sleep(0.2)


def per_window(created: list[float], window_s: float) -> list[int]:
    """Creates in each full window strictly between the first and the last create's windows."""
    first, last = math.floor(created[0] / window_s), math.floor(created[-1] / window_s)
    counts = Counter(math.floor(t / window_s) for t in created)
    return [counts[w] for w in range(first + 1, last)]


def rows(phase: dict[str, Any], limit: float, window_s: float) -> list[Row]:
    tag, c = phase["tag"], phase["counters"]
    full = per_window(phase["created_at"], window_s)
    minutes = [n * MEDIA_S / 60.0 for n in full]
    rate = sum(minutes) / len(minutes) if minutes else 0.0
    ratio = rate / limit
    share = phase["refused"] / max(1, phase["accepted"] + phase["refused"])
    info = {**phase, "full_windows": full}
    return [
        Row("11", f"{tag}: minutes created per full {window_s:g} s window ({len(full)} windows, "
                  f"{phase['videos']} videos of {MEDIA_S / 60:g} min)",
            f"{rate:.0f}", f"the sandbox's limit: {limit:g}", f"{ratio:.2f}", ">= 0.90", ratio >= 0.9, info),
        Row("11", f"{tag}: 429 answers / create requests", f"{phase['refused']} / "
                  f"{phase['accepted'] + phase['refused']}", "", f"{share:.1%}", "<= 1 %", share <= 0.01),
        Row("11", f"{tag}: items failed (done {c['done']} of {c['queued']})", str(c["failed"]), "",
            "", "0", c["failed"] == 0),
    ]


def run(root: Path, videos: int, limit: float, window_s: float) -> list[Row]:
    stack = start_stack(root, sandbox_args(limit, window_s))
    timeout = 6 * window_s * videos * MEDIA_S / 60.0 / limit + 120
    out: list[Row] = []
    try:
        known = {"media_minutes_per_hour": str(limit), "media_window_s": str(window_s)}
        with section("11: media minutes, figures known"):
            phase = run_phase(stack, "known", videos, known, durations=True, timeout_s=timeout)
            out += rows(phase, limit, window_s)
        with section("11: media minutes, learned from the headers"):
            learned = {"media_window_s": str(window_s)}
            out += rows(run_phase(stack, "learned", videos, learned, durations=False,
                                 timeout_s=timeout), limit, window_s)
    finally:
        stack.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=60)
    parser.add_argument("--limit", type=float, default=100.0, help="media minutes per window")
    parser.add_argument("--window-s", type=float, default=20.0)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp:
        result = run(Path(tmp), args.videos, args.limit, args.window_s)
    took = time.monotonic() - started
    print(table(result))
    print(f"\n{json.dumps(machine())}; took {took:.0f} s")
    name = time.strftime("%Y%m%d-%H%M%S") + "-media-limits.json"
    write_results(result, {"took_s": took, "args": vars(args)}, name)
    log("done")


if __name__ == "__main__":
    main()
