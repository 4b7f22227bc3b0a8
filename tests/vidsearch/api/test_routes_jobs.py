"""/v1/jobs over real HTTP with real Celery workers: an uploaded manifest becomes a job that reaches
its end; rejects keep their line numbers; failures, retry, listing; server-side paths only under
``api_manifest_dir``; unusable manifests and unknown jobs are problems."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stack import Stack, wait_for
from tests.vidsearch.api.conftest import Api, Server, api_for, assert_problem, start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MANIFEST = (
    "url,category,title\n"
    "https://cdn.example.com/travel/harbour-at-night.mp4,travel,Harbour\n"
    "https://cdn.example.com/travel/desert-dunes.mp4,travel,Dunes\n"
    "https://cdn.example.com/travel/page.html,travel,Not a video\n"
    "ftp://cdn.example.com/travel/x.mp4,travel,Bad scheme\n"
)


def finished(api: Api, job_id: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def done() -> bool:
        seen.update(api.get(f"/v1/jobs/{job_id}").json())
        return seen["status"] != "running"

    try:
        wait_for(done, 240, f"job {job_id} to finish", interval_s=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {seen}") from None
    return seen


def test_an_uploaded_manifest_becomes_a_job_that_finishes_with_line_numbered_rejects(admin: Api) -> None:
    response = admin.post("/v1/jobs", params={"filename": "trip.csv", "name": "trip"},
                          content=MANIFEST.encode(), headers={"content-type": "text/csv"})
    assert response.status_code == 201, response.text
    summary = response.json()
    assert response.headers["location"] == f"/v1/jobs/{summary['job_id']}"
    assert (summary["lines"], summary["queued"], summary["rejected"]) == (4, 3, 1)

    job = finished(admin, summary["job_id"])
    assert (job["status"], job["done"], job["failed"], job["progress"]) == ("done with failures", 2, 1, 1.0)
    assert job["rate_per_s"] > 0 and job["eta_s"] == 0
    assert job["name"] == "trip" and job["manifests"] == ["trip.csv"]

    rejects = admin.get(f"/v1/jobs/{summary['job_id']}/rejects").json()
    assert [(r["file"], r["line"]) for r in rejects] == [("trip.csv", 5)]
    [failure] = admin.get(f"/v1/jobs/{summary['job_id']}/failures").json()
    assert failure["url"].endswith("/page.html") and "not a media file" in failure["reason"]

    retried = admin.post(f"/v1/jobs/{summary['job_id']}/retry").json()
    assert retried == {"job_id": summary["job_id"], "requeued": 1}
    assert summary["job_id"] in [j["id"] for j in admin.get("/v1/jobs").json()]


def test_a_jsonl_upload_is_read_as_json_lines(admin: Api) -> None:
    body = b'{"url": "https://cdn.example.com/travel/tokyo-crossing.mp4", "category": "travel"}\n{oops\n'
    response = admin.post("/v1/jobs", params={"filename": "more"}, content=body,
                          headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 201
    assert (response.json()["queued"], response.json()["rejected"]) == (1, 1)
    rejects = admin.get(f"/v1/jobs/{response.json()['job_id']}/rejects").json()
    assert rejects[0]["file"] == "more.jsonl" and rejects[0]["line"] == 2


def test_a_csv_without_a_url_column_is_a_400_problem(admin: Api) -> None:
    response = admin.post("/v1/jobs", content=b"link,category\nx,y\n", headers={"content-type": "text/csv"})
    problem = assert_problem(response, 400, "invalid-manifest")
    assert "url" in problem["detail"]


def test_an_unknown_job_is_a_404_problem_on_every_job_route(admin: Api) -> None:
    for method, path in (("GET", "/v1/jobs/nope"), ("GET", "/v1/jobs/nope/failures"),
                         ("GET", "/v1/jobs/nope/rejects"), ("POST", "/v1/jobs/nope/retry")):
        assert_problem(admin.request(method, path), 404, "job-not-found")


def test_server_side_paths_are_refused_unless_a_manifest_dir_is_set(admin: Api) -> None:
    response = admin.post("/v1/jobs", json={"path": "videos.csv"})
    assert_problem(response, 403, "server-paths-off")


@pytest.fixture(scope="module")
def dir_server(stack: Stack) -> Iterator[tuple[Server, Path]]:
    root = stack.root / "manifests"
    root.mkdir(exist_ok=True)
    (root / "ok.csv").write_text(MANIFEST.replace("travel/", "travel2/"), encoding="utf-8")
    (stack.root / "outside.csv").write_text(MANIFEST, encoding="utf-8")
    server = start_server(stack, "dir", VIDSEARCH_API_MANIFEST_DIR=str(root))
    yield server, root
    server.stop()


def test_a_server_side_path_under_the_manifest_dir_is_submitted(dir_server: tuple[Server, Path]) -> None:
    api = api_for(dir_server[0])
    response = api.post("/v1/jobs", json={"path": "ok.csv", "name": "from-disk"})
    assert response.status_code == 201
    assert response.json()["queued"] == 3
    job = api.get(f"/v1/jobs/{response.json()['job_id']}").json()
    assert job["manifests"] == ["ok.csv"] and job["name"] == "from-disk"


def test_a_path_outside_the_manifest_dir_or_missing_is_refused(dir_server: tuple[Server, Path]) -> None:
    api = api_for(dir_server[0])
    assert_problem(api.post("/v1/jobs", json={"path": "../outside.csv"}), 403, "path-outside-manifest-dir")
    assert_problem(api.post("/v1/jobs", json={"path": "/etc/passwd"}), 403, "path-outside-manifest-dir")
    assert_problem(api.post("/v1/jobs", json={"path": "nope.csv"}), 404, "manifest-not-found")
    assert_problem(api.post("/v1/jobs", json={"paths": "x"}), 422, "invalid-request")
