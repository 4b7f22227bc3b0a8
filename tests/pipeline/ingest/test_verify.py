"""verify_job against a real redis-server and Milvus Lite server: a clean job passes, and each kind
of discrepancy (missing rows, extra rows, rows of a failed item, duplicate pks, a wrong category,
a job still running) is reported."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import redis

from pipeline.archive.store import EmbeddingArchive
from pipeline.ingest.verify import verify_job
from pipeline.ledger.store import JobStore
from pipeline.milvus.store import MilvusStore
from pipeline.recovery.export import export_collection
from pipeline.segments import Segment, pack_vector
from pipeline.settings import load_settings
from pipeline.spec import EmbeddingSpec
from pipeline.state.generation import current_generation
from pipeline.state.keys import Keys

pytestmark = pytest.mark.integration

DIM = 512


class Fixture:
    def __init__(self, client: redis.Redis[bytes], milvus_uri: str) -> None:
        self.settings = load_settings(milvus_uri=milvus_uri, collection_prefix=f"v{uuid.uuid4().hex[:8]}")
        self.jobs = JobStore(client, Keys("vs"))
        self.store = MilvusStore(self.settings)
        self.spec = EmbeddingSpec.from_settings(self.settings)
        self.job_id = self.jobs.create_job(["m.csv"], self.spec)
        self.jobs.seal(self.job_id)
        self.collection = self.store.ensure_collection(self.spec.model, DIM)
        self.n = 0

    def item(self, key: str, state: str, category: str, expected: int | None, rows: int, *,
             row_category: str | None = None) -> None:
        mapping: dict[str | bytes, str | int | float | bytes] = {
            "s": state, "j": self.job_id, "cat": category, "url": f"https://v.example/{key}",
        }
        if expected is not None:
            mapping["exp"] = expected
        self.jobs.r.hset(self.jobs.keys.item(key), mapping=mapping)
        self.jobs.r.rpush(self.jobs.keys.items(self.job_id), key)  # as admission does
        self.store.upsert(self.collection, [self.segment(key, row_category or category, i)
                                            for i in range(rows)])

    def segment(self, key: str, category: str, i: int) -> Segment:
        self.n += 1
        vector = np.random.default_rng(self.n).random(DIM).tolist()
        return Segment(
            pk=f"{key[:24]}{i:08d}", item_key=key, job_id=self.job_id, url=f"https://v.example/{key}",
            category=category, title="", metadata="{}", model=self.spec.model, option="visual",
            scope="clip", start_s=float(i), end_s=float(i + 1), vector=pack_vector(vector),
        )

    def verify(self) -> list[str]:
        return verify_job(self.jobs, self.store, self.job_id).discrepancies


@pytest.fixture
def fx(redis_client: redis.Redis[bytes], milvus_uri: str) -> Iterator[Fixture]:
    fixture = Fixture(redis_client, milvus_uri)
    yield fixture
    fixture.store.close()


def clean(fx: Fixture) -> None:
    fx.item("a" * 32, "done", "news", 3, 3)
    fx.item("b" * 32, "done", "sports", 2, 2)
    fx.item("c" * 32, "failed", "news", None, 0)
    fx.item("d" * 32, "done", "news", 0, 0)  # a task that produced no segment


def test_a_clean_job_has_no_discrepancy_and_counts_per_category(fx: Fixture) -> None:
    clean(fx)
    report = verify_job(fx.jobs, fx.store, fx.job_id)
    assert report.ok, report.discrepancies
    assert report.items == {"done": 3, "failed": 1}
    assert report.rows == report.expected_rows == report.milvus_count == report.distinct_pks == 5
    assert report.rows_by_category == report.expected_by_category == {"news": 3, "sports": 2}


def test_items_of_other_jobs_are_not_counted(fx: Fixture) -> None:
    clean(fx)
    fx.jobs.r.hset(fx.jobs.keys.item("e" * 32), mapping={"s": "done", "j": "another-job", "exp": 9})
    fx.jobs.r.rpush(fx.jobs.keys.items(fx.job_id), "e" * 32)  # a later job took it over
    assert fx.verify() == []


def test_verify_reads_the_jobs_own_items_only_never_a_scan_of_all_items(fx: Fixture) -> None:
    clean(fx)
    pipe = fx.jobs.r.pipeline(transaction=False)
    for i in range(3000):  # items of other jobs
        pipe.hset(fx.jobs.keys.item(f"{i:032x}"), mapping={"s": "done", "j": "other", "exp": 1})
    pipe.execute()
    fx.jobs.r.config_resetstat()
    assert fx.verify() == []
    stats = fx.jobs.r.info("commandstats")
    assert "cmdstat_scan" not in stats
    assert stats["cmdstat_hmget"]["calls"] == 4  # the job's four items


def test_items_not_admitted_yet_count_as_running(fx: Fixture) -> None:
    clean(fx)
    fx.jobs.add_counts(fx.job_id, queued=6, done=3, failed=1)  # 2 still waiting, not in the index
    assert any("still running: 2 item(s)" in d for d in fx.verify())


def test_a_done_item_without_rows_is_reported(fx: Fixture) -> None:
    clean(fx)
    fx.item("e" * 32, "done", "news", 4, 0)
    found = fx.verify()
    assert any("is done but has no rows (expected 4)" in d for d in found)
    assert any("category 'news': 3 row(s), expected 7" in d for d in found)


def test_fewer_rows_than_expected_are_reported(fx: Fixture) -> None:
    clean(fx)
    fx.item("e" * 32, "done", "news", 4, 3)
    assert any("has 3 row(s), expected 4" in d for d in fx.verify())


def test_rows_of_a_failed_item_are_reported(fx: Fixture) -> None:
    clean(fx)
    fx.item("e" * 32, "failed", "news", None, 2)
    assert any("is failed but has 2 row(s)" in d for d in fx.verify())


def test_a_job_still_running_is_reported(fx: Fixture) -> None:
    clean(fx)
    fx.item("e" * 32, "processing", "news", None, 0)
    assert any("still running: 1 item(s)" in d for d in fx.verify())


def test_rows_in_the_wrong_category_are_reported(fx: Fixture) -> None:
    clean(fx)
    fx.item("e" * 32, "done", "news", 2, 2, row_category="travel")
    found = fx.verify()
    assert any("category 'travel': 2 row(s), expected 0" in d for d in found)
    assert any("category 'news': 3 row(s), expected 5" in d for d in found)


class Doubling:
    """The real store, except that one pk comes back twice and count(*) counts it twice: what a
    Milvus that kept both rows of a replayed insert would answer (Milvus Lite dedupes, so the
    duplicate cannot be produced there)."""

    def __init__(self, store: MilvusStore) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def count(self, collection: str, filter: str = "") -> int:
        return self.store.count(collection, filter) + 1

    def iter_rows(self, collection: str, filter: str, fields: Sequence[str]) -> Iterator[dict[str, Any]]:
        rows = list(self.store.iter_rows(collection, filter, fields))
        return iter([*rows, rows[0]])


def test_duplicate_primary_keys_are_reported(fx: Fixture) -> None:
    clean(fx)
    found = verify_job(fx.jobs, Doubling(fx.store), fx.job_id).discrepancies
    assert "1 primary key(s) returned more than once" in found
    assert "count(*) is 6 but there are 5 distinct primary keys" in found


def test_a_missing_job_is_an_error(fx: Fixture) -> None:
    with pytest.raises(Exception, match="no such job"):
        verify_job(fx.jobs, fx.store, "nope")


@pytest.mark.parametrize("key", ['x"] or item_key not in ["', "ends with a backslash\\"])
def test_an_item_key_with_quotes_or_backslashes_is_matched_to_its_own_rows_only(
    fx: Fixture, key: str
) -> None:
    # Unescaped, the first key closes the list early and widens the filter to every row of the
    # collection; the second ends its literal's closing quote with a backslash (Milvus refuses).
    # (pks stay hex: pymilvus's query iterator pages with ``pk > "<last pk>"`` unescaped)
    clean(fx)
    fx.item(key, "done", "news", 2, 0)
    rows = [replace(fx.segment(key, "news", i), pk=f"{i:032x}") for i in range(2)]
    fx.store.upsert(fx.collection, [*rows, fx.segment("z" * 32, "news", 0)])  # z: of no job here
    report = verify_job(fx.jobs, fx.store, fx.job_id)
    assert report.ok, report.discrepancies
    assert report.rows == report.milvus_count == 7


def archive_of(fx: Fixture, tmp_path: Any) -> EmbeddingArchive:
    """An archive holding exactly the collection's rows (export from Milvus)."""
    archive = EmbeddingArchive.from_settings(
        fx.settings.model_copy(update={"archive_url": str(tmp_path / "archive")}))
    assert archive is not None
    export_collection(archive, fx.store, fx.collection, fx.spec.model, batch_rows=100)
    return archive


