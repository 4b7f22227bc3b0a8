"""Corpus analytics: quality on a planted collection, and wall time / peak RSS of each command.

Quality (``bench/run`` section 10): ``sandbox.planted.plant`` makes 6 topics x N videos with planted
near-duplicates and mis-filed videos; their rows (the vectors the sandbox would answer, from
``bench/planted_rows.py``) are upserted into a Milvus Lite collection through ``MilvusStore``,
ingest times spread over 14 days. Each ``vidsearch analytics`` command then runs as its own process
(``--json``), timed, its peak RSS read with ``wait4``:

* duplicates: pair precision and recall against the planted copies (pairs inside found groups);
* outliers: recall of the mis-filed videos among the first 2 x planted listed, against the
  expected recall of a random ranking;
* clusters ``--k 6``: adjusted Rand index of the clusters against the planted topics;
* the same command again: cold read vs cached read (``pipeline/analytics/corpus.py``).

Scale (``python -m bench.analytics --videos 100000 --milvus server``, run alone: ~1.2 M rows take
377 s to upsert into a Milvus server on a quiet machine): synthetic videos (12 topics; 5 clips x 2 options
+ 2 asset rows each) loaded with ``MilvusStore.upsert_rows``; each command's wall time and peak RSS,
cold then cached. ``--milvus lite`` (the default) runs it on Milvus Lite, ``server`` on a real
Milvus standalone server (extra ``vidsearch[milvus-server]``), the engine whose query iterators
serve the cold read of 1.2 M rows.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import ROOT, Row, log, section, table
from bench.planted_rows import planted_rows
from pipeline.milvus.store import MilvusStore
from pipeline.settings import Settings, load_settings
from vidsearch.sandbox.planted import plant
from vidsearch.stack.services import MILVUS_ENGINES, MilvusEngine, Service, start_milvus_engine, start_redis

DAY_MS = 86_400_000
BATCH = 2000
DIM = 512


def adjusted_rand(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Adjusted Rand index of two labelings of the same items."""
    _, ia = np.unique(np.asarray(a, dtype=str), return_inverse=True)
    _, ib = np.unique(np.asarray(b, dtype=str), return_inverse=True)
    table_ = np.zeros((ia.max() + 1, ib.max() + 1))
    np.add.at(table_, (ia, ib), 1)

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    total = pairs(np.array([len(a)]))
    index, rows, cols = pairs(table_), pairs(table_.sum(1)), pairs(table_.sum(0))
    expected = rows * cols / total
    top = (rows + cols) / 2
    return (index - expected) / (top - expected) if top != expected else 1.0


def run_measured(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall s, peak RSS MB, stdout) of one child process."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[3:]} exited {proc.returncode}: {err.read()[-2000:]!r}")
        return wall, usage.ru_maxrss / 1024, out.read().decode()


