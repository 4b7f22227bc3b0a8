"""Writer throughput: SegmentWriter (stream -> Milvus) vs raw pymilvus upserts of the same rows.

Runs against one Milvus (started here unless ``--milvus-uri``: Lite, or ``--engine server``) and
one redis-server (started here unless ``--redis-url``), in one process, and prints segments/s for:

* raw pymilvus ``upsert`` of prepared rows at several batch sizes (the best one is the baseline),
* raw pymilvus, one insert per video (what the tutorials do),
* ``SegmentWriter.drain`` from a pre-filled Redis stream (read, parse, batch, upsert, ledger, ack)
  with ``writer_batch_rows`` set to the best raw batch size, flushing once at the end (like the
  raw variants) and flushing every 2 s (the default, for searchability during a drain).

Every variant writes into its own fresh collection (dropped afterwards) and includes its flushes
in the time, so all of them leave searchable data. After one pass over the batch sizes, the best
raw size, the writer and the per-video variant run ``--rounds`` times interleaved; medians are
reported. Goal: writer / best raw >= 0.9.

    .venv/bin/python bench/writer_throughput.py --segments 20000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import redis
from pymilvus import MilvusClient

from pipeline.archive.store import EmbeddingArchive
from pipeline.ingest.writer import SegmentWriter
from pipeline.milvus.store import MilvusStore
from pipeline.segments import Segment, pack_vector
from pipeline.settings import Settings, load_settings
from vidsearch.stack.services import Service, start_milvus_engine, start_redis

MODEL = "marengo3.0"
DIM = 512
SEGMENTS_PER_VIDEO = 40


class NullLedger:
    def record_written(self, pairs: Sequence[tuple[str, str]]) -> None:
        pass

    def record_dead(self, item_key: str, reason: str) -> None:
        pass


def make_segments(n: int) -> list[Segment]:
    rng = np.random.default_rng(7)
    vectors = rng.random((n, DIM), dtype=np.float32)
    segments = []
    for i in range(n):
        video = i // SEGMENTS_PER_VIDEO
        k = i % SEGMENTS_PER_VIDEO
        segments.append(Segment(
            pk=f"{i:032x}", item_key=f"{video:032x}", job_id="bench",
            url=f"https://videos.example.com/v/{video}.mp4", category=f"cat{video % 12}",
            title=f"video {video}", metadata='{"source": "bench"}', model=MODEL,
            option="visual" if k % 2 else "audio", scope="clip", start_s=6.0 * (k // 2),
            end_s=6.0 * (k // 2 + 1), vector=pack_vector(vectors[i].tolist()),
        ))
    return segments


def fresh(settings: Settings) -> tuple[Settings, MilvusStore, str]:
    scoped = settings.model_copy(update={"collection_prefix": f"b{uuid.uuid4().hex[:10]}"})
    store = MilvusStore(scoped, timeout_s=120)
    return scoped, store, store.ensure_collection(MODEL, DIM)


def timed(func: Callable[[], Any]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def raw_upserts(settings: Settings, segments: list[Segment], chunks: list[int]) -> float:
    """Seconds to upsert prepared rows in chunks of the given sizes, then flush."""
    _, store, name = fresh(settings)
    rows = store.rows(name, segments)
    client = MilvusClient(uri=settings.milvus_uri, timeout=30)

    def upsert_all() -> None:
        start = 0
        for size in chunks:
            client.upsert(name, rows[start:start + size], timeout=120)
            start += size
        client.flush(name, timeout=120)

    seconds = timed(upsert_all)
    assert store.count(name) == len(segments)
    client.close()
    drop(settings, name)
    return seconds


def drop(settings: Settings, name: str) -> None:
    """Drop a bench collection so its background index builds stop competing for the CPU."""
    client = MilvusClient(uri=settings.milvus_uri, timeout=30)
    client.drop_collection(name, timeout=120)
    client.close()
    time.sleep(1.0)


def by_batch(n: int, size: int) -> list[int]:
    return [min(size, n - start) for start in range(0, n, size)]


def writer_run(settings: Settings, client: redis.Redis[bytes], segments: list[Segment],
               batch_rows: int, flush_interval_s: float, *, archive: EmbeddingArchive | None = None,
               writer_class: type[SegmentWriter] = SegmentWriter) -> float:
    """Seconds of one ``SegmentWriter.drain`` over a pre-filled stream (flushes included), with
    every batch also appended to ``archive`` when one is given."""
    scoped, store, name = fresh(settings)
    scoped = scoped.model_copy(update={"redis_prefix": f"bench{uuid.uuid4().hex[:6]}",
                                       "writer_batch_rows": batch_rows,
                                       "writer_max_wait_s": 0.05,
                                       "writer_flush_interval_s": flush_interval_s})
    writer = writer_class(client, store, NullLedger(), scoped, "bench-1", archive=archive)
    writer.ensure_group()
    pipe = client.pipeline(transaction=False)
    for s in segments:
        pipe.xadd(writer.stream, s.to_fields())
    pipe.execute()
    stats = writer.drain(600)
    assert stats.rows == len(segments) and stats.error is None, stats
    assert store.count(name) == len(segments)
    client.delete(writer.stream)
    drop(settings, name)
    return stats.seconds


def services(args: argparse.Namespace, tmp: Path) -> tuple[str, str, list[Service]]:
    started: list[Service] = []
    redis_url, milvus_uri = args.redis_url, args.milvus_uri
    if not redis_url:
        service = start_redis(tmp / "redis")
        started.append(service)
        redis_url = f"redis://{service.host}:{service.port}/0"
    if not milvus_uri:
        service = start_milvus_engine(args.engine, tmp / "milvus")
        started.append(service)
        milvus_uri = service.url
    return redis_url, milvus_uri, started


def report(n: int, results: dict[str, list[float]], best_raw: str, writer_key: str) -> None:
    print(f"\n{n} segments, {DIM}-d, {SEGMENTS_PER_VIDEO} segments per video; "
          "median of the rounds, flush included")
    print(f"{'variant':<42}{'rounds':>7}{'seconds':>10}{'segments/s':>14}")
    medians = {label: statistics.median(times) for label, times in results.items()}
    for label, seconds in medians.items():
        print(f"{label:<42}{len(results[label]):>7}{seconds:>10.2f}{n / seconds:>14.0f}")
    for label in results:
        if label.startswith("SegmentWriter"):
            ratio = medians[best_raw] / medians[label]
            print(f"{label} / {best_raw} = {ratio:.2f}  (goal >= 0.90)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--segments", type=int, default=20000)
    parser.add_argument("--batch-sizes", default="500,1000,2000,4000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url")
    parser.add_argument("--milvus-uri")
    parser.add_argument("--engine", choices=["lite", "server"], default="lite",
                        help="the Milvus started here when no --milvus-uri is given")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis_url, milvus_uri, started = services(args, Path(tmp))
        try:
            run(args, redis_url, milvus_uri)
        finally:
            for service in started:
                service.stop()


def run(args: argparse.Namespace, redis_url: str, milvus_uri: str) -> None:
    """Batch sizes once, then writer / best raw / per video interleaved ``--rounds`` times."""
    settings = load_settings(redis_url=redis_url, milvus_uri=milvus_uri)
    segments = make_segments(args.segments)
    n = len(segments)
    results: dict[str, list[float]] = {}
    for size in (int(s) for s in args.batch_sizes.split(",")):
        results[f"raw upsert, batch {size}"] = [raw_upserts(settings, segments, by_batch(n, size))]
    best_raw = min(results, key=lambda k: results[k][0])
    best_size = int(best_raw.rsplit(" ", 1)[1])
    client: redis.Redis[bytes] = redis.Redis.from_url(redis_url)
    writer_key = f"SegmentWriter, batch {best_size}, flush at end"
    periodic = f"SegmentWriter, batch {best_size}, flush 2 s"
    per_video = "raw insert, one call per video"
    for _ in range(args.rounds):  # interleaved, so load drift hits every variant alike
        results.setdefault(writer_key, []).append(
            writer_run(settings, client, segments, best_size, 600.0)
        )
        results.setdefault(periodic, []).append(
            writer_run(settings, client, segments, best_size, 2.0)
        )
        results[best_raw].append(raw_upserts(settings, segments, by_batch(n, best_size)))
        results.setdefault(per_video, []).append(
            raw_upserts(settings, segments, by_batch(n, SEGMENTS_PER_VIDEO))
        )
    report(n, results, best_raw, writer_key)


if __name__ == "__main__":
    main()
