"""The ledger's Lua script files: each one reaches Redis through the store, each helper is written
once, every script compiles on a real redis-server, and the files are read once per process."""

from __future__ import annotations

import redis

from pipeline.ledger import lua
from pipeline.ledger.store import SCRIPTS, JobStore
from pipeline.state.keys import Keys


def _used_helpers() -> set[str]:
    return {helper for name in SCRIPTS for helper in lua.helpers(name)}


def test_every_lua_file_is_a_script_of_the_store_or_a_helper_one_uses(
    redis_client: redis.Redis,
) -> None:
    store = JobStore(redis_client, Keys("t"))
    assert sorted(store.scripts) == sorted(SCRIPTS)
    assert set(lua.names()) == set(SCRIPTS) | _used_helpers()
    registered = [script.script for script in store.scripts.values()]
    for name in lua.names():
        assert any(lua.read(name) in str(text) for text in registered), f"{name}.lua is not used"


def test_each_helper_function_is_defined_in_its_own_file_only() -> None:
    for helper in _used_helpers():
        defining = [n for n in lua.names() if f"local function {helper}(" in lua.read(n)]
        assert defining == [helper]


def test_a_script_runs_with_the_helpers_it_names_prepended() -> None:
    assert lua.helpers("admit") == ["split", "pack"]
    assert lua.source("admit") == lua.read("split") + lua.read("pack") + lua.read("admit")
    assert lua.helpers("claim_due") == []
    assert lua.source("claim_due") == lua.read("claim_due")


def test_every_registered_script_compiles_on_redis(redis_client: redis.Redis) -> None:
    store = JobStore(redis_client, Keys("t"))
    for name, script in store.scripts.items():
        assert redis_client.script_load(script.script) == script.sha, name


def test_the_files_are_read_once_per_process_not_per_store_or_call(
    redis_client: redis.Redis,
) -> None:
    first, second = JobStore(redis_client, Keys("a")), JobStore(redis_client, Keys("b"))
    first.admit(10, 0.0)
    second.retry("no-such-job")
    for name in SCRIPTS:
        assert first.scripts[name].script is second.scripts[name].script
    assert lua.read.cache_info().misses == len(lua.names())
