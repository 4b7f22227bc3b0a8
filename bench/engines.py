"""Milvus Lite vs a real Milvus server on the same vectors: start, load, search, recall, memory, disk.

For each engine (started here on free ports in a temporary directory, as ``vidsearch up`` starts
it), one collection is created through ``MilvusStore.ensure_collection`` (the production schema:
HNSW M 16 / efConstruction 200, COSINE, category as the partition key with 16 partitions) and
``--rows`` synthetic clip segments (unit 512-d vectors drawn around 2,000 cluster centres, 12
categories, 40 segments per video) are inserted with pymilvus directly, 5,000 rows per call, then
flushed. Figures per engine:

* start: seconds until the engine answers (the server's binary already unpacked);
* load: rows/s of the inserts (flush included);
* fresh: search p95 over the first 60 s after the flush (what a user sees right after an ingest);
* hand-off (server): when the index reports every row, a compaction may still be merging the
  small segments of the load; the merged ones are indexed and handed to the query node later,
  and until then searches read the older, smaller segments. Search p50/p95 then (if any are
  pending), and the wait until searches read exactly the sealed segments (6 checks in a row);
* steady: after that (server) or a settle wait (Lite, whose index builds are not reported),
  search p50/p95 without and with a category filter;
* recall@10 of those searches against exact brute force (numpy) on the same vectors;
* peak RSS of the engine's processes (VmHWM) and the data directory's size on disk.

A search is the pymilvus call ``MilvusStore.search`` makes for a top-10 *videos* query (``limit``
= 10 x ``CANDIDATES_PER_VIDEO`` = 80 segments, ef raised to 80, the store's output fields); recall
is measured on its best 10 segments.

    .venv/bin/python -m bench.engines --rows 100000              # both engines (bench/run: 100k)
    .venv/bin/python -m bench.engines --rows 1000000 --engines server,lite --json out.json
    .venv/bin/python -m bench.engines --rows 1000000 --engines server --ef 128,200 # + an ef sweep
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import MilvusClient

from bench.common import Row, log, pct
from pipeline.milvus.filters import all_of, equals, one_of
from pipeline.milvus.schema import OUTPUT_FIELDS, search_params_for
from pipeline.milvus.store import MilvusStore
from pipeline.search.searcher import CANDIDATES_PER_VIDEO
from pipeline.settings import Settings, load_settings
from vidsearch.stack.services import MilvusEngine, Service, start_milvus_engine

DIM = 512
MODEL = "marengo3.0"
CATEGORIES = [f"cat{i:02d}" for i in range(12)]
SEGMENTS_PER_VIDEO = 40
CENTRES = 2000
BATCH = 5000
TOP = 10
FRESH_WINDOW_S = 60.0
SETTLED_CHECKS = 6
SETTLED_INTERVAL_S = 5.0


@dataclass
class EngineResult:
    engine: str
    rows: int
    start_s: float = 0.0
    load_rows_per_s: float = 0.0
    fresh_p95_ms: float = 0.0
    fresh_searches: int = 0
    index_wait_s: float = 0.0
    indexed_rows: int | None = None
    handoff_p50_ms: float | None = None
    handoff_p95_ms: float | None = None
    settle_wait_s: float = 0.0
    segments: int | None = None
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    filtered_p50_ms: float = 0.0
    filtered_p95_ms: float = 0.0
    recall: float = 0.0
    filtered_recall: float = 0.0
    peak_rss_mb: float = 0.0
    disk_mb: float = 0.0
    sweep: list[dict[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Corpus:
    """Deterministic clustered unit vectors, generated batch by batch and kept for brute force."""

    def __init__(self, rows: int, seed: int = 5) -> None:
        rng = np.random.default_rng(seed)
        self.rows = rows
        self.centres = rng.standard_normal((CENTRES, DIM), dtype=np.float32)
        self.vectors = np.empty((rows, DIM), dtype=np.float32)
        for start in range(0, rows, BATCH):
            count = min(BATCH, rows - start)
            picks = rng.integers(0, CENTRES, size=count)
            block = self.centres[picks] + 0.6 * rng.standard_normal((count, DIM), dtype=np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            self.vectors[start:start + count] = block
        self.categories = np.array(
            [CATEGORIES[(i // SEGMENTS_PER_VIDEO) % len(CATEGORIES)] for i in range(rows)]
        )

    def rows_batch(self, start: int, count: int) -> list[dict[str, Any]]:
        now_ms = int(time.time() * 1000)
        out = []
        for i in range(start, start + count):
            video, k = divmod(i, SEGMENTS_PER_VIDEO)
            out.append({
                "pk": f"{i:032x}", "vector": self.vectors[i], "category": str(self.categories[i]),
                "url": f"https://videos.example.com/v/{video}.mp4", "start_s": 6.0 * k,
                "end_s": 6.0 * (k + 1), "option": "visual", "scope": "clip", "model": MODEL,
                "item_key": f"{video:032x}", "job_id": "bench", "ingested_at": now_ms,
                "title": f"video {video}", "metadata": {"source": "bench"},
            })
        return out

    def queries(self, n: int, seed: int = 9) -> np.ndarray:
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, self.rows, size=n)
        q = self.vectors[picks] + 0.3 * rng.standard_normal((n, DIM), dtype=np.float32) / np.sqrt(DIM)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        return q.astype(np.float32)

    def exact(self, queries: np.ndarray, category: str | None) -> list[set[str]]:
        """The exact top-10 pks of each query (cosine = dot product of unit vectors)."""
        index = np.arange(self.rows) if category is None else np.nonzero(self.categories == category)[0]
        best = np.empty((len(queries), 0), dtype=np.int64)
        best_scores = np.empty((len(queries), 0), dtype=np.float32)
        for start in range(0, len(index), 100_000):  # one matrix product per block, no per-query copy
            block = index[start:start + 100_000]
            scores = np.concatenate([best_scores, queries @ self.vectors[block].T], axis=1)
            ids = np.concatenate([best, np.broadcast_to(block, (len(queries), len(block)))], axis=1)
            keep = np.argpartition(-scores, TOP, axis=1)[:, :TOP]
            best, best_scores = np.take_along_axis(ids, keep, 1), np.take_along_axis(scores, keep, 1)
        return [{f"{i:032x}" for i in row} for row in best]


def group_pids(service: Service) -> list[int]:
    """Processes of the engine's process group."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == service.proc.pid:  # pgrp
                pids.append(int(entry.name))
    return pids


