"""Text search: query embedding (cached in Redis) -> Milvus search -> best segment per video.

The query text is normalized (trimmed, whitespace collapsed, lower-cased) before it is embedded and
before it is hashed for the cache key ``{prefix}:qcache:{model}:{dim}:{sha256[:32]}``, which holds
the packed float32 embedding for ``query_cache_ttl_s`` (0 turns the cache off). A cache hit makes
no embed call; ``Searcher.cache_hits`` / ``cache_misses`` / ``last_cache_hit`` show what happened.

The collection searched is the one of ``settings.model`` at ``settings.dimension``. When it does
not exist yet (nothing ingested) the search returns no hits rather than raising.

By default hits are videos: Milvus is asked for ``top_k * CANDIDATES_PER_VIDEO`` segments (widened
while too few distinct videos come back and more could exist) and the best segment of each URL is
kept, ``top_k`` videos in score order. ``segments=True`` returns the raw top ``top_k`` segments.
Only ``clip``-scope segments are searched (the ``asset`` scope is one vector per whole video).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis

from pipeline.keys import Keys
from pipeline.segments import pack_vector, unpack_vector
from pipeline.settings import Settings
from pipeline.store import MAX_SEARCH_LIMIT, DimensionMismatchError, MilvusStore, SegmentHit

if TYPE_CHECKING:
    Redis = redis.Redis[bytes]
else:
    Redis = redis.Redis

CANDIDATES_PER_VIDEO = 8
SEARCH_SCOPE = "clip"


@dataclass(frozen=True, slots=True)
class Hit:
    """One result: a video (its best segment) or a segment, with its similarity score."""

    url: str
    title: str
    category: str
    start_s: float
    end_s: float
    score: float
    option: str
    scope: str


def normalize_query(text: str) -> str:
    """Trimmed, whitespace collapsed to single spaces, lower-cased."""
    return " ".join(text.split()).lower()


def query_digest(text: str) -> str:
    """The cache digest of an already normalized query."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def best_per_video(hits: Sequence[SegmentHit], top_k: int) -> list[SegmentHit]:
    """The best-scoring hit of each URL, best first, at most ``top_k``."""
    best: dict[str, SegmentHit] = {}
    for hit in sorted(hits, key=lambda h: h.score, reverse=True):
        if hit.url not in best:
            best[hit.url] = hit
            if len(best) == top_k:
                break
    return list(best.values())


def _to_hit(hit: SegmentHit) -> Hit:
    return Hit(
        url=hit.url, title=hit.title, category=hit.category, start_s=hit.start_s,
        end_s=hit.end_s, score=hit.score, option=hit.option, scope=hit.scope,
    )


class Searcher:
    """Searches the configured model's collection with cached query embeddings."""

    def __init__(
        self,
        settings: Settings,
        redis_client: Redis,
        store: MilvusStore,
        embed_text: Callable[[str], list[float]],
    ) -> None:
        self._settings = settings
        self._redis = redis_client
        self._store = store
        self._embed_text = embed_text
        self._keys = Keys(settings.redis_prefix)
        self.collection = store.collection_for(settings.model, settings.dimension)
        self.cache_hits = 0
        self.cache_misses = 0
        self.last_cache_hit = False

    def embed_query(self, text: str) -> list[float]:
        """The embedding of the normalized ``text``, from the cache when present."""
        query = normalize_query(text)
        if not query:
            raise ValueError("empty search query")
        settings = self._settings
        key = self._keys.qcache(settings.model, settings.dimension, query_digest(query))
        cached = self._redis.get(key) if settings.query_cache_ttl_s else None
        self.last_cache_hit = cached is not None
        if cached is not None:
            self.cache_hits += 1
            return unpack_vector(cached)
        self.cache_misses += 1
        vector = [float(v) for v in self._embed_text(query)]
        if len(vector) != settings.dimension:
            raise DimensionMismatchError(
                f"query embedding has dimension {len(vector)}, "
                f"collection {self.collection} has vector dimension {settings.dimension}"
            )
        if settings.query_cache_ttl_s:
            self._redis.set(key, pack_vector(vector), ex=settings.query_cache_ttl_s)
        return vector

    def search(
        self,
        text: str,
        *,
        categories: Sequence[str] = (),
        top_k: int = 10,
        option: str | None = None,
        segments: bool = False,
    ) -> list[Hit]:
        """Best ``top_k`` videos (or segments) for ``text``, best first."""
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        vector = self.embed_query(text)
        if not self._store.has_collection(self.collection):
            return []
        if segments:
            raw = self._query(vector, categories, option, top_k)
            return [_to_hit(h) for h in raw[:top_k]]
        return [_to_hit(h) for h in self._videos(vector, categories, option, top_k)]

    def _query(
        self, vector: list[float], categories: Sequence[str], option: str | None, limit: int
    ) -> list[SegmentHit]:
        return self._store.search(
            self.collection, vector, categories=categories, option=option,
            scope=SEARCH_SCOPE, limit=limit,
        )

    def _videos(
        self, vector: list[float], categories: Sequence[str], option: str | None, top_k: int
    ) -> list[SegmentHit]:
        limit = min(top_k * CANDIDATES_PER_VIDEO, MAX_SEARCH_LIMIT)
        while True:
            raw = self._query(vector, categories, option, limit)
            best = best_per_video(raw, top_k)
            exhausted = len(raw) < limit or limit >= MAX_SEARCH_LIMIT
            if len(best) >= top_k or exhausted:
                return best
            limit = min(limit * 4, MAX_SEARCH_LIMIT)
