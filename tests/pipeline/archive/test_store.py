"""EmbeddingArchive on a local directory and on S3-compatible storage (moto's server on 127.0.0.1):
appends come back once per primary key (latest wins), counted per item, described, compacted."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.archive.files import ArchiveFiles, FileInfo
from pipeline.archive.store import EmbeddingArchive
from pipeline.errors import ArchiveError, ArchiveUnavailableError, ConfigError
from pipeline.milvus.columns import Columns
from pipeline.settings import load_settings
from tests.s3_server import SECRET_KEY, MotoS3

DIM = 8
MODEL = "marengo3.0"


def columns(pks: list[str], *, category: str = "news", value: float = 0.0,
            items: list[str] | None = None) -> Columns:
    n = len(pks)
    vectors = np.arange(n * DIM, dtype=np.float32).reshape(n, DIM) / 100 + np.float32(value)
    return Columns(pks=list(pks), vectors=vectors, scalars={
        "category": [category] * n, "url": [f"https://v.example/{p}" for p in pks],
        "start_s": [float(i) for i in range(n)], "end_s": [i + 6.0 for i in range(n)],
        "option": ["visual"] * n, "scope": ["clip"] * n, "model": [MODEL] * n,
        "item_key": items or [p.split("-")[0] for p in pks], "job_id": ["job1"] * n,
        "ingested_at": [1_700_000_000_000] * n, "title": [f"title {p}" for p in pks],
        "metadata": [json.dumps({"pk": p, "tags": ["a", "é"]}).encode() for p in pks],
    })


def rows(archive: EmbeddingArchive, collection: str, batch_rows: int = 8192) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for batch in archive.scan(collection, batch_rows=batch_rows):
        for i, pk in enumerate(batch.pks):
            assert pk not in found, f"{pk} scanned twice"
            found[pk] = {name: values[i] for name, values in batch.scalars.items()}
            found[pk]["vector"] = batch.vectors[i].tolist()
    return found


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3]:
    server = MotoS3().start()
    yield server
    server.stop()


@pytest.fixture(params=["local", "s3"])
def archive(request: pytest.FixtureRequest, tmp_path: Path) -> EmbeddingArchive:
    if request.param == "local":
        settings = load_settings(archive_url=str(tmp_path / "archive"))
    else:
        server: MotoS3 = request.getfixturevalue("s3")
        settings = load_settings(**server.settings(server.bucket()))
    made = EmbeddingArchive.from_settings(settings)
    assert made is not None
    return made


def test_appended_rows_scan_back_with_every_column_as_written(archive: EmbeddingArchive) -> None:
    batch = columns(["a-1", "a-2", "b-1"])
    archive.append("vs_c", MODEL, DIM, batch)
    found = rows(archive, "vs_c")
    assert sorted(found) == ["a-1", "a-2", "b-1"]
    for i, pk in enumerate(batch.pks):
        assert found[pk]["vector"] == batch.vectors[i].tolist()
        for name, values in batch.scalars.items():
            assert found[pk][name] == values[i], name
    assert archive.collections() == ["vs_c"]


def test_a_pk_appended_again_scans_once_with_the_latest_copy(archive: EmbeddingArchive) -> None:
    archive.append("vs_c", MODEL, DIM, columns(["a-1", "a-2", "b-1"], value=0.0))
    archive.append("vs_c", MODEL, DIM, columns(["a-1", "c-1"], value=5.0, category="sport"))
    archive.append("vs_c", MODEL, DIM, columns(["a-1"], value=9.0))  # a replay after a --force
    found = rows(archive, "vs_c")
    assert sorted(found) == ["a-1", "a-2", "b-1", "c-1"]
    assert found["a-1"]["vector"][0] == pytest.approx(9.0)
    assert found["c-1"]["category"] == "sport"
    assert archive.rows_per_item("vs_c") == {"a": 2, "b": 1, "c": 1}
    described = archive.describe("vs_c")
    assert (described.rows, described.stored_rows, described.files) == (4, 6, 3)
    assert (described.model, described.dimension, described.categories) == (MODEL, DIM, ["news", "sport"])
    assert described.bytes > 0


def test_a_batch_of_several_categories_is_one_file_per_category(archive: EmbeddingArchive) -> None:
    mixed = columns([f"a-{i}" for i in range(6)])
    mixed.scalars["category"][:] = ["news", "sport", "music"] * 2
    archive.append("vs_c", MODEL, DIM, mixed)
    described = archive.describe("vs_c")
    assert (described.files, described.categories) == (3, ["music", "news", "sport"])
    found = rows(archive, "vs_c")
    filed = dict(zip(mixed.pks, mixed.scalars["category"], strict=True))
    assert {pk: r["category"] for pk, r in found.items()} == filed


def test_a_pk_repeated_within_one_append_keeps_its_last_occurrence(tmp_path: Path) -> None:
    archive = EmbeddingArchive.from_settings(load_settings(archive_url=str(tmp_path)))
    assert archive is not None
    batch = columns(["a-1", "a-1"], value=0.0)
    archive.append("vs_c", MODEL, DIM, batch)
    assert rows(archive, "vs_c")["a-1"]["vector"] == batch.vectors[1].tolist()


def test_scan_cuts_batches_of_at_most_batch_rows_and_misses_nothing(tmp_path: Path) -> None:
    archive = EmbeddingArchive.from_settings(load_settings(archive_url=str(tmp_path)))
    assert archive is not None
    for n in range(5):
        archive.append("vs_c", MODEL, DIM, columns([f"i{n}-{j}" for j in range(7)]))
    sizes = [len(b) for b in archive.scan("vs_c", batch_rows=4)]
    assert max(sizes) <= 4 and sum(sizes) == 35
    assert len(rows(archive, "vs_c", batch_rows=4)) == 35


def test_compact_leaves_one_copy_per_pk_and_the_same_scan(archive: EmbeddingArchive) -> None:
    for value in (0.0, 1.0, 2.0):
        archive.append("vs_c", MODEL, DIM, columns([f"a-{j}" for j in range(10)], value=value))
    archive.append("vs_c", MODEL, DIM, columns(["b-1"], category="sport"))
    before = rows(archive, "vs_c")
    stats = archive.compact("vs_c")
    assert (stats.files_before, stats.rows_before, stats.rows_after) == (4, 31, 11)
    assert stats.files_after == 2  # one per category
    assert rows(archive, "vs_c") == before
    described = archive.describe("vs_c")
    assert (described.rows, described.stored_rows, described.files) == (11, 11, 2)
    archive.append("vs_c", MODEL, DIM, columns(["a-0"], value=7.0))  # later appends still win
    assert rows(archive, "vs_c")["a-0"]["vector"][0] == pytest.approx(7.0)


def test_a_compact_that_dies_before_removing_the_old_files_still_scans_each_pk_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = EmbeddingArchive.from_settings(load_settings(archive_url=str(tmp_path)))
    assert archive is not None
    for value in (0.0, 3.0):
        archive.append("vs_c", MODEL, DIM, columns([f"a-{j}" for j in range(6)], value=value))
    before = rows(archive, "vs_c")

    def die_half_way(self: ArchiveFiles, paths: list[str]) -> None:
        (tmp_path / paths[0]).unlink()
        raise KeyboardInterrupt("killed while removing old files")

    with monkeypatch.context() as patch:
        patch.setattr(ArchiveFiles, "delete", die_half_way)
        with pytest.raises(KeyboardInterrupt):
            archive.compact("vs_c")
    assert archive.describe("vs_c").files == 2  # the new file and one old one
    assert rows(archive, "vs_c") == before
    archive.compact("vs_c")
    assert rows(archive, "vs_c") == before and archive.describe("vs_c").files == 1


def test_compact_removes_stale_temporaries_a_crashed_writer_left(tmp_path: Path) -> None:
    archive = EmbeddingArchive.from_settings(load_settings(archive_url=str(tmp_path)))
    assert archive is not None
    archive.append("vs_c", MODEL, DIM, columns(["a-1"]))
    stale = tmp_path / "vs_c" / "category=news" / ".tmp-crashed"
    stale.write_bytes(b"half a file")
    os.utime(stale, (1, 1))
    fresh = stale.with_name(".tmp-being-written")
    fresh.write_bytes(b"")
    assert archive.compact("vs_c").temporaries_removed == 1
    assert not stale.exists() and fresh.exists()
    assert sorted(rows(archive, "vs_c")) == ["a-1"]


def test_a_batch_of_another_dimension_is_refused(archive: EmbeddingArchive) -> None:
    archive.append("vs_c", MODEL, DIM, columns(["a-1"]))
    with pytest.raises(ArchiveError, match="8-dimension"):
        wide = Columns(["x"], np.zeros((1, 16), np.float32), columns(["x"]).scalars)
        archive.append("vs_c", MODEL, 16, wide)


def test_an_unknown_collection_is_a_clear_error_naming_the_archived_ones(archive: EmbeddingArchive) -> None:
    archive.append("vs_c", MODEL, DIM, columns(["a-1"]))
    with pytest.raises(ArchiveError, match=r"no collection vs_other \(archived: vs_c\)"):
        archive.describe("vs_other")
    with pytest.raises(ArchiveError, match="not a collection name"):
        list(archive.scan("../etc"))


def test_an_unwritable_directory_is_unavailable_and_works_once_fixed(tmp_path: Path) -> None:
    blocker = tmp_path / "archive"
    blocker.write_text("a file where the directory should be")
    archive = EmbeddingArchive.from_settings(load_settings(archive_url=str(blocker / "sub")))
    assert archive is not None
    with pytest.raises(ArchiveUnavailableError):
        archive.ping()
    with pytest.raises(ArchiveUnavailableError):
        archive.append("vs_c", MODEL, DIM, columns(["a-1"]))
    blocker.unlink()
    archive.ping()
    archive.append("vs_c", MODEL, DIM, columns(["a-1"]))
    assert sorted(rows(archive, "vs_c")) == ["a-1"]


def test_object_storage_down_is_unavailable_without_leaking_the_secret(tmp_path: Path) -> None:
    server = MotoS3().start()
    try:
        archive = EmbeddingArchive.from_settings(load_settings(**server.settings(server.bucket())))
        assert archive is not None
        archive.append("vs_c", MODEL, DIM, columns(["a-1"]))
        server.stop()
        with pytest.raises(ArchiveUnavailableError) as failed:
            archive.append("vs_c", MODEL, DIM, columns(["a-2"]))
        assert SECRET_KEY not in str(failed.value)
        with pytest.raises(ArchiveUnavailableError):
            archive.ping()
        server.start()
        archive.append("vs_c", MODEL, DIM, columns(["a-2"]))
        assert sorted(rows(archive, "vs_c")) == ["a-1", "a-2"]
    finally:
        server.stop()


def test_an_empty_archive_url_turns_the_archive_off_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    assert EmbeddingArchive.from_settings(load_settings(archive_url="")) is None
    default = EmbeddingArchive.from_settings(load_settings(data_dir=tmp_path))
    assert default is not None and default.url == str(tmp_path.resolve() / "archive")
    with pytest.raises(ConfigError, match="s3://bucket/prefix"):
        EmbeddingArchive.from_settings(load_settings(archive_url="ftp://host/dir"))


def test_a_file_removed_between_listing_and_reading_makes_the_reader_list_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = EmbeddingArchive.from_settings(load_settings(archive_url=str(tmp_path)))
    assert archive is not None
    archive.append("vs_c", MODEL, DIM, columns(["a-1", "a-2"]))
    archive.append("vs_c", MODEL, DIM, columns(["a-1"], value=4.0))
    listing = ArchiveFiles.listing
    stale = iter([True])

    def listed_before_a_compaction(self: ArchiveFiles, under: str = "") -> list[FileInfo]:
        files = listing(self, under)
        if next(stale, False):  # the first listing still names a file a compaction then removed
            return [*files, FileInfo("vs_c/category=news/part-00000000000000000001-gone.parquet", 1, 0.0)]
        return files

    monkeypatch.setattr(ArchiveFiles, "listing", listed_before_a_compaction)
    found = rows(archive, "vs_c")
    assert sorted(found) == ["a-1", "a-2"] and found["a-1"]["vector"][0] == pytest.approx(4.0)


def test_after_a_compaction_readers_prefer_its_copy_of_an_equal_sequence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = EmbeddingArchive.from_settings(load_settings(archive_url=str(tmp_path)))
    assert archive is not None
    archive.append("vs_c", MODEL, DIM, columns(["a-1", "a-2"]))
    (appended,) = (tmp_path / "vs_c" / "category=news").glob("part-*.parquet")
    last_by_name = appended.with_name(appended.name.rsplit("-", 1)[0] + "-ffffffff.parquet")
    appended.rename(last_by_name)  # by name alone it would sort after the compacted file
    with monkeypatch.context() as patch:  # a compaction that stops before removing anything
        patch.setattr(ArchiveFiles, "delete", lambda self, paths: None)
        archive.compact("vs_c")
    read = ArchiveFiles.reader

    def removed_before_the_rows_are_read(self: ArchiveFiles, path: str, use: Any) -> Any:
        last_by_name.unlink(missing_ok=True)  # the compaction resumes between index and read
        return read(self, path, use)

    monkeypatch.setattr(ArchiveFiles, "reader", removed_before_the_rows_are_read)
    assert sorted(rows(archive, "vs_c")) == ["a-1", "a-2"]
