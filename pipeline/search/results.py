"""Search results: the videos a search returns, their moments, and their JSON form.

A :class:`SearchResult` holds :class:`VideoHit` s, best first; each hit carries its best
:class:`Moment` s (see ``moments.py`` for the rule that finds them). ``result_to_json`` is what
``vidsearch search --json`` and the API print; ``hits_from_json`` reads it back (the result cache).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
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


@dataclass(frozen=True)
class SearchResult:
    """The hits of one search, best first; ``cached`` when served from the result cache."""

    hits: list[VideoHit]
    cached: bool = False


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
