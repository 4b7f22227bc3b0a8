"""Search results as JSON: what ``vidsearch search --json`` and the API print, read back by the cache."""

from __future__ import annotations

from pipeline.search.results import Moment, SearchResult, VideoHit, hits_from_json, result_to_json


def test_result_json_round_trips() -> None:
    hit = VideoHit("u", "t", "c", 0.5, 1.0, 2.0, [Moment(1.0, 2.0, 0.5)], "visual")
    rows = result_to_json(SearchResult([hit]))
    assert rows[0]["moments"] == [{"start_s": 1.0, "end_s": 2.0, "score": 0.5}]
    assert hits_from_json(rows) == [hit]
