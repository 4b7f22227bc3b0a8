"""``EmbeddingArchive``: append writer batches as Parquet files, read them back de-duplicated.

Layout under the archive's root (``docs/archive.md``)::

    <collection>/_collection.json                      {"model": ..., "dimension": ...}
    <collection>/category=<category>/part-<seq>-<id>.parquet

Each ``append`` writes one file per category of the batch, every row stamped with the append's
sequence (``table.SEQ``, nanoseconds, strictly increasing within a process). A primary key may be
stored many times (replays, ``--force`` re-embeds, a batch archived before Milvus failed); readers
keep one copy per pk: the highest sequence, then the later file, then the later row. ``compact``
rewrites a collection into files holding only those copies (sequences kept), commits them, and only
then removes the files it read: a scan during or after a crash of ``compact`` sees either the old
files, or old and new together, and returns each pk once in both cases.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.archive.files import ArchiveFiles, FileInfo, translated
from pipeline.archive.table import SEQ, schema, to_columns, to_table
from pipeline.errors import ArchiveError, ArchiveUnavailableError
from pipeline.milvus.columns import Columns
from pipeline.settings import Settings

MANIFEST = "_collection.json"
COMPACT_FILE_ROWS = 16384
"""Rows per file ``compact`` writes (32 MiB of vectors at 512 dimensions)."""
INDEX_ATTEMPTS = 3
"""Listings a reader tries when a listed file vanishes before it is read (a compaction removed it)."""
COMMIT_THREADS = 4
"""Files of one append (one per category of the batch) committed at once: their fsyncs or uploads
overlap instead of adding up."""
STALE_TMP_S = 3600.0
"""``compact`` removes local temporary files older than this (a crashed writer's)."""
_COLLECTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_STRING_COLUMNS = ["pk", "category", "url", "option", "scope", "model", "item_key", "job_id", "title",
                   "metadata"]


@dataclass(frozen=True)
class ArchivedCollection:
    collection: str
    model: str
    dimension: int
    rows: int
    """Distinct primary keys: what a scan (and a restore) returns."""
    stored_rows: int
    """Rows in the files, copies of a pk included (``rows`` after a compaction)."""
    files: int
    bytes: int
    categories: list[str]


@dataclass(frozen=True)
class CompactStats:
    collection: str
    files_before: int
    files_after: int
    rows_before: int
    rows_after: int
    bytes_before: int
    bytes_after: int
    temporaries_removed: int


@dataclass(frozen=True)
class _Latest:
    """The files of a collection (in order) and, per file, the rows that hold a pk's latest copy."""

    files: list[FileInfo]
    rows: dict[int, np.ndarray]
    stored_rows: int
    item_keys: pa.Array | None = None

    @property
    def distinct(self) -> int:
        return sum(len(r) for r in self.rows.values())


class EmbeddingArchive:
    """The embedding archive of one deployment (a directory or an object storage prefix)."""

    def __init__(self, files: ArchiveFiles) -> None:
        self._files = files
        self._known: dict[str, int] = {}  # collection -> dimension its manifest holds
        self._lock = threading.Lock()
        self._last_seq = 0
        self._committing = ThreadPoolExecutor(max_workers=COMMIT_THREADS, thread_name_prefix="archive-commit")

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddingArchive | None:
        """The archive the settings name; ``None`` when ``archive_url`` is empty (off)."""
        files = ArchiveFiles.from_settings(settings)
        return cls(files) if files is not None else None

    @property
    def url(self) -> str:
        return self._files.url

    def ping(self) -> None:
        """Raise ``ArchiveUnavailableError`` unless the archive can be written (or reached) now."""
        self._files.ping()

    # --- writing ------------------------------------------------------------------------------------
    def _part_name(self, collection: str, category: str, seq: int, tag: str = "") -> str:
        return (f"{collection}/category={quote(category, safe='')}/"
                f"part-{seq:020d}-{tag}{uuid.uuid4().hex[:8]}.parquet")

    def append(self, collection: str, model: str, dimension: int, columns: Columns) -> None:
        """Archive one writer batch; durable when this returns (each file committed whole)."""
        if not len(columns):
            return
        self._ensure_manifest(_checked(collection), model, dimension)
        try:
            table = to_table(columns, dimension, self._next_seq())
        except (ValueError, pa.ArrowException) as exc:
            raise ArchiveError(f"archive: a batch of {collection} cannot be archived: {exc}") from exc
        seq = int(table.column(SEQ)[0].as_py())
        files = [(self._part_name(collection, category, seq), _parquet(part, model))
                 for category, part in _by_category(table)]
        if len(files) == 1:
            self._files.commit(*files[0])
            return
        commits = [self._committing.submit(self._files.commit, name, data) for name, data in files]
        wait(commits)  # every file is committed (or failed) before this returns
        for commit in commits:
            commit.result()  # the first failure, if any, as its ArchiveError

    def _next_seq(self) -> int:
        with self._lock:
            self._last_seq = max(time.time_ns(), self._last_seq + 1)
            return self._last_seq

    def _ensure_manifest(self, collection: str, model: str, dimension: int) -> None:
        known = self._known.get(collection)
        if known is None:
            manifest = self._manifest(collection)
            if manifest is None:
                body = json.dumps({"collection": collection, "model": model, "dimension": dimension})
                self._files.commit(f"{collection}/{MANIFEST}", body.encode())
                manifest = {"dimension": dimension}
            known = self._known[collection] = int(str(manifest["dimension"]))
        if known != dimension:
            raise ArchiveError(
                f"archive: {collection} holds {known}-dimension vectors, not {dimension}")

    def _manifest(self, collection: str) -> dict[str, object] | None:
        raw = self._files.read_bytes(f"{collection}/{MANIFEST}")
        if raw is None:
            return None
        try:
            manifest = json.loads(raw)
            int(manifest["dimension"])
            str(manifest["model"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ArchiveError(f"archive: {collection}/{MANIFEST} is not a valid manifest: {exc}") from exc
        return dict(manifest)

    # --- reading ------------------------------------------------------------------------------------
    def collections(self) -> list[str]:
        """Collections that have archived rows (or at least a manifest)."""
        return [name for name in self._files.children()
                if _COLLECTION_NAME.match(name) and self._manifest(name) is not None]

    def describe(self, collection: str) -> ArchivedCollection:
        """Model, dimension, distinct and stored rows, files and bytes of an archived collection."""
        manifest = self._required(collection)
        latest = self._latest(collection)
        categories = sorted({f.path.split("/")[1].removeprefix("category=") for f in latest.files})
        return ArchivedCollection(
            collection=collection, model=str(manifest["model"]), dimension=int(str(manifest["dimension"])),
            rows=latest.distinct, stored_rows=latest.stored_rows, files=len(latest.files),
            bytes=sum(f.size for f in latest.files), categories=categories,
        )

    def scan(self, collection: str, batch_rows: int = 8192) -> Iterator[Columns]:
        """Every archived row once (latest copy of each pk), ``batch_rows`` rows at a time at most."""
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        self._required(collection)
        for table in self._latest_tables(self._latest(collection), batch_rows):
            yield to_columns(table)

    def rows_per_item(self, collection: str) -> dict[str, int]:
        """``item_key`` -> distinct primary keys archived for it."""
        self._required(collection)
        latest = self._latest(collection, with_items=True)
        if latest.item_keys is None or not len(latest.item_keys):
            return {}
        counts = pc.value_counts(latest.item_keys)
        return {str(k): int(n) for k, n in zip(counts.field("values").to_pylist(),
                                               counts.field("counts").to_pylist(), strict=True)}

    def _required(self, collection: str) -> dict[str, object]:
        manifest = self._manifest(_checked(collection))
        if manifest is None:
            archived = ", ".join(self.collections()) or "none"
            raise ArchiveError(f"archive {self.url} has no collection {collection} (archived: {archived})")
        return manifest

    def _parts(self, collection: str) -> list[FileInfo]:
        """Parquet files in reading order: by sequence, a compacted file after the appended files of
        its sequence (so of two equal copies, a compaction's wins), then by name."""
        files = [f for f in self._files.listing(collection) if f.path.endswith(".parquet")]
        return sorted(files, key=_file_order)

    def _latest(self, collection: str, *, with_items: bool = False) -> _Latest:
        """Which row of which file holds each pk's latest copy (reads pk and seq columns only).

        A file that vanishes between the listing and its reading (a compaction committed its
        replacement and removed it) makes this list the collection again."""
        wanted = ["pk", SEQ, "item_key"] if with_items else ["pk", SEQ]
        for _ in range(INDEX_ATTEMPTS):
            files = self._parts(collection)
            pieces = self._index_pieces(files, wanted)
            if pieces is not None:
                break
        else:
            raise ArchiveUnavailableError(f"archive: {collection}'s files kept changing while read")
        if not pieces:
            return _Latest(files, {}, 0, pa.array([], pa.string()) if with_items else None)
        with translated(f"index {collection}"):
            index = pa.concat_tables(pieces)
            order = pc.sort_indices(index, sort_keys=[
                ("pk", "ascending"), (SEQ, "descending"), ("file", "descending"), ("row", "descending")])
            index = index.take(order)
            pks = index.column("pk").combine_chunks()
            first = np.ones(len(index), dtype=bool)
            if len(index) > 1:
                first[1:] = pc.not_equal(pks[1:], pks[:-1]).to_numpy(zero_copy_only=False)
            winners = index.filter(pa.array(first))
        file_no = winners.column("file").to_numpy()
        row_no = winners.column("row").to_numpy()
        rows = {int(f): np.sort(row_no[file_no == f]) for f in np.unique(file_no)}
        items = winners.column("item_key").combine_chunks() if with_items else None
        return _Latest(files, rows, len(index), items)

    def _index_pieces(self, files: list[FileInfo], wanted: list[str]) -> list[pa.Table] | None:
        pieces: list[pa.Table] = []
        for number, info in enumerate(files):
            part = self._files.reader_if_present(info.path, lambda f: pq.read_table(f, columns=wanted))
            if part is None:
                return None
            n = len(part)
            part = part.append_column("file", pa.array(np.full(n, number, dtype=np.int32)))
            pieces.append(part.append_column("row", pa.array(np.arange(n, dtype=np.int32))))
        return pieces

    def _latest_tables(self, latest: _Latest, batch_rows: int) -> Iterator[pa.Table]:
        """The winning rows, file by file, re-cut into tables of at most ``batch_rows`` rows."""
        pending: list[pa.Table] = []
        held = 0
        for number, info in enumerate(latest.files):
            rows = latest.rows.get(number)
            if rows is None:
                continue
            with translated(f"read {info.path}"):
                table = self._files.reader(info.path, pq.read_table).take(pa.array(rows))
                pending.append(table.cast(schema(table.schema.field("vector").type.list_size)))
            held += len(table)
            while held >= batch_rows:
                joined = pa.concat_tables(pending)
                yield joined.slice(0, batch_rows)
                pending, held = [joined.slice(batch_rows)], held - batch_rows
        if held:
            yield pa.concat_tables(pending)

    # --- compaction ---------------------------------------------------------------------------------
    def compact(self, collection: str) -> CompactStats:
        """Rewrite ``collection`` into files holding each pk once, then remove the files it read.

        New files are committed before any old one is removed; rows appended meanwhile are in files
        this did not read and stay. Also removes local temporary files older than ``STALE_TMP_S``.
        """
        manifest = self._required(collection)
        latest = self._latest(collection)
        before = latest.files
        written: list[FileInfo] = []
        model = str(manifest["model"])
        for table in self._latest_tables(latest, COMPACT_FILE_ROWS):
            for category, part in _by_category(table):
                seq = int(pc.max(part.column(SEQ)).as_py())
                name = self._part_name(collection, category, seq, "c")
                data = _parquet(part, model)
                self._files.commit(name, data)
                written.append(FileInfo(name, data.size, time.time()))
        self._files.delete([f.path for f in before])
        removed = self._files.remove_stale_temporaries(collection, STALE_TMP_S)
        return CompactStats(
            collection=collection, files_before=len(before), files_after=len(written),
            rows_before=latest.stored_rows, rows_after=latest.distinct,
            bytes_before=sum(f.size for f in before), bytes_after=sum(f.size for f in written),
            temporaries_removed=removed,
        )


def _file_order(info: FileInfo) -> tuple[str, bool, str]:
    name = info.path.rsplit("/", 1)[-1]  # part-<seq 20 digits>-[c]<id>.parquet
    seq, _, rest = name.removeprefix("part-").partition("-")
    return seq, rest.startswith("c"), name


def _checked(collection: str) -> str:
    if not _COLLECTION_NAME.match(collection):
        raise ArchiveError(f"archive: {collection!r} is not a collection name")
    return collection


def _by_category(table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    categories = table.column("category")
    values = pc.unique(categories).to_pylist()
    if len(values) == 1:
        yield str(values[0] or ""), table
        return
    for value in values:
        mask = pc.is_null(categories) if value is None else pc.equal(categories, value)
        yield str(value or ""), table.filter(mask)


def _parquet(table: pa.Table, model: str) -> pa.Buffer:
    """One Parquet file: strings dictionary-encoded and lz4-compressed, vectors stored plain (float32
    does not compress; zstd saved 5 B a segment more for twice the encoding time)."""
    sink = pa.BufferOutputStream()
    table = table.replace_schema_metadata({"vidsearch.model": model})
    compression = {name: "lz4" for name in table.column_names}
    compression["vector"] = "none"
    with translated("encode Parquet"):
        pq.write_table(table, sink, compression=compression, use_dictionary=_STRING_COLUMNS,
                       write_statistics=["pk", SEQ])
    return sink.getvalue()
