"""Quotas, injected faults, lifecycle timing, the admin API and the counters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from twelvelabs.core.api_error import ApiError
from twelvelabs.errors import TooManyRequestsError
from twelvelabs.types import TextInputRequest

from tests.vidsearch.sandbox.conftest import admin, http, sdk, video_url, wait_done
from vidsearch.stack.services import Service, start_sandbox

DEFAULTS = {"rate_429": 0.0, "rate_5xx": 0.0, "slow_rate": 0.0, "drop_after_create_rate": 0.0,
            "fail_rate": 0.0, "stuck_rate": 0.0, "create_rpm": 0, "embed_rpm": 0,
            "retry_after_s": 0.0}


@pytest.fixture(scope="module")
def box_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_sandbox(tmp_path_factory.mktemp("faults"), args=["--speed", "50", "--seed", "7"])
    yield service
    service.stop()


@pytest.fixture
def box(box_service: Service) -> Iterator[Service]:
    """A private sandbox, reset and with default faults before and after each test."""
    admin(box_service, "config", DEFAULTS)
    admin(box_service, "reset", {})
    yield box_service
    admin(box_service, "config", DEFAULTS)


def create(service: Service, url: str):
    return sdk(service).embed.v_2.tasks.create(
        input_type="video", model_name="marengo3.0", video={"media_source": {"url": url}})


def test_create_bucket_answers_429_with_retry_after_and_ratelimit_headers(box: Service):
    admin(box, "config", {"create_rpm": 2})
    create(box, video_url("a"))
    create(box, video_url("b"))
    with pytest.raises(TooManyRequestsError) as err:
        create(box, video_url("c"))
    headers = {k.lower(): v for k, v in err.value.headers.items()}
    assert err.value.body["code"] == "too_many_requests"
    assert "You have exceeded the rate limit (2 requests per minute)" in err.value.body["message"]
    assert int(headers["retry-after"]) >= 1
    assert headers["x-ratelimit-limit"] == "2" and headers["x-ratelimit-remaining"] == "0"
    assert int(headers["x-ratelimit-reset"]) >= int(time.time())
    stats = admin(box, "stats")
    assert stats["rate_limited"] == 1 and stats["tasks_created"] == 2
    assert stats["requests"]["POST /embed-v2/tasks"] == {"202": 2, "429": 1}


def test_embed_bucket_limits_sync_embeds_separately(box: Service):
    admin(box, "config", {"embed_rpm": 1, "retry_after_s": 5})
    client = sdk(box)
    client.embed.v_2.create(input_type="text", model_name="marengo3.0",
                            text=TextInputRequest(input_text="dog"))
    with pytest.raises(TooManyRequestsError) as err:
        client.embed.v_2.create(input_type="text", model_name="marengo3.0",
                                text=TextInputRequest(input_text="dog"))
    assert err.value.headers["retry-after"] == "5"
    create(box, video_url("still", "allowed"))


def test_injected_429_reaches_retrieve_as_plain_api_error(box: Service):
    task = create(box, video_url("poll"))
    admin(box, "config", {"rate_429": 1.0})
    with pytest.raises(ApiError) as err:
        sdk(box).embed.v_2.tasks.retrieve(task.id)
    assert err.value.status_code == 429 and "retry-after" in err.value.headers
    assert admin(box, "stats")["rate_limited"] == 1


def test_injected_5xx_answers_a_server_error(box: Service):
    admin(box, "config", {"rate_5xx": 1.0})
    raw = http("GET", f"{box.url}/v1.3/embed-v2/tasks")
    assert raw.status in (500, 502, 503, 504) and raw.body["message"]


def test_dropped_after_create_loses_the_answer_but_the_task_exists(box: Service):
    admin(box, "config", {"drop_after_create_rate": 1.0})
    url = video_url("lost", "answer")
    with pytest.raises(httpx.TransportError):
        create(box, url)
    stats = admin(box, "stats")
    assert stats["tasks_by_url"] == {url: 1} and stats["dropped_after_create"] == 1
    assert stats["requests"]["POST /embed-v2/tasks"] == {"dropped": 1}
    listed = [t for t in sdk(box).embed.v_2.tasks.list(page_limit=50)
              if t.video_embedding.metadata.input_url == url]
    assert len(listed) == 1


def test_fail_rate_makes_tasks_end_failed_with_a_message(box: Service):
    admin(box, "config", {"fail_rate": 1.0})
    task = create(box, video_url("doomed"))
    done = wait_done(lambda: sdk(box).embed.v_2.tasks.retrieve(task.id))
    assert done.status == "failed" and done.error.message and done.data is None


def test_stuck_tasks_stay_processing(box: Service):
    admin(box, "config", {"stuck_rate": 1.0})
    task = create(box, video_url("stuck"))
    time.sleep(1.0)
    assert sdk(box).embed.v_2.tasks.retrieve(task.id).status == "processing"


def test_slow_responses_are_delayed(box: Service):
    admin(box, "config", {"slow_rate": 1.0, "slow_s": 0.4})
    started = time.monotonic()
    http("GET", f"{box.url}/v1.3/embed-v2/tasks")
    assert time.monotonic() - started >= 0.4
    assert admin(box, "stats")["slowed"] == 1


def test_fault_rolls_repeat_with_the_same_seed(own_sandbox):
    def outcomes(seed: str) -> list[int]:
        service = own_sandbox("--seed", seed, "--rate-429", "0.5")
        return [http("GET", f"{service.url}/v1.3/embed-v2/tasks").status for _ in range(24)]

    first, again, other = outcomes("11"), outcomes("11"), outcomes("12")
    assert first == again and set(first) == {200, 429}
    assert first != other


def test_processing_time_is_base_plus_factor_times_duration_over_speed(own_sandbox):
    service = own_sandbox("--speed", "2", "--base-s", "1.6", "--factor", "0.02",
                          "--min-duration-s", "20", "--max-duration-s", "20")
    task = create(service, video_url("timed"))
    started = time.monotonic()
    done = wait_done(lambda: sdk(service).embed.v_2.tasks.retrieve(task.id))
    elapsed = time.monotonic() - started
    assert done.status == "ready" and done.metadata.duration == 20
    ready = raw_task(service, task.id)
    took = stamp(ready["updated_at"]) - stamp(ready["created_at"])
    assert took == pytest.approx(1.0, abs=0.002), took  # (1.6 + 0.02 x 20) / 2 = 1.0 s
    assert elapsed >= 0.9, elapsed  # not ready early (load can only make the wait longer)


def raw_task(service: Service, task_id: str) -> dict:
    return http("GET", f"{service.url}/v1.3/embed-v2/tasks/{task_id}").body


def stamp(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def test_stats_count_tasks_per_url_requests_per_route_and_polls(box: Service):
    url = video_url("counted")
    task = create(box, url)
    client = sdk(box)
    for _ in range(3):
        client.embed.v_2.tasks.retrieve(task.id)
    http("GET", f"{box.url}/embed-v2/tasks/{task.id}")
    stats = admin(box, "stats")
    assert stats["tasks_created"] == 1 and stats["tasks_by_url"] == {url: 1}
    assert stats["status_polls"] == 4
    assert stats["requests"]["GET /embed-v2/tasks/{task_id}"] == {"200": 4}


def test_reset_forgets_tasks_and_counters(box: Service):
    task = create(box, video_url("forget"))
    admin(box, "reset", {})
    assert admin(box, "stats")["tasks_created"] == 0
    assert http("GET", f"{box.url}/v1.3/embed-v2/tasks/{task.id}").status == 404


def test_config_endpoint_shows_and_rejects_options(box: Service):
    assert admin(box, "config")["speed"] == 50
    changed = admin(box, "config", {"rate_429": 0.25})
    assert changed["changed"] == ["rate_429"] and changed["config"]["rate_429"] == 0.25
    assert http("POST", f"{box.url}/_sandbox/config", {"nope": 1}).status == 400
    assert http("POST", f"{box.url}/_sandbox/config", {"rate_5xx": 2}).status == 400
