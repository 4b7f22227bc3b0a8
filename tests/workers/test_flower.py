"""Flower, started as ``vidsearch up`` starts it, against a real redis-server and a real worker:
its HTTP API shows the worker and the scheduler ticks it ran, and refuses callers without the
configured basic auth."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pipeline.settings import load_settings
from tests.stack import wait_for
from vidsearch.stack.embedded import flower_answers, start_flower
from vidsearch.stack.services import Service, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

USER, PASSWORD = "ops", "flower-test-password"


@dataclass
class FlowerUnderTest:
    service: Service
    worker: subprocess.Popen[bytes]

    def get(self, path: str, auth: tuple[str, str] | None = (USER, PASSWORD)) -> tuple[int, Any]:
        request = urllib.request.Request(f"{self.service.url}{path}")
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=20) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, None


@pytest.fixture(scope="module")
def flower(redis_service: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlowerUnderTest]:
    root = tmp_path_factory.mktemp("flower")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDSEARCH_", "TWELVE", "FLOWER_"))}
    env.update({
        "VIDSEARCH_REDIS_URL": f"redis://{redis_service.host}:{redis_service.port}/7",
        "VIDSEARCH_DATA_DIR": str(root / "data"),
        "VIDSEARCH_TICK_INTERVAL_S": "0.5",
        "VIDSEARCH_LOG_FORMAT": "json",
    })
    settings = load_settings(flower_port=free_port(), flower_basic_auth=f"{USER}:{PASSWORD}")
    service = start_flower(settings, env, root / "flower.log")
    with (root / "worker.log").open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "vidsearch", "worker", "--name", "flowertest", "--queues", "polling",
             "--concurrency", "1", "--beat"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_for(lambda: flower_answers(service.host, service.port), 120, "Flower's /healthcheck")
        yield FlowerUnderTest(service, worker)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        service.stop()
        print((root / "flower.log").read_text(errors="replace")[-2000:])


def _finished_ticks(flower: FlowerUnderTest) -> list[dict[str, Any]]:
    status, tasks = flower.get("/api/tasks?taskname=vidsearch.tick&state=SUCCESS")
    assert status == 200
    return list(tasks.values())


def test_flower_api_lists_the_worker_and_the_ticks_it_finished(flower: FlowerUnderTest) -> None:
    wait_for(lambda: bool(_finished_ticks(flower)), 120, "a finished vidsearch.tick in /api/tasks")
    tick = _finished_ticks(flower)[0]
    assert tick["name"] == "vidsearch.tick"
    assert tick["worker"].startswith("flowertest@")

    def worker_listed() -> bool:
        status, workers = flower.get("/api/workers?refresh=1")
        return status == 200 and any(name.startswith("flowertest@") for name in workers)

    wait_for(worker_listed, 120, "the worker in /api/workers")


def test_flower_api_answers_401_without_or_with_wrong_basic_auth(flower: FlowerUnderTest) -> None:
    assert flower.get("/api/workers", auth=None)[0] == 401
    assert flower.get("/api/tasks", auth=None)[0] == 401
    assert flower.get("/api/tasks", auth=(USER, "wrong"))[0] == 401
    assert flower.get("/api/tasks")[0] == 200