def peak_rss_mb(service: Service) -> float:
    total = 0
    for pid in group_pids(service):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def indexed_rows(client: MilvusClient, name: str) -> int | None:
    try:
        info = client.describe_index(name, "vector")
    except Exception:  # Lite may not describe index progress
        return None
    value = info.get("indexed_rows") if info else None
    return int(value) if value is not None else None


class Probe:
    """The store's top-10-videos search call, timed, with its best 10 pks."""

    def __init__(self, client: MilvusClient, settings: Settings, name: str) -> None:
        self.client, self.name = client, name
        self.limit = TOP * CANDIDATES_PER_VIDEO
        self.params: dict[str, Any] = {"metric_type": settings.index_metric,
                       "params": search_params_for(settings, name, self.limit)}

    def with_ef(self, ef: int) -> Probe:
        """The same probe with HNSW ``ef`` set to ``ef`` (raised to the limit, as the store does)."""
        other = Probe.__new__(Probe)
        other.client, other.name, other.limit = self.client, self.name, self.limit
        params: dict[str, Any] = self.params["params"]
        other.params = {**self.params, "params": {**params, "ef": max(ef, self.limit)}}
        return other

    def search(self, q: np.ndarray, category: str | None) -> tuple[float, list[str]]:
        flt = all_of(equals("scope", "clip"), one_of("category", [category]) if category else "")
        started = time.perf_counter()
        result = self.client.search(
            self.name, data=[q.tolist()], filter=flt, limit=self.limit,
            output_fields=list(OUTPUT_FIELDS), search_params=self.params, consistency_level="Bounded",
        )
        ms = (time.perf_counter() - started) * 1000
        return ms, [str(h.get("pk", h.get("id"))) for h in result[0][:TOP]]


