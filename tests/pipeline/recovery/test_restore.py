"""Restore and export between a real archive (a directory) and a real Milvus (Lite and the 2.3.5
server): rows come back whole, by bulk import on the server and upserts on Lite, resumably."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from pipeline.archive.store import EmbeddingArchive
from pipeline.errors import BadInputError
from pipeline.milvus.columns import Columns
from pipeline.milvus.store import MilvusStore
from pipeline.recovery.checkpoint import Checkpoints
from pipeline.recovery.export import export_collection
from pipeline.recovery.restore import Restorer, Target
from pipeline.settings import Settings, load_settings
from pipeline.state.generation import current_generation
from pipeline.state.keys import Keys

pytestmark = pytest.mark.integration
"""Bulk import on the server takes seconds per file: only the tests that need it run on both engines."""

DIM = 8
MODEL = "marengo3.0"
CATEGORIES = ("news", "sports", "cooking")


def columns(start: int, n: int, *, value: float = 0.0) -> Columns:
    rng = np.random.default_rng(start)
    pks = [f"pk{i:030d}" for i in range(start, start + n)]
    return Columns(pks=pks, vectors=rng.random((n, DIM), dtype=np.float32) + np.float32(value),
                   scalars={
        "category": [CATEGORIES[i % 3] for i in range(start, start + n)],
        "url": [f"https://v.example/{i // 4}" for i in range(start, start + n)],
        "start_s": [float(i % 4) * 6 for i in range(start, start + n)],
        "end_s": [float(i % 4) * 6 + 6 for i in range(start, start + n)],
        "option": ["visual"] * n, "scope": ["clip"] * n, "model": [MODEL] * n,
        "item_key": [f"item{i // 4:027d}" for i in range(start, start + n)],
        "job_id": ["job1"] * n, "ingested_at": [1_700_000_000_000] * n,
        "title": [f"title {i}" for i in range(start, start + n)],
        "metadata": [json.dumps({"n": i, "tag": "é"}).encode() for i in range(start, start + n)],
    })


@pytest.fixture
def settings(milvus_uri: str, tmp_path: Path) -> Settings:
    return load_settings(milvus_uri=milvus_uri, collection_prefix=f"t{uuid.uuid4().hex[:10]}",
                         archive_url=str(tmp_path / "archive"), data_dir=tmp_path / "data",
                         num_partitions=4, restore_batch_rows=50, restore_import_rows=1000)


@pytest.fixture
def store(settings: Settings) -> MilvusStore:
    return MilvusStore(settings)


@pytest.fixture
def archive(settings: Settings) -> EmbeddingArchive:
    found = EmbeddingArchive.from_settings(settings)
    assert found is not None
    return found


@pytest.fixture
def checkpoints(redis_client: redis.Redis) -> Checkpoints:
    return Checkpoints(redis_client, Keys(f"t{uuid.uuid4().hex[:6]}"))


def name(settings: Settings) -> str:
    return f"{settings.collection_prefix}_marengo3_0_{DIM}"


def milvus_rows(store: MilvusStore, collection: str) -> dict[str, dict[str, Any]]:
    fields = ["pk", "vector", "category", "item_key", "metadata", "title", "start_s"]
    found: dict[str, dict[str, Any]] = {}
    for row in store.iter_rows(collection, "", fields):
        assert row["pk"] not in found, f"{row['pk']} twice in Milvus"
        found[str(row["pk"])] = row
    return found


def archived(settings: Settings, archive: EmbeddingArchive, n: int = 300) -> str:
    """``n`` rows archived in three appends, the last one replacing 20 rows with new vectors."""
    collection = name(settings)
    archive.append(collection, MODEL, DIM, columns(0, n // 2))
    archive.append(collection, MODEL, DIM, columns(n // 2, n - n // 2))
    archive.append(collection, MODEL, DIM, columns(0, 20, value=5.0))
    return collection


def assert_restored(store: MilvusStore, collection: str, n: int) -> None:
    rows = milvus_rows(store, collection)
    assert len(rows) == n == store.count(collection)
    assert min(rows["pk" + f"{5:030d}"]["vector"]) >= 5.0  # the latest copy of a replaced row
    assert max(rows["pk" + f"{25:030d}"]["vector"]) < 5.0
    assert rows["pk" + f"{7:030d}"]["metadata"] == {"n": 7, "tag": "é"}
    assert store.count(collection, 'category == "sports"') == sum(1 for i in range(n) if i % 3 == 1)


@pytest.mark.both_engines
def test_restore_rebuilds_a_missing_collection_from_the_archive_with_every_row_once(
    settings: Settings, store: MilvusStore, archive: EmbeddingArchive, checkpoints: Checkpoints,
    milvus_engine: str,
) -> None:
    collection = archived(settings, archive)
    seen: list[tuple[int, int]] = []
    report = Restorer(archive, store, checkpoints, settings,
                      progress=lambda done, total: seen.append((done, total))).run(
        Target(collection, DIM))
    assert report.method == ("bulk" if milvus_engine == "server" else "upsert")
    assert (report.rows, report.milvus_rows, report.resumed_at) == (300, 300, 0)
    assert_restored(store, collection, 300)
    assert seen[-1] == (300, 300)
    assert checkpoints.load(collection) is None  # a finished restore leaves no checkpoint
    assert current_generation(checkpoints.r, checkpoints.keys, collection) == 1


def test_restore_points_the_aliases_at_the_restored_collection(
    settings: Settings, store: MilvusStore, archive: EmbeddingArchive, checkpoints: Checkpoints,
) -> None:
    collection = archived(settings, archive, n=40)
    alias = f"{settings.collection_prefix}_live"
    Restorer(archive, store, checkpoints, settings).run(Target(collection, DIM, (alias,)))
    assert store.alias_target(alias) == collection
    assert store.count(alias) == 40


@pytest.mark.both_engines
def test_a_restore_interrupted_half_way_resumes_from_its_checkpoint_without_missing_a_row(
    settings: Settings, store: MilvusStore, archive: EmbeddingArchive, checkpoints: Checkpoints,
) -> None:
    settings = settings.model_copy(update={"restore_import_rows": 120})  # three import files
    collection = archived(settings, archive)

    def crash(done: int, total: int) -> None:
        if done >= 150:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Restorer(archive, store, checkpoints, settings, progress=crash).run(Target(collection, DIM))
    left = checkpoints.load(collection)
    assert left is not None and left.done > 0
    report = Restorer(archive, store, checkpoints, settings).run(Target(collection, DIM))
    assert report.resumed_at == left.done
    assert_restored(store, collection, 300)


def test_restore_by_upserts_over_a_collection_that_kept_some_rows_adds_no_duplicate(
    settings: Settings, store: MilvusStore, archive: EmbeddingArchive, checkpoints: Checkpoints,
) -> None:
    collection = archived(settings, archive)
    store.ensure_named(collection, DIM)
    store.upsert_columns(collection, columns(100, 50))
    store.flush(collection)
    report = Restorer(archive, store, checkpoints, settings).run(Target(collection, DIM))
    assert report.method == "upsert"
    assert_restored(store, collection, 300)


def test_restore_of_a_collection_the_archive_does_not_hold_is_refused_naming_what_it_holds(
    settings: Settings, store: MilvusStore, archive: EmbeddingArchive, checkpoints: Checkpoints,
) -> None:
    archived(settings, archive, n=10)
    with pytest.raises(BadInputError, match=r"no rows of collection other_col .*archive export"):
        Restorer(archive, store, checkpoints, settings).run(Target("other_col", DIM))
    assert not store.has_collection("other_col")


def test_export_writes_milvus_rows_to_the_archive_and_a_second_export_changes_nothing(
    settings: Settings, store: MilvusStore, archive: EmbeddingArchive, checkpoints: Checkpoints,
    tmp_path: Path,
) -> None:
    collection = name(settings)
    store.ensure_named(collection, DIM)
    store.upsert_columns(collection, columns(0, 130))
    store.flush(collection)
    assert export_collection(archive, store, collection, MODEL, batch_rows=50) == 130
    assert export_collection(archive, store, collection, MODEL, batch_rows=50) == 130
    assert archive.describe(collection).rows == 130
    assert sum(archive.rows_per_item(collection).values()) == 130
    store.drop(collection)
    Restorer(archive, store, checkpoints, settings).run(Target(collection, DIM))
    rows = milvus_rows(store, collection)
    assert len(rows) == 130
    expected = columns(0, 130)
    assert np.allclose(rows[expected.pks[3]]["vector"], expected.vectors[3])


def test_an_archived_row_milvus_refuses_is_left_out_and_named_and_the_rest_restored(
    settings: Settings, store: MilvusStore, archive: EmbeddingArchive, checkpoints: Checkpoints,
) -> None:
    collection = name(settings)
    bad = columns(0, 60)
    bad.scalars["url"][17] = "https://v.example/" + "x" * 5000  # over the field's 4096 bytes
    archive.append(collection, MODEL, DIM, bad)
    report = Restorer(archive, store, checkpoints, settings).run(Target(collection, DIM))
    assert (report.rows, report.refused, report.milvus_rows) == (60, 1, 59)
    assert any(bad.pks[17] in note for note in report.notes)
    assert bad.pks[17] not in milvus_rows(store, collection)
