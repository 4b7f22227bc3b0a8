"""``vidsearch archive export``: a collection's rows from Milvus into the embedding archive.

For collections built before the archive existed: every row, vector included, is read with a
query iterator (``MilvusStore.iter_rows``, Strong consistency) and appended to the archive in
batches of ``restore_batch_rows``. A re-run is harmless: the archive keeps one row per primary
key, the latest append winning (``vidsearch archive compact`` drops the older copies), and the
rows appended are the ones Milvus holds, unchanged (``ingested_at`` and ``job_id`` included).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pipeline.milvus.columns import SCALAR_COLUMNS, Columns, columns_from_rows
from pipeline.milvus.store import MilvusStore

EXPORT_FIELDS = ("pk", "vector", *SCALAR_COLUMNS)

Progress = Callable[[int, int], None]


class ArchiveWriter(Protocol):
    """What an export writes to (``pipeline.archive.store.EmbeddingArchive``)."""

    def append(self, collection: str, model: str, dimension: int, columns: Columns) -> None: ...


def export_collection(archive: ArchiveWriter, store: MilvusStore, collection: str, model: str,
                      *, batch_rows: int, progress: Progress | None = None) -> int:
    """Append every row of ``collection`` to the archive; returns the rows exported."""
    dimension = store.dimension_of(collection)
    total = store.count(collection)
    exported = 0
    batch: list[dict[str, Any]] = []
    for row in store.iter_rows(collection, "", EXPORT_FIELDS, batch_size=batch_rows):
        batch.append(row)
        if len(batch) >= batch_rows:
            exported += _append(archive, collection, model, dimension, batch)
            if progress:
                progress(exported, max(total, exported))
    exported += _append(archive, collection, model, dimension, batch)
    if progress:
        progress(exported, max(total, exported))
    return exported


def _append(archive: ArchiveWriter, collection: str, model: str, dimension: int,
            batch: list[dict[str, Any]]) -> int:
    if not batch:
        return 0
    rows = len(batch)
    archive.append(collection, model, dimension, columns_from_rows(batch).unique())
    batch.clear()
    return rows