def load(client: MilvusClient, name: str, corpus: Corpus) -> float:
    started = time.perf_counter()
    for start in range(0, corpus.rows, BATCH):
        client.insert(name, corpus.rows_batch(start, min(BATCH, corpus.rows - start)), timeout=600)
        if start and start % 100_000 == 0:
            log(f"  loaded {start:,} rows ({start / (time.perf_counter() - started):,.0f}/s)")
    client.flush(name, timeout=1800)
    return corpus.rows / (time.perf_counter() - started)


def fresh_window(probe: Probe, queries: np.ndarray, window_s: float) -> list[float]:
    """Search latencies during the first ``window_s`` after the load, cycling through the queries."""
    until = time.monotonic() + window_s
    samples: list[float] = []
    i = 0
    while time.monotonic() < until:
        category = CATEGORIES[i % len(CATEGORIES)] if i % 2 else None
        samples.append(probe.search(queries[i % len(queries)], category)[0])
        i += 1
    return samples


def wait_indexed(client: MilvusClient, name: str, result: EngineResult, max_wait_s: float) -> None:
    rows, engine = result.rows, result.engine
    started = time.monotonic()
    while time.monotonic() - started < max_wait_s:
        done = indexed_rows(client, name)
        result.indexed_rows = done
        if done is None and engine == "lite":
            result.notes.append("Lite reports no index progress: settled for the wait instead")
            time.sleep(min(max_wait_s, 60.0))
            break
        if done is not None and done >= rows:
            break
        time.sleep(2.0)
    result.index_wait_s = time.monotonic() - started


def segment_ids(store: MilvusStore, name: str) -> tuple[set[int], set[int]] | None:
    """The sealed segments and the segments searches read, or None (Lite lists none)."""
    sealed, served = store.segment_rows(name), store.segment_rows(name, served=True)
    return None if sealed is None or served is None else (set(sealed), set(served))


def wait_settled(store: MilvusStore, name: str, result: EngineResult, max_wait_s: float) -> None:
    """Until searches read exactly the sealed segments (compaction hand-offs done) for
    ``SETTLED_CHECKS`` checks in a row: merged segments are indexed and loaded only after the
    index reports every row, and until then searches read the older, smaller segments."""
    started, streak = time.monotonic(), 0
    while time.monotonic() - started < max_wait_s and streak < SETTLED_CHECKS:
        ids = segment_ids(store, name)
        if ids is None:
            return
        result.segments = len(ids[0])
        streak = streak + 1 if ids[0] == ids[1] else 0
        time.sleep(SETTLED_INTERVAL_S)
    result.settle_wait_s = time.monotonic() - started


def latency(probe: Probe, queries: np.ndarray, category: str | None) -> tuple[float, float]:
    times = [probe.search(q, category)[0] for q in queries]
    return pct(times, 50), pct(times, 95)


def measure(probe: Probe, queries: np.ndarray, exact: list[set[str]],
            category: str | None) -> tuple[float, float, float]:
    """p50 ms, p95 ms and recall@10 of ``queries`` against their exact answers."""
    times, hits = [], 0
    for q, truth in zip(queries, exact, strict=True):
        ms, got = probe.search(q, category)
        times.append(ms)
        hits += len(truth & set(got))
    return pct(times, 50), pct(times, 95), hits / (TOP * len(queries))


def steady(probe: Probe, corpus: Corpus, queries: np.ndarray, result: EngineResult,
           efs: tuple[int, ...] = ()) -> None:
    """Search figures with the store's params, then once per ``ef`` of the sweep."""
    for category in (None, CATEGORIES[3]):
        exact = corpus.exact(queries, category)
        p50, p95, recall = measure(probe, queries, exact, category)
        if category is None:
            result.p50_ms, result.p95_ms, result.recall = p50, p95, recall
        else:
            result.filtered_p50_ms, result.filtered_p95_ms, result.filtered_recall = p50, p95, recall
        for ef in efs:
            p50, p95, recall = measure(probe.with_ef(ef), queries, exact, category)
            result.sweep.append({"ef": float(max(ef, probe.limit)), "filtered": float(category is not None),
                                 "p50_ms": p50, "p95_ms": p95, "recall": recall})


