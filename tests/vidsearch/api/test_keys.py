"""API keys are stored as digests: entries parse, keys authenticate by digest, roles gate."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.settings import load_settings
from vidsearch.api.keys import KEY_PREFIX, ApiKey, KeyRing, digest, new_key, parse_entry


def test_a_new_key_is_random_prefixed_and_authenticates_only_by_its_digest() -> None:
    key, other = new_key(), new_key()
    assert key.startswith(KEY_PREFIX) and key != other and len(key) > 40
    ring = KeyRing([ApiKey("ops", "admin", digest(key))])
    found = ring.authenticate(key)
    assert found is not None and found.name == "ops"
    assert ring.authenticate(other) is None
    assert ring.authenticate(digest(key)) is None  # the stored digest is not itself a key


def test_an_entry_round_trips_and_a_malformed_entry_names_the_expected_shape() -> None:
    entry = f"web:read:{digest('k')}"
    assert parse_entry(entry).entry() == entry
    d = digest("k")
    for bad in ("web:read", f"web:owner:{d}", f"web:read:{d[:-1]}", f"a b:read:{d}"):
        with pytest.raises(ValueError, match="name:role:sha256-hex"):
            parse_entry(bad)


def test_a_read_key_allows_search_only_and_an_admin_key_allows_everything() -> None:
    read, admin = ApiKey("r", "read", digest("r")), ApiKey("a", "admin", digest("a"))
    assert read.allows("read") and not read.allows("admin")
    assert admin.allows("read") and admin.allows("admin")


def test_settings_refuse_a_malformed_or_duplicate_key_entry() -> None:
    with pytest.raises(ConfigError, match="name:role:sha256-hex"):
        load_settings(api_keys=["plain-text-key"])
    with pytest.raises(ConfigError, match="unique"):
        load_settings(api_keys=[f"x:read:{digest('a')}", f"x:admin:{digest('b')}"])
    assert not KeyRing.from_entries(load_settings().api_keys)
