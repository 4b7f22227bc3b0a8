"""Soak: Redis and process memory against corpus size, through the real stack (issue 22).

``python -m bench.soak --steps 1000,5000,10000``: one stack (``tests.stack.start_stack``:
redis-server, Milvus Lite, the sandbox fast, ``vidsearch worker`` for embedding and polling, a
``vidsearch worker`` node for the writing queue as ``vidsearch writer`` runs it, and
``vidsearch serve``). The corpus grows in steps: each step submits the videos that bring it to
the step's size (mixed lengths: the sandbox hashes each URL to a duration between
``--min-duration-s`` and ``--max-duration-s``), waits until the job is done and the segment stream
is empty, runs a few searches through the API, then records:

* Redis ``used_memory`` above the baseline taken before the first step (workers up, nothing
  ingested), per finished item and per segment written;
* the ledger's own bytes (MEMORY USAGE of ``{prefix}:done:*``, the jobs' item indexes and every
  item hash left), per finished item;
* the stream's length (``XLEN``) and the dead-letter stream's; Milvus rows;
* RSS of the worker node (supervisor, Celery main process and pool), the writer node and the API.

Baselines from the same run: an item's own hash while it is in flight (MEMORY USAGE, sampled
during the steps) and a stream entry (real entries copied 2,000 times into a scratch stream that
keeps them), which is what Redis kept per finished item and per segment before the stream was a
buffer and the ledger compact ("kept before" column: item hash + 35 B of hex index + entries).
The table is printed as markdown; with ``--plot`` the figure is written (``docs/soak-memory.png``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import redis

from bench.common import RESULTS, ROOT, log, machine, section
from pipeline.ledger.store import JobStore
from pipeline.milvus.store import MilvusStore
from pipeline.settings import load_settings
from pipeline.state.keys import Keys
from tests.stack import Stack, start_stack, wait_for
from vidsearch.stack.services import free_port

CATEGORIES = ("news", "sports", "cooking", "travel", "lectures")
PREFIX = "vs"
INDEX_BEFORE_B = 35.0
"""A job's hex item list per item before the index was packed (bench/producer.py measured it)."""
SEARCHES = ("a goal in the last minute", "slicing onions", "a lecture on thermodynamics")


@dataclass
class Step:
    """What the stack held after the corpus reached ``videos``."""

    videos: int
    done: int
    failed: int
    segments: int
    seconds: float
    used_mb: float
    per_item_b: float
    per_segment_b: float
    ledger_per_item_b: float
    item_hashes: int
    stream_len: int
    dead_len: int
    milvus_rows: int
    worker_rss_mb: float
    writer_rss_mb: float
    api_rss_mb: float
    kept_before_per_item_b: float


# --- processes --------------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2:].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def tree_rss_mb(pid: int) -> float:
    """RSS of ``pid`` and all its descendants, MB."""
    total_kb, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
        todo += _children(current)
    return total_kb / 1024


def start_api(stack: Stack, port: int) -> subprocess.Popen[bytes]:
    log_file = (stack.root / "serve.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "vidsearch", "serve", "--port", str(port)],
                            env=stack.env, stdout=log_file, stderr=subprocess.STDOUT)
    wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), 120, "vidsearch serve to answer")
    return proc


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def search(port: int, text: str) -> int:
    query = urllib.parse.urlencode({"text": text, "top_k": 10})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/search?{query}", timeout=120) as resp:
        return len(json.loads(resp.read()))


