"""``Clients`` on a ``redis+sentinel://`` URL, against a real primary, replica and three Sentinels:
it finds the primary through the Sentinels, and the same client object keeps working after the
primary is SIGKILLed and a replica promoted, Lua scripts included (the new primary has none of
them cached: redis-py's ``Script`` loads a script again on NOSCRIPT). The metrics exporter's own
client goes through the Sentinels too."""

from __future__ import annotations

import urllib.request

import pytest
import redis

from pipeline.clients import Clients
from pipeline.metrics.exporter import Exporter
from pipeline.settings import load_settings
from pipeline.state.locks import FencedLock
from tests.sentinel import DATA_PASSWORD, SENTINEL_PASSWORD, kill_primary, revive, sentinels, settings_of
from vidsearch.stack.services import SentinelSet, Service, resp_command

pytestmark = [pytest.mark.integration]
__all__ = ["sentinels"]


def _clients(found: SentinelSet) -> Clients:
    return Clients.from_settings(load_settings(redis_prefix="t:sentinel", **settings_of(found)))


def test_a_sentinel_url_writes_to_the_primary_the_sentinels_name(sentinels: SentinelSet) -> None:
    with _clients(sentinels) as clients:
        clients.redis.set("t:sentinel:probe", "here")
        primary = sentinels.primary()
        seen = resp_command(primary.host, primary.port, "GET", "t:sentinel:probe", password=DATA_PASSWORD)
    assert seen == "here"


def test_clients_and_their_scripts_keep_working_across_a_failover(sentinels: SentinelSet) -> None:
    clients = _clients(sentinels)
    lock = FencedLock(clients.redis, clients.keys.lock("create:probe"), 30.0)
    assert clients.quota.take(1).granted
    assert lock.acquire() and lock.extend()
    before = clients.jobs.retry("no-such-job")
    scripts = [vars(s)["sha"] for s in (*clients.jobs.scripts.values(), clients.quota._take, lock._extend)]
    clients.redis.wait(1, 5000)  # the lock and the quota reached the replica

    failover = kill_primary(sentinels)
    try:
        cached = resp_command(failover.new.host, failover.new.port, "SCRIPT", "EXISTS", *scripts,
                              password=DATA_PASSWORD)
        print(f"\npromoted in {failover.promoted_s:.1f} s; scripts cached on the new primary: "
              f"{sum(cached)} of {len(cached)}")
        assert lock.extend(), "the lease written before the failover is gone"
        assert clients.quota.take(1).granted
        assert clients.jobs.retry("no-such-job") == before
        assert lock.release()
        assert clients.redis.client_id() in _client_ids(failover.new)
    finally:
        clients.close()
        revive(sentinels, failover.old)


def test_a_revived_old_primary_serves_as_a_replica_and_takes_no_writes(sentinels: SentinelSet) -> None:
    with _clients(sentinels) as clients:
        clients.redis.set("t:sentinel:before", "1")
        failover = kill_primary(sentinels)
        back = revive(sentinels, failover.old)
        clients.redis.set("t:sentinel:after", "1")
        role = resp_command(back.host, back.port, "ROLE", password=DATA_PASSWORD)
        assert role[0] == "slave"
        assert clients.redis.client_id() in _client_ids(failover.new)


def test_a_graceful_failover_moves_writes_off_the_demoted_primary(sentinels: SentinelSet) -> None:
    """``SENTINEL FAILOVER``: the old primary stays up as a replica; the client's open connection to
    it must not keep writing there (nor fail: READONLY is a reconnect to the new primary)."""
    with _clients(sentinels) as clients:
        clients.redis.set("t:sentinel:graceful", "before")
        old = sentinels.primary()
        watcher = sentinels.sentinels[0]
        assert resp_command(watcher.host, watcher.port, "SENTINEL", "FAILOVER", "vidsearch",
                            password=SENTINEL_PASSWORD) == "OK"
        new = sentinels.wait_primary(60, not_port=old.port)
        sentinels.wait_synced(60)
        clients.redis.set("t:sentinel:graceful", "after")
        assert resp_command(new.host, new.port, "GET", "t:sentinel:graceful",
                            password=DATA_PASSWORD) == "after"
        assert resp_command(old.host, old.port, "ROLE", password=DATA_PASSWORD)[0] == "slave"


def test_the_metrics_exporter_reads_through_the_sentinels(sentinels: SentinelSet) -> None:
    exporter = Exporter(load_settings(redis_prefix="t:sentinel", **settings_of(sentinels)), 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}/metrics", timeout=30) as resp:
            text = resp.read().decode()
    finally:
        exporter.close()
    assert "vidsearch_redis_up 1.0" in text
    assert exporter.client.connection_pool.service_name == "vidsearch"


def test_no_sentinel_answering_fails_on_first_use_with_a_connection_error() -> None:
    clients = Clients.from_settings(load_settings(redis_url="redis+sentinel://127.0.0.1:1/vidsearch"))
    with pytest.raises(redis.ConnectionError):
        clients.jobs.latest_job_id()
    clients.close()


def test_an_unknown_service_name_fails_with_no_primary_found(sentinels: SentinelSet) -> None:
    settings = settings_of(sentinels)
    settings["redis_url"] = settings["redis_url"].replace("/vidsearch/", "/elsewhere/")
    with Clients.from_settings(load_settings(**settings)) as clients, \
            pytest.raises(redis.sentinel.MasterNotFoundError, match="elsewhere"):
        clients.redis.ping()


def test_a_wrong_sentinel_password_fails_with_no_primary_found(sentinels: SentinelSet) -> None:
    settings = {**settings_of(sentinels), "redis_sentinel_password": "wrong"}
    with Clients.from_settings(load_settings(**settings)) as clients, \
            pytest.raises(redis.sentinel.MasterNotFoundError):
        clients.redis.ping()


def _client_ids(server: Service) -> set[int]:
    listing = str(resp_command(server.host, server.port, "CLIENT", "LIST", password=DATA_PASSWORD))
    return {int(line.split()[0].removeprefix("id=")) for line in listing.splitlines() if line}