def run_engine(engine: MilvusEngine, corpus: Corpus, n_queries: int, tmp: Path,
               index_wait_s: float, *, efs: tuple[int, ...] = ()) -> EngineResult:
    result = EngineResult(engine=engine, rows=corpus.rows)
    data_dir = tmp / f"{engine}-{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    service = start_milvus_engine(engine, data_dir)
    result.start_s = time.perf_counter() - started
    try:
        settings = load_settings(milvus_uri=service.url, collection_prefix=f"e{uuid.uuid4().hex[:8]}")
        store = MilvusStore(settings, timeout_s=600)
        name = store.ensure_collection(MODEL, DIM)
        client = MilvusClient(uri=service.url, timeout=600)
        log(f"{engine}: started in {result.start_s:.1f} s; loading {corpus.rows:,} rows")
        result.load_rows_per_s = load(client, name, corpus)
        probe = Probe(client, settings, name)
        queries = corpus.queries(n_queries)
        fresh = fresh_window(probe, queries, FRESH_WINDOW_S)
        result.fresh_p95_ms, result.fresh_searches = pct(fresh, 95), len(fresh)
        log(f"{engine}: {result.load_rows_per_s:,.0f} rows/s; fresh p95 {result.fresh_p95_ms:.1f} ms "
            f"({len(fresh)} searches)")
        wait_indexed(client, name, result, index_wait_s)
        ids = segment_ids(store, name)
        if ids is not None and ids[0] != ids[1]:
            result.handoff_p50_ms, result.handoff_p95_ms = latency(probe, queries, None)
            log(f"{engine}: indexed, {len(ids[0] - ids[1])} sealed segments not yet serving: "
                f"p50/p95 {result.handoff_p50_ms:.1f}/{result.handoff_p95_ms:.1f} ms")
        wait_settled(store, name, result, index_wait_s)
        steady(probe, corpus, queries, result, efs)
        result.peak_rss_mb = peak_rss_mb(service)
        result.disk_mb = disk_mb(data_dir)
        log(f"{engine}: {json.dumps(asdict(result))}")
        client.close()
        store.close()
    finally:
        service.stop()
    return result


def compare(rows: int, engines: list[MilvusEngine], queries: dict[str, int],
            index_wait_s: float, efs: tuple[int, ...] = ()) -> list[EngineResult]:
    """Each engine in turn on the same corpus; ``queries`` per engine; ``efs``: an ef sweep."""
    corpus = Corpus(rows)
    with tempfile.TemporaryDirectory(prefix="vidsearch-engines-") as tmp:
        return [run_engine(e, corpus, queries[e], Path(tmp), index_wait_s, efs=efs) for e in engines]


def sweep_table(results: list[dict[str, Any]]) -> str:
    """A markdown table of the ef sweep: recall and latency per engine, ef and filter."""
    lines = ["| engine | ef | filter | p50 ms | p95 ms | recall@10 |", "|---|---|---|---|---|---|"]
    for r in results:
        for s in r.get("sweep", []):
            lines.append(f"| {r['engine']} | {s['ef']:.0f} | {'category' if s['filtered'] else 'none'} | "
                         f"{s['p50_ms']:.1f} | {s['p95_ms']:.1f} | {s['recall']:.3f} |")
    return "\n".join(lines)


