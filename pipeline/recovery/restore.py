"""``vidsearch restore``: rebuild a collection from the embedding archive, with no Twelve Labs call.

The collection is created as the writer creates it (``MilvusStore.ensure_named``: schema, index,
partition-key partitions from the settings) and the version's aliases point at it again (a Milvus
that lost its data lost them too). Then the archive's rows (``scan``: each primary key once, the
latest append winning) go in by one of two methods:

* **upserts** (any Milvus; the only way into Milvus Lite): batches of ``restore_batch_rows``
  through ``MilvusStore.upsert_columns``. Idempotent by primary key.
* **bulk import** (a Milvus server): Parquet files of ``restore_import_rows`` written to
  ``restore_import_dir`` (``importfiles.py``) and imported (``do_bulk_insert``,
  ``IMPORT_WINDOW`` tasks at a time). An import adds rows, so it is only used on an empty
  collection, and a file is never imported twice: before importing one, the server's import tasks are asked
  whether it was (a restore killed between starting a task and recording it). When the server
  cannot read the files (it runs on another host or on object storage), or refuses bulk import,
  the restore says so and continues by upserts.

A batch Milvus refuses by upsert is halved until the refused rows are found; they are left out,
named and counted (``RestoreReport.refused``), and the rest is restored. After every batch or file
the checkpoint (``checkpoint.py``) records it, so a restore killed
half-way resumes where it was. At the end the rows are flushed, the restore waits until Milvus
counts every archived row (imported rows become visible a few seconds after their task
completes), an upsert pass repairs any shortfall, the generation is bumped (cached results made
from the lost rows are retired) and the checkpoint is removed.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipeline.errors import BadInputError, StoreRejectedError
from pipeline.milvus.columns import Columns
from pipeline.milvus.store import MilvusStore
from pipeline.recovery.checkpoint import Checkpoint, Checkpoints
from pipeline.recovery.importfiles import write_import_file
from pipeline.settings import Settings
from pipeline.state.generation import bump_generation

IMPORT_WINDOW = 2
"""Import tasks running at once (each holds its file on disk until it completes)."""
MAX_NOTED = 20
"""Refused rows named one by one in the report (the rest are counted)."""
IMPORT_POLL_S = 1.0
"""How often an import task's state is asked."""
UNREADABLE = ("no such file", "failed to get file size", "permission denied", "failed to open",
              "not exist", "cannot read")
"""Words of an import failure that mean the server cannot read the file (it is elsewhere)."""

Progress = Callable[[int, int], None]
"""Called with (rows restored so far, rows in the archive)."""
Say = Callable[[str], None]


class ArchiveReader(Protocol):
    """What a restore reads of the archive (``pipeline.archive.store.EmbeddingArchive``)."""

    def collections(self) -> list[str]: ...

    def describe(self, collection: str) -> Any: ...

    def scan(self, collection: str, batch_rows: int = ...) -> Iterator[Columns]: ...


@dataclass(frozen=True, slots=True)
class Target:
    """What to restore: a collection at a dimension, and the aliases that must name it."""

    collection: str
    dimension: int
    aliases: tuple[str, ...] = ()


@dataclass(slots=True)
class RestoreReport:
    """What a restore did."""

    collection: str
    method: str
    rows: int = 0
    """Distinct rows the archive holds (each restored)."""
    resumed_at: int = 0
    """Batches or files an earlier, interrupted run had done (0: a fresh start)."""
    milvus_rows: int = 0
    refused: int = 0
    """Archived rows Milvus refused (named in ``notes``, up to ``MAX_NOTED``)."""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "method": self.method, "rows": self.rows,
                "resumed_at": self.resumed_at, "milvus_rows": self.milvus_rows,
                "refused": self.refused,
                "seconds": round(self.seconds, 2), "notes": self.notes}


@dataclass(frozen=True, slots=True)
class _Pending:
    """An import file whose task runs."""

    index: int
    path: Path
    task: int
    rows: int


class BulkUnavailableError(Exception):
    """The server refused bulk import or cannot read the files: restore by upserts instead."""


