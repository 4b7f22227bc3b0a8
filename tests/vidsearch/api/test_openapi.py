"""The OpenAPI document: every route is in it, every error answer is declared as problem JSON,
and the docs pages are served."""

from __future__ import annotations

import httpx
import pytest

from tests.vidsearch.api.conftest import Server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROUTES = {
    ("get", "/v1/search"), ("post", "/v1/search"), ("get", "/v1/videos/similar"),
    ("post", "/v1/jobs"), ("get", "/v1/jobs"), ("get", "/v1/jobs/{job_id}"),
    ("get", "/v1/jobs/{job_id}/failures"), ("get", "/v1/jobs/{job_id}/rejects"),
    ("post", "/v1/jobs/{job_id}/retry"), ("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics"),
    ("get", "/v1/analytics/clusters"), ("get", "/v1/analytics/clusters/map.{fmt}"),
    ("get", "/v1/analytics/outliers"), ("get", "/v1/analytics/duplicates"),
    ("get", "/v1/analytics/trends"), ("get", "/v1/analytics/trends/plot.{fmt}"),
}


def test_the_document_lists_every_route_with_problem_json_errors(open_server: Server) -> None:
    doc = httpx.get(f"{open_server.url}/openapi.json", timeout=30).json()
    assert doc["openapi"].startswith("3.")
    found = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert found == ROUTES
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            errors = {s: r for s, r in op["responses"].items() if s[0] in "45"}
            assert {"401", "422", "429", "500"} <= set(errors), (method, path)
            for response in errors.values():
                assert list(response["content"]) == ["application/problem+json"]
    assert "Problem" in doc["components"]["schemas"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_the_docs_pages_are_served(open_server: Server) -> None:
    for page in ("/docs", "/redoc"):
        response = httpx.get(f"{open_server.url}{page}", timeout=30)
        assert response.status_code == 200 and "openapi.json" in response.text


def test_an_unknown_path_is_a_problem_too(open_server: Server) -> None:
    response = httpx.get(f"{open_server.url}/v1/nope", timeout=30)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "about:blank"
