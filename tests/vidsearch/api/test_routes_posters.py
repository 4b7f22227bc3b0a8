"""/v1/posters over real HTTP on the real stack: the frame at a moment of an ingested video (a real
MP4 the sandbox serves), cached; the placeholder when the video cannot be had (unreachable, a
redirect, a stalled server, over the byte limit); and the rules that keep the route from fetching
anything else (the manifests' internal-address rule, ingested videos only): nothing is fetched then.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.stack import Stack
from tests.vidsearch.api.conftest import (
    POSTER_SOURCE,
    Api,
    Server,
    api_for,
    assert_problem,
    start_server,
    video_url,
)
from vidsearch.sandbox.catalog import Scene, media_url
from vidsearch.sandbox.video_files import scene_colour

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PRIVATE = {"VIDSEARCH_ALLOW_PRIVATE_HOSTS": "true"}
KITE = Scene(10, 60, ("red", "kite", "hovering"))
CLIFFS = Scene(0, 10, ("cliffs", "sea"))
MEDIA_ROUTE = "GET /_sandbox/media/{host}/{path}"


class _Odd(BaseHTTPRequestHandler):
    """``/moved.mp4`` redirects to the sandbox's file; ``/stalled.mp4`` never answers."""

    target = ""
    release = threading.Event()

    def do_GET(self) -> None:
        if self.path.startswith("/moved"):
            self.send_response(302)
            self.send_header("Location", self.target)
            self.end_headers()
        else:
            self.release.wait(60)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def odd(stack: Stack) -> Iterator[str]:
    _Odd.target = media_url(stack.sandbox.url, POSTER_SOURCE)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Odd)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _Odd.release.set()
    server.shutdown()


@pytest.fixture(scope="module")
def playable(stack: Stack, odd: str) -> str:
    """The kite's file address, ingested (with the odd server's two URLs) by a stack that accepts
    loopback URLs."""
    url = media_url(stack.sandbox.url, POSTER_SOURCE)
    manifest = stack.root / "posters.csv"
    manifest.write_text(f"url,category,title\n{url},animals,Red kite\n{odd}/moved.mp4,animals,Moved\n"
                        f"{odd}/stalled.mp4,animals,Stalled\n", encoding="utf-8")
    done = json.loads(stack.vidsearch("submit", str(manifest), "--wait", "--json", env=PRIVATE,
                                      timeout=300).stdout)
    assert done["done"] == 3, done
    return url


@pytest.fixture(scope="module")
def private(stack: Stack) -> Iterator[Server]:
    server = start_server(stack, "posters", **PRIVATE, VIDSEARCH_POSTER_TIMEOUT_S="3")
    yield server
    server.stop()


def _media_gets(stack: Stack) -> int:
    stats = httpx.get(f"{stack.sandbox.url}/_sandbox/stats", timeout=30).json()
    return sum(stats["requests"].get(MEDIA_ROUTE, {}).values())


def _colour(jpeg: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(jpeg)).convert("RGB")
    return np.asarray(image)[image.height // 2 + 30, image.width - 10].astype(int)


def test_a_poster_is_the_frame_at_the_moment_and_is_fetched_once(
    private: Server, playable: str, stack: Stack
) -> None:
    api = api_for(private)
    kite = api.get("/v1/posters", params={"url": playable, "t": 12})
    assert kite.status_code == 200 and kite.headers["content-type"] == "image/jpeg"
    assert kite.headers["x-vidsearch-poster"] == "frame"
    assert np.abs(_colour(kite.content) - scene_colour(KITE)).max() <= 16
    cliffs = api.get("/v1/posters", params={"url": playable, "t": 4})
    assert np.abs(_colour(cliffs.content) - scene_colour(CLIFFS)).max() <= 16
    fetched = _media_gets(stack)
    again = api.get("/v1/posters", params={"url": playable, "t": 12})
    assert again.content == kite.content and _media_gets(stack) == fetched


def test_a_video_that_is_not_ingested_is_a_404_and_nothing_is_fetched(
    private: Server, playable: str, stack: Stack
) -> None:
    api = api_for(private)
    before = _media_gets(stack)
    other = media_url(stack.sandbox.url, "https://media.example.com/posters/never-ingested.mp4")
    for url in (other, playable + "?x=1", "http://127.0.0.1:1/anything.mp4"):
        assert_problem(api.get("/v1/posters", params={"url": url}), 404, "not-ingested")
    assert _media_gets(stack) == before


def test_a_default_server_refuses_internal_addresses_before_fetching(
    open_api: Api, playable: str, stack: Stack
) -> None:
    before = _media_gets(stack)
    for url in (playable, "http://169.254.169.254/latest/meta-data/", "http://localhost/x.mp4",
                "http://[::1]/x.mp4", "file:///etc/passwd"):
        problem = assert_problem(open_api.get("/v1/posters", params={"url": url}), 400, "poster-url-refused")
        assert "cannot be fetched" in problem["detail"]
    assert _media_gets(stack) == before


def test_an_ingested_video_that_cannot_be_fetched_gets_the_placeholder(open_api: Api) -> None:
    response = open_api.get("/v1/posters", params={"url": video_url("animals", "surfing-dog-at-the-beach"),
                                                   "t": 9})
    assert response.status_code == 200 and response.headers["x-vidsearch-poster"] == "placeholder"
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert b"no preview" in response.content and response.headers["cache-control"] == "no-store"


def test_a_redirect_is_not_followed_and_a_stalled_server_times_out(
    private: Server, playable: str, odd: str, stack: Stack
) -> None:
    api = api_for(private)
    before = _media_gets(stack)
    for url in (f"{odd}/moved.mp4", f"{odd}/stalled.mp4"):
        response = api.get("/v1/posters", params={"url": url, "t": 12})
        assert response.headers["x-vidsearch-poster"] == "placeholder", url
    assert _media_gets(stack) == before, "the redirect to the real file was not followed"


def test_a_video_over_the_byte_limit_gets_the_placeholder(stack: Stack, playable: str) -> None:
    size = len(httpx.get(playable, timeout=60).content)
    assert size > 65536
    server = start_server(stack, "posters-small", **PRIVATE, VIDSEARCH_POSTER_MAX_BYTES="65536",
                          VIDSEARCH_DATA_DIR=str(stack.root / "small-posters"))
    try:
        response = api_for(server).get("/v1/posters", params={"url": playable, "t": 50})
        assert response.headers["x-vidsearch-poster"] == "placeholder"
    finally:
        server.stop()
