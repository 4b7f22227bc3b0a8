"""A real stack for the API tests: redis-server, Milvus Lite server, the sandbox, a Celery worker
with the tick, a small ingested catalogue, and ``vidsearch serve`` processes reached over HTTP.

Every response a test gets through ``Api`` is validated against the server's own OpenAPI document
(openapi-core), so the document is checked by every test that talks to the server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.stack import Stack, start_stack, wait_for
from vidsearch.api.keys import digest
from vidsearch.stack.services import free_port

VIDEOS = {
    "animals": ["surfing-dog-at-the-beach", "cat-chasing-a-laser", "horse-galloping-in-a-meadow",
                "parrot-learning-to-talk"],
    "sports": ["tennis-serve-in-slow-motion", "cycling-up-a-mountain-pass", "rowing-at-dawn",
               "skiing-off-piste"],
    "cooking": ["fresh-pasta-rolled-by-hand", "bread-dough-kneading", "curry-in-a-wok",
                "pancakes-flipped-high"],
}
POSTER_SOURCE = "https://media.example.com/posters/red-kite-over-the-cliffs.mp4"
"""A catalog entry of the stack's sandbox, served as a real video file (``/_sandbox/media/``)."""
POSTER_CATALOG = {POSTER_SOURCE: {"duration": 60, "title": "Red kite", "scenes": [
    {"start": 0, "end": 10, "words": "cliffs sea"}, {"start": 10, "end": 60, "words": "red kite hovering"}]}}
READ_KEY = "vsk_test-read-key-0123456789abcdefghijklmnopqrstuv"
ADMIN_KEY = "vsk_test-admin-key-0123456789abcdefghijklmnopqrstu"


def video_url(category: str, slug: str) -> str:
    return f"https://cdn.example.com/{category}/{slug}.mp4"


def write_catalogue(path: Path) -> list[str]:
    lines = ["url,category,title"]
    urls = []
    for category, slugs in VIDEOS.items():
        for slug in slugs:
            urls.append(video_url(category, slug))
            lines.append(f"{urls[-1]},{category},{slug.replace('-', ' ').capitalize()}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return urls


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def start_server(stack: Stack, name: str, host: str = "127.0.0.1", args: tuple[str, ...] = (),
                 **settings: str) -> Server:
    """``vidsearch serve`` on a free port with the stack's settings plus ``settings`` (and the
    command-line ``args``)."""
    port = free_port()
    log_path = stack.root / f"serve-{name}.log"
    env = {**stack.env, **settings}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidsearch", "serve", "--host", host, "--port", str(port), *args],
        env=env, stdout=log_path.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    server = Server(f"http://127.0.0.1:{port}", proc, log_path)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"vidsearch serve exited {proc.returncode}: {server.log()[-3000:]}")
        try:
            return httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 120, f"vidsearch serve ({name}) to answer /healthz")
    return server


def key_entries(**keys: tuple[str, str]) -> str:
    """``VIDSEARCH_API_KEYS`` for keys given as name=(role, key)."""
    return json.dumps([f"{name}:{role}:{digest(key)}" for name, (role, key) in keys.items()])


# --- OpenAPI validation of every response ------------------------------------------------------------
class _Request:
    def __init__(self, request: httpx.Request) -> None:
        self._request = request
        parts = urlsplit(str(request.url))
        self.host_url = f"{parts.scheme}://{parts.netloc}"
        self.path = parts.path
        self.method = request.method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(parts.query)), header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        )
        self.body = request.content or None
        self.content_type = request.headers.get("content-type", "")


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        self.data = response.content
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "")
        self.headers = Headers(dict(response.headers))


@dataclass
class Api:
    """An HTTP client of one server; every answer to a documented route is checked against the
    server's OpenAPI document."""

    base: str
    spec: OpenAPI
    key: str | None = None
    validated: list[str] = field(default_factory=list)

    def request(self, method: str, path: str, *, key: str | None = None, validate: bool = True,
                **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        token = key if key is not None else self.key
        if token and "authorization" not in {h.lower() for h in headers}:
            headers["X-API-Key"] = token
        response = httpx.request(method, f"{self.base}{path}", headers=headers, timeout=120, **kwargs)
        if validate:
            self.spec.validate_response(_Request(response.request), _Response(response))
            self.validated.append(f"{method} {urlsplit(path).path} {response.status_code}")
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def with_key(self, key: str | None) -> Api:
        return Api(self.base, self.spec, key)


def api_for(server: Server, key: str | None = None) -> Api:
    doc = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    return Api(server.url, OpenAPI.from_dict(doc, config=config), key)


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"] == f"urn:vidsearch:problem:{slug}"
    assert body["title"] and body["detail"]
    return dict(body)


# --- fixtures --------------------------------------------------------------------------------------
@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("api")
    (root / "catalog.json").write_text(json.dumps(POSTER_CATALOG), encoding="utf-8")
    stack = start_stack(root, sandbox_args=["--catalog", str(root / "catalog.json"),
                                            "--media-dir", str(root / "media")])
    try:
        stack.start_worker("api-w1", "embedding,polling,writing", concurrency=2)
        manifest = stack.root / "catalogue.csv"
        write_catalogue(manifest)
        done = json.loads(stack.vidsearch("submit", str(manifest), "--wait", "--json", timeout=600).stdout)
        assert done["done"] == sum(map(len, VIDEOS.values())), done
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="package")
def open_server(stack: Stack) -> Iterator[Server]:
    """No API key configured: loopback clients only."""
    server = start_server(stack, "open")
    yield server
    server.stop()


@pytest.fixture(scope="package")
def keyed_server(stack: Stack) -> Iterator[Server]:
    """A read key and an admin key; a generous rate."""
    keys = key_entries(reader=("read", READ_KEY), ops=("admin", ADMIN_KEY))
    server = start_server(stack, "keyed", VIDSEARCH_API_KEYS=keys)
    yield server
    server.stop()


@pytest.fixture(scope="package")
def open_api(open_server: Server) -> Api:
    return api_for(open_server)


@pytest.fixture(scope="package")
def reader(keyed_server: Server) -> Api:
    return api_for(keyed_server, READ_KEY)


@pytest.fixture(scope="package")
def admin(keyed_server: Server) -> Api:
    return api_for(keyed_server, ADMIN_KEY)
