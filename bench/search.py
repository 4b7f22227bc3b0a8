"""Search latency on Milvus Lite: top-10 text search, with and without a category filter.

For each corpus size, synthetic clip segments (unit 512-d vectors, 12 categories as the partition
key, 40 segments per video) are upserted through ``MilvusStore`` in batches of 2,000 (the writer's
batch). Latency is then measured through ``Searcher.search`` (the CLI's path: has_collection +
one or more Milvus searches + best segment per video), with the query embeddings already cached so
the figure is the search itself:

* right after ingest (nothing flushed: growing segments, brute force), then
* after the writer's flush policy has run (``MilvusStore.flush``, which seals and indexes).

A repeated query served by the query-embedding cache is compared with the same query embedded
anew by the sandbox (cache off), and the sandbox's embed calls are counted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import redis

from bench.common import Row, http_json, log, pct, section, table
from pipeline.milvus.store import MilvusStore
from pipeline.search.query import Query, QueryPart
from pipeline.search.searcher import Searcher
from pipeline.settings import Settings, load_settings
from pipeline.twelvelabs import TwelveLabsGateway
from vidsearch.stack.services import Service, start_milvus, start_redis, start_sandbox

DIM = 512
MODEL = "marengo3.0"
CATEGORIES = [f"cat{i:02d}" for i in range(12)]
SEGMENTS_PER_VIDEO = 40
BATCH = 2000
WORDS = ["dog", "beach", "surfing", "city", "night", "football", "goal", "kitchen", "pasta",
         "mountain", "snow", "skiing", "harbour", "boat", "sunset", "tennis", "crowd", "forest",
         "rain", "car", "train", "bread", "market", "desert", "camel", "bird", "river", "bridge"]


def queries(n: int) -> list[str]:
    rng = np.random.default_rng(11)
    return [" ".join(rng.choice(WORDS, size=3, replace=False)) + f" {i}" for i in range(n)]


def rows_batch(start: int, count: int, rng: np.random.Generator, job: str) -> list[dict[str, Any]]:
    vectors = rng.standard_normal((count, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    now_ms = int(time.time() * 1000)
    out = []
    for j in range(count):
        i = start + j
        video = i // SEGMENTS_PER_VIDEO
        k = i % SEGMENTS_PER_VIDEO
        out.append({
            "pk": f"{i:032x}", "vector": vectors[j], "category": CATEGORIES[video % len(CATEGORIES)],
            "url": f"https://videos.example.com/{video}.mp4", "start_s": 6.0 * (k // 2),
            "end_s": 6.0 * (k // 2 + 1), "option": "visual" if k % 2 else "audio", "scope": "clip",
            "model": MODEL, "item_key": f"{video:032x}", "job_id": job, "ingested_at": now_ms,
            "title": f"video {video}", "metadata": {"source": "bench"},
        })
    return out


def latencies(searcher: Searcher, texts: list[str], categories: list[str],
              budget_s: float) -> list[float]:
    """Per-query ms over ``texts`` (at least 5 queries, then stop once ``budget_s`` is spent)."""
    out: list[float] = []
    deadline = time.perf_counter() + budget_s
    for i, text in enumerate(texts):
        if len(out) >= 5 and time.perf_counter() > deadline:
            break
        cats = [categories[i % len(categories)]] if categories else []
        started = time.perf_counter()
        hits = searcher.search(Query(text=text, categories=tuple(cats), top_k=10, min_score=-1)).hits
        out.append((time.perf_counter() - started) * 1000)
        assert hits, "search returned nothing"
    return out


def measure(searcher: Searcher, texts: list[str], label: str, size: int,
            budget_s: float) -> tuple[list[Row], dict[str, Any]]:
    searcher.search(Query(text=texts[0], top_k=10, min_score=-1))  # warm: connection, collection loaded
    plain = latencies(searcher, texts, [], budget_s / 2)
    filtered = latencies(searcher, texts, CATEGORIES, budget_s / 2)
    data = {"p50_ms": pct(plain, 50), "p95_ms": pct(plain, 95), "n": len(plain),
            "p50_cat_ms": pct(filtered, 50), "p95_cat_ms": pct(filtered, 95), "n_cat": len(filtered)}
    ratio = data["p50_cat_ms"] / data["p50_ms"] if data["p50_ms"] else 0.0
    row = Row("5", f"search p50 / p95 ms, {size:,} segments, {label} ({len(plain)} queries)",
              f"{data['p50_ms']:.0f} / {data['p95_ms']:.0f}",
              "", "", "reported", None, {"size": size, "when": label, **data})
    row_cat = Row("5", "  same with category filter (1 of 12 categories)",
                  f"{data['p50_cat_ms']:.0f} / {data['p95_cat_ms']:.0f}",
                  "unfiltered p50", f"{ratio:.2f}", "reported", None, {"size": size, "when": label})
    return [row, row_cat], data


def grow(settings: Settings, redis_client: redis.Redis, embed: Any, *, sizes: list[int],
         texts: list[str], budget_s: float) -> tuple[list[Row], list[dict[str, Any]]]:
    """One collection grown to each size in turn, measured before and after a flush at each.

    A size whose ingest would not finish within what is left of ``budget_s`` (projected from the
    ingest rate so far) is skipped and reported as such.
    """
    scoped = settings.model_copy(update={"collection_prefix": f"s{uuid.uuid4().hex[:8]}"})
    store = MilvusStore(scoped, timeout_s=900)
    name = store.ensure_collection(MODEL, DIM)
    searcher = Searcher(scoped, redis_client, store, embed)
    for text in texts:
        searcher.embed_query(text)  # cache every query embedding: latencies are the search
    deadline = time.perf_counter() + budget_s
    rng = np.random.default_rng(5)
    rows: list[Row] = []
    infos: list[dict[str, Any]] = []
    have, rate = 0, 0.0
    for size in sizes:
        left = deadline - time.perf_counter()
        if rate and (size - have) / rate > left - 30:
            rows.append(Row("5", f"search at {size:,} segments", "not measured", "", "",
                            "reported", None, {"size": size, "skipped": True}))
            log(f"search: skipping {size:,}: ingest would take {(size - have) / rate:.0f} s "
                f"at {rate:,.0f} rows/s, {left:.0f} s left")
            infos.append({"size": size, "skipped": True, "rows_per_s": rate, "left_s": left})
            continue
        with section(f"search: ingest up to {size:,} segments"):
            started = time.perf_counter()
            for start in range(have, size, BATCH):
                store.upsert_rows(name, rows_batch(start, min(BATCH, size - start), rng, "bench"))
            rate = (size - have) / (time.perf_counter() - started)
            have = size
        query_budget = min(60.0, max(10.0, (deadline - time.perf_counter()) / 6))
        size_rows, before = measure(searcher, texts, "right after ingest", size, query_budget)
        flush_started = time.perf_counter()
        store.flush(name)
        flush_s = time.perf_counter() - flush_started
        rows_after, after = measure(searcher, texts, "after flush", size, query_budget)
        speedup = before["p50_ms"] / after["p50_ms"] if after["p50_ms"] else 0.0
        rows_after[0].baseline = "p50 before flush"
        rows_after[0].ratio = f"{speedup:.1f}x faster"
        infos.append({"size": size, "ingest_rows_per_s": rate, "flush_s": flush_s,
                      "before": before, "after": after})
        log(f"search {size:,}: ingest {rate:,.0f} rows/s, flush {flush_s:.1f} s, "
            f"p50 {before['p50_ms']:.0f} -> {after['p50_ms']:.0f} ms")
        rows += size_rows + rows_after
    store.close()
    return rows, infos


def cache_rows(settings: Settings, redis_client: redis.Redis, store: MilvusStore, *,
               gateway: TwelveLabsGateway, sandbox_url: str, repeats: int) -> list[Row]:
    """Repeated query with the cache vs the same query embedded every time (cache off)."""
    calls = {"n": 0}

    def embed(part: QueryPart) -> list[float]:
        calls["n"] += 1
        return gateway.embed_part(part)

    def embeds_seen() -> int:
        stats = http_json(f"{sandbox_url}/_sandbox/stats")
        return sum(sum(v.values()) for k, v in stats["requests"].items()
                   if k.startswith("POST") and k.rstrip("/").endswith("embed-v2"))

    text = "surfing dog at the beach"
    nocache = Searcher(settings.model_copy(update={"query_cache_ttl_s": 0}), redis_client, store, embed)
    cached = Searcher(settings, redis_client, store, embed)
    nocache.search(Query(text=text, top_k=10, min_score=-1))
    before = embeds_seen()
    cold = []
    for _ in range(repeats):
        started = time.perf_counter()
        nocache.search(Query(text=text, top_k=10, min_score=-1))
        cold.append((time.perf_counter() - started) * 1000)
    cold_calls = embeds_seen() - before
    cached.search(Query(text=text, top_k=10, min_score=-1))  # first time: a miss that fills the cache
    before = embeds_seen()
    warm = []
    for _ in range(repeats):
        started = time.perf_counter()
        cached.search(Query(text=text, top_k=10, min_score=-1))
        warm.append((time.perf_counter() - started) * 1000)
    warm_calls = embeds_seen() - before
    ratio = pct(cold, 50) / pct(warm, 50) if pct(warm, 50) else 0.0
    return [
        Row("5", f"repeated query, cache hit: p50 / p95 ms ({repeats} repeats)",
            f"{pct(warm, 50):.1f} / {pct(warm, 95):.1f}",
            f"embedded each time {pct(cold, 50):.1f} / {pct(cold, 95):.1f}", f"{ratio:.1f}x faster",
            "reported", None, {"warm_ms": warm, "cold_ms": cold}),
        Row("5", "  sandbox embed calls for the repeats: cached vs uncached", f"{warm_calls}",
            f"{cold_calls}", "", "0 with cache", warm_calls == 0),
    ]


def run(sizes: list[int], n_queries: int, tmp: Path, budget_s: float) -> tuple[list[Row], dict[str, Any]]:
    services: list[Service] = []
    try:
        redis_service = start_redis(tmp / "search-redis")
        services.append(redis_service)
        milvus = start_milvus(tmp / "search-milvus")
        services.append(milvus)
        sandbox = start_sandbox(tmp)
        services.append(sandbox)
        settings = load_settings(
            redis_url=f"redis://{redis_service.host}:{redis_service.port}/0",
            milvus_uri=milvus.url, twelvelabs_base_url=f"{sandbox.url}/v1.3", num_partitions=16,
            result_cache_ttl_s=0,  # this section measures the search and the embedding cache
        )
        client = redis.Redis.from_url(settings.redis_url)
        gateway = TwelveLabsGateway(settings)
        texts = queries(n_queries)
        rows, infos = grow(settings, client, gateway.embed_part, sizes=sizes, texts=texts, budget_s=budget_s)
        # the cache figure on a small flushed corpus (the query path is the same)
        scoped = settings.model_copy(update={"collection_prefix": "cachebench"})
        store = MilvusStore(scoped, timeout_s=600)
        name = store.ensure_collection(MODEL, DIM)
        store.upsert_rows(name, rows_batch(0, 4000, np.random.default_rng(1), "cache"))
        store.flush(name)
        rows += cache_rows(scoped, client, store, gateway=gateway, sandbox_url=sandbox.url,
                           repeats=max(20, n_queries // 2))
        return rows, {"sizes": infos}
    finally:
        for service in reversed(services):
            service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--budget-s", type=float, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows, info = run([int(s) for s in args.sizes.split(",")], args.queries, Path(tmp), args.budget_s)
    print(table(rows))
    print(info)


if __name__ == "__main__":
    main()
