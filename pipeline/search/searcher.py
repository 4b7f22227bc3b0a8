"""Search: a :class:`Query` in, videos with their best moments out (``Searcher.search``).

1. **Result cache** (``result_cache.py``): the whole result, keyed by the normalized query and the
   collection's generation. A hit makes no embed call and no search; a check (at most once a
   second per searcher) that the collection is the one the cache was filled from (a Milvus that lost its data
   retires the cache: ``state/generation.py``).
2. **Parts.** Each part (text, clip, image, text_image) is embedded once through the sync endpoint
   and its vector cached in ``{prefix}:qcache:{model}:{dim}:{digest}`` for ``query_cache_ttl_s``
   (the digest covers the part's kind and content; text is normalized first). ``--like`` takes
   the vector of an ingested video instead (its asset rows, unless they span more than
   ``asset_scope_max_duration_s``; else the mean of its clip rows, or
   the clip row at ``like_at_s``) and excludes that video.
3. **Candidate videos**, per part: a grouping search (``group_by_field=url``) where the server
   has it (``MilvusStore.capabilities``), else rounds of a kNN over segments, each excluding the
   videos found before, until enough distinct videos come back.
4. **Profiles**: each candidate video's nearest clip rows to every part, at most
   ``moment_window_segments`` per option and video whatever the video's length (per part, one
   grouping search per option, ``group_size`` = that many rows, where the server groups; else,
   and for a video an option's grouped answer left out, one search per video; Milvus
   ``hybrid_search`` with a WeightedRanker or RRFRanker per option, over the same number of rows
   in all, when ``search_fusion`` asks for it and the server has it). So a search reads the same
   number of rows for a 4-hour video as for a 5-minute one. These searches are exact
   (``MilvusStore.search_where(exact=True)``): their filter is selective, and Milvus Lite's HNSW
   walk with the configured ``ef`` misses most rows such a filter matches once the background
   build after a flush has indexed a segment (a video whose best rows were missed had their
   scores imputed and lost its rank).
5. **Fusion** (``fusion.py``): per segment, modality weights over its option rows, then part
   weights. **Moments** (``moments.py``): close-to-best adjacent segments stitched; videos are
   ranked by their best moment (or best segment without moments).

6. **Collapsing duplicates** (``collapse_duplicates``, default the ``search_collapse_duplicates``
   setting): each hit's video is looked up in the duplicate groups at ``duplicate_threshold``
   (``CorpusCache.duplicate_groups``: computed once per collection generation, kept in memory and
   on disk) and only the best-ranked video of a group is kept (with ``segments``, only that
   video's segments). Twice the candidates are profiled so that ``top_k`` hits remain.

``segments=True`` returns the top fused segments instead of videos. When the collection does not
exist yet the search returns no hits. Only ``clip``-scope rows are searched.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import redis

from pipeline.analytics.cache import CorpusCache
from pipeline.clients import Clients
from pipeline.errors import DimensionMismatchError, QueryError, StoreUnavailableError
from pipeline.milvus.capabilities import MAX_GROUP_SIZE, MAX_SEARCH_LIMIT
from pipeline.milvus.filters import Filter
from pipeline.milvus.rows import SegmentHit
from pipeline.milvus.store import MilvusStore
from pipeline.search.fusion import PartScores, SegmentKey, fuse
from pipeline.search.moments import ScoredSegment, best_segment, stitch
from pipeline.search.query import MIN_SCORE_LOWEST, Query, QueryPart, normalize_text
from pipeline.search.result_cache import ResultCache
from pipeline.search.results import SearchResult, VideoHit, apply_floor, result_to_json
from pipeline.segments import pack_vector, unpack_vector
from pipeline.settings import Settings
from pipeline.state.generation import retire_if_changed
from pipeline.state.keys import Keys
from pipeline.versions import Version

if TYPE_CHECKING:
    Redis = redis.Redis[bytes]
else:
    Redis = redis.Redis

CANDIDATES_PER_VIDEO = 8
"""Segments asked per wanted video when the server cannot group by video."""
IDENTITY_CHECK_S = 1.0
"""How often a searcher checks that its collection is the one the result cache was filled from
(two Milvus calls: ``MilvusStore.collection_identity``)."""
EXTRA_CANDIDATE_VIDEOS = 5
"""Videos profiled beyond ``top_k`` per part (fusion and moments can re-rank them)."""
PROFILE_FIELDS = ("url", "start_s", "end_s", "option")
SEARCH_SCOPE = "clip"

Embed = Callable[[QueryPart], list[float]]
DuplicateGroups = Callable[[float], dict[str, int]]
"""Threshold -> URL -> duplicate group number (``CorpusCache.duplicate_groups``)."""
normalize_query = normalize_text


def part_digest(part: QueryPart) -> str:
    """The embedding cache digest of a query part (kind and content)."""
    return hashlib.sha256(part.cache_material().encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class _Part:
    kind: str
    weight: float
    vector: list[float]


@dataclass
class _Video:
    url: str
    title: str
    category: str
    option: str
    segments: list[ScoredSegment]


class Searcher:
    """Searches the configured model's collection; see the module docstring."""

    def __init__(self, settings: Settings, redis_client: Redis, store: MilvusStore, embed: Embed,
                 version: Version | None = None, *,
                 duplicate_groups: DuplicateGroups | None = None) -> None:
        """``version``: search that model version (its alias, model, dimension and options);
        ``duplicate_groups``: what collapsing duplicates uses."""
        if version is not None:
            settings = version.settings_for(settings)
        self._settings = settings
        self._duplicate_groups = duplicate_groups
        self._redis = redis_client
        self._store = store
        self._embed = embed
        self._keys = Keys(settings.redis_prefix)
        self.collection = store.collection_for(settings.model, settings.dimension)
        self.version = version.id if version else ""
        self._written = self.collection  # the collection the writer flushes (its generation)
        if version is not None:
            self.collection, self._written = version.alias, version.collection
        self.results = ResultCache(redis_client, self._keys, settings.result_cache_ttl_s,
                                   settings.result_cache_max_entries)
        self.cache_hits = 0
        self.cache_misses = 0
        self.last_cache_hit = False
        self._identity_checked_at = float("-inf")

    # --- the search --------------------------------------------------------------------------
    def search(self, query: Query) -> SearchResult:
        """The best ``query.top_k`` videos (or segments) for ``query`` that clear the floor
        (``query.min_score``, else the ``search_min_score`` setting), best first."""
        return apply_floor(self._unfloored(query), self._floor(query))

    def _floor(self, query: Query) -> float:
        if query.min_score is not None:
            return query.min_score
        return MIN_SCORE_LOWEST if self._ranks_only(query) else self._settings.search_min_score

    def _ranks_only(self, query: Query) -> bool:
        """A query whose parts Milvus fuses with RRFRanker scores ranks (at most about 2/61), not
        similarities: the default relevance floor, a similarity, would hide every hit."""
        if self._settings.search_fusion != "rrf" or query.like_url:
            return False
        weighted = [p for p in query.parts() if query.part_weight(p.kind) > 0]
        return len(weighted) > 1 and self._store.capabilities().hybrid

    def _unfloored(self, query: Query) -> SearchResult:
        key = self._cache_key(query)
        if key is not None:
            cached = self.results.get(key)
            if cached is not None:
                return SearchResult(cached, cached=True)
        result = SearchResult(self._compute(query))
        if key is not None:
            self.results.put(key, result_to_json(result))
        return result

    def cached(self, query: Query) -> SearchResult | None:
        """The result cache's answer to ``query`` past the floor, as ``search`` gives it, or None
        (no embed call, no Milvus call)."""
        key = self._cache_key(query)
        if key is None:
            return None
        hits = self.results.get(key)
        return apply_floor(SearchResult(hits, cached=True), self._floor(query)) if hits is not None else None

    def _cache_key(self, query: Query) -> str | None:
        """The result cache key of ``query`` (None when the cache is off), after retiring the
        cache of a collection that is not the one its entries were made from."""
        if not self.results.enabled:
            return None
        self._retire_if_replaced()
        return self.results.key(self._written, self._cache_material(query))

    def _retire_if_replaced(self) -> None:
        """Bump the generation when the collection's identity changed (Milvus lost its data, the
        collection was dropped or restored): see ``pipeline/state/generation.py``. A Milvus
        that does not answer leaves the cache as it is (cached answers outlive an outage). At
        most once per ``IDENTITY_CHECK_S`` per searcher (a server answering many hits a second)."""
        now = time.monotonic()
        if now - self._identity_checked_at < IDENTITY_CHECK_S:
            return
        self._identity_checked_at = now
        try:
            identity = self._store.collection_identity(self.collection)
        except StoreUnavailableError:
            return
        retire_if_changed(self._redis, self._keys, self._written, identity)

    def _cache_material(self, query: Query) -> dict[str, Any]:
        s = self._settings
        return {"query": query.canonical(), "collection": self.collection, "version": self.version,
                "model": s.model,
                "dimension": s.dimension, "options": sorted(s.embedding_options),
                "fusion": s.search_fusion, "tolerance": s.moment_tolerance,
                "window": s.moment_window_segments,
                "metric": s.index_metric,
                "collapse": s.duplicate_threshold if self._collapses(query) else None}

    def _collapses(self, query: Query) -> bool:
        wanted = query.collapse_duplicates
        wanted = self._settings.search_collapse_duplicates if wanted is None else wanted
        return wanted and self._duplicate_groups is not None

    def _compute(self, query: Query) -> list[VideoHit]:
        parts = self._parts(query)  # embeds (or raises on bad input) even before anything exists
        if not self._store.has_collection(self.collection):
            return []
        modalities = query.modalities(tuple(self._settings.embedding_options))
        where = Filter(categories=query.categories, options=tuple(modalities), scope=SEARCH_SCOPE,
                       exclude_urls=(query.like_url,) if query.like_url else ())
        wanted = query.top_k if not query.segments else max(1, query.top_k // 2)
        collapse = self._collapses(query)
        found = self._candidates(parts, where, wanted * (2 if collapse else 1) + EXTRA_CANDIDATE_VIDEOS)
        if not found:
            return []
        videos = self._profiles(parts, modalities, where, found)
        hits = _top_segments(videos) if query.segments else self._rank(videos, query)
        if collapse and self._duplicate_groups is not None:
            hits = collapse_groups(hits, self._duplicate_groups(self._settings.duplicate_threshold))
        return hits[: query.top_k]

    # --- parts -------------------------------------------------------------------------------
    def _parts(self, query: Query) -> list[_Part]:
        if query.like_url:
            return [_Part("like", 1.0, self._like_vector(query))]
        return [_Part(p.kind, query.part_weight(p.kind), self.embed_part(p))
                for p in query.parts() if query.part_weight(p.kind) > 0]

    def embed_query(self, text: str) -> list[float]:
        """The embedding of the normalized ``text`` (cached)."""
        normalized = normalize_text(text)
        if not normalized:
            raise QueryError("empty search query")
        return self.embed_part(QueryPart("text", text=normalized))

    def embed_part(self, part: QueryPart) -> list[float]:
        """The embedding of one query part, from the cache when present."""
        settings = self._settings
        key = self._keys.qcache(settings.model, settings.dimension, part_digest(part), self.version)
        cached = self._redis.get(key) if settings.query_cache_ttl_s else None
        self.last_cache_hit = cached is not None
        if cached is not None:
            self.cache_hits += 1
            return unpack_vector(cached)
        self.cache_misses += 1
        vector = [float(v) for v in self._embed(part)]
        if len(vector) != settings.dimension:
            raise DimensionMismatchError(
                f"query embedding has dimension {len(vector)}, "
                f"collection {self.collection} has vector dimension {settings.dimension}"
            )
        if settings.query_cache_ttl_s:
            self._redis.set(key, pack_vector(vector), ex=settings.query_cache_ttl_s)
        return vector

    def _like_vector(self, query: Query) -> list[float]:
        url = query.like_url or ""
        if not self._store.has_collection(self.collection):
            raise QueryError(f"--like {url}: that video is not ingested")
        options = tuple(query.modalities(tuple(self._settings.embedding_options)))
        rows: list[dict[str, Any]] = []
        if query.like_at_s is None:
            rows = self._store.vectors_where(self.collection, Filter(options=options, scope="asset",
                                                                      urls=(url,)))
            rows = [] if _long(rows, self._settings.asset_scope_max_duration_s) else rows
        if not rows:
            rows = self._store.vectors_where(self.collection, Filter(options=options, scope="clip",
                                                                      urls=(url,)))
        if not rows:
            raise QueryError(f"--like {url}: that video is not ingested")
        if query.like_at_s is not None:
            rows = _rows_at(rows, query.like_at_s)
            if not rows:
                raise QueryError(f"--like {url} --at {query.like_at_s:g}: no segment at that time")
        return _mean_vector([r["vector"] for r in rows])

    # --- candidates and profiles -------------------------------------------------------------
    def _candidates(
        self, parts: Sequence[_Part], where: Filter, videos: int
    ) -> dict[str, SegmentHit]:
        """Up to ``videos`` videos per part (url -> a row of it), ranked by their part-weighted
        best scores (a part that missed a video counts its lowest score), at most 1.5 x ``videos``.
        """
        grouping = self._store.capabilities().grouping
        tables = [PartScores(p.weight) for p in parts]
        rows: dict[str, SegmentHit] = {}
        for part, table in zip(parts, tables, strict=True):
            hits = (self._grouped(part.vector, where, videos) if grouping
                    else self._widened(part.vector, where, videos))
            for hit in hits:
                rows.setdefault(hit.url, hit)
                table.add((hit.url, 0.0, 0.0), "best", hit.score)
        merged = fuse(tables, {"best": 1.0})
        ranked = sorted(merged, key=lambda k: merged[k], reverse=True)
        cap = videos if len(parts) == 1 else videos + videos // 2
        return {key[0]: rows[key[0]] for key in ranked[:cap]}

    def _grouped(self, vector: list[float], where: Filter, videos: int) -> list[SegmentHit]:
        return self._store.search_where(self.collection, vector, where, limit=videos, group_by_url=1)

    def _widened(self, vector: list[float], where: Filter, videos: int) -> list[SegmentHit]:
        """Plain kNN rounds over segments, each excluding the videos found before, until ``videos``
        distinct videos (or no more rows): at most ``videos`` rounds of a fixed size, however many
        of one long video's segments outrank every other video's."""
        limit = min(videos * CANDIDATES_PER_VIDEO * max(1, len(where.options)), MAX_SEARCH_LIMIT)
        hits: list[SegmentHit] = []
        found: set[str] = set()
        while len(found) < videos:
            unseen = replace(where, exclude_urls=(*where.exclude_urls, *sorted(found)))
            raw = self._store.search_where(self.collection, vector, unseen, limit=limit)
            hits += raw
            found.update(h.url for h in raw)
            if len(raw) < limit:
                break
        return hits

    def _profiles(
        self, parts: Sequence[_Part], modalities: dict[str, float], where: Filter,
        found: dict[str, SegmentHit],
    ) -> dict[str, _Video]:
        """The nearest clip rows of the ``found`` videos to every part, fused per segment."""
        scoped = Filter(categories=where.categories, options=where.options, scope=SEARCH_SCOPE,
                        urls=tuple(found))
        window = min(self._settings.moment_window_segments, MAX_GROUP_SIZE)
        fusion = self._settings.search_fusion
        if len(parts) > 1 and fusion != "client" and self._store.capabilities().hybrid:
            limit = min(window * len(modalities) * len(found), MAX_SEARCH_LIMIT)
            scores = self._hybrid_scores(parts, scoped, modalities, limit, fusion)
        else:
            scores = self._client_scores(parts, scoped, window)
        return _videos(fuse(scores, modalities), found, modalities)

    def _client_scores(self, parts: Sequence[_Part], where: Filter, window: int
                       ) -> list[PartScores]:
        tables: list[PartScores] = []
        for part in parts:
            table = PartScores(part.weight)
            for hit in self._nearest_rows(part.vector, where, window):
                table.add(_key(hit), hit.option, hit.score)
            tables.append(table)
        return tables

    def _nearest_rows(self, vector: list[float], where: Filter, window: int) -> list[SegmentHit]:
        """Each of ``where.urls``' ``window`` rows per option nearest to ``vector``: one grouping
        search per option where the server groups (a video that option's answer left out, and
        every video where the server cannot group, gets a search of its own: a plain kNN over all
        of them would let one video's rows crowd out another's). Exact searches (``exact``):
        the filter is selective, and Milvus Lite's HNSW walk with its default ``ef`` misses most
        of the rows it matches (the missing scores were imputed: a video lost its rank)."""
        if not self._store.capabilities().grouping or not where.options:
            return self._per_video(vector, where, where.urls, window * max(1, len(where.options)))
        hits: list[SegmentHit] = []
        for option in where.options:
            one = replace(where, options=(option,))
            grouped = self._store.search_where(self.collection, vector, one, limit=len(one.urls),
                                               group_by_url=window, fields=PROFILE_FIELDS,
                                               exact=True)
            seen = {h.url for h in grouped}
            hits += grouped + self._per_video(vector, one, [u for u in one.urls if u not in seen],
                                              window)
        return hits

    def _per_video(self, vector: list[float], where: Filter, urls: Sequence[str], limit: int
                   ) -> list[SegmentHit]:
        hits: list[SegmentHit] = []
        for url in urls:
            hits += self._store.search_where(self.collection, vector, replace(where, urls=(url,)),
                                             limit=limit, fields=PROFILE_FIELDS, exact=True)
        return hits

    def _hybrid_scores(
        self, parts: Sequence[_Part], where: Filter, modalities: dict[str, float], limit: int,
        ranker: str,
    ) -> list[PartScores]:
        """Parts fused by Milvus (one hybrid search per option); options fused client-side."""
        table = PartScores(1.0)
        total = sum(p.weight for p in parts)
        weights = [p.weight / total for p in parts]
        for option in modalities:
            one = Filter(categories=where.categories, options=(option,), scope=where.scope,
                         urls=where.urls)
            hits = self._store.hybrid_search(self.collection, [p.vector for p in parts], weights,
                                             one, ranker=ranker, limit=limit, fields=PROFILE_FIELDS,
                                             exact=True)
            for hit in hits:
                table.add(_key(hit), hit.option, hit.score)
        return [table]

    # --- ranking -----------------------------------------------------------------------------
    def _rank(self, videos: dict[str, _Video], query: Query) -> list[VideoHit]:
        hits: list[VideoHit] = []
        tolerance = self._settings.moment_tolerance
        window = self._settings.moment_window_segments
        for video in videos.values():
            if query.moments:
                moments = stitch(video.segments, tolerance, query.max_moments, window)
                top = moments[0]
                start, end, score = top.start_s, top.end_s, top.score
            else:
                moments = []
                seg = best_segment(video.segments)
                start, end, score = seg.start_s, seg.end_s, seg.score
            hits.append(VideoHit(url=video.url, title=video.title, category=video.category,
                                 score=score, start_s=start, end_s=end, moments=moments,
                                 option=video.option))
        hits.sort(key=lambda h: (-h.score, h.url))
        return hits


def _key(hit: SegmentHit) -> SegmentKey:
    return (hit.url, round(hit.start_s, 3), round(hit.end_s, 3))


def _videos(
    fused: dict[SegmentKey, float], meta: dict[str, SegmentHit], modalities: dict[str, float]
) -> dict[str, _Video]:
    option = "+".join(modalities)
    videos: dict[str, _Video] = {}
    for (url, start, end), score in fused.items():
        video = videos.get(url)
        if video is None:
            first = meta[url]
            video = videos[url] = _Video(url, first.title, first.category, option, [])
        video.segments.append(ScoredSegment(start, end, score))
    return videos


def collapse_groups(hits: list[VideoHit], groups: dict[str, int]) -> list[VideoHit]:
    """``hits`` (best first) without the videos of a duplicate group other than its best-ranked
    one (that video's further hits, e.g. segments, stay)."""
    kept: dict[int, str] = {}
    out: list[VideoHit] = []
    for hit in hits:
        group = groups.get(hit.url)
        if group is None or kept.setdefault(group, hit.url) == hit.url:
            out.append(hit)
    return out


def _top_segments(videos: dict[str, _Video]) -> list[VideoHit]:
    rows = [
        VideoHit(url=v.url, title=v.title, category=v.category, score=s.score, start_s=s.start_s,
                 end_s=s.end_s, option=v.option)
        for v in videos.values() for s in v.segments
    ]
    rows.sort(key=lambda h: (-h.score, h.url, h.start_s))
    return rows


def _rows_at(rows: list[dict[str, Any]], at_s: float) -> list[dict[str, Any]]:
    return [r for r in rows if float(r["start_s"]) <= at_s < float(r["end_s"])]


def _long(asset_rows: list[dict[str, Any]], max_s: float) -> bool:
    """Whether the video of ``asset_rows`` is longer than the asset scope suits (``max_s``; 0:
    never): "more like this" then uses the mean of its clips, which a long video's single whole
    vector summarises poorly."""
    return bool(max_s) and any(float(r["end_s"]) - float(r["start_s"]) > max_s for r in asset_rows)


def _mean_vector(vectors: Sequence[Any]) -> list[float]:
    stacked = np.asarray([np.asarray(v, dtype=np.float64) for v in vectors])
    mean = stacked.mean(axis=0)
    norm = float(np.linalg.norm(mean)) or 1.0
    return [float(x) for x in mean / norm]


class LiveSearcher:
    """Searches the live model version, read from Redis at every search (one GET and one HGET):
    a promotion or a rollback takes effect at the next search, with the query embedded by the
    version's own model. Before any version exists it searches as the settings say."""

    def __init__(self, settings: Settings, clients: Clients, corpus: CorpusCache | None = None) -> None:
        self._settings = settings
        self._clients = clients
        self._corpus = corpus or CorpusCache(settings, clients)
        self._store = clients.store
        self._versions = clients.versions
        self._searchers: dict[str, Searcher] = {}
        self._lock = threading.Lock()

    def current(self) -> Searcher:
        """The searcher of the live version (built once per version)."""
        live = self._versions.live()
        key = live.id if live else ""
        with self._lock:
            if key not in self._searchers:
                c = self._clients
                embed: Embed = c.gateway.embed_part if live is None \
                    else partial(c.gateway.embed_part, spec=live.spec)
                self._searchers[key] = Searcher(self._settings, c.redis, c.store, embed, live,
                                                duplicate_groups=self._corpus.duplicate_groups)
            return self._searchers[key]

    def search(self, query: Query) -> SearchResult:
        return self.current().search(query)

    def cached(self, query: Query) -> SearchResult | None:
        return self.current().cached(query)

    @property
    def cache_hits(self) -> int:
        return sum(s.cache_hits for s in self._searchers.values())

    @property
    def cache_misses(self) -> int:
        return sum(s.cache_misses for s in self._searchers.values())


def build_searcher(settings: Settings, clients: Clients | None = None,
                   corpus: CorpusCache | None = None) -> LiveSearcher:
    """A searcher of the live model version on the Redis, Milvus and Twelve Labs of ``clients``
    (default: built from ``settings``; the CLI's, the demo's and the API's), collapsing duplicates
    with the groups of ``corpus`` (default: a CorpusCache of its own, following the live version)."""
    return LiveSearcher(settings, clients or Clients.from_settings(settings), corpus)
