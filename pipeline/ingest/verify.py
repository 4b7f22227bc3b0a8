"""Compare a job's items (the Redis ledger) with what Milvus holds: ``vidsearch verify JOB``.

The ledger side: the job's index of item keys (``{prefix}:job:{job}:keys``, appended when an
item is admitted; ``ledger.store.job_item_keys``), each item that still names the job as its owner
(``j``) with its state, category and ``exp`` (segments its Twelve Labs task produced), from its
hash or, once done, its compact done record. Items not admitted yet are counted
from the job's counters. The Milvus side: the
rows of those items (queried by ``item_key`` in chunks), their primary keys and categories, and
``count(*)`` of the same filters. Discrepancies:

* the job is still running (items not yet done or failed): counts cannot match yet;
* a done item with no rows, or with a number of rows other than ``exp``;
* rows of an item that is not done (failed or still active);
* duplicate primary keys (``count(*)`` above the number of distinct pks, or a pk returned twice);
* per category, rows differing from the sum of ``exp`` of the done items of that category.

With the embedding archive on, the archive's rows per item (``rows_per_item``) are compared too:

* a done item whose archived rows differ from ``exp`` (an archive that misses rows cannot restore
  them; items ingested before the archive existed: ``vidsearch archive export``);
* what a restore would bring back: items (and their rows) the archive holds more of than Milvus
  (``restorable_items`` / ``restorable_rows``; ``vidsearch restore``).

A done item found with fewer rows than expected means Milvus lost rows: the collection's
generation is bumped, so cached search results made from them are not served again.

Items a later job took over (``--force`` or a repeat) belong to that job and are checked there.
Cost: the job's own items only (one GETRANGE and one pipelined read per ``READ_BATCH`` keys), plus
one Milvus query per ``CHUNK`` items; other jobs' items are never read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from pipeline.errors import VidsearchError
from pipeline.ledger.records import Item
from pipeline.ledger.store import JobStore, job_item_keys, read_items
from pipeline.milvus.filters import one_of
from pipeline.state.generation import bump_generation

CHUNK = 200
"""Item keys per Milvus filter (``item_key in [...]``)."""
MAX_LISTED = 50
"""Discrepancies listed in full; the rest are counted."""


class RowReader(Protocol):
    """What verify reads from Milvus (``pipeline.milvus.store.MilvusStore``)."""

    def collection_for(self, model: str, dimension: int) -> str: ...

    def has_collection(self, name: str) -> bool: ...

    def count(self, collection: str, filter: str = "") -> int: ...

    def iter_rows(
        self, collection: str, filter: str, fields: Sequence[str]
    ) -> Iterator[dict[str, Any]]: ...


class ArchiveCounts(Protocol):
    """What verify reads from the archive (``pipeline.archive.store.EmbeddingArchive``)."""

    def collections(self) -> list[str]: ...

    def rows_per_item(self, collection: str) -> dict[str, int]: ...


@dataclass(slots=True)
class VerifyReport:
    """What ``verify_job`` found; ``ok`` when there is no discrepancy."""

    job_id: str
    collection: str
    status: str
    counters: dict[str, int]
    items: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    expected_rows: int = 0
    distinct_pks: int = 0
    milvus_count: int = 0
    rows_by_category: dict[str, int] = field(default_factory=dict)
    expected_by_category: dict[str, int] = field(default_factory=dict)
    archived_rows: int | None = None
    """Rows the archive holds of the job's items (None: the archive is off)."""
    restorable_items: int = 0
    restorable_rows: int = 0
    """Items (rows) the archive holds more of than Milvus: what ``vidsearch restore`` brings back."""
    discrepancies: list[str] = field(default_factory=list)
    more_discrepancies: int = 0

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    def flag(self, text: str) -> None:
        if len(self.discrepancies) < MAX_LISTED:
            self.discrepancies.append(text)
        else:
            self.more_discrepancies += 1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass(slots=True)
class _Tally:
    by_item: Counter[str] = field(default_factory=Counter)
    by_category: Counter[str] = field(default_factory=Counter)
    pks: Counter[str] = field(default_factory=Counter)
    count: int = 0


def job_items(jobs: JobStore, job_id: str) -> list[Item]:
    """Every admitted item the job still owns, from the job's index of item keys."""
    found: list[Item] = []
    seen: set[str] = set()
    for batch in job_item_keys(jobs.r, jobs.keys, job_id):
        keys = [k for k in dict.fromkeys(batch) if k not in seen]
        seen.update(keys)
        items = read_items(jobs.r, jobs.keys, keys)
        found += [i for i in items if i is not None and i.job_id == job_id]
    return found


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _tally(store: RowReader, collection: str, keys: Sequence[str]) -> _Tally:
    tally = _Tally()
    for start in range(0, len(keys), CHUNK):
        expr = one_of("item_key", keys[start:start + CHUNK])
        tally.count += store.count(collection, expr)
        for row in store.iter_rows(collection, expr, ("pk", "item_key", "category")):
            tally.by_item[row["item_key"]] += 1
            tally.by_category[row["category"]] += 1
            tally.pks[row["pk"]] += 1
    return tally