def table_rows(results: list[EngineResult], section: str = "9") -> list[Row]:
    """Bench rows: the server's figures with Lite's as the same-run baseline."""
    by = {r.engine: r for r in results}
    server, lite = by.get("server"), by.get("lite")
    n = results[0].rows
    specs: list[tuple[str, str, str, bool | None]] = [
        ("start_s", "engine start (s)", "", None),
        ("load_rows_per_s", "insert rows/s (5,000 per call, flush included)", "", None),
        ("fresh_p95_ms", "search p95 (ms) within 60 s after the load", "<= 50 ms (server)", True),
        ("p95_ms", "search top-10 videos p95 (ms), no filter", "<= 20 ms (server)", True),
        ("filtered_p95_ms", "search top-10 videos p95 (ms), category filter", "<= 20 ms (server)", True),
        ("recall", "recall@10 vs brute force, no filter", ">= 0.95", True),
        ("filtered_recall", "recall@10 vs brute force, category filter", ">= 0.95", True),
        ("peak_rss_mb", "peak RSS of the engine (MB)", "reported", None),
        ("disk_mb", "data on disk (MB)", "reported", None),
    ]
    rows = []
    for key, label, goal, has_goal in specs:
        value = getattr(server, key) if server else None
        base = getattr(lite, key) if lite else None
        met = None
        if has_goal and value is not None:
            met = value >= 0.95 if "recall" in key else value <= (50 if "fresh" in key else 20)
        ratio = f"{value / base:.2f}" if value and base else ""
        rows.append(Row(section, f"{label} at {n:,} rows: server (Lite as baseline)",
                        _fmt(value), f"Lite {_fmt(base)}", ratio, goal, met))
    return rows


def side_by_side(results: list[dict[str, Any]]) -> str:
    """A markdown table: one row per figure, one column per engine (from the JSON results)."""
    by = {r["engine"]: r for r in results}
    engines = [e for e in ("server", "lite") if e in by]
    labels = [
        ("start_s", "engine start, s (binary unpacked)"),
        ("load_rows_per_s", "insert rows/s (5,000 per call, flush included)"),
        ("fresh_p95_ms", "search p95 ms, first 60 s after the load"),
        ("p50_ms", "search top-10 videos p50 ms, no filter"),
        ("p95_ms", "search top-10 videos p95 ms, no filter"),
        ("filtered_p50_ms", "search p50 ms, category filter"),
        ("filtered_p95_ms", "search p95 ms, category filter"),
        ("recall", "recall@10 vs brute force, no filter"),
        ("filtered_recall", "recall@10 vs brute force, category filter"),
        ("index_wait_s", "wait until every row indexed, s"),
        ("handoff_p50_ms", "then, compaction hand-offs pending: p50 ms, no filter"),
        ("handoff_p95_ms", "same, p95 ms"),
        ("settle_wait_s", "then, wait until searches read only the sealed segments, s"),
        ("segments", "sealed segments, settled"),
        ("peak_rss_mb", "peak RSS of the engine, MB"),
        ("disk_mb", "data on disk, MB"),
    ]
    names = {"server": "Milvus 2.3.5 server", "lite": "Milvus Lite 3.2"}
    lines = ["| figure | " + " | ".join(names[e] for e in engines) + " |",
             "|---|" + "---|" * len(engines)]
    for key, label in labels:
        lines.append(f"| {label} | " + " | ".join(_fmt(by[e].get(key)) for e in engines) + " |")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.3f}" if value < 1.5 else f"{value:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--engines", default="server,lite")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--lite-queries", type=int, help="fewer queries for Lite (slow at 1M rows)")
    parser.add_argument("--index-wait", type=float, default=600.0, help="longest wait for index builds")
    parser.add_argument("--ef", default="", help="an ef sweep after the main figures, e.g. 128,200,300")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--table", type=Path, help="only print the side-by-side table of a --json file")
    args = parser.parse_args()
    if args.table:
        loaded = json.loads(args.table.read_text())
        print(side_by_side(loaded))
        print()
        print(sweep_table(loaded))
        return
    engines: list[MilvusEngine] = [e for e in ("server", "lite") if e in args.engines.split(",")]
    queries = {"server": args.queries, "lite": args.lite_queries or args.queries}
    efs = tuple(int(v) for v in args.ef.split(",") if v.strip())
    results = compare(args.rows, engines, queries, args.index_wait, efs)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    from bench.common import table

    print(table(table_rows(results)))
    print()
    print(side_by_side([asdict(r) for r in results]))
    if efs:
        print()
        print(sweep_table([asdict(r) for r in results]))


if __name__ == "__main__":
    main()
