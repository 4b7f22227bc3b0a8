"""Vector index status, search-parameter tuning and rebuilds (``vidsearch index status|tune|rebuild``).

``status`` reports, per collection, the index type, metric and build params, rows indexed vs not
yet indexed (as the engine reports them), the sealed segments and the segments searches read: on a
Milvus server a compaction merges small segments, and until the merged ones are indexed and handed
to the query node, searches read the older, smaller ones and are slower.

``tune`` samples stored vectors as queries, computes their exact top-k by brute force over every
stored vector (streamed from Milvus in batches, so memory stays bounded), then sweeps the search
parameter of the index (``ef`` for HNSW, ``nprobe`` for IVF) and measures recall@k and latency at
each value. The smallest value whose recall reaches the target is chosen; the settings line that
applies it to that collection only (``collection_search_params``) is returned for the operator.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.errors import ConfigError
from pipeline.milvus.columns import SCALAR_COLUMNS, columns_from_rows
from pipeline.milvus.filters import at_least
from pipeline.milvus.store import MilvusStore
from pipeline.settings import Settings

SWEEPS: dict[str, tuple[str, tuple[int, ...]]] = {
    "HNSW": ("ef", (10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)),
    "IVF_FLAT": ("nprobe", (1, 2, 4, 8, 16, 32, 64, 128, 256)),
    "IVF_SQ8": ("nprobe", (1, 2, 4, 8, 16, 32, 64, 128, 256)),
    "IVF_PQ": ("nprobe", (1, 2, 4, 8, 16, 32, 64, 128, 256)),
}
SCAN_BATCH = 1000
DESCRIBE_KEYS = frozenset({
    "index_type", "metric_type", "field_name", "index_name", "total_rows", "indexed_rows",
    "pending_index_rows", "state", "params",
})
"""What describe_index reports besides the build params (Milvus Lite reports no build params)."""


@dataclass(frozen=True)
class IndexStatus:
    collection: str
    index_type: str
    metric: str
    params: dict[str, Any]
    rows: int
    indexed_rows: int | None
    pending_rows: int | None
    segments: list[int] | None
    search_params: dict[str, Any]
    served_segments: list[int] | None = None
    handoff_pending: int | None = None
    """Sealed segments not yet serving searches (compaction or index builds in progress)."""


@dataclass(frozen=True)
class SweepPoint:
    value: int
    recall: float
    p50_ms: float
    p95_ms: float


@dataclass
class TuneResult:
    collection: str
    param: str
    queries: int
    top_k: int
    target: float
    points: list[SweepPoint] = field(default_factory=list)
    chosen: SweepPoint | None = None


def _int_or_none(value: Any) -> int | None:
    return int(value) if value is not None else None


def index_status(store: MilvusStore, settings: Settings, collection: str) -> IndexStatus:
    """The index of one collection as the engine describes it."""
    info = store.describe_vector_index(collection)
    params = {k: v for k, v in info.items() if k not in DESCRIBE_KEYS}
    search = {**settings.search_params, **settings.collection_search_params.get(collection, {})}
    sealed, served = store.segment_rows(collection), store.segment_rows(collection, served=True)
    return IndexStatus(
        collection=collection,
        index_type=str(info.get("index_type", "?")),
        metric=str(info.get("metric_type", "?")),
        params=params,
        rows=store.count(collection),
        indexed_rows=_int_or_none(info.get("indexed_rows")),
        pending_rows=_int_or_none(info.get("pending_index_rows")),
        segments=None if sealed is None else list(sealed.values()),
        search_params=search,
        served_segments=None if served is None else list(served.values()),
        handoff_pending=None if sealed is None or served is None else len(sealed.keys() - served.keys()),
    )


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.where(norms == 0, 1, norms), dtype=np.float32)


def _scores(metric: str, queries: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Higher is closer, for every (query, row) pair."""
    if metric == "L2":
        squares = (queries**2).sum(axis=1)[:, None] + (block**2).sum(axis=1)[None, :]
        return np.asarray(2 * queries @ block.T - squares)
    if metric == "COSINE":
        return np.asarray(_unit(queries) @ _unit(block).T)
    return np.asarray(queries @ block.T)


