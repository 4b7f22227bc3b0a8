"""Whole search results cached in Redis, retired by the collection's generation.

The writer bumps the collection's generation (``pipeline/state/generation.py``, Redis
``{prefix}:gen:{collection}``) after every flush that made new rows visible. A result is stored
under ``{prefix}:rcache:{collection}:{generation}:{digest}``, where the digest covers the
normalized query (every part, weight, filter, top-k and moment setting) and the settings that
shape results (model, dimension, options, fusion, moment tolerance). A search reads the
generation first and looks the result up under it: after an ingest the generation has moved on,
so the stale entry is never read again (it expires by TTL or is evicted by size).

``result_cache_ttl_s`` bounds an entry's life (0 turns the cache off); ``result_cache_max_entries``
bounds how many are kept: a sorted set ``{prefix}:rcache:index`` orders entries by store time and
the oldest are deleted past the bound. A hit costs two Redis reads, plus the searcher's check that
the collection is still the one the entries were made from (one Milvus describe and one Redis
GETSET: a Milvus that lost its data retires the cache, ``state/generation.py``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import redis

from pipeline.search.results import VideoHit, hits_from_json
from pipeline.state.generation import current_generation
from pipeline.state.keys import Keys

if TYPE_CHECKING:
    Redis = redis.Redis[bytes]
else:
    Redis = redis.Redis


def digest(material: Mapping[str, Any]) -> str:
    """A stable digest of JSON-ready key material."""
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class ResultCache:
    """Get and put search results of one collection."""

    def __init__(self, client: Redis, keys: Keys, ttl_s: int, max_entries: int) -> None:
        self._redis = client
        self._keys = keys
        self.ttl_s = ttl_s
        self.max_entries = max_entries

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0 and self.max_entries > 0

    def generation(self, collection: str) -> int:
        return current_generation(self._redis, self._keys, collection)

    def key(self, collection: str, material: Mapping[str, Any]) -> str:
        """The entry key of ``material`` under the collection's current generation."""
        return self._keys.rcache(collection, self.generation(collection), digest(material))

    def get(self, key: str) -> list[VideoHit] | None:
        raw = self._redis.get(key)
        if raw is None:
            return None
        return hits_from_json(json.loads(raw))

    def put(self, key: str, rows: list[dict[str, Any]]) -> None:
        """Store one result and evict the oldest entries beyond the size bound."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(key, json.dumps(rows, separators=(",", ":")), ex=self.ttl_s)
        pipe.zadd(self._keys.rcache_index, {key: time.time()})
        pipe.zcard(self._keys.rcache_index)
        size = int(pipe.execute()[-1])
        if size > self.max_entries:
            oldest = self._redis.zpopmin(self._keys.rcache_index, size - self.max_entries)
            if oldest:
                self._redis.delete(*[member for member, _ in oldest])
