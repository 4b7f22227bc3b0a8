"""Fusing per-row similarity scores into one score per clip segment.

A segment (url, start, end) has one row per embedding option (visual, audio, transcription);
a query has one or more parts (text, clip, image, ...). ``fuse`` computes, per segment,

    score = sum_p W_p * (sum_m w_m * s_pm / sum_m w_m) / sum_p W_p

with the user's part weights ``W_p`` and modality weights ``w_m``. A score the candidate rows do not
hold (the row fell outside a part's result list: the search reads each candidate video's
``moment_window_segments`` nearest rows per option) is imputed with the lowest score that part and
option returned over every video, a conservative stand-in (an imputation from the video's own
window, an upper bound, was tried and ranked no better on the section 7 benches). A modality no
part returned any row of is left out of that segment's mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

SegmentKey = tuple[str, float, float]
"""(url, start_s, end_s) of a clip segment."""


@dataclass
class PartScores:
    """The scores one query part got: (segment, option) -> similarity, with its weight."""

    weight: float
    scores: dict[tuple[SegmentKey, str], float] = field(default_factory=dict)

    def add(self, key: SegmentKey, option: str, score: float) -> None:
        current = self.scores.get((key, option))
        if current is None or score > current:
            self.scores[(key, option)] = score

    def floors(self) -> dict[str, float]:
        """The lowest score seen per option."""
        low: dict[str, float] = {}
        for (_, option), score in self.scores.items():
            if score < low.get(option, float("inf")):
                low[option] = score
        return low


def _part_score(
    part: PartScores, key: SegmentKey, modalities: Mapping[str, float], floors: Mapping[str, float]
) -> float | None:
    total = weight = 0.0
    for option, w in modalities.items():
        if option not in floors:
            continue
        score = part.scores.get((key, option), floors[option])
        total += w * score
        weight += w
    return total / weight if weight else None


def segment_keys(parts: Iterable[PartScores]) -> set[SegmentKey]:
    """Every segment any part scored."""
    return {key for part in parts for key, _ in part.scores}


def fuse(parts: Sequence[PartScores], modalities: Mapping[str, float]) -> dict[SegmentKey, float]:
    """The fused score of every segment any part scored (see the module docstring)."""
    floors = [p.floors() for p in parts]
    fused: dict[SegmentKey, float] = {}
    for key in segment_keys(parts):
        total = weight = 0.0
        for part, low in zip(parts, floors, strict=True):
            score = _part_score(part, key, modalities, low)
            if score is not None and part.weight > 0:
                total += part.weight * score
                weight += part.weight
        if weight:
            fused[key] = total / weight
    return fused
