"""The Twelve Labs boundary against the sandbox over HTTP: translation, retries, reconciliation;
and ``translate`` on every httpx exception class (pure logic, no server)."""

from __future__ import annotations

import inspect
import time
from typing import Any

import httpx
import numpy as np
import pytest
import redis

from pipeline.errors import (
    ApiRejectedError,
    BadInputError,
    OutcomeUnknownError,
    PermanentError,
    RateLimitedError,
    TransientError,
    VidsearchError,
)
from pipeline.media import QueryPart
from pipeline.settings import Settings, load_settings
from pipeline.spec import EmbeddingSpec
from pipeline.state.limits import Limits
from pipeline.state.quota import Quota
from pipeline.twelvelabs import TwelveLabsGateway, translate
from tests.stack import sandbox_config
from vidsearch.stack.services import Service

URL = "https://cdn.example.com/videos/surfing-dog-at-the-beach.mp4"


def _settings(service: Service, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "twelvelabs_base_url": f"{service.url}/v1.3",
        "retry_initial_s": 0.05,
        "retry_max_s": 0.2,
        "retry_total_s": 3.0,
        **overrides,
    }
    return load_settings(**values)


def test_a_rate_limited_create_becomes_rate_limited_error_and_pauses_the_quota(
    own_sandbox: Service,
    redis_client: redis.Redis,
) -> None:
    sandbox_config(own_sandbox, create_rpm=1, retry_after_s=7)
    quota = Quota(redis_client, "t:quota", rate_per_min=6000, burst=10)
    gateway = TwelveLabsGateway(_settings(own_sandbox), quota)
    spec = EmbeddingSpec.from_settings(gateway.settings)
    gateway.create_task(URL, spec)
    with pytest.raises(RateLimitedError) as caught:
        gateway.retrying("create", lambda: gateway.create_task(URL + "?2", spec), paid=False)
    assert caught.value.retry_after_s == 7
    assert quota.take(1).wait_s > 5


def test_a_bad_request_is_permanent_with_the_api_code_and_message(own_sandbox: Service) -> None:
    gateway = TwelveLabsGateway(_settings(own_sandbox))
    with pytest.raises(ApiRejectedError) as caught:
        gateway.create_task("ftp://cdn.example.com/a.mp4", EmbeddingSpec.from_settings(gateway.settings))
    assert caught.value.status_code == 400
    assert caught.value.code and caught.value.api_message


def test_a_connection_dropped_after_create_is_an_unknown_outcome(own_sandbox: Service) -> None:
    sandbox_config(own_sandbox, drop_after_create_rate=1.0)
    gateway = TwelveLabsGateway(_settings(own_sandbox))
    spec = EmbeddingSpec.from_settings(gateway.settings)
    since = time.time()
    with pytest.raises(OutcomeUnknownError):
        gateway.create_task(URL, spec)
    found = gateway.find_task(URL, spec, since=since)
    assert found is not None
    assert gateway.retrieve(found).status in {"processing", "ready"}


def test_reconciliation_ignores_tasks_of_other_urls_and_options(own_sandbox: Service) -> None:
    gateway = TwelveLabsGateway(_settings(own_sandbox))
    spec = EmbeddingSpec.from_settings(gateway.settings)
    other = EmbeddingSpec.from_settings(_settings(own_sandbox, embedding_options=["visual"]))
    since = time.time()
    gateway.create_task(URL + "?other", spec)
    gateway.create_task(URL, other)
    assert gateway.find_task(URL, spec, since=since) is None


def test_transient_errors_are_retried_until_the_total_bound(own_sandbox: Service) -> None:
    gateway = TwelveLabsGateway(_settings(own_sandbox, retry_total_s=1.0))
    task_id = gateway.create_task(URL, EmbeddingSpec.from_settings(gateway.settings))
    sandbox_config(own_sandbox, rate_5xx=1.0)
    started = time.monotonic()
    with pytest.raises(TransientError):
        gateway.retrieve(task_id)
    assert 0.9 < time.monotonic() - started < 5
    assert gateway.calls["retrieve"] > 2


def test_retries_get_through_intermittent_server_errors(own_sandbox: Service) -> None:
    gateway = TwelveLabsGateway(_settings(own_sandbox))
    task_id = gateway.create_task(URL, EmbeddingSpec.from_settings(gateway.settings))
    sandbox_config(own_sandbox, rate_5xx=0.5)
    for _ in range(10):
        assert gateway.retrieve(task_id).status in {"processing", "ready"}
    assert gateway.calls["retrieve"] > 10


def test_text_queries_embed_to_the_model_dimension(own_sandbox: Service) -> None:
    gateway = TwelveLabsGateway(_settings(own_sandbox))
    assert len(gateway.embed_text("surfing dog")) == 512
    gateway35 = TwelveLabsGateway(_settings(own_sandbox, model="marengo3.5", embedding_dimension=256))
    assert len(gateway35.embed_text("surfing dog")) == 256


