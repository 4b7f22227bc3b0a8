"""The segment record the poller appends to the Redis stream and the writer reads.

Stream entries use short field names; the vector travels as packed little-endian float32 bytes
(``pack_vector`` / ``unpack_vector``), never as a JSON list. Times are stored with ``repr`` so that
they come back bit-exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Segment", "pack_vector", "unpack_vector"]

FLOAT32 = np.dtype("<f4")
# Field overhead of one entry in a Milvus request and in Redis, roughly (ids, scalars, framing).
_ENTRY_OVERHEAD = 128

# attribute name -> stream field name, for the text fields
_TEXT_FIELDS = {
    "pk": b"pk",
    "item_key": b"ik",
    "job_id": b"j",
    "url": b"u",
    "category": b"c",
    "title": b"t",
    "metadata": b"m",
    "model": b"md",
    "option": b"o",
    "scope": b"sc",
}
_TIME_FIELDS = {"start_s": b"s", "end_s": b"e"}
_VECTOR_FIELD = b"v"
_COLLECTION_FIELD = b"cl"
"""The target collection of a model version's segment (absent: the model's default collection)."""


def pack_vector(values: Sequence[float]) -> bytes:
    """Packed little-endian float32 bytes of ``values``."""
    return np.asarray(values, dtype=FLOAT32).tobytes()


def unpack_vector(data: bytes) -> list[float]:
    """The floats of a packed vector; ``ValueError`` when the length is not a multiple of 4."""
    if len(data) % FLOAT32.itemsize:
        raise ValueError(f"packed vector length {len(data)} is not a multiple of 4")
    values: list[float] = np.frombuffer(data, dtype=FLOAT32).tolist()
    return values


@dataclass(slots=True)
class Segment:
    """One embedding segment of one item, ready for Milvus."""

    pk: str
    item_key: str
    job_id: str
    url: str
    category: str
    title: str
    metadata: str
    model: str
    option: str
    scope: str
    start_s: float
    end_s: float
    vector: bytes
    collection: str = ""
    """The collection of the item's model version (empty: ``store.collection_for`` decides)."""

    @property
    def dim(self) -> int:
        return len(self.vector) // FLOAT32.itemsize

    def values(self) -> list[float]:
        return unpack_vector(self.vector)

    def approx_bytes(self) -> int:
        """Rough size of this segment in a request (for bounding batches by bytes)."""
        text = sum(len(getattr(self, name)) for name in _TEXT_FIELDS)
        return len(self.vector) + text + _ENTRY_OVERHEAD

    def to_fields(self) -> dict[bytes, bytes]:
        """Fields for XADD."""
        fields = {key: getattr(self, name).encode("utf-8") for name, key in _TEXT_FIELDS.items()}
        for name, key in _TIME_FIELDS.items():
            fields[key] = repr(float(getattr(self, name))).encode("ascii")
        fields[_VECTOR_FIELD] = bytes(self.vector)
        if self.collection:
            fields[_COLLECTION_FIELD] = self.collection.encode("utf-8")
        return fields

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> Segment:
        """Rebuild a segment from a stream entry; ``ValueError`` names what is wrong."""
        text = {name: _text(fields, key) for name, key in _TEXT_FIELDS.items()}
        vector = _field(fields, _VECTOR_FIELD)
        if not vector or len(vector) % FLOAT32.itemsize:
            raise ValueError(f"segment entry has a bad vector field ({len(vector)} bytes)")
        return cls(
            pk=text["pk"],
            item_key=text["item_key"],
            job_id=text["job_id"],
            url=text["url"],
            category=text["category"],
            title=text["title"],
            metadata=text["metadata"],
            model=text["model"],
            option=text["option"],
            scope=text["scope"],
            start_s=_time(fields, _TIME_FIELDS["start_s"]),
            end_s=_time(fields, _TIME_FIELDS["end_s"]),
            vector=vector,
            collection=_text(fields, _COLLECTION_FIELD) if _COLLECTION_FIELD in fields else "",
        )


def _field(fields: dict[bytes, bytes], key: bytes) -> bytes:
    try:
        value = fields[key]
    except KeyError:
        raise ValueError(f"segment entry is missing field {key.decode()!r}") from None
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ValueError(f"segment entry field {key.decode()!r} is not bytes")
    return bytes(value)


def _text(fields: dict[bytes, bytes], key: bytes) -> str:
    try:
        return _field(fields, key).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"segment entry field {key.decode()!r} is not UTF-8") from None


def _time(fields: dict[bytes, bytes], key: bytes) -> float:
    raw = _text(fields, key)
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"segment entry field {key.decode()!r} is not a number: {raw[:40]!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"segment entry field {key.decode()!r} is not finite")
    return value
