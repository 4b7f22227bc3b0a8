"""Milvus Lite once a segment has its HNSW index (the background build after a flush): a search
scores each candidate video's segments with their real rows on every option.

Lite walks a segment's FAISS HNSW graph with the filter applied inside the walk; with the
configured ``ef`` the walk stays near the query, so a selective filter (a few videos' audio rows,
far from a visual-like query) matched rows it never reached, and their scores were imputed (on
section 7's library an image query's target video then ranked second)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from pymilvus import MilvusClient

from pipeline.milvus.store import MilvusStore
from pipeline.search.query import Query, QueryPart
from pipeline.search.searcher import Searcher
from pipeline.segments import Segment, pack_vector
from pipeline.settings import Settings, load_settings

pytestmark = pytest.mark.integration

MODEL = "marengo3.5"
DIM = 32
VIDEOS = 120
SEGMENTS = 25
SEGMENT_S = 6.0
SCENE = range(10, 15)
"""The segments of a video's scene."""
STRENGTH = {0: 1.0, 1: 0.85}
"""How strongly a scene shows the query's concept (the other videos: 0 to 0.5)."""


def url(video: int) -> str:
    return f"https://v.example/{video:04d}.mp4"


def query_vector() -> np.ndarray:
    q = np.zeros(DIM)
    q[0], q[1] = 1.0, 0.6  # the concept, seen: close to visual rows
    return q


def row_vector(option: str, strength: float, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(DIM) * 0.15
    if option == "visual":
        v[1] += 1.0
        v[0] += strength
    else:  # audio rows lie elsewhere, the concept heard at half strength
        v[2] += 1.0
        v[0] += 0.5 * strength
    return v


def library() -> dict[tuple[str, float, str], np.ndarray]:
    """(url, start, option) -> vector of every row."""
    rng = np.random.default_rng(23)
    rows = {}
    for video in range(VIDEOS):
        strength = STRENGTH.get(video, rng.uniform(0.0, 0.5))
        for k in range(SEGMENTS):
            for option in ("visual", "audio"):
                rows[(url(video), k * SEGMENT_S, option)] = row_vector(
                    option, strength if k in SCENE else 0.0, rng)
    return rows


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


ROWS = library()


@pytest.fixture(scope="module")
def settings(redis_url: str, milvus_uri: str) -> Iterator[Settings]:
    settings = load_settings(redis_url=redis_url, milvus_uri=milvus_uri, model=MODEL,
                             embedding_dimension=DIM, search_consistency="Strong",
                             embedding_options=["visual", "audio"],
                             collection_prefix=f"hn{uuid.uuid4().hex[:10]}", result_cache_ttl_s=0)
    store = MilvusStore(settings)
    name = store.ensure_collection(MODEL, DIM)
    store.upsert(name, [
        Segment(pk=f"{i:032d}", item_key=f"{int(u[-8:-4]):032d}", job_id="j", url=u,
                category="films", title=u, metadata="{}", model=MODEL, option=option,
                scope="clip", start_s=start, end_s=start + SEGMENT_S, vector=pack_vector(v.tolist()))
        for i, ((u, start, option), v) in enumerate(ROWS.items())
    ])  # one category: one partition, one segment of 6,000 rows
    store.flush(name)
    raw = MilvusClient(uri=milvus_uri)
    raw.release_collection(name)  # load builds every segment's HNSW index now: the state the
    raw.load_collection(name)  # background build leaves a segment in seconds after its flush
    raw.close()
    yield settings
    store.close()


@pytest.fixture
def searcher(settings: Settings, redis_client) -> Searcher:
    def embed(part: QueryPart) -> list[float]:
        return [float(x) for x in query_vector()]
    return Searcher(settings, redis_client, MilvusStore(settings), embed)


def test_every_segment_is_scored_with_its_real_rows_on_both_options(searcher: Searcher) -> None:
    hits = searcher.search(Query(text="concept", segments=True, top_k=10, min_score=-1)).hits
    assert hits
    q = query_vector()
    for hit in hits:
        real = np.mean([cosine(q, ROWS[(hit.url, hit.start_s, o)]) for o in ("visual", "audio")])
        assert hit.score == pytest.approx(real, abs=1e-3), (hit.url, hit.start_s)

