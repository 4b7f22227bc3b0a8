"""Auth and request validation: 401, and 400 with code and message for every invalid request."""

from __future__ import annotations

from typing import Any

import pytest
from twelvelabs import TwelveLabs
from twelvelabs.core.api_error import ApiError
from twelvelabs.errors import BadRequestError

from tests.vidsearch.sandbox.conftest import http, sdk, v2_body, video_url

URL = "https://cdn.example.com/v/dog.mp4"
FIXED_30 = {"strategy": "fixed", "fixed": {"duration_sec": 6}}
FIXED_35 = {"temporal": FIXED_30}


def video(**extra: Any) -> dict[str, Any]:
    return {"media_source": {"url": URL}, **extra}


BAD_CREATES: dict[str, dict[str, Any]] = {
    "unknown model": {"model_name": "marengo9", "video": video()},
    "3.5 segmentation shape on 3.0": {"model_name": "marengo3.0", "video": video(segmentation=FIXED_35)},
    "3.0 segmentation shape on 3.5": {"model_name": "marengo3.5", "video": video(segmentation=FIXED_30)},
    "fixed duration below 2": {"model_name": "marengo3.0", "video": video(
        segmentation={"strategy": "fixed", "fixed": {"duration_sec": 1}})},
    "fixed duration above 10": {"model_name": "marengo3.5", "video": video(
        segmentation={"temporal": {"strategy": "fixed", "fixed": {"duration_sec": 11}}})},
    "dynamic minimum above 5": {"model_name": "marengo3.0", "video": video(
        segmentation={"strategy": "dynamic", "dynamic": {"min_duration_sec": 6}})},
    "no media source": {"model_name": "marengo3.0", "video": {"media_source": {}}},
    "two media sources": {"model_name": "marengo3.0", "video": {
        "media_source": {"url": URL, "asset_id": "abc"}}},
    "end not after start": {"model_name": "marengo3.0", "video": video(start_sec=10, end_sec=10)},
    "embedding_dimension with 3.0": {"model_name": "marengo3.0", "embedding_dimension": 256,
                                     "video": video()},
    "non-http url": {"model_name": "marengo3.0", "video": {"media_source": {"url": "ftp://h/a.mp4"}}},
    "transcription on 3.5": {"model_name": "marengo3.5", "video": video(
        embedding_option=["transcription"])},
    "unknown scope": {"model_name": "marengo3.0", "video": video(embedding_scope=["scene"])},
}


@pytest.mark.parametrize("case", sorted(BAD_CREATES))
def test_invalid_create_is_400_with_code_and_message(client: TwelveLabs, case: str):
    body = {"input_type": "video", **BAD_CREATES[case]}
    with pytest.raises(BadRequestError) as err:
        client.embed.v_2.tasks.create(**body)
    assert err.value.status_code == 400
    assert err.value.body["code"] in ("parameter_invalid", "parameter_not_provided")
    assert err.value.body["message"]


def test_invalid_create_creates_no_task(base: str):
    url = video_url("never", "created")
    raw = http("POST", f"{base}/v1.3/embed-v2/tasks", v2_body(url, segmentation=FIXED_35))
    assert raw.status == 400
    stats = http("GET", f"{base}/_sandbox/stats", key=None).body
    assert url not in stats["tasks_by_url"]


def test_sync_text_on_35_and_multi_input_without_content_are_400(client: TwelveLabs):
    with pytest.raises(BadRequestError):
        client.embed.v_2.create(input_type="text", model_name="marengo3.5",
                                text={"input_text": "dog"})
    with pytest.raises(BadRequestError):
        client.embed.v_2.create(input_type="multi_input", model_name="marengo3.5", multi_input={})


def test_missing_key_is_401_with_the_api_error_body(base: str):
    raw = http("GET", f"{base}/v1.3/embed-v2/tasks", key=None)
    assert raw.status == 401
    assert raw.body["code"] == "api_key_invalid" and raw.body["message"]


def test_api_key_option_restricts_the_accepted_keys(own_sandbox):
    service = own_sandbox("--api-key", "good-1", "--api-key", "good-2")
    assert sdk(service, "good-2").embed.v_2.tasks.list(page_limit=1).items == []
    with pytest.raises(ApiError) as err:
        sdk(service, "wrong").embed.v_2.tasks.create(
            input_type="video", model_name="marengo3.0", video=video())
    assert err.value.status_code == 401
    assert err.value.body["code"] == "api_key_invalid"


def test_admin_routes_need_no_key(base: str):
    assert http("GET", f"{base}/_sandbox/stats", key=None).status == 200