def _env(settings: Settings, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDSEARCH_")}
    env.update({"VIDSEARCH_REDIS_URL": settings.redis_url, "VIDSEARCH_MILVUS_URI": settings.milvus_uri,
                "VIDSEARCH_COLLECTION_PREFIX": settings.collection_prefix,
                "VIDSEARCH_DATA_DIR": str(data_dir), "VIDSEARCH_LOG_FORMAT": "json"})
    return env


def load_rows(store: MilvusStore, rows: Iterator[dict[str, Any]]) -> tuple[int, float]:
    """Upsert ``rows`` in batches, flush; (rows, seconds)."""
    name = store.ensure_collection("marengo3.0", DIM)
    started = time.perf_counter()
    n = 0
    for batch in iter(lambda: list(itertools.islice(rows, BATCH)), []):
        store.upsert_rows(name, batch)
        n += len(batch)
    store.flush(name)
    return n, time.perf_counter() - started


def pair_set(groups: Sequence[Sequence[str]]) -> set[tuple[str, str]]:
    return {tuple(sorted(p)) for g in groups for p in itertools.combinations(g, 2)}  # type: ignore[misc]


def ingest_times(planted: Any, days: int = 14, growing: str = "music") -> list[int]:
    """A random day of the last ``days`` per line; the ``growing`` topic's lines lean to recent days."""
    rng = np.random.default_rng(7)
    now = int(time.time() * 1000)
    out = []
    for url, _, _ in planted.lines:
        recent = planted.topic[url] == growing
        ago = min(days - 1, int(rng.geometric(0.3)) - 1) if recent else int(rng.integers(0, days))
        out.append(now - ago * DAY_MS)
    return out


# --- quality ----------------------------------------------------------------------------------------
def quality(tmp: Path, per_topic: int, settings: Settings, plots: Path | None = None) -> list[Row]:
    planted = plant(topics=6, per_topic=per_topic, duplicates=per_topic // 5, misfiled=per_topic // 10,
                    seed=7)
    n = len(planted.lines)
    times = ingest_times(planted)
    store = MilvusStore(settings, timeout_s=600)
    with section(f"analytics: load {n} planted videos"):
        rows, seconds = load_rows(store, planted_rows(planted, times))
    store.close()
    log(f"analytics: {rows} rows in {seconds:.0f} s")
    env = _env(settings, tmp / "data")
    cli = [sys.executable, "-m", "vidsearch", "analytics"]
    out: list[Row] = []
    cold_s, cold_mb, text = run_measured([*cli, "duplicates", "--json"], env)
    warm_s, warm_mb, _ = run_measured([*cli, "duplicates", "--json"], env)
    found = pair_set([g["urls"] for g in json.loads(text)["groups"]])
    truth = pair_set(planted.duplicates)
    precision = len(found & truth) / len(found) if found else 0.0
    recall = len(found & truth) / len(truth)
    out += [
        Row("10", f"duplicates precision ({len(truth)} planted pairs, {n} videos, threshold 0.9)",
            f"{precision:.3f}", "", "", ">= 0.95", precision >= 0.95, {"found": len(found)}),
        Row("10", "  duplicates recall", f"{recall:.3f}", "", "", ">= 0.95", recall >= 0.95),
        Row("10", "  duplicates: cold read vs cached (wall s)", f"{warm_s:.1f}", f"cold {cold_s:.1f}",
            f"{cold_s / warm_s:.1f}x faster", "reported", None, {"cold_mb": cold_mb, "warm_mb": warm_mb}),
    ]
    _, _, text = run_measured([*cli, "outliers", "--json"], env)
    listed = [o["url"] for o in json.loads(text)["outliers"]]
    top = set(listed[: 2 * len(planted.misfiled)])
    recall_o = len(top & set(planted.misfiled)) / len(planted.misfiled)
    random_recall = min(1.0, 2 * len(planted.misfiled) / n)
    out.append(Row("10", f"outliers recall of {len(planted.misfiled)} mis-filed in the top "
                        f"{2 * len(planted.misfiled)}", f"{recall_o:.3f}",
                   f"random ranking {random_recall:.3f}", f"{recall_o / random_recall:.0f}x",
                   ">= 0.9", recall_o >= 0.9, {"listed": len(listed)}))
    _, _, text = run_measured([*cli, "clusters", "--k", "6", "--json"], env)
    videos = json.loads(text)["videos"]
    ari = adjusted_rand([v["cluster"] for v in videos], [planted.topic[v["url"]] for v in videos])
    by_category = adjusted_rand([v["category"] for v in videos], [planted.topic[v["url"]] for v in videos])
    out.append(Row("10", "clusters (k 6) adjusted Rand index vs planted topics", f"{ari:.3f}",
                   f"filed categories {by_category:.3f}", "", "reported", None))
    _, _, auto = run_measured([*cli, "clusters", "--auto", "--json"], env)
    out.append(Row("10", "  clusters --auto: k chosen (6 planted topics)", str(json.loads(auto)["k"]),
                   "", "", "reported", None))
    if plots is not None:
        run_measured([*cli, "clusters", "--auto", "--plot", str(plots / "analytics-clusters.png")], env)
        run_measured([*cli, "trends", "--k", "6", "--plot", str(plots / "analytics-trends.png")], env)
    return out


# --- scale ------------------------------------------------------------------------------------------
def synthetic_rows(videos: int, seed: int = 3) -> Iterator[dict[str, Any]]:
    """12 rows per video (5 clips x 2 options + 2 asset rows), 12 topics, ingest over 28 days."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((12, DIM)).astype(np.float32)
    now = int(time.time() * 1000)
    for start in range(0, videos, 500):
        count = min(500, videos - start)
        topic = rng.integers(0, 12, count)
        latent = topics[topic] + 0.8 * rng.standard_normal((count, DIM)).astype(np.float32)
        for j in range(count):
            v = start + j
            yield from _video_rows(v, latent[j], int(topic[j]), now - (v % 28) * DAY_MS, rng)


def _video_rows(v: int, latent: np.ndarray, topic: int, when: int,
                rng: np.random.Generator) -> Iterator[dict[str, Any]]:
    spans = [("clip", 6.0 * k, 6.0 * (k + 1)) for k in range(5)] + [("asset", 0.0, 30.0)]
    noise = rng.standard_normal((12, DIM)).astype(np.float32)
    for n, ((scope, s, e), option) in enumerate(itertools.product(spans, ("visual", "audio"))):
        vec = latent + (0.3 if scope == "asset" else 0.6) * noise[n]
        yield {"pk": f"{v:024x}{n:08x}", "vector": vec / np.linalg.norm(vec),
               "category": f"topic{topic:02d}", "url": f"https://cdn.example.com/s/{v}.mp4",
               "start_s": s, "end_s": e, "option": option, "scope": scope, "model": "marengo3.0",
               "item_key": f"{v:032x}", "job_id": "scale", "ingested_at": when,
               "title": f"topic{topic} video {v}", "metadata": {}}


def scale(tmp: Path, videos: int, settings: Settings, engine: str = "lite") -> list[Row]:
    store = MilvusStore(settings, timeout_s=1800)
    with section(f"analytics scale: load {videos:,} videos"):
        rows, seconds = load_rows(store, synthetic_rows(videos))
    store.close()
    log(f"analytics scale: {rows:,} rows in {seconds:.0f} s")
    env = _env(settings, tmp / "data")
    cli = [sys.executable, "-m", "vidsearch", "analytics"]
    out = [Row("10", f"scale: {videos:,} videos, {rows:,} rows loaded (Milvus {engine})", f"{seconds:.0f} s",
               "", "", "reported", None)]
    commands = [["duplicates"], ["duplicates"], ["outliers"], ["clusters", "--k", "12", "--plot",
                str(tmp / "map.png")], ["clusters", "--auto"], ["trends", "--k", "12"]]
    for n, command in enumerate(commands):
        wall, mb, _ = run_measured([*cli, *command, "--json"], env)
        what = "cold read + " if n == 0 else ""
        out.append(Row("10", f"  {what}{' '.join(command[:3])}: wall s / peak RSS MB",
                       f"{wall:.0f} / {mb:.0f}", "", "", "< 120 s, < 1536 MB",
                       wall < 120 and mb < 1536))
        log(f"analytics scale {command}: {wall:.1f} s, {mb:.0f} MB")
    return out


def with_services(tmp: Path, fn: Any, engine: MilvusEngine = "lite") -> list[Row]:
    services: list[Service] = []
    try:
        services.append(start_redis(tmp / "analytics-redis"))
        services.append(start_milvus_engine(engine, tmp / "analytics-milvus"))
        r, m = services
        settings = load_settings(redis_url=f"redis://{r.host}:{r.port}/0", milvus_uri=m.url,
                                 collection_prefix="analytics", num_partitions=16)
        rows: list[Row] = fn(settings)
        return rows
    finally:
        for service in reversed(services):
            service.stop()


def run(tmp: Path, quick: bool) -> list[Row]:
    return with_services(tmp, lambda s: quality(tmp, 30 if quick else 150, s))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--per-topic", type=int, default=150, help="quality: videos per topic")
    parser.add_argument("--videos", "--scale", dest="scale", type=int,
                        help="instead: wall time and RSS at this many videos (the scale run)")
    parser.add_argument("--milvus", choices=MILVUS_ENGINES, default="lite",
                        help="Milvus Lite or a real Milvus standalone server (default %(default)s)")
    parser.add_argument("--plots", type=Path, help="quality: also write the cluster map and trends here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vidsearch-analytics-") as name:
        tmp = Path(name)
        if args.scale:
            rows = with_services(tmp, lambda s: scale(tmp, args.scale, s, args.milvus), args.milvus)
        else:
            rows = with_services(tmp, lambda s: quality(tmp, args.per_topic, s, args.plots), args.milvus)
    print(table(rows))


if __name__ == "__main__":
    main()
