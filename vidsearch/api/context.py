"""What the app's handlers share: settings, the process's clients, the key ring, per-key buckets.

Built once per server process (``ApiContext.from_settings``) and kept in ``app.state.ctx``.
Clients come from ``pipeline/clients.py``; redis-py and pymilvus clients are thread-safe, so the
thread-pool handlers share them. The searcher and the corpus cache (analytics) are built on first
use under a lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from pipeline.clients import Clients
from pipeline.settings import Settings
from pipeline.state.quota import Quota
from vidsearch.api.keys import KeyRing
from vidsearch.api.posters import Poster


@dataclass
class ApiContext:
    settings: Settings
    clients: Clients
    keyring: KeyRing
    _buckets: dict[str, Quota] = field(default_factory=dict)
    _searcher: Any = None
    _corpus: Any = None
    _posters: Poster | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiContext:
        return cls(settings, Clients.from_settings(settings), KeyRing.from_entries(settings.api_keys))

    def bucket(self, key_name: str) -> Quota:
        """The request token bucket of one API key (shared by every server through Redis)."""
        bucket = self._buckets.get(key_name)
        if bucket is None:
            s = self.settings
            bucket = Quota(self.clients.redis, self.clients.keys.api_rate(key_name),
                           s.api_rate_per_min, s.api_rate_burst)
            self._buckets[key_name] = bucket
        return bucket

    def searcher(self) -> Any:
        corpus = self.corpus()
        with self._lock:
            if self._searcher is None:
                from pipeline.search.searcher import build_searcher  # noqa: PLC0415  (pymilvus loads slowly)

                self._searcher = build_searcher(self.settings, self.clients, corpus)
            return self._searcher

    def corpus(self) -> Any:
        """The process's ``CorpusCache``: the video set, analytics results and duplicate groups,
        shared by the analytics routes and the search's duplicate collapsing."""
        with self._lock:
            if self._corpus is None:
                from pipeline.analytics.cache import CorpusCache  # noqa: PLC0415

                self._corpus = CorpusCache(self.settings, self.clients)
            return self._corpus

    def posters(self) -> Poster:
        """The process's poster cutter (its cache directory, limits and fetch slots)."""
        with self._lock:
            if self._posters is None:
                self._posters = Poster(self.settings)
            return self._posters

    def warm(self) -> None:
        """Build the clients before the first request (a lazy build is not thread-safe)."""
        with self._lock:
            c = self.clients
            _ = (c.redis, c.keys, c.jobs, c.store, c.gateway)

    def close(self) -> None:
        self.clients.close()
