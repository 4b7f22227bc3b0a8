"""Input bounds of async tasks: the create is accepted, the task fails later with the reason
(4 s to 4 h and 4 GB on v2, 4 s to 2 h and 2 GB on v1), and no media minutes are counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.vidsearch.sandbox.conftest import admin, sdk, wait_done

BASE = "https://cdn.example.com/bounds"
CATALOG = {
    f"{BASE}/short.mp4": {"duration": 2.5},
    f"{BASE}/long.mp4": {"duration": 14500},
    f"{BASE}/big.mp4": {"duration": 60, "size_mb": 5000},
    f"{BASE}/fine.mp4": {"duration": 60, "size_mb": 100},
    f"{BASE}/three-hours.mp4": {"duration": 10800},
}


@pytest.fixture
def box(own_sandbox, tmp_path: Path):
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(CATALOG))
    return own_sandbox("--speed", "100000", "--catalog", str(path), "--media-minutes-per-day", "100000")


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
