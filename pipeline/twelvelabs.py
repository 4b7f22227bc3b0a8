"""The Twelve Labs boundary: the only module that imports the ``twelvelabs`` SDK.

Every exception a call through the SDK raises is translated here (``translate``) into vidsearch's
own tree; nothing from the SDK, httpx or pydantic travels further up (the original is chained):

* an HTTP answer (the SDK's ``ApiError`` or ``httpx.HTTPStatusError``): 429 -> ``RateLimitedError``
  (with Retry-After, else the seconds until ``X-Ratelimit-Reset``), 408 / 409 / 5xx ->
  ``TransientError``, other 4xx -> ``ApiRejectedError`` with the API's code and message;
* not sent (``ConnectError``, ``ConnectTimeout``, ``PoolTimeout``, ``ProxyError``) -> ``TransientError``;
* sent, then cut off or unreadable (any other ``TransportError``: timeouts, dropped connections,
  remote protocol errors; ``DecodingError``) -> ``OutcomeUnknownError``;
* a request that cannot be sent as configured (``UnsupportedProtocol``, ``InvalidURL``,
  ``LocalProtocolError``, ``TooManyRedirects``: a bad ``twelvelabs_base_url`` or API key) ->
  ``PermanentError``, without the request's header values in the message;
* a body the SDK's models refuse (``pydantic.ValidationError``) -> ``TransientError``;
* anything else (``StreamError``, ``CookieConflict``, a new httpx class, an SDK bug, a ``ValueError``
  from an unparsable base URL) -> ``PermanentError`` naming the original type: an unknown failure is
  not retried into the quota; a vidsearch error passes through as it is.

Retries: one tenacity policy per operation (``retrying``): transient errors only, exponential
backoff with full jitter capped at ``retry_max_s``, a server's Retry-After wins, and the whole
operation is bounded by ``retry_total_s`` (a 429 whose wait would pass that bound ends it at once:
the caller waits for the window elsewhere). Paid calls (task creation, sync embeds) take a token
from the global quota before every attempt. Every answer's ``X-Ratelimit-*`` headers teach the
quota's windows (``pipeline/state/limits.py``); a 429 that names a media-minutes or daily window
marks it spent until its reset, any other 429 pauses the request bucket for everyone.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import httpx
import pydantic
import tenacity
from twelvelabs import TwelveLabs
from twelvelabs.core.api_error import ApiError
from twelvelabs.types import (
    ImageInputRequest,
    MediaSource,
    MultiInputMediaSource,
    MultiInputRequest,
    TextImageInputRequest,
    TextInputRequest,
    VideoInputRequest,
)

from pipeline.errors import (
    ApiRejectedError,
    BadInputError,
    OutcomeUnknownError,
    PermanentError,
    RateLimitedError,
    TransientError,
    VidsearchError,
)
from pipeline.logs import get_logger
from pipeline.media import QueryPart
from pipeline.metrics.recorder import MetricsRecorder
from pipeline.settings import Settings
from pipeline.spec import EmbeddingSpec
from pipeline.state.limits import Limits, retry_after_reset
from pipeline.state.quota import Quota

T = TypeVar("T")
log = get_logger("vidsearch.twelvelabs")
SANDBOX_KEY = "sandbox"
SANDBOX_BASE_URL = "http://127.0.0.1:8300/v1.3"  # where ``vidsearch up`` serves the sandbox
RECONCILE_MAX_PAGES = 20


@dataclass(frozen=True, slots=True)
class TaskSegment:
    option: str
    scope: str
    start_s: float
    end_s: float
    embedding: list[float]


@dataclass(frozen=True, slots=True)
class TaskResult:
    status: str
    segments: list[TaskSegment]
    error: str | None
    processing_s: float | None


def _retry_after(headers: dict[str, Any] | None) -> float | None:
    if not headers:
        return None
    lowered = {str(k).lower(): v for k, v in headers.items()}
    raw = lowered.get("retry-after")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except (TypeError, ValueError):
        return None


def _code_and_message(body: Any) -> tuple[str, str]:
    if isinstance(body, dict):
        nested = body.get("error")
        inner: dict[str, Any] = nested if isinstance(nested, dict) else body
        return str(inner.get("code", "unknown")), str(inner.get("message", body))
    return "unknown", str(body)[:500] or "(empty body)"


_UNSENDABLE = (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError, httpx.TooManyRedirects)
"""Requests httpx cannot send as configured (base URL, API key): retrying cannot help."""
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)
"""Failures before the request left: Twelve Labs cannot have seen it."""
_CUT_OFF = (httpx.TransportError, httpx.DecodingError)
"""Failures after the request may have left (checked after the two above)."""


def translate(exc: Exception, *, sent: bool = True) -> VidsearchError:
    """``exc``, raised by a call through the SDK, as a vidsearch error (see the module docstring).

    ``sent=False`` says the request cannot have reached Twelve Labs: a cut-off connection is then
    a plain ``TransientError``, not an ``OutcomeUnknownError``.
    """
    if isinstance(exc, VidsearchError):
        return exc
    if isinstance(exc, ApiError):
        return _from_status(exc.status_code or 0, exc.headers, exc.body)
    if isinstance(exc, httpx.HTTPStatusError):
        response = exc.response
        return _from_status(response.status_code, dict(response.headers), _body(response))
    return _from_failure(exc, sent)


def _from_status(status: int, headers: dict[str, Any] | None, body: Any) -> VidsearchError:
    code, message = _code_and_message(body)
    if status == 429:
        wait = _retry_after(headers)
        if wait is None:
            wait = retry_after_reset(headers, time.time())
        return RateLimitedError(f"Twelve Labs 429 {code}: {message}", wait)
    if status in (408, 409) or status >= 500:
        return TransientError(f"Twelve Labs {status} {code}: {message}")
    return ApiRejectedError(status, code, message)


def _from_failure(exc: Exception, sent: bool) -> VidsearchError:
    """A failure without an HTTP answer."""
    name = type(exc).__name__
    if isinstance(exc, httpx.LocalProtocolError):  # its message quotes header values: the API key
        return PermanentError(f"Twelve Labs request refused by httpx ({name}): check the API key")
    if isinstance(exc, _UNSENDABLE):
        return PermanentError(f"Twelve Labs request cannot be sent ({name}: {exc}): "
                              "check the twelvelabs_base_url setting")
    if isinstance(exc, _NOT_SENT):
        return TransientError(f"Twelve Labs unreachable: {name}: {exc}")
    if isinstance(exc, _CUT_OFF):
        cls = OutcomeUnknownError if sent else TransientError
        return cls(f"Twelve Labs connection lost: {name}: {exc}")
    if isinstance(exc, pydantic.ValidationError):
        return TransientError(f"Twelve Labs answered an unexpected body: {exc.error_count()} errors")
    return PermanentError(f"Twelve Labs call failed unexpectedly: {type(exc).__module__}.{name}: {exc}")


def _body(response: httpx.Response) -> Any:
    """The answer's JSON, else its reason phrase (a body that is not JSON or was not read)."""
    try:
        return response.json()
    except (ValueError, httpx.StreamError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return response.reason_phrase


class _Wait(tenacity.wait.wait_base):
    """Full-jitter exponential backoff, capped; a server's Retry-After wins."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self.initial_s = initial_s
        self.max_s = max_s

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, RateLimitedError) and exc.retry_after_s is not None:
            return exc.retry_after_s
        ceiling = min(self.max_s, self.initial_s * 2 ** (retry_state.attempt_number - 1))
        return random.uniform(self.initial_s / 2, ceiling)


class _LongWait(tenacity.stop.stop_base):
    """Stop at once when a 429's wait would outlast the operation's total bound."""

    def __init__(self, total_s: float) -> None:
        self.total_s = total_s

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if not isinstance(exc, RateLimitedError) or exc.retry_after_s is None:
            return False
        elapsed = retry_state.seconds_since_start or 0.0
        return elapsed + exc.retry_after_s > self.total_s


class TwelveLabsGateway:
    """Twelve Labs calls the pipeline makes, with translation, retries and the global quota."""

    def __init__(
        self, settings: Settings, quota: Quota | None = None, metrics: MetricsRecorder | None = None,
        limits: Limits | None = None,
    ) -> None:
        key = settings.twelve_labs_api_key
        self.settings = settings
        self.quota = quota
        self.limits = limits
        self.metrics = metrics or MetricsRecorder.from_settings(settings)
        self.client = TwelveLabs(
            api_key=key.get_secret_value() if key else SANDBOX_KEY,
            base_url=settings.twelvelabs_base_url or (SANDBOX_BASE_URL if key is None else None),
            timeout=settings.api_timeout_s,
        )
        self.calls: dict[str, int] = {}

    # --- the retry policy --------------------------------------------------------------------
    def retrying(self, operation: str, fn: Callable[[], T], *, paid: bool, charged: bool = False) -> T:
        """Run ``fn`` under this operation's retry policy (see the module docstring)."""
        s = self.settings
        charge_next = [paid and not charged]

        def attempt() -> T:
            if charge_next[0]:
                self._charge()
            charge_next[0] = paid
            return fn()

        policy = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransientError),
            wait=_Wait(s.retry_initial_s, s.retry_max_s),
            stop=tenacity.stop_after_delay(s.retry_total_s) | _LongWait(s.retry_total_s),
            before_sleep=partial(_log_retry, operation),
            reraise=True,
        )
        return policy(attempt)

    def _charge(self) -> None:
        if self.quota and not self.quota.acquire(self.settings.retry_total_s):
            wait = max(self.quota.paused_until() - time.time(), self.settings.retry_initial_s)
            raise RateLimitedError("global Twelve Labs quota exhausted for the whole retry budget", wait)

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        """One HTTP request through the SDK: counted, translated, a 429 pausing the quota."""
        self.calls[operation] = self.calls.get(operation, 0) + 1
        try:
            result = fn()
        except Exception as exc:  # whatever the SDK raises is translated (``translate``)
            err = translate(exc)
            self.metrics.twelve_labs_call(operation, err)
            if isinstance(err, RateLimitedError):
                self._rate_limited(err, getattr(exc, "headers", None))
            if err is exc:
                raise
            raise err from exc
        self.metrics.twelve_labs_call(operation, None)
        return result

    def _rate_limited(self, err: RateLimitedError, headers: Any) -> None:
        """A 429: a named window is spent until its reset; any other limit pauses the bucket."""
        if self.limits and self.limits.spent(headers if isinstance(headers, dict) else None):
            return
        if self.quota:
            self.quota.pause(err.retry_after_s or self.settings.retry_initial_s)

    def _learn(self, headers: dict[str, str]) -> None:
        if self.limits:
            self.limits.learn(headers)

    # --- operations ----------------------------------------------------------------------------
    def create_task(self, url: str, spec: EmbeddingSpec, scopes: Sequence[str] | None = None) -> str:
        """One create request (no retry: the caller reconciles before any further create);
        ``scopes``: the embedding scopes to request for this video (default: the spec's)."""
        kwargs: dict[str, Any] = {
            "input_type": "video",
            "model_name": spec.model,
            "video": {
                "media_source": {"url": url},
                "segmentation": _segmentation(spec),
                "embedding_option": list(spec.options),
                "embedding_scope": list(scopes or spec.scopes),
            },
        }
        if spec.dimension is not None:
            kwargs["embedding_dimension"] = spec.dimension
        raw = self._call("create", lambda: self.client.embed.v_2.tasks.with_raw_response.create(**kwargs))
        self._learn(raw.headers)
        return str(raw.data.id)

    def retrieve(self, task_id: str) -> TaskResult:
        """The task's status and, when ready, its segments."""
        request = partial(self.client.embed.v_2.tasks.retrieve, task_id)
        r = self.retrying("retrieve", partial(self._call, "retrieve", request), paid=False)
        segments = [
            TaskSegment(
                option=str(d.embedding_option or "visual"), scope=str(d.embedding_scope or "clip"),
                start_s=float(d.start_sec or 0.0), end_s=float(d.end_sec or 0.0),
                embedding=list(d.embedding),
            )
            for d in (r.data or [])
        ]
        took = None
        if r.created_at and r.updated_at:
            took = (r.updated_at - r.created_at).total_seconds()
        error = r.error.message if r.error and r.error.message else None
        return TaskResult(status=str(r.status), segments=segments, error=error, processing_s=took)

    def find_task(self, url: str, spec: EmbeddingSpec, since: float) -> str | None:
        """A task created for ``url`` with ``spec`` since ``since`` (epoch s), through the list."""
        started = datetime.fromtimestamp(since, UTC) - timedelta(seconds=60)
        for task in self._list_since(started):
            if _matches(task, url, spec):
                return str(task.id)
        return None

    def _list_since(self, started: datetime) -> Iterator[Any]:
        stamp = started.strftime("%Y-%m-%dT%H:%M:%SZ")
        for page in range(1, RECONCILE_MAX_PAGES + 1):
            request = partial(self._list_page, stamp, page)
            items = self.retrying("list", partial(self._call, "list", request), paid=False)
            if not items:
                return
            yield from items

    def _list_page(self, started_at: str, page: int) -> list[Any]:
        pager = self.client.embed.v_2.tasks.list(started_at=started_at, page=page, page_limit=50)
        return list(pager.items or [])

    def embed_text(self, text: str) -> list[float]:
        """A query embedding of ``text`` through the sync v2 endpoint (paid, retried)."""
        return self.embed_part(QueryPart("text", text=text))

    def embed_part(self, part: QueryPart, spec: EmbeddingSpec | None = None) -> list[float]:
        """One query part's embedding through the sync v2 endpoint (paid, retried), with
        ``spec``'s model, dimension and options (default: the settings').

        A clip answers one embedding per segment and option; the query vector is their mean.
        """
        kwargs = self._sync_body(part, spec or EmbeddingSpec.from_settings(self.settings))
        call: Callable[[], Any] = lambda: self.client.embed.v_2.with_raw_response.create(**kwargs)  # noqa: E731
        raw = self.retrying("embed", partial(self._call, "embed", call), paid=True)
        self._learn(raw.headers)
        response = raw.data
        vectors = [list(d.embedding) for d in response.data or []]
        if not vectors:
            raise TransientError("Twelve Labs answered a sync embed without embeddings")
        return _mean(vectors)

    def _sync_body(self, part: QueryPart, spec: EmbeddingSpec) -> dict[str, Any]:
        model = spec.model
        if model == "marengo3.5":
            return {"input_type": "multi_input", "model_name": model,
                    "embedding_dimension": spec.dimension or 512,
                    "multi_input": _multi_input(part)}
        input_type = "video" if part.kind == "clip" else part.kind
        body: dict[str, Any] = {"input_type": input_type, "model_name": model}
        source = MediaSource(url=part.url) if part.url else None
        if part.kind == "text":
            body["text"] = TextInputRequest(input_text=part.text or "")
        elif part.kind == "image":
            body["image"] = ImageInputRequest(media_source=source)
        elif part.kind == "text_image":
            body["text_image"] = TextImageInputRequest(media_source=source, input_text=part.text or "")
        else:
            body["video"] = VideoInputRequest(
                media_source=source, start_sec=part.start_s, end_sec=part.end_s,
                embedding_option=list(spec.options), embedding_scope=["clip"],
            )
        return body


