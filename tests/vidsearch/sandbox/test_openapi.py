"""Embed-path responses validate against Twelve Labs' OpenAPI 1.3 file (openapi-core).

Where the file and the SDK disagree the SDK wins; each such field is named in ``SDK_ONLY`` and
removed before validation (listed in docs/sandbox.md too).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from tests.vidsearch.sandbox.conftest import http, v2_body, video_url, wait_done
from vidsearch.stack.services import Service, start_sandbox

SPEC = Path(__file__).resolve().parents[3] / "shared" / "reference" / "twelvelabs-openapi-1.3.yaml"
SERVER = "https://api.twelvelabs.io"

# Fields the SDK defines and the OpenAPI file forbids (additionalProperties: false or a
# discriminator without the variant); the sandbox sends them because the SDK wins.
SDK_ONLY = {
    "create-3.5": ("metadata",),  # TasksCreateResponse.metadata {embedding_dimension} (3.5)
    "failed": ("error",),  # EmbeddingTaskResponse.error.message of a failed task
    "sync-3.5": ("metadata",),  # EmbeddingMediaMetadata_MultiInput is not in the file
}


@pytest.fixture(scope="module")
def api() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC))


@pytest.fixture(scope="module")
def nested(tmp_path_factory: pytest.TempPathFactory):
    service = start_sandbox(tmp_path_factory.mktemp("nested"),
                            args=["--speed", "50", "--error-style", "nested"])
    yield service
    service.stop()


def check(api: OpenAPI, method: str, path: str, status: int, body: Any, *, query: dict | None = None,
          drop: tuple[str, ...] = ()) -> None:
    body = {k: v for k, v in body.items() if k not in drop}
    view_args = {"task_id": path.rsplit("/", 1)[-1]} if "/tasks/" in path else None
    request = MockRequest(SERVER, method.lower(), f"/v1.3{path}", args=query or {}, view_args=view_args)
    response = MockResponse(json.dumps(body).encode(), status_code=status,
                            content_type="application/json")
    api.validate_response(request, response)


def test_v2_create_retrieve_and_ready_responses_validate(api: OpenAPI, base: str):
    created = http("POST", f"{base}/v1.3/embed-v2/tasks", v2_body(video_url("oas", "ready")))
    check(api, "POST", "/embed-v2/tasks", created.status, created.body)
    path = f"/embed-v2/tasks/{created.body['_id']}"
    processing = http("GET", f"{base}/v1.3{path}")
    check(api, "GET", path, 200, processing.body)
    done = wait_done(lambda: _Status(http("GET", f"{base}/v1.3{path}").body))
    assert done.body["status"] == "ready"
    check(api, "GET", path, 200, done.body)


def test_v2_35_create_and_failed_task_validate_apart_from_sdk_fields(api: OpenAPI, base: str):
    created = http("POST", f"{base}/v1.3/embed-v2/tasks",
                   v2_body(video_url("oas35"), model="marengo3.5", embedding_dimension=256))
    check(api, "POST", "/embed-v2/tasks", 202, created.body, drop=SDK_ONLY["create-3.5"])
    failed_id = http("POST", f"{base}/v1.3/embed-v2/tasks",
                     v2_body("https://example.com/page.html")).body["_id"]
    path = f"/embed-v2/tasks/{failed_id}"
    done = wait_done(lambda: _Status(http("GET", f"{base}/v1.3{path}").body))
    assert done.body["status"] == "failed"
    check(api, "GET", path, 200, done.body, drop=SDK_ONLY["failed"])


def test_v2_list_and_sync_responses_validate(api: OpenAPI, base: str):
    listed = http("GET", f"{base}/v1.3/embed-v2/tasks?page=1&page_limit=5")
    assert listed.body["data"]
    check(api, "GET", "/embed-v2/tasks", 200, listed.body, query={"page": "1", "page_limit": "5"})
    sync = http("POST", f"{base}/v1.3/embed-v2", {"input_type": "text", "model_name": "marengo3.0",
                                                  "text": {"input_text": "dog"}})
    check(api, "POST", "/embed-v2", 200, sync.body)
    sync35 = http("POST", f"{base}/v1.3/embed-v2", {"input_type": "multi_input",
                                                    "model_name": "marengo3.5",
                                                    "multi_input": {"input_text": "dog"}})
    check(api, "POST", "/embed-v2", 200, sync35.body, drop=SDK_ONLY["sync-3.5"])


def test_errors_validate_flat_for_list_and_nested_for_embed_v2_with_nested_style(
    api: OpenAPI, base: str, nested: Service
):
    bad_list = http("GET", f"{base}/v1.3/embed-v2/tasks?page_limit=99")
    check(api, "GET", "/embed-v2/tasks", 400, bad_list.body, query={"page_limit": "99"})
    bad_create = http("POST", f"{nested.url}/v1.3/embed-v2/tasks", {"model_name": "nope"})
    assert bad_create.body["error"]["code"] == "parameter_not_provided" or bad_create.body["error"]
    check(api, "POST", "/embed-v2/tasks", 400, bad_create.body)
    missing = http("GET", f"{nested.url}/v1.3/embed-v2/tasks/000000000000000000000000")
    check(api, "GET", "/embed-v2/tasks/000000000000000000000000", 404, missing.body)
    flat_create = http("POST", f"{base}/v1.3/embed-v2/tasks", {"model_name": "nope"})
    with pytest.raises(Exception, match="error"):  # the default flat body is not ErrorResponse
        check(api, "POST", "/embed-v2/tasks", 400, flat_create.body)


def test_v1_responses_validate(api: OpenAPI, base: str):
    headers = {"x-api-key": "k"}
    form = {"model_name": (None, "marengo3.0"), "video_url": (None, video_url("oas", "v1"))}
    with httpx.Client(base_url=f"{base}/v1.3", headers=headers) as web:
        created = web.post("/embed/tasks", files=form).json()
        task_id = created["_id"]
        status = wait_done(lambda: _Status(web.get(f"/embed/tasks/{task_id}/status").json())).body
        retrieved = web.get(f"/embed/tasks/{task_id}").json()
        listed = web.get("/embed/tasks", params={"page": 1}).json()
    assert status["status"] == "ready" and retrieved["video_embedding"]["segments"]
    check(api, "POST", "/embed/tasks", 200, created)
    check(api, "GET", f"/embed/tasks/{task_id}/status", 200, status)
    check(api, "GET", f"/embed/tasks/{task_id}", 200, retrieved)
    check(api, "GET", "/embed/tasks", 200, listed, query={"page": "1"})


class _Status:
    """Adapter so ``wait_done`` can poll raw JSON bodies."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.status = body["status"]
