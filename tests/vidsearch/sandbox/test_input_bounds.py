"""Input bounds of async tasks: the create is accepted, the task fails later with the reason
(4 s to 4 h and 4 GB on v2, 2 GB for audio, 4 s to 2 h and 2 GB on v1; frames of 360x360 to
5184x2160 on v2, 3840x2160 on v1), and no media minutes are counted."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.vidsearch.sandbox.conftest import admin, sdk, wait_done
from vidsearch.stack.services import Service, start_sandbox

BASE = "https://cdn.example.com/bounds"
CATALOG = {
    f"{BASE}/short.mp4": {"duration": 2.5},
    f"{BASE}/long.mp4": {"duration": 14500},
    f"{BASE}/big.mp4": {"duration": 60, "size_mb": 5000},
    f"{BASE}/fine.mp4": {"duration": 60, "size_mb": 100},
    f"{BASE}/three-hours.mp4": {"duration": 10800},
    f"{BASE}/tiny-frame.mp4": {"duration": 60, "resolution": "320x180"},
    f"{BASE}/portrait-low.mp4": {"duration": 60, "resolution": "340x640"},
    f"{BASE}/8k.mp4": {"duration": 60, "resolution": "7680x4320"},
    f"{BASE}/dci-4k.mp4": {"duration": 60, "resolution": "4096x2160"},
    f"{BASE}/three-gb.mp4": {"duration": 60, "size_mb": 3000},
}


@pytest.fixture(scope="module")
def shared_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("bounds")
    (root / "catalog.json").write_text(json.dumps(CATALOG))
    service = start_sandbox(root, args=["--speed", "100000", "--catalog", str(root / "catalog.json"),
                                        "--media-minutes-per-day", "100000"])
    yield service
    service.stop()


@pytest.fixture
def box(shared_box: Service) -> Service:
    """One sandbox for the module, its tasks and counters forgotten before each test."""
    admin(shared_box, "reset", {})
    return shared_box


def v2_outcome(service, name: str):
    client = sdk(service)
    task = client.embed.v_2.tasks.create(input_type="video", model_name="marengo3.0",
                                         video={"media_source": {"url": f"{BASE}/{name}"}})
    return wait_done(lambda: client.embed.v_2.tasks.retrieve(task.id))


@pytest.mark.parametrize(("name", "message"), [
    ("short.mp4", "Duration (2.5 seconds) is below minimum limit of 4 seconds"),
    ("long.mp4", "Duration (14500.0 seconds) exceeds maximum limit of 14400 seconds (240 minutes)"),
    ("big.mp4", "File size (5000.0 MB) exceeds maximum limit of 4096 MB"),
])
def test_media_outside_the_bounds_is_accepted_then_fails_with_the_reason(box, name: str, message: str):
    done = v2_outcome(box, name)
    assert done.status == "failed" and done.error.message == message
    assert admin(box, "limits")["media-minutes-day"]["used"] == 0


@pytest.mark.parametrize(("name", "message"), [
    ("tiny-frame.mp4", "Resolution (320x180) is below minimum limit of 360x360"),
    ("portrait-low.mp4", "Resolution (340x640) is below minimum limit of 360x360"),
    ("8k.mp4", "Resolution (7680x4320) exceeds maximum limit of 5184x2160"),
])
def test_a_video_outside_the_resolution_bounds_is_accepted_then_fails(box, name: str, message: str):
    done = v2_outcome(box, name)
    assert done.status == "failed" and done.error.message == message
    assert admin(box, "limits")["media-minutes-day"]["used"] == 0


def test_v1_takes_frames_up_to_3840x2160_only(box):
    client = sdk(box)
    assert v2_outcome(box, "dci-4k.mp4").status == "ready"  # within v2's 5184x2160
    task = client.embed.tasks.create(model_name="Marengo-retrieval-2.7", video_url=f"{BASE}/dci-4k.mp4")
    assert wait_done(lambda: client.embed.tasks.status(task.id)).status == "failed"


def test_audio_is_bounded_at_2_gb_where_video_takes_4(box):
    client = sdk(box)
    assert v2_outcome(box, "three-gb.mp4").status == "ready"
    task = client.embed.v_2.tasks.create(input_type="audio", model_name="marengo3.0",
                                         audio={"media_source": {"url": f"{BASE}/three-gb.mp4"}})
    done = wait_done(lambda: client.embed.v_2.tasks.retrieve(task.id))
    assert done.status == "failed"
    assert done.error.message == "File size (3000.0 MB) exceeds maximum limit of 2048 MB"


def test_media_within_the_bounds_is_embedded_and_counted(box):
    assert v2_outcome(box, "fine.mp4").status == "ready"
    assert admin(box, "limits")["media-minutes-day"]["used"] == pytest.approx(1.0)


def v2_listed_status(service, name: str) -> str:
    """As ``v2_outcome``, read from the task list: a ready three-hour task's 1,800 segments (which a
    retrieve returns) took a minute to serve and parse, and only the status is wanted."""
    client = sdk(service)
    task = client.embed.v_2.tasks.create(input_type="video", model_name="marengo3.0",
                                         video={"media_source": {"url": f"{BASE}/{name}"}})
    listed = wait_done(lambda: next(t for t in client.embed.v_2.tasks.list(page_limit=50) if t.id == task.id))
    return str(listed.status)


def test_v1_has_the_bounds_of_marengo_27(box):
    client = sdk(box)
    assert v2_listed_status(box, "three-hours.mp4") == "ready"  # within v2's 4 h
    task = client.embed.tasks.create(model_name="Marengo-retrieval-2.7", video_url=f"{BASE}/three-hours.mp4")
    status = wait_done(lambda: client.embed.tasks.status(task.id))
    assert status.status == "failed"
