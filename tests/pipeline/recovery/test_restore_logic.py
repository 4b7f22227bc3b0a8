"""The restore's decisions around bulk import, with a stand-in Milvus (the real server is in
test_restore.py): a server that cannot read the files means upserts, said so; a file whose import
task the server already ran is never imported again."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from pipeline.archive.store import EmbeddingArchive
from pipeline.milvus.columns import Columns
from pipeline.recovery.checkpoint import Checkpoints
from pipeline.recovery.restore import Restorer, Target
from pipeline.settings import Settings, load_settings
from pipeline.state.keys import Keys
from tests.pipeline.recovery.test_restore import DIM, MODEL, columns


class FakeServer:
    """A Milvus 2.3.5 as the restore sees it; ``unreadable`` makes every import fail reading."""

    def __init__(self, *, unreadable: bool = False) -> None:
        self.unreadable = unreadable
        self.rows: dict[str, int] = {}
        self.imports: dict[str, int] = {}
        self.states: dict[int, str] = {}
        self.started: list[str] = []
        self.crash_on_wait = False

    def ensure_named(self, name: str, dimension: int) -> str:
        return name

    def has_alias(self, alias: str) -> bool:
        return False

    def point_alias(self, alias: str, collection: str, *, exists: bool) -> None:
        pass

    def collection_identity(self, name: str) -> str:
        return "1@1"

    def server_version(self) -> str:
        return "v2.3.5-lite"

    def count(self, collection: str, filter: str = "") -> int:
        return len(self.rows)

    def bulk_insert_tasks(self, collection: str) -> dict[str, int]:
        return dict(self.imports)

    def bulk_insert(self, collection: str, files: list[str]) -> int:
        task = len(self.states) + 1
        self.started += files
        self.imports[files[0]] = task
        self.states[task] = "failed" if self.unreadable else "completed"
        if not self.unreadable:
            import pyarrow.parquet as pq

            for pk in pq.read_table(files[0], columns=["pk"]).column("pk").to_pylist():
                self.rows[pk] = self.rows.get(pk, 0) + 1
        return task

    def bulk_insert_state(self, task: int) -> tuple[str, int, str]:
        if self.crash_on_wait:
            self.crash_on_wait = False
            raise KeyboardInterrupt
        if self.states[task] == "failed":
            return "failed", 0, "failed to get file size of 'x', error: no such file or directory"
        return "completed", 0, ""

    def upsert_columns(self, collection: str, cols: Columns) -> None:
        for pk in cols.pks:
            self.rows[pk] = 1

    def flush(self, collection: str) -> None:
        pass


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(archive_url=str(tmp_path / "archive"), data_dir=tmp_path / "data",
                         restore_batch_rows=25, restore_import_rows=50)


@pytest.fixture
def archive(settings: Settings) -> EmbeddingArchive:
    found = EmbeddingArchive.from_settings(settings)
    assert found is not None
    found.append("col", MODEL, DIM, columns(0, 120))
    return found


@pytest.fixture
def checkpoints(redis_client: redis.Redis) -> Checkpoints:
    return Checkpoints(redis_client, Keys(f"t{uuid.uuid4().hex[:6]}"))


def restorer(archive: EmbeddingArchive, server: FakeServer, checkpoints: Checkpoints,
             settings: Settings, said: list[str] | None = None) -> Restorer:
    fake: Any = server
    return Restorer(archive, fake, checkpoints, settings,
                    say=(said.append if said is not None else None))


def test_a_server_that_cannot_read_the_import_files_is_restored_by_upserts_and_told_why(
    archive: EmbeddingArchive, checkpoints: Checkpoints, settings: Settings,
) -> None:
    server, said = FakeServer(unreadable=True), []
    report = restorer(archive, server, checkpoints, settings, said).run(Target("col", DIM))
    assert report.method == "upsert" and report.milvus_rows == 120
    assert server.started  # it tried bulk import first
    assert any("cannot read the import files" in text and "restore_import_dir" in text
               for text in said), said


def test_a_file_whose_import_the_server_ran_before_a_crash_is_not_imported_again(
    archive: EmbeddingArchive, checkpoints: Checkpoints, settings: Settings,
) -> None:
    server = FakeServer()
    server.crash_on_wait = True  # killed after starting imports, before recording one
    with pytest.raises(KeyboardInterrupt):
        restorer(archive, server, checkpoints, settings).run(Target("col", DIM))
    assert server.started  # imports started (two at a time), none recorded as done
    report = restorer(archive, server, checkpoints, settings).run(Target("col", DIM))
    assert report.method == "bulk" and report.milvus_rows == 120
    assert len(server.started) == len(set(server.started)) == 3  # 120 rows, 50 per file
    assert set(server.rows.values()) == {1}  # no row imported twice
