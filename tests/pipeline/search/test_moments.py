"""The moment rule: close-to-best adjacent segments stitched, ranked, at most N."""

from __future__ import annotations

from pipeline.search.moments import ScoredSegment, stitch, threshold
from pipeline.search.results import Moment


def segs(*scores: float, length: float = 6.0) -> list[ScoredSegment]:
    return [ScoredSegment(i * length, (i + 1) * length, s) for i, s in enumerate(scores)]


def test_adjacent_close_segments_make_one_moment_scored_by_its_best() -> None:
    moments = stitch(segs(0.1, 0.8, 0.9, 0.85, 0.1), tolerance=0.5, max_moments=3)
    assert moments == [Moment(6.0, 24.0, 0.9)]


def test_a_weak_segment_between_two_strong_ones_splits_them_best_first() -> None:
    moments = stitch(segs(0.9, 0.1, 0.7, 0.1), tolerance=0.5, max_moments=3)
    assert moments == [Moment(0.0, 6.0, 0.9), Moment(12.0, 18.0, 0.7)]
    assert stitch(segs(0.9, 0.1, 0.7, 0.1), tolerance=0.5, max_moments=1) == [Moment(0.0, 6.0, 0.9)]


def test_tolerance_zero_keeps_the_best_segment_only() -> None:
    assert stitch(segs(0.1, 0.8, 0.9, 0.85), tolerance=0.0, max_moments=3) == [Moment(12.0, 18.0, 0.9)]


def test_the_threshold_is_a_share_of_the_best_to_lowest_gap() -> None:
    assert threshold([0.2, 1.0, 0.6], 0.25) == 0.8


def test_a_gap_longer_than_half_a_second_breaks_a_moment() -> None:
    parted = [ScoredSegment(0, 6, 0.9), ScoredSegment(7, 13, 0.9), ScoredSegment(13.4, 20, 0.9),
              ScoredSegment(30, 36, 0.0)]
    assert [(m.start_s, m.end_s) for m in stitch(parted, 0.5, 5)] == [(0, 6), (7, 20)]


def test_the_floor_is_the_lowest_of_the_window_so_filler_segments_do_not_move_it() -> None:
    scene = [0.9, 0.85, 0.5, 0.45]  # a scene, then a half-related stretch
    short = segs(*scene, *([0.3] * 10))
    long = segs(*scene, *([0.3] * 10), *([0.0] * 2000))  # the same video with 3 h of filler
    assert stitch(short, 0.5, 3, window=8) == stitch(long, 0.5, 3, window=8) \
        == [Moment(0.0, 12.0, 0.9)]
    assert stitch(long, 0.5, 3, window=5000) == [Moment(0.0, 24.0, 0.9)], "floor 0: the old rule"
