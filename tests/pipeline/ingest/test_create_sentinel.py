"""The create mark on a Sentinel set: WAITed for on a replica before the paid create leaves, so a
failover cannot lose it (``JobStore(wait_replicas=...)``, set by ``Clients`` for a Sentinel URL).
A replica that does not acknowledge in time (stopped here with SIGSTOP) defers the create without
sending anything and without spending one of the item's rounds; once it answers, the create goes."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from pipeline.clients import Clients
from pipeline.ingest.create import Embedder
from pipeline.ledger.store import Admission, SubmitMode
from pipeline.settings import load_settings
from pipeline.spec import EmbeddingSpec, item_key
from pipeline.state.locks import FencedLock
from tests.sentinel import DATA_PASSWORD, sentinels, settings_of
from tests.stack import sandbox_stats
from vidsearch.stack.services import SentinelSet, Service, resp_command

pytestmark = [pytest.mark.integration]
__all__ = ["sentinels"]

URL = "https://cdn.example.com/videos/replicated-create.mp4"


@pytest.fixture
def clients(sentinels: SentinelSet, own_sandbox: Service) -> Iterator[Clients]:
    settings = load_settings(
        twelvelabs_base_url=f"{own_sandbox.url}/v1.3", redis_prefix=f"t:wait:{time.time_ns()}",
        retry_initial_s=0.05, retry_max_s=0.2, retry_total_s=2.0, redis_wait_timeout_ms=300,
        **settings_of(sentinels),
    )
    with Clients.from_settings(settings) as built:
        yield built


def _admitted(clients: Clients) -> str:
    spec = EmbeddingSpec.from_settings(clients.settings)
    job = clients.jobs.create_job(["m.csv"], spec)
    key = item_key(URL, spec)
    clients.jobs.submit_batch(job, [Admission(key=key, category="food", url=URL)], SubmitMode())
    clients.jobs.admit(1, time.time() + 60)
    return key


def test_clients_on_a_sentinel_url_wait_for_the_replicas_the_settings_name(clients: Clients) -> None:
    assert (clients.jobs.wait_replicas, clients.jobs.wait_timeout_ms) == (1, 300)
    plain = Clients.from_settings(load_settings(redis_url="redis://127.0.0.1:1/0"))
    assert plain.jobs.wait_replicas == 0


def test_a_create_waits_for_a_replica_and_goes_once_it_answers(
    clients: Clients, sentinels: SentinelSet, own_sandbox: Service
) -> None:
    key = _admitted(clients)
    embedder = Embedder(clients.redis, clients.jobs, clients.gateway, clients.settings)
    replica = sentinels.replicas()[0]
    os.kill(replica.proc.pid, signal.SIGSTOP)
    try:
        outcome = embedder.create(key, charged=True)
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
    assert outcome.kind == "deferred" and "0 of 1 Redis replicas acknowledged" in (outcome.reason or "")
    item = clients.jobs.get_item(key)
    assert item is not None and item.state == "creating" and item.create_attempted_at is None
    assert clients.redis.hget(clients.jobs.keys.item(key), "rd") is None
    assert sandbox_stats(own_sandbox)["tasks_by_url"] == {}

    created = embedder.create(key, charged=True)
    assert created.kind == "created"
    assert sandbox_stats(own_sandbox)["tasks_by_url"] == {URL: 1}


def test_a_noted_create_mark_is_on_the_replica_when_the_note_returns(
    clients: Clients, sentinels: SentinelSet
) -> None:
    key = _admitted(clients)
    lock = FencedLock(clients.redis, clients.jobs.keys.lock(f"create:{key}"), 30.0)
    assert lock.acquire()
    assert clients.jobs.note_create_attempt(key, 1234.5, lock)
    replica = sentinels.replicas()[0]
    mark = resp_command(replica.host, replica.port, "HGET", clients.jobs.keys.item(key), "ca",
                        password=DATA_PASSWORD)
    assert mark is not None and float(mark) == 1234.5