def exact_top_k(
    rows: Callable[[], Any], queries: np.ndarray, k: int, metric: str
) -> list[set[str]]:
    """The exact top-``k`` pks of each query over every row ``rows()`` yields (pk, vector)."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float64)
    best_pks = np.empty((len(queries), 0), dtype=object)
    pks: list[str] = []
    vectors: list[Any] = []

    def merge() -> None:
        nonlocal best_scores, best_pks
        block = np.asarray(vectors, dtype=np.float32)
        scores = np.concatenate([best_scores, _scores(metric, queries, block)], axis=1)
        ids = np.concatenate([best_pks, np.tile(np.asarray(pks, dtype=object), (len(queries), 1))], axis=1)
        keep = np.argsort(-scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(scores, keep, axis=1)
        best_pks = np.take_along_axis(ids, keep, axis=1)
        pks.clear()
        vectors.clear()

    for row in rows():
        pks.append(str(row["pk"]))
        vectors.append(row["vector"])
        if len(pks) >= SCAN_BATCH:
            merge()
    if pks:
        merge()
    return [set(map(str, row)) for row in best_pks]


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else 0.0


def _measure(store: MilvusStore, collection: str, queries: np.ndarray, exact: list[set[str]],
             params: dict[str, Any]) -> tuple[float, list[float]]:
    """Recall (found true neighbours / true neighbours) and per-search milliseconds."""
    hits, wanted, times = 0, 0, []
    for query, truth in zip(queries, exact, strict=True):
        started = time.perf_counter()
        found = store.search_pks(collection, query[None, :], len(truth), params)[0]
        times.append((time.perf_counter() - started) * 1000)
        hits += len(truth & set(found))
        wanted += len(truth)
    return hits / max(wanted, 1), times


def tune(store: MilvusStore, settings: Settings, collection: str, *, queries: int = 100,
         top_k: int = 10, target: float = 0.95,
         progress: Callable[[SweepPoint], None] | None = None) -> TuneResult:
    """Sweep the index's search parameter; choose the smallest value reaching ``target`` recall."""
    status = store.describe_vector_index(collection)
    index_type = str(status.get("index_type", settings.index_type))
    if index_type not in SWEEPS:
        raise ConfigError(f"index type {index_type} of {collection} has no search parameter to tune")
    param, values = SWEEPS[index_type]
    sample = store.sample_vectors(collection, queries)
    if len(sample) == 0:
        raise ConfigError(f"collection {collection} is empty: nothing to tune on")
    exact = exact_top_k(lambda: store.iter_rows(collection, "", ["pk", "vector"]), sample, top_k,
                        settings.index_metric)
    result = TuneResult(collection, param, len(sample), top_k, target)
    base = {**settings.search_params, **settings.collection_search_params.get(collection, {})}
    for value in values:
        if param == "ef" and value < top_k:
            continue
        recall, times = _measure(store, collection, sample, exact, {**base, param: value})
        point = SweepPoint(value, recall, _pct(times, 50), _pct(times, 95))
        result.points.append(point)
        if progress:
            progress(point)
        if recall >= target:
            result.chosen = point
            break
    return result


def settings_lines(collection: str, param: str, value: int) -> tuple[str, str]:
    """The TOML line and the environment line that apply ``param = value`` to one collection."""
    toml = f"collection_search_params = {{ {collection} = {{ {param} = {value} }} }}"
    env = f'VIDSEARCH_COLLECTION_SEARCH_PARAMS={{"{collection}":{{"{param}":{value}}}}}'
    return toml, env


@dataclass
class RebuildResult:
    collection: str
    old: str
    new: str
    copied: int = 0
    caught_up: int = 0
    seconds: float = 0.0


CATCH_UP_MARGIN_MS = 10_000
"""Rows written this long before a catch-up pass starts are copied again (clock skew, Bounded reads)."""


def _copy(store: MilvusStore, source: str, target: str, filter: str) -> int:
    fields = ["pk", "vector", *SCALAR_COLUMNS]
    batch: list[dict[str, Any]] = []
    copied = 0
    for row in store.iter_rows(source, filter, fields):
        batch.append(row)
        if len(batch) >= SCAN_BATCH:
            store.upsert_columns(target, columns_from_rows(batch).unique())
            copied += len(batch)
            batch = []
    if batch:
        store.upsert_columns(target, columns_from_rows(batch).unique())
        copied += len(batch)
    return copied


def _since(ms: int) -> str:
    return at_least("ingested_at", ms - CATCH_UP_MARGIN_MS)


def rebuild(store: MilvusStore, collection: str, index_type: str, index_params: dict[str, Any],
            progress: Callable[[str], None] = lambda _m: None) -> RebuildResult:
    """Build ``collection`` again with a new index while searches keep using the old one.

    A new collection (``<name>__<unix time>``) gets the production schema and the new index; every
    row is copied into it, then the rows written meanwhile (two catch-up passes by
    ``ingested_at``), and the name is switched over: an alias switch is atomic; a collection that
    is not yet an alias (created before any rebuild) is dropped and the alias created right away,
    a gap of well under a second in which a search fails (or, racing the drop, finds nothing) and a
    write is retried later. After an alias switch, one more pass copies what reached the old
    collection just before it (a row rewritten in those seconds may keep its earlier version). The
    old collection is dropped last.
    """
    started = time.monotonic()
    target_of_alias = store.alias_target(collection)
    source = target_of_alias or collection
    new = f"{collection}__{int(time.time())}"
    result = RebuildResult(collection, source, new)
    store.create_indexed(new, store.dimension_of(source), index_type, index_params)
    progress(f"created {new} ({index_type} {index_params}); copying {source} ...")
    mark = int(time.time() * 1000)
    result.copied = _copy(store, source, new, "")
    progress(f"copied {result.copied:,} rows; catching up on writes made meanwhile ...")
    for _ in range(2):
        previous, mark = mark, int(time.time() * 1000)
        result.caught_up += _copy(store, source, new, _since(previous))
    store.flush(new)
    if target_of_alias:
        store.point_alias(collection, new, exists=True)
        result.caught_up += _copy(store, source, new, _since(mark))
    else:
        store.drop(source)
        store.point_alias(collection, new, exists=False)
    if target_of_alias:
        store.drop(source)
    result.seconds = time.monotonic() - started
    return result