def test_every_query_part_embeds_through_the_sync_endpoint(own_sandbox: Service) -> None:
    gateway = TwelveLabsGateway(_settings(own_sandbox))
    parts = [QueryPart("image", url="https://i.example.com/red-tractor.jpg"),
             QueryPart("text_image", text="red", url="https://i.example.com/tractor.jpg"),
             QueryPart("clip", url="https://v.example.com/red-tractor.mp4", start_s=0, end_s=20)]
    vectors = [np.array(gateway.embed_part(p)) for p in parts]
    assert all(v.shape == (512,) and abs(float(np.linalg.norm(v)) - 1) < 1e-3 for v in vectors)
    assert float(vectors[0] @ vectors[1]) > 0.9 and float(vectors[0] @ vectors[2]) > 0.6
    gateway35 = TwelveLabsGateway(_settings(own_sandbox, model="marengo3.5", embedding_dimension=256))
    assert len(gateway35.embed_part(parts[0])) == 256


def test_a_marengo35_clip_with_a_range_is_bad_input_before_any_call(own_sandbox: Service) -> None:
    gateway35 = TwelveLabsGateway(_settings(own_sandbox, model="marengo3.5", embedding_dimension=256))
    with pytest.raises(BadInputError, match="drop the clip range"):
        gateway35.embed_part(QueryPart("clip", url="https://v.example.com/a.mp4", start_s=0, end_s=9))
    assert gateway35.calls == {}


# --- translate: every httpx exception, unknown failures ---------------------------------------------
REQUEST = httpx.Request("POST", "https://api.example.com/v1.3/embed-v2/tasks")


def _httpx_exception_classes() -> list[type[Exception]]:
    """Every exception class httpx exports: a class a future httpx adds joins the test by itself."""
    exported = (getattr(httpx, name) for name in httpx.__all__)
    return [c for c in exported if isinstance(c, type) and issubclass(c, Exception)]


def _status_error(
    status: int, headers: dict[str, str] | None = None, body: Any = None
) -> httpx.HTTPStatusError:
    response = httpx.Response(status, headers=headers, json=body, request=REQUEST)
    return httpx.HTTPStatusError(f"status {status}", request=REQUEST, response=response)


def _instance(cls: type[Exception]) -> Exception:
    """An instance of an httpx exception class, built the way its signature asks."""
    if issubclass(cls, httpx.HTTPStatusError):
        return _status_error(503)
    params = inspect.signature(cls).parameters
    args = ["it failed"] if "message" in params else []
    kwargs = {"request": REQUEST} if "request" in params else {}
    return cls(*args, **kwargs)


def test_the_enumeration_holds_every_httpx_exception_family() -> None:
    found = set(_httpx_exception_classes())
    named = {httpx.HTTPError, httpx.RequestError, httpx.TransportError, httpx.DecodingError,
             httpx.TooManyRedirects, httpx.HTTPStatusError, httpx.InvalidURL, httpx.StreamError,
             httpx.ResponseNotRead, httpx.CookieConflict, httpx.ConnectTimeout}
    assert named <= found


@pytest.mark.parametrize("sent", [True, False], ids=["sent", "not-sent"])
@pytest.mark.parametrize("cls", _httpx_exception_classes(), ids=lambda c: c.__name__)
def test_every_httpx_exception_becomes_a_transient_or_permanent_vidsearch_error(
    cls: type[Exception], sent: bool
) -> None:
    error = translate(_instance(cls), sent=sent)
    assert isinstance(error, TransientError | PermanentError)
    assert type(error).__module__ == "pipeline.errors"
    assert str(error).startswith("Twelve Labs")


