"""Producer (section 4): a large manifest into Redis through ``Producer.submit``.

A CSV of ``lines`` unique video URLs (12 categories, a title, one metadata column) is written to a
temporary directory; a fresh redis-server (``vidsearch.stack.services.start_redis``) takes the job. The
producer runs in a child process (``python -m bench.producer --child``) that reports its own
lines/s and peak RSS (``VmHWM``), plus the RSS it had before reading the first line (the
interpreter and libraries) as the baseline. Parsing alone (``read_manifest`` over the same file,
no Redis) is timed over a sample of lines in the same child as the lines/s baseline. Redis memory
per waiting item is the ``used_memory`` growth over the job divided by the waiting list's length
(it includes each item's hash and its waiting record).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any

import redis

from bench.common import Row, log, python, run_json, section
from vidsearch.stack.services import start_redis

CATEGORIES = [f"topic-{i:02d}" for i in range(12)]


def write_manifest(path: Path, lines: int) -> int:
    """A CSV of ``lines`` unique URLs; returns its size in bytes."""
    with path.open("w", encoding="utf-8") as out:
        out.write("url,category,title,source\n")
        chunk = []
        for i in range(lines):
            category = CATEGORIES[i % 12]
            chunk.append(f"https://cdn.example.com/videos/{category}/{i // 1000:04d}/clip-{i:08d}.mp4,"
                         f"{category},Clip number {i},bench\n")
            if len(chunk) >= 10000:
                out.write("".join(chunk))
                chunk.clear()
        out.write("".join(chunk))
    return path.stat().st_size


def _status_kb(field: str) -> int:
    """A ``/proc/self/status`` figure in kB (VmHWM: this process image's peak RSS; unlike
    ``ru_maxrss`` it does not inherit the parent's peak across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(redis_url: str, manifest: Path, parse_sample: int) -> dict[str, Any]:
    """Runs in the child process: submit the manifest, report rates and memory."""
    from pipeline.ingest.manifest import LineRules, read_manifest
    from pipeline.ingest.producer import Producer
    from pipeline.ledger.store import JobStore
    from pipeline.settings import load_settings
    from pipeline.spec import EmbeddingSpec
    from pipeline.state.keys import Keys

    settings = load_settings(redis_url=redis_url)
    client = redis.Redis.from_url(redis_url)
    client.ping()
    rules = LineRules.from_settings(settings)
    baseline_kb = _status_kb("VmRSS")
    started = time.perf_counter()
    parsed = sum(1 for _ in islice(read_manifest(manifest, rules), parse_sample))
    parse_s = time.perf_counter() - started
    jobs = JobStore(client, Keys(settings.redis_prefix))
    producer = Producer(jobs, EmbeddingSpec.from_settings(settings), rules)
    started = time.perf_counter()
    summary = producer.submit([manifest])
    seconds = time.perf_counter() - started
    return {"job_id": summary.job_id, "lines": summary.lines, "queued": summary.queued,
            "rejected": summary.rejected,
            "seconds": seconds, "lines_per_s": summary.lines / seconds,
            "parse_lines_per_s": parsed / parse_s, "parse_lines": parsed,
            "baseline_rss_kb": baseline_kb, "peak_rss_kb": _status_kb("VmHWM")}


def memory_breakdown(client: redis.Redis, waiting: int) -> dict[str, float]:
    """Average MEMORY USAGE of an item hash (sampled) and of one waiting record."""
    keys: list[bytes] = []
    for key in client.scan_iter(match="vs:item:*", count=1000):
        keys.append(key)
        if len(keys) >= 200:
            break
    item = sum(int(client.memory_usage(k, samples=0) or 0) for k in keys) / max(len(keys), 1)
    wait_list = int(client.memory_usage("vs:wait", samples=0) or 0)
    return {"item_hash_bytes": item, "wait_record_bytes": wait_list / max(waiting, 1)}


def index_cost(client: redis.Redis, job_id: str, used_before: int) -> dict[str, float]:
    """Admit every waiting item (as the tick does) and measure the job's index of item keys
    (``{prefix}:job:{job}:keys``, 16 bytes a key appended at admission, read by ``verify``) per
    item."""
    from pipeline.ledger.store import JobStore
    from pipeline.state.keys import Keys

    jobs = JobStore(client, Keys("vs"))
    admitted = 0
    while batch := jobs.admit(10_000, time.time() + 3600):
        admitted += len(batch)
    index = Keys("vs").item_index(job_id)
    index_bytes = int(client.memory_usage(index, samples=0) or 0)
    return {"admitted": admitted, "index_bytes_per_item": index_bytes / max(admitted, 1),
            "index_list_length": int(client.strlen(index)) // 16,
            "admitted_growth_per_item": (int(client.info("memory")["used_memory"]) - used_before)
            / max(admitted, 1)}


def run(lines: int, tmp: Path) -> tuple[list[Row], dict[str, Any]]:
    manifest = tmp / "manifest.csv"
    with section(f"producer: writing a {lines:,}-line manifest"):
        size = write_manifest(manifest, lines)
    service = start_redis(tmp / "producer-redis")
    try:
        url = f"redis://{service.host}:{service.port}/0"
        client = redis.Redis.from_url(url)
        before = int(client.info("memory")["used_memory"])
        with section(f"producer: submitting {lines:,} lines"):
            out = run_json([python(), "-m", "bench.producer", "--child", "--redis-url", url,
                            "--manifest", str(manifest), "--parse-sample", str(min(lines, 200_000))],
                           timeout=1800)
        time.sleep(1.0)  # let the AOF buffer drain: count the data, not the write buffer
        after = int(client.info("memory")["used_memory"])
        waiting = int(client.llen("vs:wait"))
        breakdown = memory_breakdown(client, waiting)
        with section(f"producer: admitting {waiting:,} items (the job's verify index)"):
            breakdown |= index_cost(client, out["job_id"], after)
        client.close()
    finally:
        service.stop()
    per_item = (after - before) / max(waiting, 1)
    peak_mb = out["peak_rss_kb"] / 1024
    base_mb = out["baseline_rss_kb"] / 1024
    info = {**out, "manifest_bytes": size, "redis_used_before": before, "redis_used_after": after,
            "waiting": waiting, "bytes_per_item": per_item, **breakdown}
    log(f"producer: {out['lines_per_s']:,.0f} lines/s, peak RSS {peak_mb:.0f} MB, "
        f"{per_item:.0f} B/item")
    rows = [
        Row("4", f"producer lines/s ({lines:,} lines, {size / 2**20:.0f} MB CSV)",
            f"{out['lines_per_s']:,.0f}", f"parse only {out['parse_lines_per_s']:,.0f}",
            f"{out['lines_per_s'] / out['parse_lines_per_s']:.2f}", ">= 20,000",
            out["lines_per_s"] >= 20_000, info),
        Row("4", "producer peak RSS MB", f"{peak_mb:.0f}", f"{base_mb:.0f} before the first line",
            f"+{peak_mb - base_mb:.0f} MB", "<= 200", peak_mb <= 200),
        Row("4", f"Redis bytes per waiting item ({waiting:,} waiting)", f"{per_item:.0f}",
            f"{(after - before) / 2**20:.0f} MB used_memory growth",
            f"hash {breakdown['item_hash_bytes']:.0f} + record {breakdown['wait_record_bytes']:.0f} B",
            "<= 300", per_item <= 300),
        Row("4", f"Redis bytes per item of a job's verify index ({breakdown['admitted']:,} admitted)",
            f"{breakdown['index_bytes_per_item']:.0f}", "0 per waiting item (written at admission)",
            f"+{breakdown['admitted_growth_per_item']:.0f} B used_memory per item admitted",
            "<= 50", breakdown["index_bytes_per_item"] <= 50),
    ]
    return rows, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url")
    parser.add_argument("--manifest", type=Path)
    parser.add_argument("--parse-sample", type=int, default=200_000)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.redis_url, args.manifest, args.parse_sample)))
        return
    from bench.common import table
    with tempfile.TemporaryDirectory() as tmp:
        rows, _ = run(args.lines, Path(tmp))
    print(table(rows))


if __name__ == "__main__":
    sys.exit(main())
