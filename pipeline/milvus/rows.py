"""Segments to Milvus rows and columns, search answers to hits: checks and conversions, no I/O.

A segment fits a collection when its vector has the collection's dimension, its metadata is JSON
(or empty) and its pk and VARCHAR fields are within their lengths (:mod:`pipeline.milvus.schema`);
otherwise :class:`InvalidSegmentError` (:class:`DimensionMismatchError` for the vector) says why,
before anything is sent. A title longer than ``TITLE_MAX_BYTES`` is cut, not refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.errors import DimensionMismatchError, InvalidSegmentError
from pipeline.milvus.columns import Columns, columns_of, metadata_json
from pipeline.milvus.schema import CHECKED_LENGTHS, PK_MAX_LENGTH, SCALAR_FIELDS, TITLE_MAX_BYTES
from pipeline.segments import FLOAT32, Segment


@dataclass(frozen=True, slots=True)
class SegmentHit:
    """One search hit: a segment and its similarity score (higher is closer)."""

    pk: str
    score: float
    url: str
    title: str
    category: str
    start_s: float
    end_s: float
    option: str
    scope: str
    item_key: str
    metadata: Any


def check_segment(segment: Segment, dimension: int, collection: str) -> Any:
    """The segment's parsed metadata; raises InvalidSegmentError when it cannot fit ``collection``."""
    got = segment.dim
    if got != dimension:
        raise DimensionMismatchError(
            f"segment {segment.pk} has vector dimension {got}, "
            f"collection {collection} has vector dimension {dimension}"
        )
    _check_lengths(segment)
    return _metadata(segment)


def _check_lengths(segment: Segment) -> None:
    if len(segment.pk.encode("utf-8")) > PK_MAX_LENGTH:
        raise InvalidSegmentError(f"segment pk {segment.pk!r} is longer than {PK_MAX_LENGTH} bytes")
    for name in CHECKED_LENGTHS:
        limit = SCALAR_FIELDS[name][1] or 0
        if len(str(getattr(segment, name)).encode("utf-8")) > limit:
            raise InvalidSegmentError(f"segment {segment.pk}: {name} is longer than {limit} bytes")


def _metadata(segment: Segment) -> Any:
    if not segment.metadata:
        return {}
    try:
        return json.loads(segment.metadata)
    except ValueError as exc:
        raise InvalidSegmentError(f"segment {segment.pk}: metadata is not JSON: {exc}") from exc


def title_of(segment: Segment) -> str:
    """The title as stored: at most ``TITLE_MAX_BYTES`` of UTF-8, cut at a character boundary."""
    raw = (segment.title or "").encode("utf-8")
    return raw[:TITLE_MAX_BYTES].decode("utf-8", errors="ignore")


def to_row(
    segment: Segment, dimension: int, collection: str, ingested_at_ms: int
) -> dict[str, Any]:
    """The Milvus row of a segment; raises InvalidSegmentError when it cannot fit ``collection``."""
    metadata = check_segment(segment, dimension, collection)
    return {
        "pk": segment.pk,
        "vector": np.frombuffer(segment.vector, dtype=FLOAT32),
        "category": segment.category,
        "url": segment.url,
        "start_s": float(segment.start_s),
        "end_s": float(segment.end_s),
        "option": segment.option,
        "scope": segment.scope,
        "model": segment.model,
        "item_key": segment.item_key,
        "job_id": segment.job_id,
        "ingested_at": ingested_at_ms,
        "title": title_of(segment),
        "metadata": metadata,
    }


def prepare(
    segments: Sequence[Segment], dimension: int, collection: str, ingested_at_ms: int
) -> tuple[list[int], Columns, list[tuple[int, str]]]:
    """Columns of the segments that fit ``collection``, and why the others never will.

    Returns ``(kept, columns, [(index, reason), ...])``: row ``j`` of ``columns`` is
    ``segments[kept[j]]`` (indexes into ``segments``).
    """
    kept: list[int] = []
    metadata: list[bytes] = []
    rejects: list[tuple[int, str]] = []
    for i, segment in enumerate(segments):
        try:
            metadata.append(metadata_json(check_segment(segment, dimension, collection)))
        except InvalidSegmentError as exc:
            rejects.append((i, str(exc)))
        else:
            kept.append(i)
    chosen = [segments[i] for i in kept]
    titles = [title_of(s) for s in chosen]
    return kept, columns_of(chosen, dimension, ingested_at_ms, metadata, titles), rejects


def hit_of(raw: dict[str, Any], *, negate: bool) -> SegmentHit:
    """The hit of one search answer row (``negate``: an L2 distance, made higher-is-closer)."""
    entity = raw.get("entity", {})
    score = float(raw["distance"])
    return SegmentHit(
        pk=str(raw.get("pk", raw.get("id", ""))),
        score=-score if negate else score,
        url=entity.get("url", ""),
        title=entity.get("title", ""),
        category=entity.get("category", ""),
        start_s=float(entity.get("start_s", 0.0)),
        end_s=float(entity.get("end_s", 0.0)),
        option=entity.get("option", ""),
        scope=entity.get("scope", ""),
        item_key=entity.get("item_key", ""),
        metadata=entity.get("metadata"),
    )