# --- Redis ------------------------------------------------------------------------------------------
def used(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def ledger_bytes(client: redis.Redis) -> tuple[int, int]:
    """MEMORY USAGE of the done records, item indexes and item hashes; and how many item hashes."""
    total, hashes = 0, 0
    for pattern in (f"{PREFIX}:done:*", f"{PREFIX}:job:*:keys", f"{PREFIX}:job:*:items", f"{PREFIX}:item:*"):
        for key in client.scan_iter(match=pattern, count=2000):
            total += int(client.memory_usage(key, samples=0) or 0)
            hashes += pattern.endswith("item:*") and not key.endswith(b":w")
    return total, hashes


def sample_in_flight(client: redis.Redis, samples: dict[str, list[Any]]) -> None:
    """MEMORY USAGE of a few item hashes in flight, and a few real stream entries (copied)."""
    for key in list(client.scan_iter(match=f"{PREFIX}:item:*", count=500))[:50]:
        if not key.endswith(b":w") and client.hget(key, "s") in (b"processing", b"writing"):
            samples["item"].append(float(client.memory_usage(key, samples=0) or 0))
    if len(samples["entries"]) < 20:
        samples["entries"] += [fields for _, fields in client.xrange(f"{PREFIX}:segments", count=20)]


def entry_bytes(client: redis.Redis, entries: list[dict[bytes, bytes]], n: int = 2000) -> float:
    """What one stream entry like ``entries`` costs in a stream that keeps them (as the stream
    did before entries were deleted on acknowledgement): MEMORY USAGE of a scratch stream of
    ``n`` copies, per entry."""
    if not entries:
        return 0.0
    scratch = "soak:scratch"
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(scratch, entries[i % len(entries)])
    pipe.execute()
    cost = int(client.memory_usage(scratch, samples=0) or 0) / n
    client.delete(scratch)
    return cost


# --- the run ----------------------------------------------------------------------------------------
def write_manifest(path: Path, start: int, stop: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["url", "category", "title", "channel"])
        for i in range(start, stop):
            category = CATEGORIES[i % len(CATEGORIES)]
            out.writerow([f"https://cdn.example.com/soak/{category}/video-{i}.mp4", category,
                          f"soak video {i} about {category}", f"channel-{i % 37}"])


def run_step(stack: Stack, client: redis.Redis, start: int, stop: int,
             samples: dict[str, list[Any]]) -> tuple[str, float]:
    manifest = stack.root / f"soak-{stop}.csv"
    write_manifest(manifest, start, stop)
    began = time.monotonic()
    job_id = json.loads(stack.vidsearch("submit", str(manifest), "--json").stdout)["job_id"]
    jobs = JobStore(client, Keys(PREFIX))
    next_sample = 0.0
    while True:
        job = jobs.get_job(job_id)
        if job is not None and job.finished:
            break
        if time.monotonic() >= next_sample:
            sample_in_flight(client, samples)
            next_sample = time.monotonic() + 5
        if time.monotonic() - began > 3600:
            raise TimeoutError(f"step {stop}: job {job_id} not finished after an hour")
        time.sleep(0.5)
    wait_for(lambda: client.xlen(f"{PREFIX}:segments") == 0, 300, "the segment stream to empty")
    return job_id, time.monotonic() - began


@dataclass
class Probe:
    """Where the measurements come from."""

    client: redis.Redis
    store: MilvusStore
    collection: str
    baseline: int
    procs: dict[str, int]

    def measure(self, videos: int, seconds: float, kept: dict[str, float]) -> Step:
        return measure(self, videos, seconds, kept)


def measure(probe: Probe, videos: int, seconds: float, kept: dict[str, float]) -> Step:
    client, procs = probe.client, probe.procs
    totals = {"done": 0, "failed": 0, "segments": 0}
    for job in JobStore(client, Keys(PREFIX)).list_jobs(limit=1000):
        for name in totals:
            totals[name] += job.counters[name]
    grown = used(client) - probe.baseline
    ledger, hashes = ledger_bytes(client)
    done = max(totals["done"], 1)
    return Step(
        videos=videos, done=totals["done"], failed=totals["failed"], segments=totals["segments"],
        seconds=seconds, used_mb=grown / 2**20, per_item_b=grown / done,
        per_segment_b=grown / max(totals["segments"], 1), ledger_per_item_b=ledger / done,
        item_hashes=hashes, stream_len=int(client.xlen(f"{PREFIX}:segments")),
        dead_len=int(client.xlen(f"{PREFIX}:segments:dead")),
        milvus_rows=probe.store.count(probe.collection),
        worker_rss_mb=tree_rss_mb(procs["worker"]), writer_rss_mb=tree_rss_mb(procs["writer"]),
        api_rss_mb=tree_rss_mb(procs["api"]),
        kept_before_per_item_b=kept["item"] + kept["index"]
        + kept["entry"] * totals["segments"] / done,
    )


def soak(root: Path, steps: list[int], args: argparse.Namespace) -> tuple[list[Step], dict[str, float]]:
    sandbox = ["--speed", str(args.speed), "--min-duration-s", str(args.min_duration_s),
               "--max-duration-s", str(args.max_duration_s)]
    with section("soak: starting the stack"):
        stack = start_stack(root, sandbox, VIDSEARCH_MAX_IN_FLIGHT="200", VIDSEARCH_ADMIT_BATCH="200",
                            VIDSEARCH_LOG_LEVEL="WARNING")
    try:
        worker = stack.start_worker("soak", "embedding,polling", concurrency=args.concurrency)
        writer = stack.start_worker("soak-writer", "writing", concurrency=1)
        api = start_api(stack, free_port())
        procs = {"worker": worker.pid, "writer": writer.pid, "api": api.pid}
        port = int(api.args[-1])  # type: ignore[index]
        client = redis.Redis.from_url(stack.redis_url)
        settings = load_settings(redis_url=stack.redis_url, milvus_uri=stack.milvus.url)
        store = MilvusStore(settings)
        collection = store.collection_for(settings.model, settings.dimension)
        time.sleep(5)  # workers idle, tick running
        probe = Probe(client, store, collection, used(client), procs)
        samples: dict[str, list[Any]] = {"item": [], "entries": []}
        rows: list[Step] = []
        previous = 0
        for size in steps:
            with section(f"soak: corpus {previous:,} -> {size:,} videos"):
                _, seconds = run_step(stack, client, previous, size, samples)
                for text in SEARCHES:
                    search(port, text)
                kept = {"item": _mean(samples["item"]),
                        "entry": entry_bytes(client, samples["entries"]), "index": INDEX_BEFORE_B}
                rows.append(probe.measure(size, seconds, kept))
                log(json.dumps(asdict(rows[-1])))
            previous = size
        api.terminate()
        api.wait(20)
        return rows, {"baseline_used_mb": probe.baseline / 2**20, **kept}
    finally:
        stack.stop()


def _mean(values: list[Any]) -> float:
    return sum(values) / len(values) if values else 0.0


# --- output -----------------------------------------------------------------------------------------
HEAD = ("| videos | done / failed | segments | step s | Redis used_memory above baseline MB | "
        "B per finished item | B per item since the last step | B per segment | ledger B per item | "
        "item hashes left | XLEN stream / dead | Milvus rows | RSS worker / writer / API MB | "
        "kept before, B per item |")


def table(rows: list[Step]) -> str:
    lines = [HEAD, "|" + "---|" * HEAD.count(" | ") + "---|"]
    previous: Step | None = None
    for r in rows:
        since = "-" if previous is None else \
            f"{(r.used_mb - previous.used_mb) * 2**20 / max(r.done - previous.done, 1):.0f}"
        previous = r
        lines.append(
            f"| {r.videos:,} | {r.done:,} / {r.failed} | {r.segments:,} | {r.seconds:.0f} | "
            f"{r.used_mb:.2f} | {r.per_item_b:.0f} | {since} | {r.per_segment_b:.1f} | "
            f"{r.ledger_per_item_b:.0f} | "
            f"{r.item_hashes} | {r.stream_len} / {r.dead_len} | {r.milvus_rows:,} | "
            f"{r.worker_rss_mb:.0f} / {r.writer_rss_mb:.0f} / {r.api_rss_mb:.0f} | "
            f"{r.kept_before_per_item_b:,.0f} |")
    return "\n".join(lines)


def plot(rows: list[Step], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    videos = [r.videos for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(videos, [r.used_mb for r in rows], "o-", label="Redis used_memory above baseline")
    left.plot(videos, [r.kept_before_per_item_b * r.done / 2**20 for r in rows], "s--",
              label="what Redis kept before (item hash + index + stream entries)")
    left.set_xlabel("videos ingested")
    left.set_ylabel("MB")
    left.set_yscale("log")
    left.legend(fontsize=8)
    left.set_title("Redis")
    for name, values in (("worker node", [r.worker_rss_mb for r in rows]),
                         ("writer node", [r.writer_rss_mb for r in rows]),
                         ("API", [r.api_rss_mb for r in rows])):
        right.plot(videos, values, "o-", label=name)
    right.set_xlabel("videos ingested")
    right.set_ylabel("RSS MB (process tree)")
    right.set_ylim(bottom=0)
    right.legend(fontsize=8)
    right.set_title("processes")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", default="1000,5000,10000", help="corpus sizes, comma-separated")
    parser.add_argument("--speed", type=float, default=200.0, help="sandbox speed")
    parser.add_argument("--min-duration-s", type=float, default=12.0)
    parser.add_argument("--max-duration-s", type=float, default=240.0)
    parser.add_argument("--concurrency", type=int, default=4, help="worker node processes")
    parser.add_argument("--plot", type=Path, help="write the figure here (e.g. docs/soak-memory.png)")
    args = parser.parse_args(argv)
    steps = sorted(int(s) for s in args.steps.split(","))
    started = time.monotonic()
    load = os.getloadavg()[0]
    with TemporaryDirectory(prefix="vs-soak-") as tmp:
        rows, baseline = soak(Path(tmp), steps, args)
    wall = time.monotonic() - started
    print(f"\nsoak {args.steps}: {wall:.0f} s wall; {machine()}; load average at the start "
          f"{load:.2f}, at the end {os.getloadavg()[0]:.2f}")
    print(f"baseline: used_memory {baseline['baseline_used_mb']:.1f} MB before the first step; "
          f"in flight: item hash {baseline['item']:.0f} B, stream entry {baseline['entry']:.0f} B\n")
    print(table(rows))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"soak-{int(time.time())}.json"
    out.write_text(json.dumps({"steps": [asdict(r) for r in rows], "baseline": baseline,
                               "wall_s": wall}, indent=1))
    if args.plot:
        plot(rows, args.plot if args.plot.is_absolute() else ROOT / args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
