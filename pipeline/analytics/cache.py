"""The live collection's video set and what is computed from it, cached per generation.

One :class:`CorpusCache` per process (the API server's context, a CLI command, a searcher). The
collection is the live model version's (``pipeline/versions.py``; before any version exists, the
configured model's), read at every call, so a promotion or a rollback moves the cache to the new
collection. Its key is the collection with the key of ``corpus.cached_videos``: the collection's
generation (Redis ``{prefix}:gen:{collection}``, bumped by the writer after a flush that made rows
visible) and its row count, so learning whether anything changed costs a few Redis GETs and one
Milvus count.

* the **video set**: in memory for the current key, on disk as ``corpus.cached_videos`` keeps it
  (``{data_dir}/analytics/{collection}.npz``);
* **results** (clusterings, reports, plots): in memory for the current key, by name and parameters
  (``memo``, at most ``MEMO_MAX``); dropped when the key moves;
* **duplicate groups** per threshold (url -> group number, for collapsing search results): in
  memory and on disk as ``{data_dir}/analytics/{collection}.duplicates.json``, so a CLI search
  finds them computed by an earlier process.

Calls are serialized by one lock: two requests never compute the same analysis twice.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pipeline.analytics.corpus import VideoSet, cached_videos
from pipeline.clients import Clients
from pipeline.errors import AnalyticsError
from pipeline.settings import Settings
from pipeline.state.generation import current_generation

T = TypeVar("T")
Groups = dict[str, int]
MEMO_MAX = 64
"""Most results kept per key (the oldest goes first): parameters are the client's to choose."""


class CorpusCache:
    """The video set of ``settings``' model collection and analyses of it; see the module docstring."""

    def __init__(self, settings: Settings, clients: Clients) -> None:
        self._settings = settings
        self._clients = clients
        self.cache_dir = settings.data_dir / "analytics"
        self._lock = threading.RLock()
        self._key: str | None = None
        self._videos: VideoSet | None = None
        self._memo: dict[tuple[Any, ...], Any] = {}

    @property
    def collection(self) -> str:
        """The live version's collection, else the configured model's."""
        live = self._clients.versions.live()
        if live is not None:
            return live.collection
        return self._clients.store.collection_for(self._settings.model, self._settings.dimension)

    def current_key(self) -> tuple[str, str]:
        """The collection's generation and ``{collection}:{generation}:{rows}``; AnalyticsError
        when the collection does not exist."""
        store, collection = self._clients.store, self.collection
        if not store.has_collection(collection):
            s = self._settings
            raise AnalyticsError(f"collection {collection} does not exist: nothing has been "
                                 f"ingested with model {s.model} at dimension {s.dimension}")
        generation = str(current_generation(self._clients.redis, self._clients.keys, collection))
        return generation, f"{collection}:{generation}:{store.count(collection)}"

    def videos(self) -> tuple[VideoSet, bool]:
        """The video set and whether it came from a cache (memory or disk)."""
        with self._lock:
            generation = self._refresh()
            if self._videos is not None:
                return self._videos, True
            self._videos, hit = cached_videos(self._clients.store, self.collection, self.cache_dir,
                                              generation)
            return self._videos, hit

    def memo(self, name: tuple[Any, ...], compute: Callable[[VideoSet], T]) -> T:
        """``compute(videos)`` for the current key, computed once per ``name``."""
        with self._lock:
            videos, _ = self.videos()
            if name not in self._memo:
                value = compute(videos)
                while len(self._memo) >= MEMO_MAX:
                    self._memo.pop(next(iter(self._memo)))
                self._memo[name] = value
            return self._memo[name]  # type: ignore[no-any-return]

    def duplicate_groups(self, threshold: float) -> Groups:
        """URL -> group number of every video in a duplicate group at ``threshold``."""
        from pipeline.analytics import methods as analytics  # noqa: PLC0415  (faiss only when used)

        analytics.check_threshold(threshold)
        with self._lock:
            self._refresh()
            key = str(self._key)
            name = ("duplicate-groups", threshold)
            if name in self._memo:
                return self._memo[name]  # type: ignore[no-any-return]
            groups = self._load_groups(key, threshold)
            if groups is None:
                report = self.memo(("duplicates", threshold),
                                   lambda v: analytics.duplicates(v, threshold))
                groups = {url: n for n, g in enumerate(report["groups"]) for url in g["urls"]}
                self._save_groups(key, threshold, groups)
            self._memo[name] = groups
            return groups

    # --- internals ---------------------------------------------------------------------------
    def _refresh(self) -> str:
        """The current generation; everything kept for an older key is dropped."""
        generation, key = self.current_key()
        if key != self._key:
            self._key, self._videos, self._memo = key, None, {}
        return generation

    def _groups_path(self) -> Path:
        return self.cache_dir / f"{self.collection}.duplicates.json"

    def _load_groups(self, key: str, threshold: float) -> Groups | None:
        try:
            data = json.loads(self._groups_path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("key") != key:
            return None
        groups = data.get("thresholds", {}).get(repr(threshold))
        return dict(groups) if isinstance(groups, dict) else None

    def _save_groups(self, key: str, threshold: float, groups: Groups) -> None:
        path = self._groups_path()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        if not isinstance(data, dict) or data.get("key") != key:
            data = {"key": key, "thresholds": {}}
        data["thresholds"][repr(threshold)] = groups
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(path)
