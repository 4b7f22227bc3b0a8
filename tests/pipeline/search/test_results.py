"""Search results as JSON: what ``vidsearch search --json`` and the API print, read back by the cache."""

from __future__ import annotations

from pipeline.search.results import (
    Moment,
    SearchResult,
    VideoHit,
    apply_floor,
    hits_from_json,
    result_to_json,
)


def test_result_json_round_trips() -> None:
    hit = VideoHit("u", "t", "c", 0.5, 1.0, 2.0, [Moment(1.0, 2.0, 0.5)], "visual")
    rows = result_to_json(SearchResult([hit]))
    assert rows[0]["moments"] == [{"start_s": 1.0, "end_s": 2.0, "score": 0.5}]
    assert hits_from_json(rows) == [hit]


def test_the_floor_keeps_the_hits_at_or_above_it_and_the_best_near_misses() -> None:
    hits = [VideoHit(f"u{i}", "", "c", score, 0.0, 6.0) for i, score in
            enumerate([0.8, 0.25, 0.24, 0.1, 0.05, 0.0, -0.1])]
    result = apply_floor(SearchResult(hits, cached=True), 0.25)
    assert [h.url for h in result.hits] == ["u0", "u1"]
    assert result.min_score == 0.25 and result.below_floor == 5 and result.cached
    assert [h.url for h in result.near_misses] == ["u2", "u3", "u4"]
    assert apply_floor(SearchResult(hits), -1.0).hits == hits
