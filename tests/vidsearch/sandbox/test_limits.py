"""The organisation's limits (requests and media minutes, one shared counter), the movable clock
and the 7-day retention, through the real SDK over HTTP."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from twelvelabs.core.api_error import ApiError
from twelvelabs.types import TextInputRequest

from tests.vidsearch.sandbox.conftest import admin, http, sdk, video_url, wait_done
from vidsearch.stack.services import Service, start_sandbox

DEFAULTS = {"requests_per_minute": 0, "requests_per_day": 0, "media_minutes_per_hour": 0.0,
            "media_window_s": 3600.0, "media_minutes_per_day": 0.0, "no_retry_after": False,
            "retention_days": 7.0, "min_duration_s": 600.0, "max_duration_s": 600.0,
            "tokens_per_minute": 0, "tokens_per_day": 0}
EXPIRED = "The embedding result is no longer available and cannot be retrieved."


@pytest.fixture(scope="module")
def box_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_sandbox(tmp_path_factory.mktemp("limits"), args=["--speed", "1000"])
    yield service
    service.stop()


@pytest.fixture
def box(box_service: Service) -> Iterator[Service]:
    """Every URL is a 10-minute video; no limits until the test sets them; the clock reset."""
    admin(box_service, "config", DEFAULTS)
    admin(box_service, "reset", {})
    yield box_service


def create(service: Service, url: str | None = None, model: str = "marengo3.0"):
    return sdk(service).embed.v_2.tasks.create(
        input_type="video", model_name=model,
        video={"media_source": {"url": url or video_url("long")}})


def refusal(service: Service, url: str | None = None, model: str = "marengo3.0") -> ApiError:
    with pytest.raises(ApiError) as err:
        create(service, url, model)
    assert err.value.status_code == 429
    return err.value


def advance(service: Service, seconds: float) -> float:
    return float(admin(service, "clock", {"advance_s": seconds})["now"])


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def test_media_minutes_per_hour_refuses_the_create_that_would_pass_it(box: Service):
    admin(box, "config", {"media_minutes_per_hour": 25, "no_retry_after": True})
    create(box)
    create(box)  # 20 of 25 minutes used
    err = refusal(box)
    headers = lower(err.headers)
    assert err.body["code"] == "too_many_requests"
    assert "25 minutes of media per hour" in err.body["message"]
    assert headers["x-ratelimit-resource"] == "media-minutes-hour"
    assert (headers["x-ratelimit-limit"], headers["x-ratelimit-used"],
            headers["x-ratelimit-remaining"]) == ("25", "20", "5")
    assert int(headers["x-ratelimit-reset"]) % 3600 == 0
    assert "retry-after" not in headers
    stats = admin(box, "stats")
    assert stats["tasks_created"] == 2 and stats["rate_limited_org"] == {"media-minutes-hour": 1}
    assert stats["media_minutes"] == pytest.approx(20.0)


def test_the_media_window_frees_at_its_reset(box: Service):
    admin(box, "config", {"media_minutes_per_hour": 10})
    create(box)
    err = refusal(box)
    reset = int(lower(err.headers)["x-ratelimit-reset"])
    assert 1 <= int(lower(err.headers)["retry-after"]) <= 3600
    now = float(admin(box, "clock")["now"])
    advance(box, math.ceil(reset - now) + 1)
    create(box)


def test_a_video_longer_than_the_whole_window_passes_alone(box: Service):
    admin(box, "config", {"media_minutes_per_hour": 5})
    create(box)  # 10 minutes into an empty 5-minute window
    refusal(box)


def test_success_answers_carry_the_headers_of_the_dimension_nearest_its_limit(box: Service):
    admin(box, "config", {"media_minutes_per_hour": 100, "requests_per_minute": 50})
    raw = sdk(box).embed.v_2.tasks.with_raw_response.create(
        input_type="video", model_name="marengo3.0", video={"media_source": {"url": video_url("a")}})
    headers = lower(dict(raw.headers))
    assert headers["x-ratelimit-resource"] == "media-minutes-hour"  # 10/100 used beats 1/50
    assert (headers["x-ratelimit-used"], headers["x-ratelimit-remaining"]) == ("10", "90")


def test_every_embedding_endpoint_shares_one_request_counter(box: Service):
    admin(box, "config", {"requests_per_minute": 3})
    client = sdk(box)
    create(box)
    client.embed.v_2.create(input_type="text", model_name="marengo3.0",
                            text=TextInputRequest(input_text="dog"))
    client.embed.create(model_name="marengo3.0", text="a dog")  # v1 sync
    with pytest.raises(ApiError) as err:
        client.embed.tasks.create(model_name="marengo3.0", video_url=video_url("v1"))  # v1 async
    assert err.value.status_code == 429
    assert lower(err.value.headers)["x-ratelimit-resource"] == "requests-minute"


def test_the_daily_request_limit_holds_past_the_minute_until_the_next_day(box: Service):
    admin(box, "config", {"requests_per_day": 2, "requests_per_minute": 100})
    create(box)
    create(box)
    err = refusal(box)
    assert lower(err.headers)["x-ratelimit-resource"] == "requests-day"
    assert "2 requests per day" in err.body["message"]
    now = advance(box, 120)
    refusal(box)
    reset = int(lower(err.headers)["x-ratelimit-reset"])
    assert reset % 86400 == 0
    advance(box, reset - now + 1)
    create(box)


def test_marengo35_input_tokens_per_minute_refuse_the_create_that_would_pass_them(box: Service):
    admin(box, "config", {"tokens_per_minute": 10000})  # a 10-minute video is 6,000 tokens
    create(box, model="marengo3.5")
    create(box)  # Marengo 3.0 counts no tokens
    err = refusal(box, model="marengo3.5")
    headers = lower(err.headers)
    assert (headers["x-ratelimit-resource"], headers["x-ratelimit-used"]) == ("tokens-minute", "6000")
    assert headers["x-ratelimit-limit"] == "10000" and int(headers["retry-after"]) <= 60
    assert "10000 input tokens per minute" in err.body["message"]
    advance(box, int(headers["x-ratelimit-reset"]) - advance(box, 0) + 1)
    create(box, model="marengo3.5")
    assert admin(box, "stats")["input_tokens"] == 12000


def test_marengo35_input_tokens_per_day_hold_until_the_next_day_sync_text_included(box: Service):
    admin(box, "config", {"tokens_per_day": 6010})
    sdk(box).embed.v_2.create(input_type="multi_input", model_name="marengo3.5",
                              multi_input={"input_text": "a dog on a beach"})  # 5 tokens
    create(box, model="marengo3.5")  # 6,000 more: 6,005
    err = refusal(box, model="marengo3.5")
    assert lower(err.headers)["x-ratelimit-resource"] == "tokens-day"
    assert lower(err.headers)["x-ratelimit-used"] == "6005"
    now = advance(box, 120)
    refusal(box, model="marengo3.5")  # past the minute, still the same day
    reset = int(lower(err.headers)["x-ratelimit-reset"])
    assert reset % 86400 == 0
    advance(box, reset - now + 1)
    create(box, model="marengo3.5")


def test_the_daily_media_limit_counts_sync_video_embeds_too(box: Service):
    admin(box, "config", {"media_minutes_per_day": 10, "max_duration_s": 600.0})
    client = sdk(box)
    client.embed.v_2.create(input_type="video", model_name="marengo3.0",
                            video={"media_source": {"url": video_url("clip")}, "start_sec": 0,
                                   "end_sec": 300})  # 5 minutes
    err = refusal(box)  # 10 more: 5 + 10 > 10
    assert lower(err.headers)["x-ratelimit-resource"] == "media-minutes-day"
    assert admin(box, "limits")["media-minutes-day"]["used"] == pytest.approx(5.0)


def test_results_expire_after_seven_days_and_leave_the_default_list(box: Service):
    client = sdk(box)
    task = create(box)
    assert wait_done(lambda: client.embed.v_2.tasks.retrieve(task.id)).status == "ready"
    advance(box, 7 * 86400 + 60)
    gone = client.embed.v_2.tasks.retrieve(task.id)
    assert gone.status == "failed" and gone.error.message == EXPIRED and gone.data is None
    assert [t.id for t in client.embed.v_2.tasks.list()] == []
    since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [t.id for t in client.embed.v_2.tasks.list(started_at=since)] == [task.id]


def test_the_clock_only_moves_forward(box: Service):
    answer = http("POST", f"{box.url}/_sandbox/clock", {"advance_s": -5}, None)
    assert answer.status == 400


def test_every_row_of_the_real_versus_sandbox_table_names_tests_that_exist() -> None:
    text = (Path(__file__).parents[3] / "docs" / "sandbox.md").read_text(encoding="utf-8")
    table = text.split("## The real service beside the sandbox", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    claimed = [row for row in rows if "not emulated" not in row]
    assert len(claimed) >= 15
    files = [*Path(__file__).parent.glob("test_*.py"), *Path(__file__).parents[2].glob("drills/test_*.py")]
    defined = {name for f in files
               for name in re.findall(r"^def (test_\w+)", f.read_text(encoding="utf-8"), re.M)}
    for row in claimed:
        named = re.findall(r"`(test_\w+)`", row)
        assert named and set(named) <= defined, row
