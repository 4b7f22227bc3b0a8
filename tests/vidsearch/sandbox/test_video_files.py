"""The sandbox's video files of catalog entries: a real MP4 a browser plays (decoded here with
PyAV), each scene in its own colour, the catalog's length, range requests, rendered once and kept,
404 outside the catalog; a task created for a file's address embeds its catalog entry."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from tests.vidsearch.sandbox.conftest import embed_video, sdk, text_query
from vidsearch.sandbox.catalog import Scene, catalog_url, media_url
from vidsearch.sandbox.video_files import HEIGHT, WIDTH, scene_colour
from vidsearch.stack.services import Service

URL = "https://media.example.com/animals/surfing-dog-at-the-beach.mp4"
CATALOG = {
    URL: {"duration": 30, "title": "Surfing dog", "scenes": [
        {"start": 0, "end": 9, "words": "wildlife animal outdoor"},
        {"start": 9, "end": 21, "words": "surfing dog beach"},
        {"start": 21, "end": 30, "words": "closing credits"}]},
    "https://media.example.com/broken.mp4": {"duration": 20, "error": "unsupported codec"},
}


def _sandbox(own_sandbox: Callable[..., Service], tmp_path: Path) -> Service:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(CATALOG))
    return own_sandbox("--speed", "50", "--catalog", str(path), "--media-dir", str(tmp_path / "media"))


def _get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_media_url_and_catalog_url_are_inverses() -> None:
    address = media_url("http://127.0.0.1:8080", URL)
    assert address == "http://127.0.0.1:8080/_sandbox/media/media.example.com/animals/surfing-dog-at-the-beach.mp4"
    assert catalog_url(address) == URL
    assert catalog_url(URL) is None


def test_a_catalog_entry_is_served_as_a_playable_mp4_of_its_scenes(own_sandbox, tmp_path: Path) -> None:
    service = _sandbox(own_sandbox, tmp_path)
    status, headers, body = _get(media_url(service.url, URL))
    assert status == 200, body[:300]
    assert headers["Content-Type"] == "video/mp4"
    path = tmp_path / "clip.mp4"
    path.write_bytes(body)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", WIDTH, HEIGHT)
        assert abs(float(container.duration / av.time_base) - 30) <= 1
        colours = {}
        for frame in container.decode(stream):
            t = float(frame.time)
            if t in (4.0, 15.0, 25.0):
                colours[t] = frame.to_ndarray(format="rgb24")[HEIGHT // 2 + 30, WIDTH - 10]
    scenes = [Scene(0, 9, ("wildlife", "animal", "outdoor")), Scene(9, 21, ("surfing", "dog", "beach")),
              Scene(21, 30, ("closing", "credits"))]
    for t, scene in zip((4.0, 15.0, 25.0), scenes, strict=True):
        assert np.abs(colours[t].astype(int) - scene_colour(scene)).max() <= 12, (t, colours[t])
    assert len({scene_colour(s) for s in scenes}) == 3


def test_range_requests_are_answered_and_the_file_is_rendered_once(own_sandbox, tmp_path: Path) -> None:
    service = _sandbox(own_sandbox, tmp_path)
    _, _, whole = _get(media_url(service.url, URL))
    files = list((tmp_path / "media").glob("*.mp4"))
    assert len(files) == 1
    before = files[0].stat().st_mtime_ns
    status, headers, part = _get(media_url(service.url, URL), Range="bytes=100-199")
    assert status == 206 and part == whole[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{len(whole)}"
    assert files[0].stat().st_mtime_ns == before
    assert list((tmp_path / "media").glob("*.part")) == []


def test_a_url_outside_the_catalog_or_an_error_entry_is_a_404(own_sandbox, tmp_path: Path) -> None:
    service = _sandbox(own_sandbox, tmp_path)
    for url in ("https://media.example.com/animals/not-in-the-catalog.mp4", "https://media.example.com/broken.mp4"):
        status, _, body = _get(media_url(service.url, url))
        assert status == 404 and b"no catalog video" in body


def test_a_task_for_a_file_address_embeds_its_catalog_entry(own_sandbox, tmp_path: Path) -> None:
    service = _sandbox(own_sandbox, tmp_path)
    client = sdk(service)
    data = embed_video(client, media_url(service.url, URL))
    assert data[-1].end_sec == 30, "the catalog's duration"
    query = text_query(client, "surfing dog beach")
    scores = [float(np.dot(query, d.embedding)) for d in data]
    best = data[int(np.argmax(scores))]
    assert 9 <= best.start_sec < 21
