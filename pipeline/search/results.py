"""Search results: the videos a search returns, their moments, and their JSON form.

A :class:`SearchResult` holds :class:`VideoHit` s, best first; each hit carries its best
:class:`Moment` s (see ``moments.py`` for the rule that finds them). ``apply_floor`` splits the
hits at the relevance floor: those scored below it are not results but the result keeps how many
there were and the best few of them (the near misses), so a caller can say why nothing came back.
``result_to_json`` is what ``vidsearch search --json`` and the API print; ``hits_from_json`` reads
it back (the result cache).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any


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


NEAR_MISSES = 3
"""How many of the hits below the floor a result keeps."""


@dataclass(frozen=True)
class SearchResult:
    """The hits of one search, best first; ``cached`` when served from the result cache;
    ``min_score`` the floor applied (None: none), ``below_floor`` how many hits it hid and
    ``near_misses`` the best of those."""

    hits: list[VideoHit]
    cached: bool = False
    min_score: float | None = None
    below_floor: int = 0
    near_misses: list[VideoHit] = field(default_factory=list)


def apply_floor(result: SearchResult, min_score: float) -> SearchResult:
    """``result`` without the hits scored below ``min_score`` (kept as counts and near misses)."""
    kept = [h for h in result.hits if h.score >= min_score]
    below = [h for h in result.hits if h.score < min_score]
    return replace(result, hits=kept, min_score=min_score, below_floor=len(below),
                   near_misses=below[:NEAR_MISSES])


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
