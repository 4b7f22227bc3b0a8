"""The global token bucket, on a real redis-server."""

from __future__ import annotations

import threading
import time

import redis

from pipeline.state.quota import Quota


def test_bucket_grants_at_most_its_burst_at_once(redis_client: redis.Redis) -> None:
    quota = Quota(redis_client, "t:quota", rate_per_min=60, burst=5)
    assert quota.take(10).granted == 5
    assert quota.take(1).granted == 0


def test_bucket_refills_at_its_rate(redis_client: redis.Redis) -> None:
    quota = Quota(redis_client, "t:quota", rate_per_min=600, burst=2)  # 10 tokens/s
    quota.take(2)
    grant = quota.take(1)
    assert grant.granted == 0
    assert 0 < grant.wait_s <= 0.11
    time.sleep(0.25)
    assert quota.take(5).granted == 2


def test_bucket_is_shared_by_every_client(redis_url: str, redis_client: redis.Redis) -> None:
    granted: list[int] = []

    def worker() -> None:
        client = redis.Redis.from_url(redis_url)
        mine = Quota(client, "t:shared", rate_per_min=1, burst=20)
        granted.extend(mine.take(1).granted for _ in range(10))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 20


def test_pause_stops_every_grant_until_it_ends(redis_client: redis.Redis) -> None:
    quota = Quota(redis_client, "t:quota", rate_per_min=6000, burst=10)
    quota.pause(0.3)
    grant = quota.take(1)
    assert grant.granted == 0
    assert 0.2 < grant.wait_s <= 0.3
    time.sleep(0.35)
    assert quota.take(1).granted == 1


def test_a_shorter_pause_never_shortens_a_longer_one(redis_client: redis.Redis) -> None:
    quota = Quota(redis_client, "t:quota", rate_per_min=6000, burst=10)
    quota.pause(1.0)
    quota.pause(0.1)
    assert quota.take(1).wait_s > 0.8


def test_acquire_gives_up_at_its_timeout(redis_client: redis.Redis) -> None:
    quota = Quota(redis_client, "t:quota", rate_per_min=1, burst=1)
    assert quota.acquire(0.1)
    started = time.monotonic()
    assert not quota.acquire(0.2)
    assert 0.15 < time.monotonic() - started < 1.0
