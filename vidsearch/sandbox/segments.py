"""Cutting a time range into clip segments.

- fixed (v2): pieces of ``duration_sec``; the last one may be shorter (12 s at 5 -> 0-5, 5-10, 10-12);
- dynamic (v2): deterministic pieces between ``min_duration_sec`` and twice that (a stand-in for
  scene boundaries), seeded by the source; a tail shorter than the minimum joins the piece before;
- v1 clips: pieces of ``video_clip_length``; a last piece under 2 s is dropped (31 s at 6 loses 1 s).

All segments are contiguous and cover the range (except the dropped v1 tail). Times are rounded
to milliseconds.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import dataclass

V1_MIN_LAST_S = 2.0
_EPS = 1e-6


@dataclass(frozen=True)
class Segmentation:
    """A segmentation request: ``fixed`` with its length or ``dynamic`` with its minimum."""

    strategy: str
    seconds: int

    def cut(self, start: float, end: float, key: str) -> list[tuple[float, float]]:
        """Segments of [start, end]; ``key`` seeds the dynamic boundaries."""
        if self.strategy == "fixed":
            return fixed(start, end, self.seconds)
        return dynamic(start, end, self.seconds, key)


def fixed(start: float, end: float, length: float) -> list[tuple[float, float]]:
    """Pieces of ``length`` from ``start``; the last one ends at ``end`` and may be shorter."""
    pieces = []
    t = start
    while t < end - _EPS:
        stop = min(t + length, end)
        pieces.append((round(t, 3), round(stop, 3)))
        t = stop
    return pieces


def dynamic(start: float, end: float, minimum: float, key: str) -> list[tuple[float, float]]:
    """Deterministic pieces in [minimum, 2 x minimum); a short tail joins the previous piece."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    rng = random.Random(int.from_bytes(digest, "little"))
    bounds = [start]
    while end - bounds[-1] > 2 * minimum:
        bounds.append(bounds[-1] + round(rng.uniform(minimum, 2 * minimum), 1))
    if end - bounds[-1] < minimum and len(bounds) > 1:
        bounds.pop()
    bounds.append(end)
    return [(round(a, 3), round(b, 3)) for a, b in itertools.pairwise(bounds)]


def v1_clips(start: float, end: float, length: float) -> list[tuple[float, float]]:
    """v1 clips: fixed pieces, a last piece under 2 s dropped (unless it is the only one)."""
    pieces = fixed(start, end, length)
    if len(pieces) > 1 and pieces[-1][1] - pieces[-1][0] < V1_MIN_LAST_S:
        pieces.pop()
    return pieces
