"""Searcher against both Milvus engines (Lite, a real server) and redis-server, hand-made vectors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from pipeline.milvus.filters import Filter
from pipeline.milvus.store import MilvusStore
from pipeline.search.query import Query, QueryPart
from pipeline.search.searcher import Searcher, normalize_query
from pipeline.segments import Segment, pack_vector
from pipeline.settings import Settings, load_settings

pytestmark = pytest.mark.both_engines

MODEL = "marengo3.5"
DIM = 16
CONCEPTS = {"dogs": 0, "cars": 1, "ocean": 2}
# url -> (concept, category)
VIDEOS = {
    "https://v.example/dog1": ("dogs", "animals"),
    "https://v.example/dog2": ("dogs", "pets"),
    "https://v.example/car1": ("cars", "vehicles"),
    "https://v.example/sea1": ("ocean", "nature"),
}
SEGMENTS_PER_VIDEO = 5


def concept_vector(concept: str, noise: float = 0.0, seed: int = 0) -> list[float]:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[CONCEPTS[concept]] = 1.0
    vector += np.random.default_rng(seed).random(DIM).astype(np.float32) * noise
    return [float(v) for v in vector]


class Embedder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, part: QueryPart) -> list[float]:
        """Text means its first word; an image URL means its last path word."""
        if part.kind == "image" and part.url:
            return concept_vector(part.url.rsplit("/", 1)[-1])
        assert part.kind == "text" and part.text
        self.calls.append(part.text)
        return concept_vector(part.text.split(maxsplit=1)[0])


def video_segments() -> list[Segment]:
    segments = []
    for v, (url, (concept, category)) in enumerate(VIDEOS.items()):
        for k in range(SEGMENTS_PER_VIDEO):
            noise = 0.05 + 0.1 * k  # segment 0 matches its concept best
            for option in ("visual", "audio"):
                segments.append(Segment(
                    pk=f"{v:04d}{k:04d}{option:0>24}", item_key=f"{v:032d}", job_id="j", url=url,
                    category=category, title=f"{concept} video {v}", metadata="{}", model=MODEL,
                    option=option, scope="clip", start_s=6.0 * k, end_s=6.0 * (k + 1),
                    vector=pack_vector(concept_vector(concept, noise, seed=v * 10 + k)),
                ))
    return segments


@pytest.fixture(scope="module")
def seeded(redis_url: str, milvus_uri: str) -> Iterator[Settings]:
    settings = load_settings(redis_url=redis_url, milvus_uri=milvus_uri, model=MODEL,
                             search_consistency="Strong",
                             embedding_dimension=DIM, collection_prefix=f"s{uuid.uuid4().hex[:10]}",
                             result_cache_ttl_s=0, search_min_score=-1)  # synthetic vectors: no floor
    store = MilvusStore(settings)
    name = store.ensure_collection(MODEL, DIM)
    store.upsert(name, video_segments())
    store.flush(name)
    yield settings
    store.close()


@pytest.fixture
def searcher(seeded: Settings, redis_client) -> tuple[Searcher, Embedder]:
    embedder = Embedder()
    return Searcher(seeded, redis_client, MilvusStore(seeded), embedder), embedder


def test_query_ranks_videos_of_the_matching_concept_first(searcher) -> None:
    s, _ = searcher
    hits = s.search(Query(text="dogs", top_k=4)).hits
    assert {h.url for h in hits[:2]} == {"https://v.example/dog1", "https://v.example/dog2"}
    assert hits[0].score >= hits[1].score >= hits[2].score
    assert s.search(Query(text="ocean", top_k=1)).hits[0].url == "https://v.example/sea1"


def test_category_filter_restricts_results(searcher) -> None:
    s, _ = searcher
    hits = s.search(Query(text="dogs", categories=("vehicles", "nature"), top_k=10)).hits
    assert {h.category for h in hits} == {"vehicles", "nature"}
    assert [h.url for h in s.search(Query(text="dogs", categories=("pets",), top_k=10)).hits] == [
        "https://v.example/dog2"
    ]


def test_default_returns_the_best_segment_once_per_video(searcher) -> None:
    s, _ = searcher
    hits = s.search(Query(text="cars", top_k=10)).hits
    assert len(hits) == len(VIDEOS) == len({h.url for h in hits})
    best = hits[0]
    assert (best.url, best.start_s, best.end_s) == ("https://v.example/car1", 0.0, 6.0)


def test_segments_mode_returns_several_segments_of_one_video(searcher) -> None:
    s, _ = searcher
    hits = s.search(Query(text="cars", top_k=6, segments=True, option="visual")).hits
    assert len(hits) == 6
    assert [h.url for h in hits[:SEGMENTS_PER_VIDEO]] == ["https://v.example/car1"] * 5
    assert {h.option for h in hits} == {"visual"}


def test_cache_hit_serves_the_query_without_an_embed_call(searcher, redis_client) -> None:
    s, embedder = searcher
    first = s.search(Query(text="  Dogs   ", top_k=2)).hits
    assert s.last_cache_hit is False
    second = s.search(Query(text="dogs", top_k=2)).hits
    assert s.last_cache_hit is True
    assert embedder.calls == ["dogs"] and (s.cache_hits, s.cache_misses) == (1, 1)
    assert first == second
    keys = redis_client.keys(f"vs:qcache:{MODEL}:{DIM}:*")
    assert len(keys) == 1 and redis_client.ttl(keys[0]) > 0


def test_normalize_query_strips_collapses_and_lowercases() -> None:
    assert normalize_query("  A  Dog\t\nRuns ") == "a dog runs"


def test_missing_collection_returns_no_hits(seeded: Settings, redis_client) -> None:
    settings = seeded.model_copy(update={"collection_prefix": f"none{uuid.uuid4().hex[:8]}"})
    s = Searcher(settings, redis_client, MilvusStore(settings), Embedder())
    assert s.search(Query(text="dogs")).hits == []


def test_the_server_version_decides_grouping_and_hybrid_search(seeded: Settings,
                                                              milvus_engine: str) -> None:
    caps = MilvusStore(seeded).capabilities()
    expected = milvus_engine == "lite"  # Milvus Lite 3.x has both; the Milvus 2.3.5 server neither
    assert (caps.grouping, caps.hybrid) == (expected, expected), caps.version


def test_only_a_server_with_grouping_groups_and_the_old_one_silently_does_not(
    seeded: Settings, milvus_engine: str
) -> None:
    """Why the version decides: Milvus 2.3.5 ignores group_by_field instead of refusing it."""
    store = MilvusStore(seeded)
    name = store.collection_for(MODEL, DIM)
    hits = store.search_where(name, concept_vector("dogs"), Filter(scope="clip"), limit=2,
                              group_by_url=1)
    distinct = len({h.url for h in hits})
    if milvus_engine == "lite":
        assert distinct == len(hits) == 2
    else:
        assert distinct < len(hits), "the visual and audio rows of one segment, ungrouped"


def test_video_search_finds_distinct_videos_on_either_engine(searcher) -> None:
    """Lite groups by URL in Milvus; the 2.3.5 server gets the widened kNN fallback."""
    s, _ = searcher
    hits = s.search(Query(text="dogs", top_k=3, option="visual")).hits
    assert {h.url for h in hits[:2]} == {"https://v.example/dog1", "https://v.example/dog2"}
    assert len({h.url for h in hits}) == 3


@pytest.mark.parametrize("fusion", ["weighted", "rrf"])
def test_milvus_fusion_or_its_client_fallback_ranks_the_hybrid_query(
    seeded: Settings, redis_client, fusion: str, milvus_engine: str
) -> None:
    """Lite fuses the parts with hybrid_search; the 2.3.5 server has none and fuses client-side."""
    query = Query(text="dogs", image_url="https://i.example/p/ocean", top_k=4,
                  weights={"text": 1, "image": 1})
    client_side = Searcher(seeded, redis_client, MilvusStore(seeded), Embedder()).search(query)
    settings = seeded.model_copy(update={"search_fusion": fusion})
    store = MilvusStore(settings)
    fused = Searcher(settings, redis_client, store, Embedder()).search(query)
    assert store.capabilities().hybrid is (milvus_engine == "lite")
    top = {h.url for h in fused.hits[:3]}
    assert {"https://v.example/sea1"} <= top and top & {"https://v.example/dog1",
                                                         "https://v.example/dog2"}
    if fusion == "weighted" or milvus_engine == "server":
        assert [h.url for h in fused.hits] == [h.url for h in client_side.hits]


def test_collapse_duplicates_keeps_the_best_ranked_video_of_a_group(seeded: Settings, redis_client) -> None:
    dogs = {"https://v.example/dog1": 0, "https://v.example/dog2": 0}
    asked: list[float] = []

    def groups(threshold: float) -> dict[str, int]:
        asked.append(threshold)
        return dogs

    s = Searcher(seeded, redis_client, MilvusStore(seeded), Embedder(), duplicate_groups=groups)
    plain = [h.url for h in s.search(Query(text="dogs", top_k=4)).hits]
    assert set(plain[:2]) == set(dogs) and not asked
    collapsed = [h.url for h in s.search(Query(text="dogs", top_k=4, collapse_duplicates=True)).hits]
    assert collapsed == [plain[0], *plain[2:]] and asked == [seeded.duplicate_threshold]
    segments = s.search(Query(text="dogs", top_k=8, segments=True, collapse_duplicates=True)).hits
    assert plain[1] not in {h.url for h in segments} and segments[0].url == plain[0]
    assert len([h for h in segments if h.url == plain[0]]) > 1  # the kept video's segments stay


def test_the_setting_collapses_by_default_and_a_query_may_refuse(seeded: Settings, redis_client) -> None:
    dogs = {"https://v.example/dog1": 0, "https://v.example/dog2": 0}
    on = seeded.model_copy(update={"search_collapse_duplicates": True})
    s = Searcher(on, redis_client, MilvusStore(on), Embedder(), duplicate_groups=lambda _t: dogs)
    default = [h.url for h in s.search(Query(text="dogs", top_k=4)).hits]
    refused = [h.url for h in s.search(Query(text="dogs", top_k=4, collapse_duplicates=False)).hits]
    assert len(set(default) & set(dogs)) == 1 and set(dogs) <= set(refused)


def test_rrf_fusion_scores_ranks_so_the_default_relevance_floor_does_not_hide_its_hits(
    seeded: Settings, redis_client, milvus_engine: str
) -> None:
    """RRFRanker answers ~1/(60 + rank): under the 0.25 similarity floor every hit would vanish."""
    query = Query(text="dogs", image_url="https://i.example/p/ocean", top_k=4,
                  weights={"text": 1, "image": 1})
    floored = {"search_min_score": 0.25, "result_cache_ttl_s": 0}
    rrf = seeded.model_copy(update={"search_fusion": "rrf", **floored})
    fused = Searcher(rrf, redis_client, MilvusStore(rrf), Embedder()).search(query)
    if milvus_engine == "lite":  # Milvus fuses by rank: every score is a rank, no floor applies
        assert fused.hits and max(h.score for h in fused.hits) < 0.25
        assert fused.min_score == -1.0 and fused.below_floor == 0
    else:  # no hybrid search on 2.3.5: fused client-side, similarities, the floor applies
        assert fused.min_score == 0.25
    one_part = Searcher(rrf, redis_client, MilvusStore(rrf), Embedder()).search(Query(text="dogs"))
    assert one_part.min_score == 0.25  # one part: plain similarities, the floor holds
