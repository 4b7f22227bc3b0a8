"""The moment rule: which of a video's scored segments are its best moments, stitched and ranked.

The moment rule, per video, over its clip segments with their fused scores:

* ``best`` is the video's highest segment score and ``floor`` the lowest of its ``window`` best
  segment scores (``moment_window_segments``; a video of fewer segments: its lowest). The rule is
  scale-free: a 4-hour video's thousands of filler segments do not lower its floor, so a moment
  of a long video is cut as it would be in a short one, and the search needs only each video's
  ``window`` nearest rows per option, whatever its length;
* a segment is *close to the best* when its score is at least
  ``best - tolerance x (best - floor)`` (``moment_tolerance``, 0..1; 0 keeps the best segment only);
* adjacent or overlapping close segments (a gap of at most ``MAX_GAP_S``) are stitched into one
  moment ``[first start, last end]`` scored by its best segment;
* moments are ranked by score, at most ``max_moments`` are kept, and the video's score is its
  best moment's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.search.results import Moment

MAX_GAP_S = 0.5
"""Segments at most this far apart count as adjacent."""
DEFAULT_WINDOW = 64
"""The segments whose lowest score is the floor when no window is given."""


@dataclass(frozen=True, slots=True)
class ScoredSegment:
    """One clip segment of a video with its fused score."""

    start_s: float
    end_s: float
    score: float


def threshold(scores: Sequence[float], tolerance: float, window: int = DEFAULT_WINDOW) -> float:
    """The score a segment needs to be close to the best (see the module docstring)."""
    ranked = sorted(scores, reverse=True)[: max(1, window)]
    best = ranked[0]
    return best - tolerance * (best - ranked[-1])


def stitch(
    segments: Sequence[ScoredSegment], tolerance: float, max_moments: int,
    window: int = DEFAULT_WINDOW,
) -> list[Moment]:
    """The best moments of one video's segments, best first (at most ``max_moments``)."""
    if not segments:
        return []
    cut = threshold([s.score for s in segments], tolerance, window)
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
