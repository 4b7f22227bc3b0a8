"""Fenced locks on a real redis-server: a holder past its lease changes nothing of the next holder's."""

from __future__ import annotations

import uuid

import redis

from pipeline.ingest.scheduler import Leadership, Scheduler
from pipeline.ledger.store import JobStore
from pipeline.settings import load_settings
from pipeline.state.keys import Keys
from pipeline.state.locks import FencedLock
from pipeline.state.quota import Quota
from tests.stack import wait_for


def _expired(client: redis.Redis, key: str) -> None:
    wait_for(lambda: not client.exists(key), 10, f"{key} to expire", interval_s=0.05)


def test_a_holder_past_its_lease_cannot_release_or_extend_the_new_holders_lock(
    redis_client: redis.Redis,
) -> None:
    key = f"t:lock:{uuid.uuid4().hex}"
    late = FencedLock(redis_client, key, lease_s=0.2)
    assert late.acquire()
    _expired(redis_client, key)
    new = FencedLock(redis_client, key, lease_s=60)
    assert new.acquire()
    assert not late.release()
    assert not late.extend()
    assert new.held() and redis_client.pttl(key) > 1000
    assert new.release()
    assert not redis_client.exists(key)


def test_a_lock_is_taken_once_until_released(redis_client: redis.Redis) -> None:
    key = f"t:lock:{uuid.uuid4().hex}"
    first, second = FencedLock(redis_client, key, 60), FencedLock(redis_client, key, 60)
    assert first.acquire() and not second.acquire()
    assert first.release() and second.acquire()


def test_a_drain_that_outlived_its_lease_leaves_the_next_drains_lock(redis_client: redis.Redis) -> None:
    settings = load_settings(redis_prefix="t", writer_drain_s=0.1, writer_claim_idle_s=0.1)
    jobs = JobStore(redis_client, Keys("t"))
    scheduler = Scheduler(redis_client, jobs, Quota(redis_client, "t:quota", 60, 1), settings)
    redis_client.xadd(jobs.keys.segments, {"pk": "x"})
    plan = scheduler.tick()
    assert plan is not None and plan.drain
    _expired(redis_client, jobs.keys.lock("drain"))
    later = scheduler.tick()
    assert later is not None and later.drain and later.drain != plan.drain
    assert not scheduler.drain_finished(plan.drain)
    assert redis_client.get(jobs.keys.lock("drain")) == later.drain.encode()
    assert scheduler.drain_finished(later.drain)


def test_one_process_leads_the_ticks_and_another_takes_over_when_its_lease_runs_out(
    redis_client: redis.Redis,
) -> None:
    settings = load_settings(tick_interval_s=0.1)
    jobs = JobStore(redis_client, Keys("t"))
    a, b = Leadership(redis_client, jobs, settings), Leadership(redis_client, jobs, settings)
    a.lock.lease_ms = 200  # a short lease, so the test does not wait for the real one
    assert a.lead() and not b.lead() and a.lead()
    _expired(redis_client, jobs.keys.lock("leader"))  # a stops renewing (paused, or dead)
    assert b.lead()
    assert not a.lead()
    a.resign()
    assert b.lead()