def verify_job(jobs: JobStore, store: RowReader, job_id: str,
               archive: ArchiveCounts | None = None) -> VerifyReport:
    """Compare the job's ledger with Milvus (and the archive, when given); see the module
    docstring for what is checked."""
    job = jobs.get_job(job_id)
    if job is None:
        raise VidsearchError(f"no such job: {job_id}")
    collection = jobs.collection(job_id) or store.collection_for(job.spec.model,
                                                                 job.spec.dimension or 512)
    report = VerifyReport(job_id=job_id, collection=collection, status=job.status,
                          counters=dict(job.counters))
    items = job_items(jobs, job_id)
    report.items = dict(Counter(i.state for i in items))
    tally = _tally(store, collection, [i.key for i in items]) if store.has_collection(collection) \
        else _Tally()
    report.rows, report.milvus_count = sum(tally.by_item.values()), tally.count
    report.distinct_pks = len(tally.pks)
    report.rows_by_category = dict(sorted(tally.by_category.items()))
    _check_progress(report, items, job.counters)
    _check_items(report, items, tally)
    _check_duplicates(report, tally)
    _check_categories(report, items)
    if archive is not None:  # a collection never archived holds no rows there
        held = archive.rows_per_item(collection) if collection in archive.collections() else {}
        _check_archive(report, items, tally, held)
    if any(i.state == "done" and tally.by_item.get(i.key, 0) < (i.expected or 0) for i in items):
        bump_generation(jobs.r, jobs.keys, collection)  # Milvus lost rows: retire cached results
    return report


def _check_progress(
    report: VerifyReport, items: Sequence[Item], counters: dict[str, int]
) -> None:
    admitted_open = sum(1 for i in items if i.state not in ("done", "failed"))
    active = max(admitted_open, counters["queued"] - counters["done"] - counters["failed"])
    if active:
        report.flag(f"job is still running: {active} item(s) neither done nor failed")


def _check_items(report: VerifyReport, items: Sequence[Item], tally: _Tally) -> None:
    for item in items:
        rows = tally.by_item.get(item.key, 0)
        if item.state != "done":
            if rows:
                report.flag(f"item {_name(item)} is {item.state} but has {rows} row(s)")
            continue
        expected = item.expected
        if expected is None:
            report.flag(f"item {_name(item)} is done but records no expected segments")
            continue
        report.expected_rows += expected
        if rows == 0 and expected > 0:
            report.flag(f"item {_name(item)} is done but has no rows (expected {expected})")
        elif rows != expected:
            report.flag(f"item {_name(item)} has {rows} row(s), expected {expected}")


def _name(item: Item) -> str:
    """The item's key, and its URL while the ledger holds it (a done item's is in Milvus)."""
    return f"{item.key} ({item.url})" if item.url else item.key


def _check_duplicates(report: VerifyReport, tally: _Tally) -> None:
    repeated = sum(1 for n in tally.pks.values() if n > 1)
    if repeated:
        report.flag(f"{repeated} primary key(s) returned more than once")
    if tally.count != len(tally.pks):
        report.flag(f"count(*) is {tally.count} but there are {len(tally.pks)} distinct primary keys")


def _check_categories(report: VerifyReport, items: Sequence[Item]) -> None:
    expected: Counter[str] = Counter()
    for item in items:
        if item.state == "done" and item.expected:
            expected[item.category] += item.expected
    report.expected_by_category = dict(sorted(expected.items()))
    for category in sorted(set(expected) | set(report.rows_by_category)):
        want, got = expected.get(category, 0), report.rows_by_category.get(category, 0)
        if want != got:
            report.flag(f"category {category!r}: {got} row(s), expected {want}")


def _check_archive(report: VerifyReport, items: Sequence[Item], tally: _Tally,
                   archived: dict[str, int]) -> None:
    report.archived_rows = 0
    for item in items:
        have = archived.get(item.key, 0)
        report.archived_rows += have
        if have > tally.by_item.get(item.key, 0):
            report.restorable_items += 1
            report.restorable_rows += have - tally.by_item.get(item.key, 0)
        if item.state == "done" and item.expected is not None and have != item.expected:
            report.flag(f"item {_name(item)}: the archive holds {have} row(s), expected "
                        f"{item.expected}")
