"""``redis_url``: a plain URL is kept as it is; a ``redis+sentinel://`` one is parsed into a
``RedisTarget`` (Sentinels, service, db, data password); a malformed one is refused with a message
that names what is wrong and never echoes the password."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.settings import RedisTarget, load_settings, parse_redis_url


def test_a_plain_url_is_kept_as_it_is() -> None:
    target = load_settings(redis_url="redis://:pw@10.0.0.5:6380/2").redis_target
    assert target == RedisTarget("redis://:pw@10.0.0.5:6380/2")
    assert not target.is_sentinel


def test_a_sentinel_url_names_its_sentinels_service_db_and_password() -> None:
    target = parse_redis_url("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26380,sent-3/main/4")
    assert target.is_sentinel
    assert target.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("sent-3", 26379))
    assert (target.service_name, target.db, target.password) == ("main", 4, "s3cret")
    assert target.shown == "redis+sentinel://10.0.0.1:26379,10.0.0.2:26380,sent-3:26379/main/4"


def test_a_sentinel_url_without_db_or_password_uses_db_0_and_no_password() -> None:
    target = parse_redis_url("redis+sentinel://127.0.0.1:26379/mymaster")
    assert (target.db, target.password, target.service_name) == (0, None, "mymaster")


MALFORMED = {
    "no scheme": ("127.0.0.1:6379", "has no scheme"),
    "unknown scheme": ("http://127.0.0.1:6379", "is not redis, rediss, unix or redis+sentinel"),
    "no sentinel": ("redis+sentinel:///mymaster", "lists no Sentinel"),
    "no service": ("redis+sentinel://h:26379", "names no Sentinel service"),
    "empty service": ("redis+sentinel://h:26379/", "names no Sentinel service"),
    "db not a number": ("redis+sentinel://h:26379/mymaster/zero", "db a number"),
    "too many path parts": ("redis+sentinel://h:26379/mymaster/0/1", "service_name or service_name/db"),
    "port not a number": ("redis+sentinel://h:port/mymaster", "has no valid port"),
    "port out of range": ("redis+sentinel://h:70000/mymaster", "has no valid port"),
    "empty host": ("redis+sentinel://h:26379,:26380/mymaster", "has no host"),
    "empty list entry": ("redis+sentinel://h:26379,/mymaster", "has no host"),
    "a user name": ("redis+sentinel://admin:pw@h:26379/mymaster", "takes a password only"),
    "no colon before the password": ("redis+sentinel://pw@h:26379/mymaster", "takes a password only"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_url_is_refused_with_what_is_wrong(case: str) -> None:
    url, says = MALFORMED[case]
    with pytest.raises(ConfigError, match="redis_url") as caught:
        load_settings(redis_url=url)
    assert says in str(caught.value)


def test_the_refusal_of_a_malformed_url_never_shows_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(redis_url="redis+sentinel://:hunter2@h:26379/mymaster/zero")
    assert "hunter2" not in str(caught.value)


def test_the_sentinels_password_is_a_secret_setting() -> None:
    settings = load_settings(redis_url="redis+sentinel://h:26379/m", redis_sentinel_password="sp")
    assert settings.redis_sentinel_password is not None
    assert "sp" not in repr(settings.redis_sentinel_password)
    assert settings.redis_sentinel_password.get_secret_value() == "sp"


def test_a_wait_timeout_of_half_the_create_lease_or_more_is_refused() -> None:
    """A create is sent only if its mark's answer, WAIT included, came within half the lease
    (``pipeline/ingest/create.py``): a longer WAIT could hold back every create."""
    sentinel = "redis+sentinel://127.0.0.1:26379/mymaster"
    with pytest.raises(ConfigError, match="redis_wait_timeout_ms must stay under half of create_lease_s"):
        load_settings(redis_url=sentinel, create_lease_s=8, redis_wait_timeout_ms=4000)
    assert load_settings(redis_url=sentinel, create_lease_s=8, redis_wait_timeout_ms=3999)
    assert load_settings(redis_url=sentinel, create_lease_s=8, redis_wait_timeout_ms=4000,
                         redis_wait_replicas=0)  # no WAIT
    assert load_settings(create_lease_s=0.3)  # a plain redis:// URL never waits
