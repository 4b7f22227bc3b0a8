"""Long videos against both Milvus engines: a 2-hour video's scattered scenes come back as its
ranked moments, and the search reads a fixed number of its rows, not all 2,400."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from pipeline.milvus.store import MilvusStore
from pipeline.search.query import Query, QueryPart
from pipeline.search.searcher import Searcher
from pipeline.segments import Segment, pack_vector
from pipeline.settings import Settings, load_settings

pytestmark = pytest.mark.both_engines

MODEL = "marengo3.5"
DIM = 16
LONG = "https://v.example/long.mp4"  # 2 hours of 6 s segments
SHORT = "https://v.example/short.mp4"  # 3 minutes: the target concept half-present throughout
SEGMENT_S = 6.0
SCENES = {(1800.0, 1860.0): 1.0, (4200.0, 4236.0): 0.8, (600.0, 630.0): 0.6}
"""Where the long video shows the target concept, and how strongly."""
WINDOW = 40


def vector(target: float, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(DIM) * 0.1
    v[1] += 1.0  # every segment shows the filler concept
    v[0] += 3.0 * target
    return [float(x) for x in v]


def strength(url: str, start: float) -> float:
    if url == SHORT:
        return 0.3
    return next((w for (a, b), w in SCENES.items() if a <= start < b), 0.0)


def segments(url: str, duration_s: float, v: int) -> list[Segment]:
    out = []
    for k in range(int(duration_s // SEGMENT_S)):
        start = k * SEGMENT_S
        for option in ("visual", "audio"):
            out.append(Segment(
                pk=f"{v:04d}{k:06d}{option:0>22}", item_key=f"{v:032d}", job_id="j", url=url,
                category="films", title=url, metadata="{}", model=MODEL, option=option, scope="clip",
                start_s=start, end_s=start + SEGMENT_S,
                vector=pack_vector(vector(strength(url, start), seed=v * 100_000 + k)),
            ))
    return out


@pytest.fixture(scope="module")
def library(redis_url: str, milvus_uri: str) -> Iterator[Settings]:
    settings = load_settings(redis_url=redis_url, milvus_uri=milvus_uri, model=MODEL,
                             embedding_dimension=DIM, search_consistency="Strong",
                             collection_prefix=f"lf{uuid.uuid4().hex[:10]}", result_cache_ttl_s=0,
                             moment_window_segments=WINDOW)
    store = MilvusStore(settings)
    name = store.ensure_collection(MODEL, DIM)
    for batch in (segments(LONG, 7200.0, 1), segments(SHORT, 180.0, 2)):
        store.upsert(name, batch)
    store.flush(name)
    yield settings
    store.close()


@pytest.fixture
def searcher(library: Settings, redis_client) -> Searcher:
    def embed(part: QueryPart) -> list[float]:
        v = np.zeros(DIM)
        v[0] = 1.0
        return [float(x) for x in v]
    return Searcher(library, redis_client, MilvusStore(library), embed)


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


def test_a_long_videos_scenes_are_its_moments_ranked_by_strength(searcher: Searcher) -> None:
    hits = searcher.search(Query(text="target", moments=True, max_moments=3)).hits
    assert hits[0].url == LONG
    spans = [(m.start_s, m.end_s) for m in hits[0].moments]
    assert len(spans) == 3
    for span, scene in zip(spans, SCENES, strict=True):  # SCENES is in order of strength
        assert overlap(span, scene) >= 0.5, (span, scene)


def test_the_search_reads_a_window_of_rows_per_video_not_all_of_them(searcher: Searcher) -> None:
    wide = Query(text="target", segments=True, top_k=100, min_score=-1)  # no floor: every row read shows
    hits = searcher.search(wide).hits
    long_segments = {(h.start_s, h.end_s) for h in hits if h.url == LONG}
    assert WINDOW <= len(long_segments) <= 2 * WINDOW, "visual and audio windows: 40 to 80 of 1200"
