"""/v1/search and /v1/videos/similar over real HTTP on the real stack: the CLI's JSON, the cache
header, every query kind's validation, and the same hits as ``vidsearch search --json``."""

from __future__ import annotations

import json

import pytest

from tests.stack import Stack
from tests.vidsearch.api.conftest import Api, assert_problem, video_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SURF = video_url("animals", "surfing-dog-at-the-beach")


def test_get_search_answers_the_same_hits_as_the_cli(reader: Api, stack: Stack) -> None:
    response = reader.get("/v1/search", params={"text": "surfing dog", "top_k": 5})
    assert response.status_code == 200
    hits = response.json()
    assert hits[0]["url"] == SURF
    assert all(h["end_s"] > h["start_s"] for h in hits)
    cli = json.loads(stack.vidsearch("search", "surfing dog", "--top-k", "5", "--json").stdout)
    assert [h["url"] for h in hits] == [h["url"] for h in cli]


def test_post_search_filters_by_category_and_a_repeat_is_served_from_the_cache(reader: Api) -> None:
    body = {"text": "kneading bread dough", "category": ["cooking"], "top_k": 3}
    first = reader.post("/v1/search", json=body)
    second = reader.post("/v1/search", json=body)
    assert first.status_code == second.status_code == 200
    assert {h["category"] for h in first.json()} == {"cooking"}
    assert first.json()[0]["url"] == video_url("cooking", "bread-dough-kneading")
    assert first.headers["x-vidsearch-cache"] == "miss"
    assert second.headers["x-vidsearch-cache"] == "hit"
    assert second.json() == first.json()


def test_moments_and_segments_options_reach_the_search(reader: Api) -> None:
    moments = reader.get("/v1/search", params={"text": "tennis serve", "moments": "true", "top_k": 2})
    assert moments.status_code == 200 and moments.json()[0]["moments"]
    segments = reader.get("/v1/search", params={"text": "tennis serve", "segments": "true", "top_k": 4})
    assert segments.status_code == 200 and len(segments.json()) == 4


def test_weights_with_a_part_the_query_lacks_are_a_400_problem_naming_them(reader: Api) -> None:
    response = reader.get("/v1/search", params={"text": "dog", "weights": "clip=2"})
    problem = assert_problem(response, 400, "invalid-query")
    assert "clip" in problem["detail"]


def test_a_search_with_nothing_to_look_for_is_a_400_problem(reader: Api) -> None:
    assert_problem(reader.post("/v1/search", json={"top_k": 3}), 400, "invalid-query")


def test_an_unknown_parameter_is_a_422_problem(reader: Api) -> None:
    response = reader.get("/v1/search", params={"text": "dog", "colour": "red"})
    problem = assert_problem(response, 422, "invalid-request")
    assert problem["errors"][0]["loc"][-1] == "colour"


def test_similar_videos_are_the_like_search_without_the_video_itself(reader: Api) -> None:
    floored = reader.get("/v1/videos/similar", params={"url": SURF, "top_k": 4})
    assert floored.status_code == 200  # no video of this catalogue shares a word with it
    response = reader.get("/v1/videos/similar", params={"url": SURF, "top_k": 4, "min_score": -1})
    urls = [h["url"] for h in response.json()]
    assert urls and SURF not in urls
    assert floored.json() == [] and floored.headers["x-vidsearch-below-min-score"] == str(len(urls))


def test_the_relevance_floor_hides_noise_reports_itself_and_can_be_lifted(reader: Api) -> None:
    floored = reader.get("/v1/search", params={"text": "surfing dog", "top_k": 12})
    assert [h["url"] for h in floored.json()] == [SURF]
    assert floored.headers["x-vidsearch-min-score"] == "0.25"
    lifted = reader.post("/v1/search", json={"text": "surfing dog", "top_k": 12, "min_score": -1})
    hits = lifted.json()
    assert len(hits) > 1 and hits[0]["url"] == SURF
    assert floored.headers["x-vidsearch-below-min-score"] == str(len(hits) - 1)
    assert all(h["score"] < 0.25 for h in hits[1:])
    assert lifted.headers["x-vidsearch-min-score"] == "-1"
    assert lifted.headers["x-vidsearch-below-min-score"] == "0"
    raised = reader.get("/v1/search", params={"text": "surfing dog", "top_k": 12, "min_score": 0.99})
    assert raised.json() == [] and raised.headers["x-vidsearch-below-min-score"] == str(len(hits))


def test_a_floor_out_of_range_is_a_422_problem(reader: Api) -> None:
    response = reader.get("/v1/search", params={"text": "dog", "min_score": 2})
    problem = assert_problem(response, 422, "invalid-request")
    assert problem["errors"][0]["loc"][-1] == "min_score"


def test_similar_needs_an_http_url(reader: Api) -> None:
    response = reader.get("/v1/videos/similar", params={"url": "ftp://x/y.mp4"})
    assert_problem(response, 400, "invalid-query")
