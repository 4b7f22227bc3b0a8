"""Bulk-import files: archive rows as Parquet in the layout a Milvus server's import reads.

One column per collection field, named as the field: ``pk`` and the VARCHAR fields as strings,
``start_s``/``end_s`` as float64, ``ingested_at`` as int64, ``metadata`` as JSON text and
``vector`` as a list of float32. Milvus 2.3.5 imports such a file with ``do_bulk_insert`` from a
path its own storage reads (local storage: an absolute path on the server's host) and routes each
row by the partition key (measured on the ``milvus`` 2.3.5 wheel).

A file is written under a temporary name and renamed, so the server never reads half a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.milvus.columns import FLOAT32, Columns

_TYPES = {"start_s": pa.float64(), "end_s": pa.float64(), "ingested_at": pa.int64()}


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def table_of(columns: Columns) -> pa.Table:
    """The Parquet table of ``columns`` (every field of the collection)."""
    vectors = columns.vectors.astype(FLOAT32, copy=False)
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    offsets = pa.array(range(0, vectors.size + 1, vectors.shape[1] or 1), type=pa.int32())
    data: dict[str, pa.Array] = {
        "pk": pa.array(columns.pks, type=pa.string()),
        "vector": pa.ListArray.from_arrays(offsets, flat),
    }
    for name, values in columns.scalars.items():
        if name == "metadata":
            data[name] = pa.array([_text(v) for v in values], type=pa.string())
        else:
            data[name] = pa.array(values, type=_TYPES.get(name, pa.string()))
    return pa.table(data)


def write_import_file(path: Path, parts: list[Columns]) -> int:
    """Write ``parts`` as one Parquet file at ``path`` (atomically); returns its rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.concat_tables([table_of(p) for p in parts])
    temporary = path.with_suffix(".tmp")
    pq.write_table(table, temporary)
    os.replace(temporary, path)
    return int(table.num_rows)