def _multi_input(part: QueryPart) -> MultiInputRequest:
    """Marengo 3.5 takes only multi_input: text plus media sources (video without a range)."""
    if part.kind == "clip" and (part.start_s is not None or part.end_s is not None):
        raise BadInputError("marengo3.5 sync embeds take a whole clip (up to 30 s): drop the clip range")
    sources = None
    if part.url:
        media_type = "video" if part.kind == "clip" else "image"
        sources = [MultiInputMediaSource(name="q", media_type=media_type, url=part.url)]
    return MultiInputRequest(input_text=part.text, media_sources=sources)


def _mean(vectors: list[list[float]]) -> list[float]:
    if len(vectors) == 1:
        return vectors[0]
    width = len(vectors[0])
    total = [sum(v[i] for v in vectors) for i in range(width)]
    norm = sum(x * x for x in total) ** 0.5 or 1.0
    return [x / norm for x in total]


def _log_retry(operation: str, state: tenacity.RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else None
    log.warning("twelve_labs_retry", operation=operation, attempt=state.attempt_number,
                error=str(error), wait_s=round(wait, 2) if wait is not None else None)


def _segmentation(spec: EmbeddingSpec) -> dict[str, Any]:
    if spec.segmentation == "fixed":
        shape: dict[str, Any] = {
            "strategy": "fixed", "fixed": {"duration_sec": spec.segment_duration_s}
        }
    else:
        shape = {"strategy": "dynamic", "dynamic": {"min_duration_sec": spec.min_segment_duration_s}}
    return {"temporal": shape} if spec.model == "marengo3.5" else shape


def _matches(task: Any, url: str, spec: EmbeddingSpec) -> bool:
    meta = task.video_embedding.metadata if task.video_embedding else None
    if meta is None or getattr(meta, "input_url", None) != url:
        return False
    if task.model_name and task.model_name != spec.model:
        return False
    options = meta.video_embedding_option
    return options is None or sorted(options) == sorted(spec.options)
