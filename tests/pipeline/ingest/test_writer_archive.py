"""SegmentWriter with the embedding archive (real redis-server, Milvus Lite, a directory or moto's
S3 server): every batch reaches the archive and Milvus before its entries are acknowledged; an
archive that is down holds the batch in the stream like Milvus being down, and it is written once
the archive is back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from pipeline.archive.store import EmbeddingArchive
from pipeline.ingest.writer import SegmentWriter
from pipeline.milvus.store import MilvusStore
from pipeline.settings import Settings
from tests.pipeline.ingest.test_writer import (
    DIM,
    MODEL,
    Ledger,
    RecordingStore,
    length,
    make_segment,
    make_settings,
    pending,
    push,
)
from tests.s3_server import MotoS3


def archived(archive: EmbeddingArchive, collection: str) -> list[str]:
    return [pk for batch in archive.scan(collection) for pk in batch.pks]


def milvus_pks(store: MilvusStore, collection: str) -> list[str]:
    return [str(row["pk"]) for row in store.iter_rows(collection, "", ["pk"])]


def assert_archive_is_milvus(archive: EmbeddingArchive, store: MilvusStore, collection: str, n: int) -> None:
    in_archive, in_milvus = archived(archive, collection), milvus_pks(store, collection)
    assert len(in_archive) == len(set(in_archive)) == n  # each pk once
    assert sorted(in_archive) == sorted(in_milvus)


def make_writer(client: redis.Redis[bytes], settings: Settings, store: MilvusStore | None = None,
                ) -> tuple[SegmentWriter, MilvusStore, Ledger, EmbeddingArchive]:
    archive = EmbeddingArchive.from_settings(settings)
    assert archive is not None
    store = store or RecordingStore(settings)
    ledger = Ledger()
    return SegmentWriter(client, store, ledger, settings, "w1", archive=archive), store, ledger, archive


@pytest.fixture
def cfg(redis_url: str, milvus_uri: str, tmp_path: Path) -> Settings:
    return make_settings(redis_url, milvus_uri, archive_url=str(tmp_path / "archive"))


def test_every_written_row_is_archived_once_even_when_replayed(redis_client, cfg) -> None:
    push(redis_client, cfg, [make_segment(i) for i in range(12)])
    writer, store, _, archive = make_writer(redis_client, cfg)
    assert writer.drain(10).rows == 12
    push(redis_client, cfg, [make_segment(i) for i in range(8)])  # a replay, a --force re-embed
    assert writer.drain(10).rows == 8
    collection = store.collection_for(MODEL, DIM)
    assert_archive_is_milvus(archive, store, collection, 12)
    described = archive.describe(collection)
    assert (described.stored_rows, described.dimension, described.model) == (20, DIM, MODEL)
    assert archive.rows_per_item(collection) == {f"{i:032x}": 4 for i in range(3)}


def test_a_batch_archived_then_refused_by_milvus_is_held_and_archived_once(redis_client, cfg) -> None:
    push(redis_client, cfg, [make_segment(i) for i in range(6)])
    writer, store, ledger, archive = make_writer(redis_client, cfg, RecordingStore(cfg, fail=1))
    first = writer.drain(5)
    assert first.error and first.rows == 0 and ledger.calls == []
    assert pending(redis_client, cfg) == 6
    collection = store.collection_for(MODEL, DIM)
    assert len(archived(archive, collection)) == 6  # archive first: it has the batch already
    time.sleep(cfg.writer_claim_idle_s + 0.05)
    assert writer.drain(5).rows == 6
    assert archive.describe(collection).stored_rows == 12
    assert_archive_is_milvus(archive, store, collection, 6)


def test_an_unwritable_archive_directory_holds_the_batch_until_it_is_writable(
    redis_client, redis_url, milvus_uri, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the archive's parent directory should be")
    settings = make_settings(redis_url, milvus_uri, archive_url=str(blocker / "archive"))
    push(redis_client, settings, [make_segment(i) for i in range(7)])
    writer, store, ledger, archive = make_writer(redis_client, settings)
    down = writer.drain(3)
    assert down.error and "archive" in down.error
    assert (down.rows, ledger.calls) == (0, [])
    assert length(redis_client, settings) == 7  # held in the stream
    collection = store.ensure_collection(MODEL, DIM)
    assert store.count(collection) == 0  # nothing reached Milvus either
    blocker.unlink()
    time.sleep(settings.writer_claim_idle_s + 0.05)
    back = writer.drain(5)
    assert (back.error, back.rows) == (None, 7)
    assert length(redis_client, settings) == 0 and len(ledger.written) == 7
    assert_archive_is_milvus(archive, store, collection, 7)


@pytest.fixture
def s3() -> Iterator[MotoS3]:
    server = MotoS3().start()
    yield server
    server.stop()


def test_object_storage_stopped_mid_job_holds_the_batch_until_it_is_back(
    redis_client, redis_url, milvus_uri, s3: MotoS3
) -> None:
    settings = make_settings(redis_url, milvus_uri, **s3.settings(s3.bucket()))
    writer, store, ledger, archive = make_writer(redis_client, settings)
    push(redis_client, settings, [make_segment(i) for i in range(4)])
    assert writer.drain(5).rows == 4
    s3.stop()
    push(redis_client, settings, [make_segment(i) for i in range(4, 10)])
    down = writer.drain(3)
    assert down.error and "archive" in down.error and down.rows == 0
    assert length(redis_client, settings) == 6 and len(ledger.written) == 4
    s3.start()
    time.sleep(settings.writer_claim_idle_s + 0.05)
    back = writer.drain(5)
    assert (back.error, back.rows) == (None, 6)
    assert length(redis_client, settings) == 0
    assert_archive_is_milvus(archive, store, store.collection_for(MODEL, DIM), 10)


def test_an_append_failing_after_milvus_took_the_batch_acks_nothing_until_both_have_it(
    redis_client, cfg
) -> None:
    writer, store, ledger, archive = make_writer(redis_client, cfg)
    collection = store.collection_for(MODEL, DIM)
    root = Path(archive.url)
    root.mkdir(parents=True)
    (root / collection).write_text("a file where the collection's directory should be")
    push(redis_client, cfg, [make_segment(i) for i in range(5)])
    failed = writer.drain(3)  # the archive answers its ping; the append itself fails
    assert failed.error and "archive" in failed.error and failed.rows == 0
    assert ledger.calls == [] and pending(redis_client, cfg) == 5
    assert store.count(store.ensure_collection(MODEL, DIM)) == 5  # Milvus took it meanwhile
    (root / collection).unlink()
    time.sleep(cfg.writer_claim_idle_s + 0.05)
    assert writer.drain(5).rows == 5
    assert length(redis_client, cfg) == 0 and len(ledger.written) == 5
    assert_archive_is_milvus(archive, store, collection, 5)


def test_what_a_scan_returns_upserts_into_an_empty_collection_as_the_same_rows(redis_client, cfg) -> None:
    push(redis_client, cfg, [make_segment(i, metadata='{"k": [1, "é"]}') for i in range(9)])
    writer, store, _, archive = make_writer(redis_client, cfg)
    assert writer.drain(5).rows == 9
    collection = store.collection_for(MODEL, DIM)
    rebuilt = store.ensure_named(f"{collection}_rebuilt", DIM)
    for batch in archive.scan(collection, batch_rows=4):
        store.upsert_columns(rebuilt, batch)
    store.flush(rebuilt)
    fields = ["pk", "url", "start_s", "end_s", "metadata", "title", "category", "vector"]
    original = {r["pk"]: r for r in store.iter_rows(collection, "", fields)}
    restored = {r["pk"]: r for r in store.iter_rows(rebuilt, "", fields)}
    assert sorted(restored) == sorted(original) and len(restored) == 9
    for pk, row in original.items():
        assert {k: v for k, v in restored[pk].items() if k != "vector"} == \
            {k: v for k, v in row.items() if k != "vector"}
        assert restored[pk]["vector"] == pytest.approx(row["vector"])
