"""Fixtures for the sandbox tests: SDK clients, raw HTTP helpers, private sandboxes.

Everything talks to a real sandbox process over HTTP: the session one from ``tests/conftest.py``
(speed 50, any key), or a private one started with special options.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from twelvelabs import TwelveLabs
from twelvelabs.types import (
    AsyncVideoInputRequest,
    MediaSource,
    MultiInputRequest,
    TextInputRequest,
    VideoSegmentation_Fixed,
    VideoSegmentationFixedFixed,
)

from tests.conftest import SANDBOX_API_KEY
from vidsearch.sandbox.config import SandboxConfig
from vidsearch.sandbox.media import hashed_duration
from vidsearch.stack.services import Service, start_sandbox


@dataclass
class Raw:
    """A raw HTTP answer."""

    status: int
    headers: dict[str, str]
    body: Any


def http(method: str, url: str, body: Any = None, key: str | None = SANDBOX_API_KEY) -> Raw:
    """One raw JSON request (no SDK)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    if key:
        request.add_header("x-api-key", key)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw, status, headers = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        raw, status, headers = exc.read(), exc.code, dict(exc.headers)
    return Raw(status, {k.lower(): v for k, v in headers.items()}, json.loads(raw) if raw else None)


def admin(service: Service, path: str, body: Any = None) -> Any:
    """Call the admin API (``/_sandbox/<path>``); GET without a body, POST with one."""
    result = http("POST" if body is not None else "GET", f"{service.url}/_sandbox/{path}", body, None)
    assert result.status == 200, result.body
    return result.body


def video_url(*words: str) -> str:
    """A unique media URL whose file name carries ``words``."""
    return f"https://cdn.example.com/{uuid.uuid4().hex[:8]}/{'-'.join(words)}.mp4"


def video_url_lasting(at_least_s: float, *words: str) -> str:
    """A unique media URL (as ``video_url``) whose simulated duration is at least ``at_least_s``.

    Without a catalog entry the sandbox derives a URL's duration from its hash within the default
    [min_duration_s, max_duration_s]; a test that needs a minimum length draws until it has one.
    """
    defaults = SandboxConfig()
    while True:
        url = video_url(*words)
        if hashed_duration(url, defaults.min_duration_s, defaults.max_duration_s) >= at_least_s:
            return url


def v2_body(url: str, model: str = "marengo3.0", **video: Any) -> dict[str, Any]:
    """A raw POST embed-v2/tasks body."""
    top = {k: video.pop(k) for k in ("embedding_dimension",) if k in video}
    return {"input_type": "video", "model_name": model, **top,
            "video": {"media_source": {"url": url}, **video}}


def wait_done(fetch: Callable[[], Any], timeout_s: float = 15.0) -> Any:
    """Poll ``fetch()`` until its ``status`` is not ``processing``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = fetch()
        if result.status != "processing" or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


@pytest.fixture
def client(sandbox_env: str) -> TwelveLabs:
    """The real SDK, pointed at the session sandbox through TWELVELABS_BASE_URL."""
    return TwelveLabs(api_key=SANDBOX_API_KEY)


@pytest.fixture
def base(sandbox_service: Service) -> str:
    return sandbox_service.url


@pytest.fixture
def own_sandbox(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Start private sandboxes with extra options; all stopped at the end of the test."""
    started: list[Service] = []

    def start(*args: str) -> Service:
        service = start_sandbox(tmp_path, args=list(args))
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


def sdk(service: Service, key: str = SANDBOX_API_KEY) -> TwelveLabs:
    """The SDK pointed at ``service`` explicitly."""
    return TwelveLabs(api_key=key, base_url=f"{service.url}/v1.3")


def embed_video(client: TwelveLabs, url: str, model: str = "marengo3.0",
                options: list[str] | None = None):
    seg = VideoSegmentation_Fixed(fixed=VideoSegmentationFixedFixed(duration_sec=10))
    if model == "marengo3.5":
        seg = {"temporal": {"strategy": "fixed", "fixed": {"duration_sec": 10}}}
    task = client.embed.v_2.tasks.create(
        input_type="video", model_name=model,
        video=AsyncVideoInputRequest(media_source=MediaSource(url=url), segmentation=seg,
                                     embedding_option=options or ["visual"],
                                     embedding_scope=["clip"]))
    done = wait_done(lambda: client.embed.v_2.tasks.retrieve(task.id))
    assert done.status == "ready"
    return done.data


def text_query(client: TwelveLabs, text: str, model: str = "marengo3.0") -> np.ndarray:
    if model == "marengo3.5":
        result = client.embed.v_2.create(input_type="multi_input", model_name=model,
                                         multi_input=MultiInputRequest(input_text=text))
    else:
        result = client.embed.v_2.create(input_type="text", model_name=model,
                                         text=TextInputRequest(input_text=text))
    return np.array(result.data[0].embedding)