class Restorer:
    """Restores one collection from the archive into the store (see the module docstring)."""

    def __init__(self, archive: ArchiveReader, store: MilvusStore, checkpoints: Checkpoints,
                 settings: Settings, *, progress: Progress | None = None,
                 say: Say | None = None) -> None:
        self.archive = archive
        self.store = store
        self.checkpoints = checkpoints
        self.settings = settings
        self._progress = progress or (lambda done, total: None)
        self._say = say or (lambda text: None)
        self._total = 0
        self._notes: list[str] = []
        self.refused = 0
        """Archived rows Milvus refused (left out)."""

    # --- the restore ---------------------------------------------------------------------------
    def run(self, target: Target) -> RestoreReport:
        started = time.monotonic()
        collection = target.collection
        source = self._source(collection)
        self._prepare(target)
        identity = self.store.collection_identity(collection)
        checkpoint = self.checkpoints.resume(collection, identity, source)
        if checkpoint is None:  # saved at once: a rerun keeps the method (and finds the imports)
            checkpoint = Checkpoint(identity, source, self._method(collection))
            self.checkpoints.save(collection, checkpoint)
        report = RestoreReport(collection, checkpoint.method, resumed_at=checkpoint.done)
        report.rows = self._load(collection, checkpoint, report)
        self._finish(collection, report)
        report.seconds = time.monotonic() - started
        return report

    def _source(self, collection: str) -> str:
        """The archive's fingerprint for ``collection``; BadInputError when it holds nothing."""
        described = self.archive.describe(collection) \
            if collection in self.archive.collections() else None
        rows = int(getattr(described, "rows", 0) or 0)
        if not rows:
            known = ", ".join(self.archive.collections()) or "none"
            raise BadInputError(
                f"the archive holds no rows of collection {collection} (archived collections: "
                f"{known}); `vidsearch archive export` archives a collection Milvus still has")
        self._total = rows
        return f"{rows}:{getattr(described, 'files', '')}:{getattr(described, 'bytes', '')}"

    def _prepare(self, target: Target) -> None:
        """The collection as the writer creates it, and its aliases pointing at it."""
        self.store.ensure_named(target.collection, target.dimension)
        for alias in target.aliases:
            self.store.point_alias(alias, target.collection, exists=self.store.has_alias(alias))

    def _method(self, collection: str) -> str:
        wanted = self.settings.restore_method
        if wanted == "upsert":
            return "upsert"
        if self.store.server_version().startswith("milvus_lite"):
            if wanted == "bulk":
                self._note("Milvus Lite has no bulk import: restoring by upserts")
            return "upsert"
        present = self.store.count(collection)
        if present:
            self._note(f"collection {collection} already holds {present} rows: restoring by "
                       "upserts (a bulk import would add a second copy of them)")
            return "upsert"
        return "bulk"

    def _note(self, text: str) -> None:
        self._notes.append(text)
        self._say(text)

    def _load(self, collection: str, checkpoint: Checkpoint, report: RestoreReport) -> int:
        if checkpoint.method == "bulk":
            try:
                return self._bulk(collection, checkpoint)
            except BulkUnavailableError as exc:
                self._note(f"{exc}: restoring by upserts instead")
                checkpoint = Checkpoint(checkpoint.identity, checkpoint.source, "upsert")
                report.method = "upsert"
        return self._upserts(collection, checkpoint)

    # --- upserts -----------------------------------------------------------------------------
    def _upserts(self, collection: str, checkpoint: Checkpoint, *, skip: bool = True) -> int:
        rows = 0
        batches = self.archive.scan(collection, self.settings.restore_batch_rows)
        for index, columns in enumerate(batches):
            if not (skip and index < checkpoint.done):
                self._upsert(collection, columns)
                checkpoint.done, checkpoint.rows = index + 1, rows + len(columns)
                self.checkpoints.save(collection, checkpoint)
            rows += len(columns)
            self._progress(rows, max(rows, self._total))
        return rows

    def _upsert(self, collection: str, columns: Columns) -> None:
        """Upsert ``columns``; a batch Milvus refuses is halved until the refused rows are found,
        and those are left out and noted (the rest of the archive is still restored)."""
        try:
            self.store.upsert_columns(collection, columns)
        except StoreRejectedError as exc:
            if len(columns) == 1:
                self.refused += 1
                if self.refused <= MAX_NOTED:
                    self._note(f"Milvus refused row {columns.pks[0]}: {exc}")
                return
            half = len(columns) // 2
            self._upsert(collection, columns.slice(0, half))
            self._upsert(collection, columns.slice(half, len(columns)))

    # --- bulk import ---------------------------------------------------------------------------
    def _bulk(self, collection: str, checkpoint: Checkpoint) -> int:
        """Import the archive file by file, ``IMPORT_WINDOW`` tasks at a time, checkpointing each
        file once it and every file before it completed."""
        imported = self._known_imports(collection)
        folder = self._import_folder(collection, checkpoint)
        pending: deque[_Pending] = deque()
        rows = 0
        for index, parts in enumerate(self._files(collection)):
            count = sum(len(p) for p in parts)
            if index < checkpoint.done:
                rows += count
                self._progress(rows, max(rows, self._total))
                continue
            path = folder / f"part-{index:05d}.parquet"
            task = self._start(collection, path, parts, imported.get(str(path)))
            pending.append(_Pending(index, path, task, count))
            while len(pending) >= IMPORT_WINDOW:
                rows = self._settle(collection, checkpoint, pending.popleft(), rows)
        while pending:
            rows = self._settle(collection, checkpoint, pending.popleft(), rows)
        return rows

    def _start(self, collection: str, path: Path, parts: Sequence[Columns],
               known: int | None) -> int:
        """The import task of ``path``: one the server already runs or ran (a restore killed
        after starting it), else a new one on a freshly written file."""
        if known is not None and self.store.bulk_insert_state(known)[0] != "failed":
            return known
        write_import_file(path, list(parts))
        try:
            return self.store.bulk_insert(collection, [str(path)])
        except StoreRejectedError as exc:
            raise BulkUnavailableError(f"Milvus refused bulk import ({exc})") from exc

    def _settle(self, collection: str, checkpoint: Checkpoint, item: _Pending, rows: int) -> int:
        """Wait for ``item``'s task and record it; returns the rows restored so far."""
        state = self._wait(item.task)
        if state != "completed":
            raise StoreRejectedError(f"Milvus failed bulk import of {item.path}: {state}")
        rows += item.rows
        checkpoint.done, checkpoint.rows = item.index + 1, rows
        self.checkpoints.save(collection, checkpoint)
        item.path.unlink(missing_ok=True)
        self._progress(rows, max(rows, self._total))
        return rows

    def _known_imports(self, collection: str) -> dict[str, int]:
        try:
            return self.store.bulk_insert_tasks(collection)
        except StoreRejectedError as exc:
            raise BulkUnavailableError(f"Milvus refused to list bulk imports ({exc})") from exc

    def _import_folder(self, collection: str, checkpoint: Checkpoint) -> Path:
        root = Path(self.settings.restore_import_dir or self.settings.data_dir / "restore-import")
        run = hashlib.blake2b(f"{checkpoint.identity}|{checkpoint.source}".encode(),
                              digest_size=6).hexdigest()
        return root.resolve() / collection / run

    def _files(self, collection: str) -> Iterator[list[Columns]]:
        """The archive's rows in groups of about ``restore_import_rows`` (one file each)."""
        parts: list[Columns] = []
        for columns in self.archive.scan(collection, self.settings.restore_batch_rows):
            parts.append(columns)
            if sum(len(p) for p in parts) >= self.settings.restore_import_rows:
                yield parts
                parts = []
        if parts:
            yield parts

    def _wait(self, task: int) -> str:
        """``completed``, or the failure reason of the import task (BulkUnavailableError when the
        server cannot read the file)."""
        deadline = time.monotonic() + self.settings.restore_import_timeout_s
        while time.monotonic() < deadline:
            state, _rows, reason = self.store.bulk_insert_state(task)
            if state == "completed":
                return state
            if state == "failed":
                if any(word in reason.lower() for word in UNREADABLE):
                    raise BulkUnavailableError(
                        f"Milvus cannot read the import files ({reason}); set restore_import_dir "
                        "to a directory the server reads at the same path")
                return reason or "failed"
            time.sleep(IMPORT_POLL_S)
        return f"not finished after {self.settings.restore_import_timeout_s:.0f} s"

    # --- the end -------------------------------------------------------------------------------
    def _finish(self, collection: str, report: RestoreReport) -> None:
        self.store.flush(collection)
        wait_s = self.settings.restore_import_timeout_s if report.method == "bulk" else 0.0
        report.milvus_rows = self._visible(collection, report.rows, wait_s)
        if report.milvus_rows < report.rows - self.refused:
            self._note(f"Milvus counts {report.milvus_rows} of {report.rows} rows: upserting "
                       "every archived row again")
            fresh = Checkpoint(self.store.collection_identity(collection), "", "upsert")
            self._upserts(collection, fresh, skip=False)
            self.store.flush(collection)
            report.milvus_rows = self.store.count(collection)
        bump_generation(self.checkpoints.r, self.checkpoints.keys, collection)
        self.checkpoints.clear(collection)
        report.refused = self.refused
        report.notes = list(self._notes)

    def _visible(self, collection: str, rows: int, wait_s: float) -> int:
        """Milvus' count once it reaches ``rows`` (or ``wait_s`` passed)."""
        deadline = time.monotonic() + wait_s
        while True:
            counted = self.store.count(collection)
            if counted >= rows or time.monotonic() >= deadline:
                return counted
            time.sleep(IMPORT_POLL_S)

