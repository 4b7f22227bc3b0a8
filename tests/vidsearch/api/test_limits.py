"""Every limit over real HTTP answers a 4xx problem naming the limit: body size (declared and
chunked), search text length, top-k cap, manifest size."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.stack import Stack
from tests.vidsearch.api.conftest import Api, Server, api_for, assert_problem, start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def small(stack: Stack) -> Iterator[Server]:
    server = start_server(stack, "small", VIDSEARCH_API_MAX_BODY_BYTES="1024",
                          VIDSEARCH_API_MAX_QUERY_CHARS="20", VIDSEARCH_API_MAX_TOP_K="5",
                          VIDSEARCH_API_MAX_MANIFEST_BYTES="2048")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(small: Server) -> Api:
    return api_for(small)


def test_a_body_declared_over_the_cap_is_413_before_it_is_read(api: Api) -> None:
    body = {"text": "dog", "category": ["x" * 40] * 40}
    problem = assert_problem(api.post("/v1/search", json=body), 413, "body-too-large")
    assert problem["limit"] == 1024


def test_a_chunked_body_over_the_cap_is_413(small: Server) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "dog", "category": ['
        for _ in range(200):
            yield b'"abcdefghij",'
        yield b'"x"]}'

    response = httpx.post(f"{small.url}/v1/search", content=chunks(),
                          headers={"content-type": "application/json"}, timeout=30)
    assert_problem(response, 413, "body-too-large")


def test_a_search_text_over_the_cap_is_400_naming_the_limit(api: Api) -> None:
    problem = assert_problem(api.get("/v1/search", params={"text": "a dog " * 5}), 400, "query-too-long")
    assert problem["limit"] == 20


def test_a_top_k_over_the_cap_is_400_naming_the_cap(api: Api) -> None:
    problem = assert_problem(api.get("/v1/search", params={"text": "dog", "top_k": 6}), 400,
                             "top-k-too-large")
    assert problem["limit"] == 5
    assert api.get("/v1/search", params={"text": "dog", "top_k": 5}).status_code == 200


def test_a_manifest_over_the_cap_is_413_and_records_no_job(api: Api) -> None:
    before = len(api.get("/v1/jobs", params={"limit": 200}).json())
    lines = "".join(f"https://cdn.example.com/x/{i:04d}-some-longer-name.mp4,x\n" for i in range(60))
    response = api.post("/v1/jobs", content=("url,category\n" + lines).encode(),
                        headers={"content-type": "text/csv"})
    problem = assert_problem(response, 413, "body-too-large")
    assert problem["limit"] == 2048 and "manifest" in problem["detail"]
    assert len(api.get("/v1/jobs", params={"limit": 200}).json()) == before
