"""/v1/analytics/... over real HTTP on the real stack: the JSON of ``vidsearch analytics --json``,
the plots as PNG and SVG, every bad parameter as a problem, collections with nothing to analyse,
and search's ``collapse_duplicates``.

The package's stack is shared: other tests submit more videos, so counts are at least the
catalogue's and each answer is compared with the CLI's at the same moment."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from pipeline.milvus.store import MilvusStore
from pipeline.settings import load_settings
from tests.stack import Stack
from tests.vidsearch.api.conftest import VIDEOS, Api, Server, api_for, assert_problem, start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VIDEO_COUNT = sum(map(len, VIDEOS.values()))
TOO_MANY = 10_000


def cli_json(stack: Stack, *args: str) -> dict:
    proc = stack.vidsearch("analytics", *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


def test_clusters_answer_the_cli_json(reader: Api, stack: Stack) -> None:
    response = reader.get("/v1/analytics/clusters", params={"k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == cli_json(stack, "clusters", "--k", "3")
    assert body["k"] == 3 and sum(c["size"] for c in body["clusters"]) == len(body["videos"])
    assert len(body["videos"]) >= VIDEO_COUNT and all(c["label"] for c in body["clusters"])


def test_auto_clusters_choose_k_by_silhouette(reader: Api) -> None:
    body = reader.get("/v1/analytics/clusters", params={"auto": "true"}).json()
    assert body["criterion"].startswith("best mean silhouette")
    assert str(body["k"]) == max(body["silhouettes"], key=lambda k: body["silhouettes"][k])


def test_clusters_of_one_category_hold_only_its_videos(reader: Api) -> None:
    body = reader.get("/v1/analytics/clusters", params={"k": 2, "category": "sports"}).json()
    assert {v["category"] for v in body["videos"]} == {"sports"}
    assert len(body["videos"]) == len(VIDEOS["sports"])


def test_the_cluster_map_and_the_trends_plot_are_png_and_svg(reader: Api) -> None:
    png = reader.get("/v1/analytics/clusters/map.png", params={"k": 3})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(PNG_MAGIC)
    svg = reader.get("/v1/analytics/clusters/map.svg", params={"auto": "true"})
    assert svg.headers["content-type"].startswith("image/svg+xml") and "<svg" in svg.text
    trends = reader.get("/v1/analytics/trends/plot.svg", params={"by": "week", "k": 3})
    assert trends.status_code == 200 and "<svg" in trends.text
    assert reader.get("/v1/analytics/trends/plot.png").content.startswith(PNG_MAGIC)


def test_outliers_answer_the_cli_json_and_limit_cuts_the_list(reader: Api, stack: Stack) -> None:
    body = reader.get("/v1/analytics/outliers").json()
    assert body == cli_json(stack, "outliers")
    assert body["videos"] >= VIDEO_COUNT and body["skipped_categories"] == []
    limited = reader.get("/v1/analytics/outliers", params={"limit": 1, "category": "cooking"}).json()
    assert len(limited["outliers"]) <= 1 and limited["videos"] == len(VIDEOS["cooking"])


def test_duplicates_answer_the_cli_json_at_the_default_and_a_given_threshold(
    reader: Api, stack: Stack
) -> None:
    body = reader.get("/v1/analytics/duplicates").json()
    assert body == cli_json(stack, "duplicates") and body["threshold"] == 0.9
    loose = reader.get("/v1/analytics/duplicates", params={"threshold": 0.05}).json()
    assert loose == cli_json(stack, "duplicates", "--threshold", "0.05")
    assert loose["threshold"] == 0.05 and loose["videos"] >= VIDEO_COUNT


def test_trends_answer_the_cli_json(reader: Api, stack: Stack) -> None:
    body = reader.get("/v1/analytics/trends", params={"by": "week", "k": 3}).json()
    assert body == cli_json(stack, "trends", "--by", "week", "--k", "3")
    assert set(VIDEOS) <= set(body["categories"]) and len(body["periods"]) == 1


@pytest.mark.parametrize(("path", "params", "where"), [
    ("/v1/analytics/clusters", {"k": 0}, "k"),
    ("/v1/analytics/clusters/map.svg", {"k": -1}, "k"),
    ("/v1/analytics/duplicates", {"threshold": 0}, "threshold"),
    ("/v1/analytics/duplicates", {"threshold": 1.5}, "threshold"),
    ("/v1/analytics/outliers", {"limit": 0}, "limit"),
    ("/v1/analytics/trends", {"by": "month"}, "by"),
    ("/v1/analytics/trends/plot.svg", {"k": "two"}, "k"),
    ("/v1/analytics/clusters/map.gif", {}, "fmt"),
])
def test_a_parameter_out_of_range_is_a_422_problem_naming_it(
    reader: Api, path: str, params: dict, where: str
) -> None:
    problem = assert_problem(reader.get(path, params=params), 422, "invalid-request")
    assert problem["errors"][0]["loc"][-1] == where


@pytest.mark.parametrize(("path", "params", "words"), [
    ("/v1/analytics/clusters", {"k": TOO_MANY}, "k must be between 1 and the number of videos"),
    ("/v1/analytics/clusters/map.png", {"k": TOO_MANY}, "k must be between 1"),
    ("/v1/analytics/trends", {"k": TOO_MANY}, "k must be between 1"),
    ("/v1/analytics/clusters", {"k": 3, "auto": "true"}, "not both"),
    ("/v1/analytics/clusters", {"category": "nope"}, "no videos in category 'nope'"),
    ("/v1/analytics/outliers", {"category": "nope"}, "no videos in category 'nope'"),
])
def test_what_the_cli_refuses_with_exit_2_is_a_400_problem(
    reader: Api, path: str, params: dict, words: str
) -> None:
    problem = assert_problem(reader.get(path, params=params), 400, "invalid-analytics")
    assert words in problem["detail"]


def test_analytics_need_a_key_and_a_read_key_suffices(reader: Api) -> None:
    assert_problem(reader.with_key(None).get("/v1/analytics/duplicates"), 401, "unauthorized")
    assert reader.get("/v1/analytics/trends").status_code == 200


@pytest.fixture(scope="module")
def bare_server(stack: Stack) -> Iterator[Server]:
    """A server whose collection prefix names no collection yet."""
    server = start_server(stack, "bare", VIDSEARCH_COLLECTION_PREFIX="apibare")
    yield server
    server.stop()


ROUTES = ["/v1/analytics/clusters", "/v1/analytics/clusters/map.svg", "/v1/analytics/outliers",
          "/v1/analytics/duplicates", "/v1/analytics/trends", "/v1/analytics/trends/plot.png"]


def test_a_collection_never_ingested_and_then_an_empty_one_are_400_problems(
    bare_server: Server, stack: Stack
) -> None:
    api = api_for(bare_server)
    for path in ROUTES:
        assert "does not exist" in assert_problem(api.get(path), 400, "invalid-analytics")["detail"]
    store = MilvusStore(load_settings(milvus_uri=stack.env["VIDSEARCH_MILVUS_URI"],
                                      collection_prefix="apibare"))
    store.ensure_collection("marengo3.0", 512)
    store.close()
    for path in ROUTES:
        assert "no videos" in assert_problem(api.get(path), 400, "invalid-analytics")["detail"]


@pytest.fixture(scope="module")
def loose_server(stack: Stack) -> Iterator[Server]:
    """Videos count as duplicates from a cosine of 0.05: the catalogue has groups."""
    server = start_server(stack, "loose", VIDSEARCH_DUPLICATE_THRESHOLD="0.05")
    yield server
    server.stop()


def test_search_with_collapse_duplicates_keeps_one_video_per_group(loose_server: Server) -> None:
    api = api_for(loose_server)
    groups = api.get("/v1/analytics/duplicates").json()["groups"]
    group_of = {url: n for n, g in enumerate(groups) for url in g["urls"]}
    params = {"text": "a dog", "top_k": 12, "min_score": -1}  # every video, the unrelated ones too
    plain = [h["url"] for h in api.get("/v1/search", params=params).json()]
    assert len({group_of.get(u, u) for u in plain}) < len(plain)  # some hits share a group
    response = api.get("/v1/search", params={**params, "collapse_duplicates": "true"})
    assert response.status_code == 200
    collapsed = [h["url"] for h in response.json()]
    kept = [group_of.get(u, u) for u in collapsed]
    assert collapsed and len(kept) == len(set(kept))  # one video per group
    again = api.post("/v1/search", json={**params, "collapse_duplicates": True})
    assert [h["url"] for h in again.json()] == collapsed


def test_collapse_duplicates_must_be_a_boolean(reader: Api) -> None:
    response = reader.get("/v1/search", params={"text": "dog", "collapse_duplicates": "sometimes"})
    assert_problem(response, 422, "invalid-request")
