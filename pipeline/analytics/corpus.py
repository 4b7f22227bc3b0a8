"""One vector per video, read from a model collection in bounded memory and cached per generation.

A video's vector is the normalized sum of its ``asset``-scope rows (one per embedding option) when
it has any, else the normalized mean of its ``clip`` rows. Reading (all through
``MilvusStore.iter_rows``, a Milvus query iterator, so memory grows with the number of videos and
never with the number of segments):

1. ``scope == "asset"`` rows with their vectors and fields: summed per item key;
2. ``scope == "clip"`` rows with ``item_key`` only: segments per video, and which videos have no
   asset row;
3. only for those, their clip rows with vectors (``item_key in [...]``, a few hundred keys a query).

The result (:class:`VideoSet`) is cached as ``{data_dir}/analytics/{collection}.npz`` with a key
made of the collection's generation (Redis ``{prefix}:gen:{collection}``, bumped by the writer
after a flush that made rows visible; read as ``0`` when absent) and its row count, so a repeated
command reads nothing but that count from Milvus until new rows land. Without a writer that bumps
the generation, only the row count moves the key: a forced re-embed that replaces rows in place is
then not seen until the count changes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.milvus.filters import all_of, equals, one_of
from pipeline.milvus.store import MilvusStore

Matrix = npt.NDArray[np.float32]
BATCH_ROWS = 4000
KEYS_PER_QUERY = 200
META_FIELDS = ("item_key", "url", "title", "category", "ingested_at")
CACHE_VERSION = 1


@dataclass
class VideoSet:
    """Videos of one collection: parallel lists and arrays, sorted by item key."""

    keys: list[str]
    urls: list[str]
    titles: list[str]
    categories: list[str]
    ingested_ms: npt.NDArray[np.int64]
    segments: npt.NDArray[np.int64]
    vectors: Matrix

    def __len__(self) -> int:
        return len(self.keys)

    def subset(self, mask: npt.NDArray[np.bool_]) -> VideoSet:
        """The videos where ``mask`` is true."""
        idx = np.flatnonzero(mask)
        return VideoSet(
            keys=[self.keys[i] for i in idx], urls=[self.urls[i] for i in idx],
            titles=[self.titles[i] for i in idx], categories=[self.categories[i] for i in idx],
            ingested_ms=self.ingested_ms[idx], segments=self.segments[idx], vectors=self.vectors[idx],
        )


class _Accumulator:
    """Vector sums and fields per item key."""

    def __init__(self) -> None:
        self.sums: dict[str, Matrix] = {}
        self.meta: dict[str, dict[str, Any]] = {}

    def add(self, row: dict[str, Any]) -> None:
        key = row["item_key"]
        vector = np.asarray(row["vector"], dtype=np.float32)
        if key in self.sums:
            self.sums[key] += vector
            seen = self.meta[key]
            seen["ingested_at"] = min(seen["ingested_at"], int(row["ingested_at"]))
        else:
            self.sums[key] = vector
            self.meta[key] = {f: row[f] for f in META_FIELDS}


def _normalized(sums: dict[str, Matrix], order: Sequence[str], dimension: int) -> Matrix:
    """Unit rows of ``sums`` in ``order``, each sum dropped once copied (one copy in memory)."""
    matrix = np.empty((len(order), dimension), dtype=np.float32)
    for i, key in enumerate(order):
        matrix[i] = sums.pop(key)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def read_videos(store: MilvusStore, collection: str) -> VideoSet:
    """Every video of ``collection`` (empty when it has no rows); the three passes above."""
    dimension = store.dimension_of(collection)
    fields = [*META_FIELDS, "vector"]
    acc = _Accumulator()
    for row in store.iter_rows(collection, equals("scope", "asset"), fields, BATCH_ROWS):
        acc.add(row)
    segments: dict[str, int] = {}
    for row in store.iter_rows(collection, equals("scope", "clip"), ["item_key"], BATCH_ROWS):
        segments[row["item_key"]] = segments.get(row["item_key"], 0) + 1
    clip_only = sorted(set(segments) - set(acc.sums))
    for keys in _chunks(clip_only, KEYS_PER_QUERY):
        expr = all_of(equals("scope", "clip"), one_of("item_key", keys))
        for row in store.iter_rows(collection, expr, fields, BATCH_ROWS):
            acc.add(row)
    order = sorted(acc.sums)
    meta = [acc.meta[k] for k in order]
    return VideoSet(
        keys=order, urls=[m["url"] for m in meta], titles=[m["title"] or "" for m in meta],
        categories=[m["category"] for m in meta],
        ingested_ms=np.array([int(m["ingested_at"]) for m in meta], dtype=np.int64),
        segments=np.array([segments.get(k, 0) for k in order], dtype=np.int64),
        vectors=_normalized(acc.sums, order, dimension),
    )


# --- cache -----------------------------------------------------------------------------------------
def cache_path(cache_dir: Path, collection: str) -> Path:
    """Where the video set of ``collection`` is cached."""
    return cache_dir / f"{collection}.npz"


def save(videos: VideoSet, path: Path, key: str) -> None:
    """Write ``videos`` with its cache ``key`` (atomically: a temp file renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    strings = json.dumps({"key": key, "version": CACHE_VERSION, "keys": videos.keys,
                          "urls": videos.urls, "titles": videos.titles,
                          "categories": videos.categories})
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")  # concurrent writers never share a temp file
    np.savez(tmp, strings=np.array(strings), ingested_ms=videos.ingested_ms,
             segments=videos.segments, vectors=videos.vectors)
    tmp.replace(path)


def load(path: Path, key: str) -> VideoSet | None:
    """The cached video set at ``path`` when its key is ``key``, else None."""
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            strings = json.loads(str(data["strings"]))
            if strings.get("key") != key or strings.get("version") != CACHE_VERSION:
                return None
            return VideoSet(keys=strings["keys"], urls=strings["urls"], titles=strings["titles"],
                            categories=strings["categories"], ingested_ms=data["ingested_ms"],
                            segments=data["segments"], vectors=data["vectors"])
    except (OSError, ValueError, KeyError):
        return None  # a damaged or foreign file is rebuilt


def cached_videos(
    store: MilvusStore, collection: str, cache_dir: Path, generation: str,
    read: Callable[[MilvusStore, str], VideoSet] = read_videos,
) -> tuple[VideoSet, bool]:
    """The video set of ``collection`` and whether it came from the cache."""
    key = f"{generation}:{store.count(collection)}"
    path = cache_path(cache_dir, collection)
    videos = load(path, key)
    if videos is not None:
        return videos, True
    videos = read(store, collection)
    save(videos, path, key)
    return videos, False
