"""The video set, analyses and duplicate groups of a real collection (Milvus Lite server, Redis),
kept per generation and row count, in memory and (duplicate groups) on disk for the next process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.analytics import methods as analytics
from pipeline.analytics.cache import CorpusCache
from pipeline.clients import Clients
from pipeline.errors import AnalyticsError
from pipeline.settings import Settings, load_settings
from pipeline.spec import EmbeddingSpec
from pipeline.versions import Version
from tests.pipeline.analytics.helpers import row

DIM = 8


@pytest.fixture
def settings(redis_url: str, milvus_uri: str, tmp_path: Path) -> Settings:
    return load_settings(redis_url=redis_url, milvus_uri=milvus_uri, model="marengo3.5",
                         embedding_dimension=DIM, data_dir=tmp_path,
                         collection_prefix=f"k{uuid.uuid4().hex[:10]}")


@pytest.fixture
def clients(settings: Settings) -> Iterator[Clients]:
    with Clients.from_settings(settings) as clients:
        yield clients


def seed(clients: Clients, settings: Settings, names: list[str], twin_of: dict[str, str]) -> str:
    """Asset rows of ``names`` (random vectors); ``twin_of[b] = a`` gives b a's vector."""
    rng = np.random.default_rng(3)
    base = {n: rng.standard_normal(DIM) for n in names if n not in twin_of}
    vectors = {n: base[twin_of.get(n, n)] for n in names}
    name = clients.store.ensure_collection(settings.model, DIM)
    clients.store.upsert_rows(name, [row(n, "asset", "visual", 0, vectors[n]) for n in names])
    clients.store.flush(name)
    return name


def url(name: str) -> str:
    return f"https://v.example/{name}.mp4"


def test_a_collection_that_does_not_exist_is_an_analytics_error(settings: Settings, clients: Clients) -> None:
    with pytest.raises(AnalyticsError, match="does not exist"):
        CorpusCache(settings, clients).videos()


def test_duplicate_groups_map_each_copy_to_its_group(settings: Settings, clients: Clients) -> None:
    seed(clients, settings, ["a", "b", "c", "d"], {"b": "a"})
    groups = CorpusCache(settings, clients).duplicate_groups(0.9)
    assert groups == {url("a"): 0, url("b"): 0}


def test_results_are_computed_once_per_generation_and_row_count(settings: Settings, clients: Clients) -> None:
    name = seed(clients, settings, ["a", "b", "c"], {"b": "a"})
    cache = CorpusCache(settings, clients)
    runs: list[int] = []

    def counted(videos: Any) -> int:
        runs.append(len(videos))
        return len(videos)

    assert cache.memo(("n",), counted) == cache.memo(("n",), counted) == 3
    assert cache.videos()[1] is True and runs == [3]
    clients.redis.incr(clients.keys.generation(name))  # the writer's bump after a flush
    assert cache.memo(("n",), counted) == 3 and runs == [3, 3]
    clients.store.upsert_rows(name, [row("e", "asset", "visual", 0, np.ones(DIM))])
    clients.store.flush(name)
    assert cache.memo(("n",), counted) == 4 and runs == [3, 3, 4]


def test_the_next_process_reads_the_groups_from_disk_until_rows_land(
    settings: Settings, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = seed(clients, settings, ["a", "b", "c"], {"b": "a"})
    first = CorpusCache(settings, clients).duplicate_groups(0.9)
    assert (settings.data_dir / "analytics" / f"{name}.duplicates.json").exists()

    def refuse(*_args: Any) -> Any:
        raise AssertionError("duplicates computed again")

    monkeypatch.setattr(analytics, "duplicates", refuse)
    assert CorpusCache(settings, clients).duplicate_groups(0.9) == first
    with pytest.raises(AssertionError, match="computed again"):
        CorpusCache(settings, clients).duplicate_groups(0.95)  # another threshold: not on disk
    clients.redis.incr(clients.keys.generation(name))
    with pytest.raises(AssertionError, match="computed again"):
        CorpusCache(settings, clients).duplicate_groups(0.9)


def test_a_bad_threshold_is_an_analytics_error(settings: Settings, clients: Clients) -> None:
    with pytest.raises(AnalyticsError, match="threshold must be"):
        CorpusCache(settings, clients).duplicate_groups(1.5)


def test_at_most_memo_max_results_are_kept_the_oldest_dropped_first(
    settings: Settings, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.analytics import cache as corpus_cache

    monkeypatch.setattr(corpus_cache, "MEMO_MAX", 2)
    seed(clients, settings, ["a", "b"], {})
    cache = CorpusCache(settings, clients)
    runs: list[str] = []
    for name in ("x", "y", "z", "y", "x"):
        cache.memo((name,), lambda _v, n=name: runs.append(n))
    assert runs == ["x", "y", "z", "x"]


def test_a_promotion_moves_the_cache_to_the_new_live_collection(settings: Settings, clients: Clients) -> None:
    seed(clients, settings, ["a", "b", "c"], {"b": "a"})
    cache = CorpusCache(settings, clients)
    assert sorted(cache.videos()[0].urls) == [url("a"), url("b"), url("c")]
    assert cache.duplicate_groups(0.9) == {url("a"): 0, url("b"): 0}
    other = clients.store.ensure_collection("marengo3.0", DIM)
    vector = np.random.default_rng(5).standard_normal(DIM)
    clients.store.upsert_rows(other, [row(n, "asset", "visual", 0, vector if n != "z" else -vector)
                                      for n in ("x", "y", "z")])
    clients.store.flush(other)
    spec = EmbeddingSpec.from_settings(settings)
    clients.versions.save(Version("marengo3.0-8", spec, other, "unused_alias", 0.0))

    clients.versions.switch("marengo3.0-8", None, clear_building=False)  # what a promotion does

    assert cache.collection == other
    assert sorted(cache.videos()[0].urls) == [url("x"), url("y"), url("z")]
    assert cache.duplicate_groups(0.9) == {url("x"): 0, url("y"): 0}
