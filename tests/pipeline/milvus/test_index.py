"""Index status and tuning on both Milvus engines; exact top-k by brute force against numpy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from dataclasses import replace

import numpy as np
import pytest

from pipeline.errors import StoreError, StoreUnavailableError
from pipeline.milvus.index import exact_top_k, index_status, rebuild, settings_lines, tune
from pipeline.milvus.schema import search_params_for
from pipeline.milvus.store import MilvusStore
from pipeline.segments import Segment, pack_vector
from pipeline.settings import Settings, load_settings
from tests.stack import wait_for
from vidsearch.cli.index_commands import status_text

pytestmark = pytest.mark.both_engines

MODEL = "marengo3.0"
DIM = 16
ROWS = 1500


def seeded_store(milvus_uri: str) -> tuple[Settings, MilvusStore, str]:
    settings = load_settings(milvus_uri=milvus_uri, collection_prefix=f"x{uuid.uuid4().hex[:8]}")
    store = MilvusStore(settings)
    name = store.ensure_collection(MODEL, DIM)
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((ROWS, DIM), dtype=np.float32)
    segments = [
        Segment(pk=f"{i:032x}", item_key=f"{i // 10:032x}", job_id="j", url=f"https://v.example.com/{i}",
                category=f"c{i % 4}", title="", metadata="", model=MODEL, option="visual", scope="clip",
                start_s=0.0, end_s=6.0, vector=pack_vector(vectors[i].tolist()))
        for i in range(ROWS)
    ]
    for start in range(0, ROWS, 500):
        store.upsert(name, segments[start:start + 500])
    store.flush(name)
    return settings, store, name


@pytest.fixture(scope="module")
def seeded(milvus_uri: str) -> tuple[Settings, MilvusStore, str]:
    return seeded_store(milvus_uri)


def test_exact_top_k_streams_batches_and_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((2500, 8)).astype(np.float32)
    queries = vectors[:5] + 0.01
    rows = [{"pk": str(i), "vector": v} for i, v in enumerate(vectors)]
    for metric in ("COSINE", "IP", "L2"):
        got = exact_top_k(lambda: iter(rows), queries, 7, metric)
        if metric == "L2":
            scores = -((queries[:, None, :] - vectors[None, :, :]) ** 2).sum(axis=2)
        elif metric == "COSINE":
            unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
            scores = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
        else:
            scores = queries @ vectors.T
        want = [{str(i) for i in np.argsort(-row)[:7]} for row in scores]
        assert got == want, metric


def test_status_reports_the_index_its_params_and_every_row(seeded, milvus_engine: str) -> None:
    settings, store, name = seeded
    wait_for(lambda: index_status(store, settings, name).indexed_rows == ROWS, 120, "every row indexed")
    status = index_status(store, settings, name)
    assert status.index_type == "HNSW" and status.metric == "COSINE"
    built = {} if milvus_engine == "lite" else {"M": "16", "efConstruction": "200"}  # Lite reports none
    assert status.params == built
    assert (status.rows, status.indexed_rows, status.pending_rows) == (ROWS, ROWS, 0)
    assert status.search_params == {"ef": 64}


def test_status_lists_the_segments_searches_read_and_those_not_yet_handed_off(
    seeded, milvus_engine: str,
) -> None:
    settings, store, name = seeded
    if milvus_engine == "lite":  # Milvus Lite lists no segments
        status = index_status(store, settings, name)
        assert (status.served_segments, status.handoff_pending) == (None, None)
        assert "serving   not listed by this engine" in status_text(status)
        return
    wait_for(lambda: index_status(store, settings, name).handoff_pending == 0, 120,
             "the flushed segments to serve searches")
    status = index_status(store, settings, name)
    assert status.segments is not None and status.served_segments is not None
    assert sum(status.served_segments) == sum(status.segments) == ROWS
    assert f"({ROWS:,} rows)" in status_text(status)
    waiting = replace(status, handoff_pending=2)
    assert "2 sealed not yet serving (compaction" in status_text(waiting)


def test_tune_reaches_the_target_and_its_line_sets_that_collection_only(seeded) -> None:
    settings, store, name = seeded
    result = tune(store, settings, name, queries=20, top_k=10, target=0.9)
    assert result.param == "ef" and result.queries == 20
    assert result.chosen is not None and result.chosen.recall >= 0.9
    assert [p.value for p in result.points] == sorted(p.value for p in result.points)
    assert all(p.recall < 0.9 for p in result.points[:-1])
    toml, env = settings_lines(name, "ef", result.chosen.value)
    assert toml == f"collection_search_params = {{ {name} = {{ ef = {result.chosen.value} }} }}"
    value = json.loads(env.split("=", 1)[1])
    applied = load_settings(collection_search_params=value)
    assert search_params_for(applied, name, 10) == {"ef": max(10, result.chosen.value)}
    assert search_params_for(applied, "other", 10) == {"ef": 64}


def _vidsearch(milvus_uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDSEARCH_")}
    env["VIDSEARCH_MILVUS_URI"] = milvus_uri
    return subprocess.run([sys.executable, "-m", "vidsearch", *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_index_tune_refuses_a_bad_target_and_an_unknown_collection_with_exit_2(milvus_uri: str) -> None:
    bad = _vidsearch(milvus_uri, "index", "tune", "--target-recall", "1.5")
    assert bad.returncode == 2 and "--target-recall" in bad.stderr
    missing = _vidsearch(milvus_uri, "index", "tune", "--collection", "vidsearch_nope")
    assert missing.returncode == 2 and "no collection vidsearch_nope" in missing.stderr


def test_index_status_prints_every_collection_of_the_prefix(seeded, milvus_uri: str) -> None:
    settings, _, name = seeded
    env_prefix = settings.collection_prefix
    proc = subprocess.run(
        [sys.executable, "-m", "vidsearch", "index", "status", "--json"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("VIDSEARCH_")},
             "VIDSEARCH_MILVUS_URI": milvus_uri, "VIDSEARCH_COLLECTION_PREFIX": env_prefix},
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    statuses = json.loads(proc.stdout)
    assert [s["collection"] for s in statuses] == [name]
    assert statuses[0]["rows"] == ROWS


def test_rebuild_swaps_in_a_new_index_while_searches_keep_answering(milvus_uri: str) -> None:
    """The first rebuild drops the collection and creates the alias (a gap in which a search may
    fail or find nothing); the second switches an alias, and no search notices it."""
    settings, store, name = seeded_store(milvus_uri)
    probe = np.asarray(store.sample_vectors(name, 1))
    answers: dict[str, list[int | str]] = {"first": [], "second": []}
    phase = ["first"]
    stop = threading.Event()

    def search_loop() -> None:
        searcher = MilvusStore(settings)
        while not stop.is_set():
            current = answers[phase[0]]
            try:
                current.append(len(searcher.search_pks(name, probe, 5, {"ef": 64, "nprobe": 16})[0]))
            except StoreError as exc:
                current.append(str(exc))

    thread = threading.Thread(target=search_loop)
    thread.start()
    try:
        first = rebuild(store, name, "IVF_FLAT", {"nlist": 32})
        phase[0] = "second"
        second = rebuild(store, name, "HNSW", {"M": 8, "efConstruction": 64})
    finally:
        stop.set()
        thread.join()
    assert first.old == name and first.copied == ROWS
    assert second.old == first.new and second.copied == ROWS
    assert store.alias_target(name) == second.new
    assert not store.has_collection(first.new)
    assert store.count(name) == ROWS
    assert answers["first"].count(5) > 0
    assert answers["second"] and set(answers["second"]) == {5}  # an alias switch loses no search
    assert store.collections() == [name]
    status = index_status(store, settings, name)
    assert status.index_type == "HNSW" and status.rows == ROWS
    assert store.search_pks(name, probe, 1, {"ef": 64})[0]


def test_a_write_to_a_collection_being_swapped_is_retried_not_rejected(milvus_uri: str) -> None:
    settings = load_settings(milvus_uri=milvus_uri, collection_prefix=f"g{uuid.uuid4().hex[:8]}")
    store = MilvusStore(settings)
    name = store.ensure_collection(MODEL, DIM)
    MilvusStore(settings).drop(name)  # what the first rebuild does for a moment before the alias exists
    segment = Segment(pk="p" * 32, item_key="i" * 32, job_id="j", url="https://v.example.com/1",
                      category="c", title="", metadata="", model=MODEL, option="visual", scope="clip",
                      start_s=0.0, end_s=6.0, vector=pack_vector([0.1] * DIM))
    with pytest.raises(StoreUnavailableError):
        store.upsert(name, [segment])  # the writer's store: collection and dimension known
