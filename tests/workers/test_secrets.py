"""Invariant 9 on a real stack (``EmbeddedStack``, as ``vidsearch up`` runs it): a sentinel Twelve
Labs API key, a sentinel Milvus token and a sentinel Redis (broker) password are used by every
process, through a successful job, a
job whose create is refused (401), a search and a failing search, and then appear nowhere: not in
any file of the data dir (logs, worker output, Redis AOF, Milvus data), not in Flower's task and
worker data, not in any Redis key or value, not in the CLI's output.

Milvus Lite's server does not check tokens; the token still travels (base64, as gRPC metadata) on
every Milvus call the writer and the search make, so it is searched for in both forms.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import SecretStr

from pipeline.ingest.manifest import LineRules
from pipeline.ingest.producer import Producer
from pipeline.ledger.records import Job
from pipeline.ledger.store import JobStore
from pipeline.settings import Settings
from pipeline.spec import EmbeddingSpec
from pipeline.state.keys import Keys
from tests.stack import wait_for
from vidsearch.cli.demo import demo_settings
from vidsearch.cli.display import wait_for_job
from vidsearch.stack.embedded import EmbeddedStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

API_KEY = f"sk-sentinel-{uuid.uuid4().hex}"
MILVUS_TOKEN = f"tok-sentinel-{uuid.uuid4().hex}"
REDIS_PASSWORD = f"pw-sentinel-{uuid.uuid4().hex}"
FLOWER_AUTH = ("ops", "flower-secret-test")
SENTINELS = [API_KEY, MILVUS_TOKEN, REDIS_PASSWORD]
FORMS = [s.encode() for s in SENTINELS] + [base64.b64encode(s.encode()) for s in SENTINELS]


@dataclass
class Run:
    stack: EmbeddedStack
    good: Job
    refused: Job
    cli: list[subprocess.CompletedProcess[str]]


def leaks(data: bytes | str) -> list[bytes]:
    raw = data.encode() if isinstance(data, str) else data
    return [form for form in FORMS if form in raw]


def _manifest(path: Path, names: list[str]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["url", "category"])
        writer.writerows([f"https://media.example.com/secrets/{n}.mp4", "secrets"] for n in names)
    return path


def _submit(settings: Settings, manifest: Path) -> Job:
    client = redis.Redis.from_url(settings.redis_url)
    jobs = JobStore(client, Keys(settings.redis_prefix))
    producer = Producer(jobs, EmbeddingSpec.from_settings(settings), LineRules.from_settings(settings))
    job = wait_for_job(jobs, producer.submit([manifest]).job_id)
    client.close()
    return job


def _flower(stack: EmbeddedStack, path: str) -> bytes:
    token = base64.b64encode(":".join(FLOWER_AUTH).encode()).decode()
    request = urllib.request.Request(f"http://127.0.0.1:{stack.settings.flower_port}{path}",
                                     headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return bytes(resp.read())


def _refuse_every_key(stack: EmbeddedStack) -> None:
    request = urllib.request.Request(
        f"http://{stack.sandbox.host}:{stack.sandbox.port}/_sandbox/config",
        data=json.dumps({"api_keys": ["only-this-other-key"]}).encode(),
        headers={"content-type": "application/json"}, method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def _cli(stack: EmbeddedStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidsearch", *args], env=stack.env, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("secrets")
    base, env = demo_settings(root / "data")
    redis_url = base.redis_url.replace("redis://", f"redis://:{REDIS_PASSWORD}@")
    env["VIDSEARCH_REDIS_URL"] = redis_url
    settings = base.model_copy(update={
        "redis_url": redis_url,
        "twelve_labs_api_key": SecretStr(API_KEY), "milvus_token": SecretStr(MILVUS_TOKEN),
        "flower_basic_auth": SecretStr(":".join(FLOWER_AUTH)),
    })
    env.update({"TWELVE_LABS_API_KEY": API_KEY, "VIDSEARCH_MILVUS_TOKEN": MILVUS_TOKEN,
                "VIDSEARCH_FLOWER_BASIC_AUTH": ":".join(FLOWER_AUTH)})
    with EmbeddedStack(settings, sandbox=True, extra_env=env, sandbox_args=["--speed", "50"]) as stack:
        good = _submit(settings, _manifest(root / "good.csv", ["surfing-dog", "tennis-match", "pasta"]))
        cli = [_cli(stack, "search", "surfing dog", "--json")]
        _refuse_every_key(stack)
        refused = _submit(settings, _manifest(root / "refused.csv", ["refused-video"]))
        cli.append(_cli(stack, "search", "a query the sandbox refuses"))
        wait_for(lambda: b"vidsearch.create_embedding" in _flower(stack, "/api/tasks?state=SUCCESS"),
                 120, "Flower to list the finished create tasks")
        yield Run(stack, good, refused, cli)


def test_the_run_went_through_success_and_refusal_paths(run: Run) -> None:
    assert run.good.counters["done"] == 3 and run.good.counters["segments"] > 0
    assert run.refused.counters["failed"] == 1
    assert run.cli[0].returncode == 0 and json.loads(run.cli[0].stdout)
    assert run.cli[1].returncode != 0


def test_no_sentinel_in_any_file_of_the_data_dir_logs_included(run: Run) -> None:
    files = [p for p in run.stack.data_dir.rglob("*") if p.is_file()]
    assert any(p.name == "worker.log" and p.stat().st_size > 0 for p in files)
    leaked = {str(p): leaks(p.read_bytes()) for p in files}
    assert {path: found for path, found in leaked.items() if found} == {}


def test_no_sentinel_in_cli_output_of_a_search_or_a_failed_search(run: Run) -> None:
    for proc in run.cli:
        assert leaks(proc.stdout + proc.stderr) == []


def test_no_sentinel_in_flowers_task_or_worker_data(run: Run) -> None:
    tasks = _flower(run.stack, "/api/tasks")
    assert b"vidsearch.poll_embedding" in tasks
    assert leaks(tasks) == []
    for task_id in list(json.loads(tasks))[:50]:
        assert leaks(_flower(run.stack, f"/api/task/info/{task_id}")) == []
    assert leaks(_flower(run.stack, "/api/workers?refresh=1")) == []


def _values(client: redis.Redis[bytes], key: bytes) -> list[Any]:
    """Every value under *key*; a key that expired or emptied since the scan has none."""
    kind = client.type(key).decode()
    readers = {
        "none": lambda: [],
        "string": lambda: [client.get(key)],
        "hash": lambda: list(client.hgetall(key).items()),
        "list": lambda: client.lrange(key, 0, -1),
        "set": lambda: list(client.smembers(key)),
        "zset": lambda: client.zrange(key, 0, -1, withscores=True),
        "stream": lambda: client.xrange(key),
    }
    return list(readers[kind]())


def test_no_sentinel_in_any_redis_key_or_value(run: Run) -> None:
    client = redis.Redis.from_url(run.stack.settings.redis_url)
    keys = list(client.scan_iter(count=1000))
    assert any(k.startswith(b"_kombu.binding.") for k in keys)
    assert any(k.startswith(b"vs:item:") for k in keys)
    found = {k: leaks(k + repr(_values(client, k)).encode()) for k in keys}
    assert {k: f for k, f in found.items() if f} == {}
    assert [db for db in client.info("keyspace") if db != "db0"] == []
    client.close()


def test_the_sentinels_were_really_in_the_children_environment(run: Run) -> None:
    worker = next(s for s in run.stack.services if s.name == "worker")
    environ = Path(f"/proc/{worker.proc.pid}/environ").read_bytes()
    assert API_KEY.encode() in environ and MILVUS_TOKEN.encode() in environ
    assert os.environ.get("TWELVE_LABS_API_KEY") != API_KEY
