"""Video vectors read from a real Milvus Lite server, and their cache per generation and row count."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.analytics import corpus
from pipeline.analytics.corpus import VideoSet, cached_videos, read_videos
from pipeline.milvus.store import MilvusStore
from pipeline.settings import load_settings
from tests.pipeline.analytics.helpers import row

DIM = 8


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


@pytest.fixture
def store(milvus_uri: str) -> Any:
    settings = load_settings(milvus_uri=milvus_uri, collection_prefix=f"c{uuid.uuid4().hex[:10]}")
    store = MilvusStore(settings)
    yield store, store.ensure_collection("marengo3.0", DIM)
    store.close()


def test_a_video_is_its_asset_rows_or_else_the_mean_of_its_clips(store: Any) -> None:
    store, name = store
    rng = np.random.default_rng(0)
    a_visual, a_audio, a_clip = rng.standard_normal((3, DIM))
    b_clips = rng.standard_normal((3, DIM))
    rows = [row("a", "asset", "visual", 0, a_visual, at=2000),
            row("a", "asset", "audio", 0, a_audio, at=1500),
            row("a", "clip", "visual", 0, a_clip, at=1000), row("a", "clip", "audio", 6, a_clip)]
    rows += [row("b", "clip", "visual", 6 * i, v, category="sport", at=3000) for i, v in enumerate(b_clips)]
    store.upsert_rows(name, rows)
    videos = read_videos(store, name)
    assert videos.keys == ["a".ljust(32, "0"), "b".ljust(32, "0")]
    assert videos.categories == ["news", "sport"] and videos.titles == ["title of a", "title of b"]
    np.testing.assert_allclose(videos.vectors[0], unit(a_visual + a_audio), atol=1e-5)
    np.testing.assert_allclose(videos.vectors[1], unit(b_clips.mean(axis=0)), atol=1e-5)
    assert videos.segments.tolist() == [2, 3]
    assert videos.ingested_ms.tolist() == [1500, 3000]


def test_reading_an_empty_collection_gives_no_videos(store: Any) -> None:
    store, name = store
    videos = read_videos(store, name)
    assert len(videos) == 0 and videos.vectors.shape == (0, DIM)


def test_clip_only_videos_are_read_in_chunks_of_keys(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    store, name = store
    monkeypatch.setattr(corpus, "KEYS_PER_QUERY", 2)
    monkeypatch.setattr(corpus, "BATCH_ROWS", 3)
    vectors = np.random.default_rng(1).standard_normal((5, DIM))
    store.upsert_rows(name, [row(f"v{i}", "clip", "visual", 0, v) for i, v in enumerate(vectors)])
    videos = read_videos(store, name)
    assert len(videos) == 5
    np.testing.assert_allclose(videos.vectors, np.array([unit(v) for v in vectors]), atol=1e-5)


def test_the_cache_serves_the_same_generation_and_row_count_only(store: Any, tmp_path: Path) -> None:
    store, name = store
    rng = np.random.default_rng(2)
    store.upsert_rows(name, [row("a", "asset", "visual", 0, rng.standard_normal(DIM))])
    reads: list[int] = []

    def counted(s: MilvusStore, c: str) -> VideoSet:
        reads.append(1)
        return read_videos(s, c)

    first, hit = cached_videos(store, name, tmp_path, "0", read=counted)
    again, hit_again = cached_videos(store, name, tmp_path, "0", read=counted)
    assert (hit, hit_again, len(reads)) == (False, True, 1)
    np.testing.assert_array_equal(first.vectors, again.vectors)
    assert again.urls == first.urls and again.keys == first.keys
    _, hit_bumped = cached_videos(store, name, tmp_path, "1", read=counted)
    store.upsert_rows(name, [row("b", "asset", "visual", 0, rng.standard_normal(DIM))])
    grown, hit_grown = cached_videos(store, name, tmp_path, "1", read=counted)
    assert (hit_bumped, hit_grown, len(grown), len(reads)) == (False, False, 2, 3)


def test_a_damaged_cache_file_is_rebuilt(store: Any, tmp_path: Path) -> None:
    store, name = store
    store.upsert_rows(name, [row("a", "asset", "visual", 0, np.ones(DIM))])
    corpus.cache_path(tmp_path, name).write_bytes(b"not a npz file")
    videos, hit = cached_videos(store, name, tmp_path, "0")
    assert not hit and len(videos) == 1
