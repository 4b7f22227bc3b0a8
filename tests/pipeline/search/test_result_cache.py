"""ResultCache on a real redis-server: generation in the key, TTL, size bound."""

from __future__ import annotations

import uuid

from pipeline.search.result_cache import ResultCache
from pipeline.search.results import Moment, SearchResult, VideoHit, result_to_json
from pipeline.state.generation import bump_generation
from pipeline.state.keys import Keys
from tests.stack import wait_for

HIT = VideoHit("https://v.example/a.mp4", "a", "news", 0.7, 6.0, 24.0, [Moment(6.0, 24.0, 0.7)])


def cache(redis_client, **kw: int) -> tuple[ResultCache, Keys]:
    keys = Keys(f"rc{uuid.uuid4().hex[:6]}")
    return ResultCache(redis_client, keys, kw.get("ttl_s", 60), kw.get("max_entries", 10)), keys


def test_a_stored_result_comes_back_until_the_generation_moves(redis_client) -> None:
    results, keys = cache(redis_client)
    key = results.key("col", {"q": 1})
    results.put(key, result_to_json(SearchResult([HIT])))
    assert results.get(results.key("col", {"q": 1})) == [HIT]
    assert bump_generation(redis_client, keys, "col") == 1
    assert results.get(results.key("col", {"q": 1})) is None
    assert results.get(results.key("other", {"q": 1})) is None


def test_entries_expire_after_the_ttl(redis_client) -> None:
    results, _ = cache(redis_client, ttl_s=2)
    key = results.key("col", {"q": 2})
    results.put(key, result_to_json(SearchResult([HIT])))
    assert 0 < redis_client.pttl(key) <= 2000
    assert results.get(key) == [HIT]
    wait_for(lambda: results.get(key) is None, 15, "Redis to expire the entry")
    assert not redis_client.exists(key)


def test_the_oldest_entries_are_evicted_past_the_size_bound(redis_client) -> None:
    results, keys = cache(redis_client, max_entries=3)
    stored = [results.key("col", {"q": i}) for i in range(5)]
    for key in stored:
        results.put(key, [])
    assert [results.get(k) is not None for k in stored] == [False, False, True, True, True]
    assert redis_client.zcard(keys.rcache_index) == 3


def test_zero_ttl_or_size_turns_the_cache_off(redis_client) -> None:
    assert not cache(redis_client, ttl_s=0)[0].enabled
    assert not cache(redis_client, max_entries=0)[0].enabled
