"""Search results (videos, their moments) and the rule that stitches segments into moments.

The moment rule, per video, over its clip segments with their fused scores:

* ``best`` is the video's highest segment score and ``floor`` its lowest (what the least related
  stretch of this video scores against the query);
* a segment is *close to the best* when its score is at least
  ``best - tolerance x (best - floor)`` (``moment_tolerance``, 0..1; 0 keeps the best segment only);
* adjacent or overlapping close segments (a gap of at most ``MAX_GAP_S``) are stitched into one
  moment ``[first start, last end]`` scored by its best segment;
* moments are ranked by score, at most ``max_moments`` are kept, and the video's score is its
  best moment's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_GAP_S = 0.5
"""Segments at most this far apart count as adjacent."""


@dataclass(frozen=True, slots=True)
class Moment:
    """A stretch of one video and how well it matches."""

    start_s: float
    end_s: float
    score: float


@dataclass(frozen=True)
class VideoHit:
    """One result: a video, its best moment (or segment) and, with moments on, its best moments."""

    url: str
    title: str
    category: str
    score: float
    start_s: float
    end_s: float
    moments: list[Moment] = field(default_factory=list)
    option: str = ""


@dataclass(frozen=True)
class SearchResult:
    """The hits of one search, best first; ``cached`` when served from the result cache."""

    hits: list[VideoHit]
    cached: bool = False


@dataclass(frozen=True, slots=True)
class ScoredSegment:
    """One clip segment of a video with its fused score."""

    start_s: float
    end_s: float
    score: float


def result_to_json(result: SearchResult) -> list[dict[str, Any]]:
    """What ``vidsearch search --json`` prints: one object per hit."""
    return [asdict(hit) for hit in result.hits]


def hits_from_json(rows: Sequence[dict[str, Any]]) -> list[VideoHit]:
    """The inverse of :func:`result_to_json` (the result cache stores that JSON)."""
    hits = []
    for row in rows:
        moments = [Moment(**m) for m in row.get("moments", [])]
        hits.append(VideoHit(**{**row, "moments": moments}))
    return hits


def threshold(scores: Sequence[float], tolerance: float) -> float:
    """The score a segment needs to be close to the best (see the module docstring)."""
    best = max(scores)
    return best - tolerance * (best - min(scores))


def stitch(
    segments: Sequence[ScoredSegment], tolerance: float, max_moments: int
) -> list[Moment]:
    """The best moments of one video's segments, best first (at most ``max_moments``)."""
    if not segments:
        return []
    cut = threshold([s.score for s in segments], tolerance)
    runs: list[list[ScoredSegment]] = []
    for seg in sorted(segments, key=lambda s: (s.start_s, s.end_s)):
        if seg.score < cut:
            continue
        if runs and seg.start_s <= runs[-1][-1].end_s + MAX_GAP_S:
            runs[-1].append(seg)
        else:
            runs.append([seg])
    moments = [
        Moment(start_s=run[0].start_s, end_s=max(s.end_s for s in run),
               score=max(s.score for s in run))
        for run in runs
    ]
    moments.sort(key=lambda m: m.score, reverse=True)
    return moments[:max_moments]


def best_segment(segments: Sequence[ScoredSegment]) -> ScoredSegment:
    """The highest-scoring segment (the earliest on a tie)."""
    return max(segments, key=lambda s: (s.score, -s.start_s))