@pytest.mark.parametrize(("exc", "expected"), [
    (httpx.ConnectError("refused", request=REQUEST), TransientError),
    (httpx.PoolTimeout("no free connection", request=REQUEST), TransientError),
    (httpx.ReadTimeout("slow", request=REQUEST), OutcomeUnknownError),
    (httpx.RemoteProtocolError("peer closed", request=REQUEST), OutcomeUnknownError),
    (httpx.DecodingError("bad gzip", request=REQUEST), OutcomeUnknownError),
    (httpx.UnsupportedProtocol("no scheme", request=REQUEST), PermanentError),
    (httpx.InvalidURL("bad url"), PermanentError),
    (httpx.TooManyRedirects("loop", request=REQUEST), PermanentError),
    (httpx.ResponseNotRead(), PermanentError),
    (httpx.CookieConflict("two cookies"), PermanentError),
    (httpx.HTTPError("bare"), PermanentError),
    (_status_error(503), TransientError),
    (_status_error(409), TransientError),
    (_status_error(429, {"Retry-After": "7"}), RateLimitedError),
    (_status_error(404, body={"code": "not_found", "message": "no task"}), ApiRejectedError),
    (ValueError("Invalid IPv6 URL"), PermanentError),
    (RuntimeError("the SDK broke"), PermanentError),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v.__name__)
def test_translate_sorts_each_failure_into_retry_or_give_up(exc: Exception, expected: type) -> None:
    assert type(translate(exc)) is expected


def test_a_status_error_carries_retry_after_and_the_api_code() -> None:
    limited = translate(_status_error(429, {"Retry-After": "7"}))
    assert isinstance(limited, RateLimitedError) and limited.retry_after_s == 7
    rejected = translate(_status_error(404, body={"code": "not_found", "message": "no task"}))
    assert isinstance(rejected, ApiRejectedError)
    assert (rejected.status_code, rejected.code, rejected.api_message) == (404, "not_found", "no task")


def test_a_connection_cut_off_before_sending_is_plain_transient() -> None:
    assert type(translate(httpx.ReadError("reset", request=REQUEST), sent=False)) is TransientError


def test_a_vidsearch_error_passes_through_translate_unchanged() -> None:
    own = BadInputError("drop the clip range")
    assert translate(own) is own


def test_a_refused_header_value_never_reaches_the_message() -> None:
    error = translate(httpx.LocalProtocolError("Illegal header value b'tlk_SECRET\\n'", request=REQUEST))
    assert isinstance(error, PermanentError)
    assert "SECRET" not in str(error)


@pytest.mark.parametrize(("base_url", "says"), [
    ("not-a-url", "twelvelabs_base_url"),
    ("ftp://api.example.com/v1.3", "twelvelabs_base_url"),
    ("http://[::1/v1.3", "Invalid IPv6 URL"),
])
def test_an_unusable_base_url_fails_once_with_a_permanent_error_through_the_sdk(
    base_url: str, says: str, redis_url: str
) -> None:
    settings = load_settings(twelvelabs_base_url=base_url, redis_url=redis_url, redis_prefix="t:tl-url",
                             retry_initial_s=0.05, retry_max_s=0.2, retry_total_s=3.0)
    gateway = TwelveLabsGateway(settings)
    with pytest.raises(PermanentError, match=says) as caught:
        gateway.retrieve("task-1")
    assert not isinstance(caught.value.__cause__, VidsearchError | None)
    assert gateway.calls == {"retrieve": 1}


def _windows(own_sandbox: Service, redis_client: redis.Redis, **settings: object) -> TwelveLabsGateway:
    """A gateway with the quota's windows, on a sandbox whose every URL is a 10-minute video and
    whose organisation allows 15 media minutes per hour, answering 429s without Retry-After."""
    sandbox_config(own_sandbox, min_duration_s=600.0, max_duration_s=600.0, media_minutes_per_hour=15,
                   no_retry_after=True)
    s = _settings(own_sandbox, media_minutes_per_hour=1000, **settings)
    prefix = f"t{time.monotonic_ns()}"
    quota = Quota(redis_client, f"{prefix}:quota", rate_per_min=6000, burst=10)
    return TwelveLabsGateway(s, quota, limits=Limits(redis_client, f"{prefix}:limits", s))


def test_a_create_answer_teaches_the_windows_its_limit_and_use(
    own_sandbox: Service, redis_client: redis.Redis,
) -> None:
    gateway = _windows(own_sandbox, redis_client)
    gateway.create_task(URL, EmbeddingSpec.from_settings(gateway.settings))
    assert gateway.limits is not None
    window = gateway.limits.snapshot()["media-minutes-hour"]
    assert (window["limit"], window["used"]) == (15.0, 10.0)
    assert window["reset"] % 3600 == 0


def test_a_429_without_retry_after_waits_for_the_reset_and_spends_its_window_not_the_bucket(
    own_sandbox: Service, redis_client: redis.Redis,
) -> None:
    gateway = _windows(own_sandbox, redis_client)
    spec = EmbeddingSpec.from_settings(gateway.settings)
    gateway.create_task(URL, spec)
    started = time.monotonic()
    with pytest.raises(RateLimitedError) as caught:
        gateway.retrying("create", lambda: gateway.create_task(URL + "?2", spec), paid=False)
    assert time.monotonic() - started < gateway.settings.retry_total_s  # no sleep toward the reset
    wait = caught.value.retry_after_s
    assert wait is not None and 0 < wait <= 3600
    assert gateway.limits is not None and gateway.limits.fit([1.0]).count == 0
    assert gateway.quota is not None and gateway.quota.take(1).granted == 1  # queries still go
    assert gateway.calls["create"] == 2  # one refused answer, not retried into the window
