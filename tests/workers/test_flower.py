"""What an operator watches, on a real stack (redis-server, Milvus Lite, the sandbox, a ``vidsearch
worker``) after a real job: Flower, started as ``vidsearch up`` starts it, lists the job's creates,
polls and writes and nothing periodic (the workers tick in a thread, no ``vidsearch.tick`` task
floods the history) and refuses callers without the configured basic auth; and the exporter's
``/metrics`` holds every series the alert rules and the Grafana dashboard read."""

from __future__ import annotations

import ast
import base64
import json
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.metrics.exporter import Exporter
from pipeline.settings import load_settings
from tests.stack import Stack, start_stack, wait_for
from tests.test_prometheus_rules import metric_names_used
from vidsearch.stack.embedded import flower_answers, start_flower
from vidsearch.stack.services import Service, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

USER, PASSWORD = "ops", "flower-test-password"
PIPELINE_TASKS = {"vidsearch.create_embedding", "vidsearch.poll_embedding", "vidsearch.write_segments"}
ITEMS = 6


@dataclass
class FlowerUnderTest:
    service: Service
    stack: Stack

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

    def tasks(self) -> list[dict[str, Any]]:
        status, tasks = self.get("/api/tasks")
        assert status == 200
        return list(tasks.values())


@pytest.fixture(scope="module")
def flower(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlowerUnderTest]:
    stack = start_stack(tmp_path_factory.mktemp("flower"))
    settings = load_settings(flower_port=free_port(), flower_basic_auth=f"{USER}:{PASSWORD}")
    service = start_flower(settings, stack.env, stack.root / "flower.log")
    under_test = FlowerUnderTest(service, stack)
    try:
        wait_for(lambda: flower_answers(service.host, service.port), 120, "Flower's /healthcheck")
        stack.start_worker("flowertest", "embedding,polling,writing", concurrency=2)

        def worker_listed() -> bool:
            status, workers = under_test.get("/api/workers?refresh=1")
            return status == 200 and any(name.startswith("flowertest@") for name in workers)

        wait_for(worker_listed, 120, "the worker in /api/workers")
        yield under_test
    finally:
        service.stop()
        stack.stop()
        print((stack.root / "flower.log").read_text(errors="replace")[-2000:])


def _item_keys(task: dict[str, Any]) -> str:
    """The item key a create or poll task was sent for (Flower shows args as a Python repr)."""
    return str(ast.literal_eval(task["args"])[0])


def test_flower_lists_the_jobs_creates_polls_and_writes_and_no_tick(
    flower: FlowerUnderTest, tmp_path: Path
) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("url,category\n" + "".join(
        f"https://cdn.example.com/flower/{i}.mp4,ops\n" for i in range(ITEMS)))
    proc = flower.stack.vidsearch("submit", str(manifest), "--wait", "--json", timeout=300)
    assert json.loads(proc.stdout)["done"] == ITEMS, proc.stderr[-2000:]

    def finished(name: str) -> list[dict[str, Any]]:
        return [t for t in flower.tasks() if t["name"] == name and t["state"] == "SUCCESS"]

    def all_listed() -> bool:
        creates = {_item_keys(t) for t in finished("vidsearch.create_embedding")}
        polls = {_item_keys(t) for t in finished("vidsearch.poll_embedding")}
        return len(creates) == ITEMS and polls == creates and bool(finished("vidsearch.write_segments"))

    wait_for(all_listed, 120, "the job's creates, polls and writes in /api/tasks")
    names = Counter(t["name"] for t in flower.tasks())
    print(f"Flower's task list after a {ITEMS}-item job: {dict(names)}")
    assert set(names) == PIPELINE_TASKS, names  # no vidsearch.tick, nothing periodic
    assert all(t["worker"].startswith("flowertest@") for t in finished("vidsearch.create_embedding"))


def test_every_series_the_rules_and_dashboard_read_is_in_the_exporters_output_after_the_job(
    flower: FlowerUnderTest, tmp_path: Path
) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("url,category\nhttps://cdn.example.com/flower/metrics.mp4,ops\n")
    proc = flower.stack.vidsearch("submit", str(manifest), "--wait", "--json", timeout=300)
    assert json.loads(proc.stdout)["done"] == 1, proc.stderr[-2000:]
    exporter = Exporter(load_settings(redis_url=flower.stack.redis_url), port=0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}/metrics", timeout=20) as resp:
            text = resp.read().decode()
    finally:
        exporter.close()

    families = list(text_string_to_metric_families(text))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}
    described = {line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")}
    exposed = {name for name, _ in samples} | described
    assert metric_names_used() - exposed == set(), "rules or dashboard read series the exporter lacks"
    assert samples[("vidsearch_workers_alive", (("queue", "embedding"),))] == 1
    assert samples[("vidsearch_tick_alive", ())] == 1
    assert samples[("vidsearch_job_items", (("counter", "done"),))] >= 1
    assert samples[("vidsearch_redis_memory_used_bytes", ())] > 0


def test_flower_api_answers_401_without_or_with_wrong_basic_auth(flower: FlowerUnderTest) -> None:
    assert flower.get("/api/workers", auth=None)[0] == 401
    assert flower.get("/api/tasks", auth=None)[0] == 401
    assert flower.get("/api/tasks", auth=(USER, "wrong"))[0] == 401
    assert flower.get("/api/tasks")[0] == 200


def test_the_celery_app_schedules_nothing_periodic() -> None:
    from workers.app import create_app

    app = create_app(load_settings())
    assert app.conf.beat_schedule == {}
    assert "vidsearch.tick" not in app.tasks
