"""The collection generation counter on a real redis-server: its key, its start, its bumps."""

from __future__ import annotations

import redis

from pipeline.state.generation import bump_generation, current_generation, retire_if_changed
from pipeline.state.keys import Keys


def test_a_collection_never_bumped_is_at_generation_zero(redis_client: redis.Redis[bytes]) -> None:
    assert current_generation(redis_client, Keys("g"), "videos") == 0


def test_a_bump_returns_the_next_generation_and_readers_see_it(redis_client: redis.Redis[bytes]) -> None:
    keys = Keys("g")
    assert bump_generation(redis_client, keys, "videos") == 1
    assert bump_generation(redis_client, keys, "videos") == 2
    assert current_generation(redis_client, keys, "videos") == 2


def test_each_collection_counts_on_its_own(redis_client: redis.Redis[bytes]) -> None:
    keys = Keys("g")
    bump_generation(redis_client, keys, "videos")
    assert current_generation(redis_client, keys, "other") == 0
    assert current_generation(redis_client, Keys("h"), "videos") == 0


def test_the_counter_is_the_redis_key_every_process_shares(redis_client: redis.Redis[bytes]) -> None:
    redis_client.set("g:gen:videos", 41)  # as written by a process of an earlier release
    assert bump_generation(redis_client, Keys("g"), "videos") == 42
    assert redis_client.get("g:gen:videos") == b"42"


def test_a_changed_collection_identity_bumps_the_generation_once(redis_client: redis.Redis[bytes]) -> None:
    keys = Keys("gi")
    assert retire_if_changed(redis_client, keys, "videos", "41@7")  # first sighting
    assert not retire_if_changed(redis_client, keys, "videos", "41@7")
    assert current_generation(redis_client, keys, "videos") == 1
    assert retire_if_changed(redis_client, keys, "videos", "absent")  # Milvus lost it
    assert retire_if_changed(redis_client, keys, "videos", "52@9")  # restored: another collection
    assert not retire_if_changed(redis_client, keys, "videos", "52@9")
    assert current_generation(redis_client, keys, "videos") == 3
