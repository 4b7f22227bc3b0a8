"""One paid task per item: creation, reconciliation and failure paths on real Redis and sandbox."""

from __future__ import annotations

import time

import redis

from pipeline.embedding import Embedder
from pipeline.items import EmbeddingSpec, item_key
from pipeline.jobs import Admission, JobStore
from pipeline.keys import Keys
from pipeline.settings import Settings, load_settings
from pipeline.twelvelabs import TwelveLabsGateway
from tests.stack import sandbox_config, sandbox_stats
from vidsearch.services import Service

URL = "https://cdn.example.com/videos/cooking-pasta-at-home.mp4"


def _setup(
    own_sandbox: Service, client: redis.Redis, url: str = URL, **overrides: object
) -> tuple[Embedder, JobStore, str]:
    values: dict[str, object] = {
        "twelvelabs_base_url": f"{own_sandbox.url}/v1.3",
        "retry_initial_s": 0.05,
        "retry_max_s": 0.2,
        "retry_total_s": 2.0,
        **overrides,
    }
    settings: Settings = load_settings(**values)
    jobs = JobStore(client, Keys("t"))
    spec = EmbeddingSpec.from_settings(settings)
    job = jobs.create_job(["m.csv"], spec)
    key = item_key(url, spec)
    jobs.submit_batch(job, [Admission(key=key, category="food", url=url)], force=False)
    jobs.admit(1, time.time() + 60)
    return Embedder(client, jobs, TwelveLabsGateway(settings), settings), jobs, key


def test_an_admitted_item_gets_exactly_one_task(own_sandbox: Service, redis_client: redis.Redis) -> None:
    embedder, jobs, key = _setup(own_sandbox, redis_client)
    outcome = embedder.create(key, charged=True)
    assert outcome.kind == "created"
    item = jobs.get_item(key)
    assert item is not None and (item.state, item.task_id) == ("processing", outcome.task_id)
    assert embedder.create(key, charged=True).kind == "skipped"
    assert sandbox_stats(own_sandbox)["tasks_by_url"] == {URL: 1}


def test_a_create_whose_answer_was_lost_is_adopted_not_repeated(
    own_sandbox: Service,
    redis_client: redis.Redis,
) -> None:
    embedder, jobs, key = _setup(own_sandbox, redis_client)
    sandbox_config(own_sandbox, drop_after_create_rate=1.0)
    outcome = embedder.create(key, charged=True)
    assert outcome.kind == "created", outcome
    assert sandbox_stats(own_sandbox)["tasks_by_url"] == {URL: 1}
    assert jobs.get_item(key).task_id == outcome.task_id  # type: ignore[union-attr]


def test_a_crash_after_sending_is_reconciled_by_the_next_attempt(
    own_sandbox: Service,
    redis_client: redis.Redis,
) -> None:
    embedder, jobs, key = _setup(own_sandbox, redis_client)
    jobs.note_create_attempt(key, time.time())
    first = embedder.gateway.create_task(URL, jobs.spec(jobs.get_item(key).job_id))  # type: ignore[arg-type,union-attr]
    outcome = embedder.create(key, charged=False)
    assert (outcome.kind, outcome.task_id) == ("created", first)
    assert sandbox_stats(own_sandbox)["tasks_by_url"] == {URL: 1}


def test_a_rejected_url_fails_the_item_with_the_api_reason(
    own_sandbox: Service,
    redis_client: redis.Redis,
) -> None:
    embedder, jobs, key = _setup(own_sandbox, redis_client, url="ftp://cdn.example.com/a.mp4")
    outcome = embedder.create(key, charged=True)
    assert outcome.kind == "failed"
    item = jobs.get_item(key)
    assert item is not None and item.state == "failed"
    assert item.reason and "400" in item.reason
    assert sandbox_stats(own_sandbox)["tasks_created"] == 0


def test_persistent_server_errors_defer_then_fail_the_item(
    own_sandbox: Service,
    redis_client: redis.Redis,
) -> None:
    embedder, jobs, key = _setup(own_sandbox, redis_client, retry_total_s=0.3, max_item_attempts=2)
    sandbox_config(own_sandbox, rate_5xx=1.0)
    assert embedder.create(key, charged=True).kind == "deferred"
    assert redis_client.zscore(jobs.keys.creating, key) > time.time()  # type: ignore[operator]
    outcome = embedder.create(key, charged=False)
    assert outcome.kind == "failed"
    assert "gave up after 2 rounds" in (jobs.get_item(key).reason or "")  # type: ignore[union-attr]
