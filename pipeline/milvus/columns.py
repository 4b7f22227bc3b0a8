"""Column-wise write batches: segments -> one array per field -> a Milvus insert/upsert request.

pymilvus turns row dicts into its wire message one value at a time in Python (every float of every
vector); at a few thousand rows per call that costs more than the Milvus round trip on a real
server. Here each field becomes one column, and the vectors go from the segments' packed
little-endian float32 bytes straight into the message: the bytes are joined and parsed as the
packed ``repeated float`` they already are, with no per-float Python work.

Only :mod:`pipeline.milvus.store` sends these requests (it owns the connection and the error mapping).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymilvus import DataType
from pymilvus.grpc_gen import milvus_pb2, schema_pb2

from pipeline.segments import Segment

FLOAT32 = np.dtype("<f4")

# name -> (DataType, protobuf scalar attribute)
SCALAR_COLUMNS: dict[str, tuple[DataType, str]] = {
    "category": (DataType.VARCHAR, "string_data"),
    "url": (DataType.VARCHAR, "string_data"),
    "start_s": (DataType.DOUBLE, "double_data"),
    "end_s": (DataType.DOUBLE, "double_data"),
    "option": (DataType.VARCHAR, "string_data"),
    "scope": (DataType.VARCHAR, "string_data"),
    "model": (DataType.VARCHAR, "string_data"),
    "item_key": (DataType.VARCHAR, "string_data"),
    "job_id": (DataType.VARCHAR, "string_data"),
    "ingested_at": (DataType.INT64, "long_data"),
    "title": (DataType.VARCHAR, "string_data"),
    "metadata": (DataType.JSON, "json_data"),
}


@dataclass(frozen=True)
class Columns:
    """Rows as columns: ``pks[i]``, ``vectors[i]`` and ``scalars[name][i]`` are row ``i``."""

    pks: list[str]
    vectors: np.ndarray
    scalars: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(self.pks)

    def slice(self, start: int, stop: int) -> Columns:
        """Rows ``start`` to ``stop`` (for isolating a rejected row by halving)."""
        return Columns(
            pks=self.pks[start:stop],
            vectors=self.vectors[start:stop],
            scalars={name: values[start:stop] for name, values in self.scalars.items()},
        )

    def unique(self) -> Columns:
        """One row per pk, the last occurrence kept (a batch must not repeat a primary key)."""
        last = {pk: i for i, pk in enumerate(self.pks)}
        if len(last) == len(self.pks):
            return self
        keep = sorted(last.values())
        return Columns(
            pks=[self.pks[i] for i in keep],
            vectors=self.vectors[keep],
            scalars={name: [values[i] for i in keep] for name, values in self.scalars.items()},
        )


def columns_of(segments: Sequence[Segment], dimension: int, ingested_at_ms: int,
               metadata: Sequence[bytes], titles: Sequence[str]) -> Columns:
    """Columns of checked segments; ``metadata`` (JSON bytes) and ``titles`` already normalised."""
    vectors = np.frombuffer(b"".join(s.vector for s in segments), dtype=FLOAT32)
    return Columns(
        pks=[s.pk for s in segments],
        vectors=vectors.reshape(len(segments), dimension),
        scalars={
            "category": [s.category for s in segments],
            "url": [s.url for s in segments],
            "start_s": [float(s.start_s) for s in segments],
            "end_s": [float(s.end_s) for s in segments],
            "option": [s.option for s in segments],
            "scope": [s.scope for s in segments],
            "model": [s.model for s in segments],
            "item_key": [s.item_key for s in segments],
            "job_id": [s.job_id for s in segments],
            "ingested_at": [ingested_at_ms] * len(segments),
            "title": list(titles),
            "metadata": list(metadata),
        },
    )


def metadata_json(value: Any) -> bytes:
    """The JSON bytes Milvus stores for a metadata value."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def vector_field(vectors: np.ndarray) -> schema_pb2.FieldData:
    """The FLOAT_VECTOR field: the packed float32 bytes parsed as ``FloatArray.data`` at once."""
    field = schema_pb2.FieldData(type=DataType.FLOAT_VECTOR, field_name="vector")
    field.vectors.dim = int(vectors.shape[1])
    raw = np.ascontiguousarray(vectors, dtype=FLOAT32).tobytes()
    field.vectors.float_vector.MergeFromString(b"\x0a" + _varint(len(raw)) + raw)  # field 1, packed
    return field


def scalar_field(name: str, values: list[Any]) -> schema_pb2.FieldData:
    dtype, attr = SCALAR_COLUMNS[name]
    field = schema_pb2.FieldData(type=dtype, field_name=name)
    getattr(field.scalars, attr).data.extend(values)
    return field


def request(collection: str, columns: Columns, *, upsert: bool) -> Any:
    """An UpsertRequest (``upsert``) or InsertRequest carrying every column."""
    pk = schema_pb2.FieldData(type=DataType.VARCHAR, field_name="pk")
    pk.scalars.string_data.data.extend(columns.pks)
    fields = [pk, vector_field(columns.vectors)]
    fields += [scalar_field(name, values) for name, values in columns.scalars.items()]
    kind = milvus_pb2.UpsertRequest if upsert else milvus_pb2.InsertRequest
    return kind(collection_name=collection, num_rows=len(columns), fields_data=fields)


def columns_from_rows(rows: Sequence[dict[str, Any]]) -> Columns:
    """Columns of rows read back from Milvus (every field; ``metadata`` as parsed JSON)."""
    scalars = {
        name: [metadata_json(r[name]) if name == "metadata" else r[name] for r in rows]
        for name in SCALAR_COLUMNS
    }
    vectors = np.asarray([r["vector"] for r in rows], dtype=FLOAT32)
    return Columns(pks=[str(r["pk"]) for r in rows], vectors=vectors, scalars=scalars)
