"""Probes and metrics over real HTTP: /healthz, /readyz (ready on the stack, a 503 problem naming
Milvus when it is unreachable), /metrics (fleet and request metrics, behind a key)."""

from __future__ import annotations

import re

import pytest

from tests.stack import Stack
from tests.vidsearch.api.conftest import Api, api_for, assert_problem, start_server
from vidsearch.stack.services import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_healthz_and_readyz_answer_on_the_ingested_stack(open_api: Api) -> None:
    health = open_api.get("/healthz")
    assert health.json() == {"status": "ok"}
    assert re.fullmatch(r"app;dur=\d+\.\d\d", health.headers["server-timing"])
    ready = open_api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready",
                            "checks": {"redis": "ok", "milvus": "ok", "collection": "loaded"}}


def test_readyz_is_a_503_problem_naming_milvus_when_it_is_unreachable(stack: Stack) -> None:
    server = start_server(stack, "no-milvus", VIDSEARCH_MILVUS_URI=f"http://127.0.0.1:{free_port()}")
    try:
        api = api_for(server)
        assert api.get("/healthz").status_code == 200
        problem = assert_problem(api.get("/readyz"), 503, "not-ready")
        assert problem["checks"]["redis"] == "ok"
        assert problem["checks"]["milvus"].startswith("unreachable")
        assert "milvus" in problem["detail"]
    finally:
        server.stop()


def test_with_redis_down_the_routes_answer_503_problems_and_readyz_names_redis(stack: Stack) -> None:
    server = start_server(stack, "no-redis", VIDSEARCH_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    try:
        api = api_for(server)
        problem = assert_problem(api.get("/v1/jobs"), 503, "unavailable")
        assert problem["retry_after_s"] == 5 and "Redis" in problem["detail"]
        assert_problem(api.get("/v1/search", params={"text": "dog"}), 503, "unavailable")
        ready = assert_problem(api.get("/readyz"), 503, "not-ready")
        assert ready["checks"]["redis"].startswith("unreachable")
    finally:
        server.stop()


def test_metrics_need_a_key_and_show_fleet_and_request_counters(reader: Api) -> None:
    reader.get("/v1/search", params={"text": "dog"})
    assert_problem(reader.get("/metrics", key=""), 401, "unauthorized")
    response = reader.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'vidsearch_api_requests_total{method="GET",route="/v1/search",status="200"}' in text
    assert "vidsearch_redis_up 1.0" in text
    assert "vidsearch_items" in text