def test_an_archive_that_agrees_adds_no_discrepancy_and_counts_its_rows(fx: Fixture, tmp_path: Any) -> None:
    clean(fx)
    report = verify_job(fx.jobs, fx.store, fx.job_id, archive_of(fx, tmp_path))
    assert report.ok, report.discrepancies
    assert (report.archived_rows, report.restorable_items, report.restorable_rows) == (5, 0, 0)


def test_rows_milvus_lost_are_what_a_restore_brings_back_and_retire_cached_results(
    fx: Fixture, tmp_path: Any,
) -> None:
    clean(fx)
    archive = archive_of(fx, tmp_path)
    fx.store.drop(fx.collection)
    fx.store.ensure_collection(fx.spec.model, DIM)  # Milvus started empty
    before = current_generation(fx.jobs.r, fx.jobs.keys, fx.collection)
    report = verify_job(fx.jobs, fx.store, fx.job_id, archive)
    assert not report.ok
    assert (report.restorable_items, report.restorable_rows) == (2, 5)
    assert current_generation(fx.jobs.r, fx.jobs.keys, fx.collection) == before + 1


def test_a_done_item_the_archive_lacks_rows_of_is_reported(fx: Fixture, tmp_path: Any) -> None:
    clean(fx)
    archive = archive_of(fx, tmp_path)
    fx.item("e" * 32, "done", "news", 2, 2)  # written while the archive was off
    found = verify_job(fx.jobs, fx.store, fx.job_id, archive).discrepancies
    assert found == [f"item {'e' * 32} (https://v.example/{'e' * 32}): the archive holds 0 row(s), "
                     "expected 2"]


def test_a_collection_the_archive_never_held_is_no_error(fx: Fixture, tmp_path: Any) -> None:
    archive = EmbeddingArchive.from_settings(
        fx.settings.model_copy(update={"archive_url": str(tmp_path / "empty")}))
    assert archive is not None
    fx.item("c" * 32, "failed", "news", None, 0)
    report = verify_job(fx.jobs, fx.store, fx.job_id, archive)
    assert report.ok and report.archived_rows == 0
