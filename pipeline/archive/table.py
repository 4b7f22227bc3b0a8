"""Writer batches (``Columns``) as Arrow tables, and back.

One row per segment: ``pk``, the scalar columns Milvus stores (``columns.SCALAR_COLUMNS``; the
metadata as JSON text), ``vector`` as ``fixed_size_list<float32>[dimension]`` and ``seq``, the
append sequence that decides which copy of a primary key is the latest.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.milvus.columns import FLOAT32, Columns

SEQ = "seq"
"""Append sequence (nanoseconds since the epoch at append): the highest copy of a pk wins."""

_SCALAR_TYPES: dict[str, pa.DataType] = {
    "category": pa.string(),
    "url": pa.string(),
    "start_s": pa.float64(),
    "end_s": pa.float64(),
    "option": pa.string(),
    "scope": pa.string(),
    "model": pa.string(),
    "item_key": pa.string(),
    "job_id": pa.string(),
    "ingested_at": pa.int64(),
    "title": pa.string(),
    "metadata": pa.string(),
}
SCALARS = tuple(_SCALAR_TYPES)


def schema(dimension: int) -> pa.Schema:
    fields = [pa.field("pk", pa.string(), nullable=False)]
    fields += [pa.field(name, kind) for name, kind in _SCALAR_TYPES.items()]
    fields += [
        pa.field("vector", pa.list_(pa.float32(), dimension), nullable=False),
        pa.field(SEQ, pa.int64(), nullable=False),
    ]
    return pa.schema(fields)


def to_table(columns: Columns, dimension: int, seq: int) -> pa.Table:
    """``columns`` as a table of ``schema(dimension)``; every row carries ``seq``."""
    if columns.vectors.ndim != 2 or columns.vectors.shape[1] != dimension:
        raise ValueError(f"vectors of shape {columns.vectors.shape} in a {dimension}-dimension archive")
    missing = set(SCALARS) - set(columns.scalars)
    if missing:
        raise ValueError(f"columns lack {', '.join(sorted(missing))}")
    n = len(columns)
    flat = pa.array(np.ascontiguousarray(columns.vectors, dtype=FLOAT32).reshape(-1))
    arrays: list[pa.Array] = [pa.array(columns.pks, pa.string())]
    arrays += [
        pa.array(_text(columns.scalars["metadata"]) if name == "metadata" else columns.scalars[name], kind)
        for name, kind in _SCALAR_TYPES.items()
    ]
    arrays += [
        pa.FixedSizeListArray.from_arrays(flat, dimension),
        pa.array(np.full(n, seq, dtype=np.int64)),
    ]
    return pa.Table.from_arrays(arrays, schema=schema(dimension))


def to_columns(table: pa.Table) -> Columns:
    """Rows of an archive table as ``Columns`` (metadata back to JSON bytes, as Milvus takes it)."""
    vector = table.column("vector").combine_chunks()
    dimension = vector.type.list_size
    flat = vector.flatten().to_numpy(zero_copy_only=False).astype(FLOAT32, copy=False)
    scalars = {name: table.column(name).to_pylist() for name in SCALARS}
    scalars["metadata"] = [m.encode("utf-8") if m is not None else b"null" for m in scalars["metadata"]]
    return Columns(
        pks=table.column("pk").to_pylist(),
        vectors=flat.reshape(len(table), dimension),
        scalars=scalars,
    )


def _text(values: list[object]) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes | bytearray) else str(v) for v in values]
