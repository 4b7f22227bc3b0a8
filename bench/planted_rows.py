"""Milvus rows of a planted collection, computed with the sandbox's own functions (no HTTP).

For each catalog entry: ``sandbox.media.describe`` (what the sandbox imagines the video holds),
``sandbox.segments.fixed`` (6 s clips) and ``sandbox.vectors.segment_vector`` keyed exactly as
``vidsearch/sandbox/render.py`` keys them, for the options and scopes vidsearch asks for by default
(visual and audio; clip and asset). So the vectors are the ones the sandbox would have answered
through the real pipeline, and a bench can load thousands of videos in seconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from pipeline.spec import segment_pk
from vidsearch.sandbox import vectors
from vidsearch.sandbox.catalog import _entry
from vidsearch.sandbox.media import describe
from vidsearch.sandbox.planted import Planted
from vidsearch.sandbox.segments import fixed

MODEL = "marengo3.0"
OPTIONS = ("visual", "audio")
SEGMENT_S = 6


def _vector(source: str, concepts: dict[str, float], option: str, span: tuple[str, float, float]
            ) -> np.ndarray:
    scope, start, end = span
    key = f"{source}|{option}|{scope}|{start:.3f}|{end:.3f}"
    return vectors.segment_vector(MODEL, concepts, option, key).astype(np.float32)


def video_rows(entry: dict[str, Any], category: str, item_key: str, ingested_ms: int) -> list[dict[str, Any]]:
    """Clip and asset rows of one catalog entry, as the writer would store them."""
    media = describe(entry["url"], entry["url"], _entry(entry["url"], entry), 20, 180)
    ranges = [("clip", s, e) for s, e in fixed(0.0, media.duration, SEGMENT_S)]
    ranges.append(("asset", 0.0, round(media.duration, 3)))
    rows = []
    for scope, start, end in ranges:
        concepts = media.concepts(start, end)
        for option in OPTIONS:
            rows.append({
                "pk": segment_pk(item_key, option, scope, start, end),
                "vector": _vector(entry["url"], concepts, option, (scope, start, end)),
                "category": category, "url": entry["url"], "start_s": start, "end_s": end,
                "option": option, "scope": scope, "model": MODEL, "item_key": item_key,
                "job_id": "bench", "ingested_at": ingested_ms, "title": entry["title"],
                "metadata": {},
            })
    return rows


def planted_rows(planted: Planted, ingested_ms: Sequence[int]) -> Iterator[dict[str, Any]]:
    """Rows of every manifest line of ``planted`` (category as filed); line n ingested at ingested_ms[n]."""
    entries = {e["url"]: e for e in planted.catalog}
    for n, (url, category, _title) in enumerate(planted.lines):
        yield from video_rows(entries[url], category, f"{n:032x}", ingested_ms[n])
