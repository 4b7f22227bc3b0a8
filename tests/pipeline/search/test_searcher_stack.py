"""Searcher through the real stack: catalog videos embedded by the sandbox over HTTP, written by the
SegmentWriter into Milvus Lite, queries embedded through the sync endpoint, results cached in Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from pipeline.errors import QueryError
from pipeline.milvus.filters import Filter
from pipeline.milvus.store import MilvusStore
from pipeline.search.query import Query
from pipeline.search.results import SearchResult, result_to_json
from pipeline.search.searcher import Searcher, build_searcher
from pipeline.settings import Settings
from tests.search_library import ingest
from tests.search_library import library as make_library

LIB = "https://media.example.org/lib"
SURF = f"{LIB}/alpha.mp4"  # the surfing scene runs 9-21 s
CHEER_AUDIO = f"{LIB}/beta.mp4"  # a crowd you can hear cheering
CHEER_VISUAL = f"{LIB}/gamma.mp4"  # a crowd holding "cheering" banners, silent
KAYAK_RIVER = f"{LIB}/delta.mp4"
KAYAK_LAKE = f"{LIB}/epsilon.mp4"
MOUNTAIN_RIVER = f"{LIB}/zeta.mp4"
DOG_BEACH = f"{LIB}/eta.mp4"
EXAMPLE_RIVER = "https://media.example.org/queries/q-17.mp4"  # not ingested: a query clip
CATALOG = {
    SURF: {"duration": 60, "title": "Holiday", "scenes": [
        {"start": 0, "end": 9, "words": "city traffic"},
        {"start": 9, "end": 21, "words": "surfing dog wave"},
        {"start": 21, "end": 60, "words": "sunset picnic"}]},
    CHEER_AUDIO: {"duration": 48, "title": "Match", "scenes": [
        {"start": 0, "end": 48, "words": "crowd stadium", "audio": "cheering"}]},
    CHEER_VISUAL: {"duration": 48, "title": "Parade", "scenes": [
        {"start": 0, "end": 48, "words": "crowd street", "visual": "cheering"}]},
    KAYAK_RIVER: {"duration": 36, "title": "Trip", "scenes": [
        {"start": 0, "end": 36, "words": "kayak river"}]},
    KAYAK_LAKE: {"duration": 36, "title": "Trip", "scenes": [
        {"start": 0, "end": 36, "words": "kayak lake"}]},
    MOUNTAIN_RIVER: {"duration": 36, "title": "Trip", "scenes": [
        {"start": 0, "end": 36, "words": "mountain river"}]},
    DOG_BEACH: {"duration": 30, "title": "Beach", "scenes": [
        {"start": 0, "end": 30, "words": "surfing dog beach"}]},
    EXAMPLE_RIVER: {"duration": 40, "scenes": [
        {"start": 0, "end": 20, "words": "office meeting"},
        {"start": 20, "end": 40, "words": "river"}]},
}
CATEGORIES = {SURF: "sports", CHEER_AUDIO: "sports", CHEER_VISUAL: "events", KAYAK_RIVER: "outdoor",
              KAYAK_LAKE: "outdoor", MOUNTAIN_RIVER: "outdoor", DOG_BEACH: "pets"}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, redis_url: str, milvus_uri: str
            ) -> Iterator[Settings]:
    root: Path = tmp_path_factory.mktemp("search-stack")
    settings, sandbox = make_library(root, redis_url, milvus_uri, CATALOG, CATEGORIES)
    yield settings
    sandbox.stop()


@pytest.fixture
def searcher(library: Settings) -> Searcher:
    return build_searcher(library)


def urls(result: SearchResult) -> list[str]:
    return [h.url for h in result.hits]


def test_a_text_query_finds_the_video_and_a_category_filter_keeps_to_it(searcher) -> None:
    assert urls(searcher.search(Query(text="surfing dog wave")))[0] == SURF
    pets = searcher.search(Query(text="surfing dog wave", categories=("pets",)))
    assert urls(pets) == [DOG_BEACH]


def test_moments_stitch_the_scene_while_the_best_segment_is_six_seconds(searcher) -> None:
    plain = searcher.search(Query(text="surfing dog wave", top_k=1)).hits[0]
    assert plain.end_s - plain.start_s == 6 and plain.moments == []
    hit = searcher.search(Query(text="surfing dog wave", top_k=1, moments=True)).hits[0]
    assert hit.url == SURF
    assert (hit.start_s, hit.end_s) == (6, 24), "the scene 9-21 s spans segments 6-12, 12-18, 18-24"
    assert hit.moments[0].start_s == hit.start_s and hit.score == hit.moments[0].score
    assert all(a.score >= b.score for a, b in zip(hit.moments, hit.moments[1:], strict=False))


def test_modality_weights_decide_between_heard_and_seen_cheering(searcher) -> None:
    heard = searcher.search(Query(text="cheering crowd", modality_weights={"audio": 1, "visual": 0}))
    seen = searcher.search(Query(text="cheering crowd", modality_weights={"visual": 1, "audio": 0.1}))
    assert urls(heard)[0] == CHEER_AUDIO
    assert urls(seen)[0] == CHEER_VISUAL
    assert heard.hits[0].option == "audio"


def test_a_clip_query_finds_videos_sharing_the_clips_scene(searcher) -> None:
    result = searcher.search(Query(clip_url=EXAMPLE_RIVER, clip_start_s=20, clip_end_s=40, top_k=3))
    assert set(urls(result)[:2]) == {KAYAK_RIVER, MOUNTAIN_RIVER}


def test_text_and_clip_together_find_what_each_alone_leaves_tied(searcher) -> None:
    both = searcher.search(Query(text="kayak", clip_url=EXAMPLE_RIVER, clip_start_s=20,
                                 clip_end_s=40))
    assert urls(both)[0] == KAYAK_RIVER
    ranks = {h.url: h.score for h in both.hits}
    assert ranks[KAYAK_RIVER] > max(ranks[KAYAK_LAKE], ranks[MOUNTAIN_RIVER])


def test_weights_lean_a_hybrid_query_towards_one_part(searcher) -> None:
    clip = {"clip_url": EXAMPLE_RIVER, "clip_start_s": 20.0, "clip_end_s": 40.0}
    text_heavy = searcher.search(Query(text="kayak lake", **clip, weights={"text": 5, "clip": 1}))
    clip_heavy = searcher.search(Query(text="kayak lake", **clip, weights={"text": 1, "clip": 5}))
    assert urls(text_heavy)[0] == KAYAK_LAKE
    assert urls(clip_heavy)[0] in {KAYAK_RIVER, MOUNTAIN_RIVER}


def test_an_image_query_and_text_with_an_image(searcher) -> None:
    image = searcher.search(Query(image_url="https://img.example.org/p/kayak-lake.jpg"))
    assert urls(image)[0] == KAYAK_LAKE
    both = searcher.search(Query(text="kayak", image_url="https://img.example.org/p/river.jpg",
                                 text_image=True))
    assert urls(both)[0] == KAYAK_RIVER


def test_each_distinct_part_is_embedded_once(library: Settings) -> None:
    searcher = build_searcher(library.model_copy(update={"result_cache_ttl_s": 0}))
    query = Query(text="kayak river mountain", image_url="https://img.example.org/p/lake.jpg")
    searcher.search(query)
    misses = searcher.cache_misses
    searcher.search(Query(text="Kayak  river mountain", image_url="https://img.example.org/p/lake.jpg",
                          top_k=3))
    assert searcher.cache_misses == misses and searcher.cache_hits >= 2


def test_more_like_a_video_excludes_it_and_finds_its_neighbours(searcher) -> None:
    result = searcher.search(Query(like_url=KAYAK_RIVER, top_k=3))
    assert KAYAK_RIVER not in urls(result)
    assert set(urls(result)[:2]) == {KAYAK_LAKE, MOUNTAIN_RIVER}


def test_more_like_a_video_longer_than_the_asset_scope_suits_starts_from_its_clips(library) -> None:
    def like_vector(live: Any) -> np.ndarray:
        return np.array(live.current()._like_vector(Query(like_url=SURF)))

    def mean_of(live: Any, scope: str) -> np.ndarray:
        searcher = live.current()
        rows = searcher._store.vectors_where(
            searcher.collection, Filter(options=("visual", "audio"), scope=scope, urls=(SURF,)))
        mean = np.mean([np.array(r["vector"]) for r in rows], axis=0)
        return mean / np.linalg.norm(mean)

    sixty_seconds = build_searcher(library)  # SURF lasts 60 s, over the default 30 s
    assert np.allclose(like_vector(sixty_seconds), mean_of(sixty_seconds, "clip"), atol=1e-5)
    every_video = build_searcher(library.model_copy(update={"asset_scope_max_duration_s": 0.0}))
    assert np.allclose(like_vector(every_video), mean_of(every_video, "asset"), atol=1e-5)
    assert not np.allclose(mean_of(every_video, "asset"), mean_of(every_video, "clip"), atol=1e-3)


def test_more_like_a_moment_uses_the_segment_at_that_time(searcher) -> None:
    at_surf = searcher.search(Query(like_url=SURF, like_at_s=14, top_k=1))
    assert urls(at_surf) == [DOG_BEACH]
    at_traffic = searcher.search(Query(like_url=SURF, like_at_s=3, top_k=1))
    assert urls(at_traffic) != [DOG_BEACH]


def test_like_of_a_video_not_ingested_is_a_query_error(searcher) -> None:
    with pytest.raises(QueryError, match="not ingested"):
        searcher.search(Query(like_url="https://media.example.org/lib/unknown.mp4"))
    with pytest.raises(QueryError, match="no segment at that time"):
        searcher.search(Query(like_url=SURF, like_at_s=999))


def test_segments_mode_returns_fused_segments(searcher) -> None:
    result = searcher.search(Query(text="surfing dog wave", segments=True, top_k=4))
    assert len(result.hits) == 4
    assert all(h.end_s > h.start_s and not h.moments for h in result.hits)
    assert result.hits[0].url == SURF and (result.hits[0].start_s, result.hits[0].end_s) == (12, 18)


def test_result_to_json_is_a_list_of_video_objects(searcher) -> None:
    rows = result_to_json(searcher.search(Query(text="surfing dog wave", moments=True, top_k=2)))
    assert {"url", "title", "category", "score", "start_s", "end_s", "moments"} <= set(rows[0])
    assert {"start_s", "end_s", "score"} == set(rows[0]["moments"][0])


def test_a_cache_hit_makes_no_embed_call_and_no_search_only_the_identity_check(
    library: Settings,
) -> None:
    searcher = build_searcher(library)
    store: MilvusStore = searcher._store
    query = Query(text="sunset picnic", clip_url=EXAMPLE_RIVER, clip_start_s=20, clip_end_s=40,
                  moments=True)
    first = searcher.search(query)
    embeds, calls = searcher.cache_misses + searcher.cache_hits, store.calls
    second = searcher.search(query)
    assert not first.cached and second.cached
    assert second.hits == first.hits
    assert searcher.cache_misses + searcher.cache_hits == embeds
    assert store.calls - calls <= 2  # has_collection + describe (collection identity), no search


def test_a_flush_of_new_rows_turns_a_hit_into_a_miss(library: Settings, redis_url: str) -> None:
    settings = library.model_copy(update={"collection_prefix": f"gen{uuid.uuid4().hex[:8]}"})
    client = redis.Redis.from_url(redis_url)
    ingest(settings, client, {KAYAK_LAKE: "outdoor"})
    searcher = build_searcher(settings)
    query = Query(text="kayak", top_k=5)
    assert urls(searcher.search(query)) == [KAYAK_LAKE]
    assert searcher.search(query).cached
    ingest(settings, client, {KAYAK_RIVER: "outdoor"})
    fresh = searcher.search(query)
    assert not fresh.cached and set(urls(fresh)) == {KAYAK_LAKE, KAYAK_RIVER}


def test_an_empty_collection_returns_no_hits(library: Settings) -> None:
    settings = library.model_copy(update={"collection_prefix": f"none{uuid.uuid4().hex[:8]}"})
    assert build_searcher(settings).search(Query(text="kayak")).hits == []
